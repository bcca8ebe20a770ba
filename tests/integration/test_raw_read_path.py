"""The read-only hot path (`Database.raw()`: pooled asyncpg, autocommit) on a real pool."""

from __future__ import annotations

from typing import Any

from services.app import create_app
from shared.config import Settings
from shared.uow import Database
from tests.asgi import asgi_client
from tests.integration.conftest import make_keys


async def test_eligibility_check_runs_on_the_raw_pool(
    settings: Settings, committed_db: Database, tenant: str
) -> None:
    keys = await make_keys(committed_db, tenant, tenant + "-x")
    async with asgi_client(create_app(settings, configure_logs=False)) as client:
        resp = await client.post(
            "/v1/eligibility/check",
            json={"patient_ref": "nobody", "date_of_service": "2026-01-05", "service_type": "CMR"},
            headers=keys.headers("intake"),
        )
        assert resp.status_code == 404
        assert resp.json()["code"] == "patient_not_found"
        again: Any = await client.post(
            "/v1/eligibility/check",
            json={"patient_ref": "nobody", "date_of_service": "2026-01-05", "service_type": "CMR"},
            headers=keys.headers("intake"),
        )
        assert again.status_code == 404


async def test_raw_rows_are_committed_data(committed_db: Database) -> None:
    async with committed_db.raw() as conn:
        assert await conn.fetchval("SELECT 41 + 1") == 42
        assert (
            await conn.fetchval("SELECT current_setting('transaction_isolation')")
            == "read committed"
        )
