"""Exactly one claim per session when two workers race on the same sessions (real commits,
separate connections): through the outbox (SKIP LOCKED) and, bypassing it, on the very same
session ids (the session row lock and the unique constraint)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.app import create_app
from services.billing.claims import default_coverage, price_sessions
from services.billing.tasks import price_sessions_batch
from shared.config import Settings
from shared.jobs import ArqQueue
from shared.uow import Database, UnitOfWork
from tests.asgi import asgi_client
from tests.integration.claims.helpers import clean_session, covered_patient, post_session
from tests.integration.conftest import make_keys

pytestmark = pytest.mark.slow


async def _setup(settings: Settings, database: Database, tenant: str, n: int) -> list[str]:
    keys = await make_keys(database, tenant, tenant + "-x")
    async with asgi_client(create_app(settings, configure_logs=False)) as client:
        await covered_patient(client, keys, "P-1")
        await covered_patient(client, keys, "P-2")
        ids = []
        for i in range(n):
            body = clean_session(
                f"R-{i}",
                patient_ref=f"P-{i % 3 + 1}",  # P-3 has no coverage: not billable
                date_of_service=f"2026-{i % 9 + 1:02d}-{i % 27 + 1:02d}",
                service_type="TMR",
            )
            ids.append(await post_session(client, keys, body))
    return ids


async def _claims_per_session(database: Database, ids: list[str]) -> dict[str, int]:
    async with database.transaction() as (conn, _t):
        rows = await conn.execute(
            text(
                "SELECT s.id::text AS id, count(c.id) AS n FROM billing.sessions s "
                "LEFT JOIN billing.claims c ON c.session_id = s.id "
                "WHERE s.id::text = ANY(:ids) GROUP BY s.id"
            ),
            {"ids": ids},
        )
        return {r.id: r.n for r in rows}


async def _event_counts(database: Database, tenant: str) -> tuple[int, int]:
    async with database.transaction() as (conn, _t):
        claims = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM audit.events WHERE tenant_id = :t "
                    "AND entity_type = 'claim'"
                ),
                {"t": tenant},
            )
        ).scalar_one()
        sessions = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM audit.events WHERE tenant_id = :t "
                    "AND entity_type = 'session' AND seq = 2"
                ),
                {"t": tenant},
            )
        ).scalar_one()
        return claims, sessions


async def test_two_workers_on_the_same_outbox_make_one_claim_each(
    settings: Settings, engine: AsyncEngine, redis: Any, tenant: str
) -> None:
    setup_db = Database(engine)
    ids = await _setup(settings, setup_db, tenant, 24)
    small = Settings(
        **{**{f: getattr(settings, f) for f in settings.__struct_fields__}, "worker_batch_size": 5}
    )

    def ctx() -> dict[str, Any]:
        # Each worker has its own Database: its own connections and transactions.
        return {
            "settings": small,
            "db": Database(engine),
            "queue": ArqQueue(redis, small.queue_name),
        }

    done = await asyncio.gather(*(price_sessions_batch(ctx(), 0) for _ in range(2)))
    assert sum(done) == 24
    assert all(n >= 0 for n in done)
    assert set((await _claims_per_session(setup_db, ids)).values()) == {1}
    claim_events, session_events = await _event_counts(setup_db, tenant)
    assert (claim_events, session_events) == (2 * 24, 24)
    # Once more, as a redelivered job would: nothing left to do.
    assert await price_sessions_batch(ctx(), 0) == 0


async def test_racing_on_the_very_same_sessions_still_makes_one_claim_each(
    settings: Settings, engine: AsyncEngine, redis: Any, tenant: str
) -> None:
    setup_db = Database(engine)
    ids = await _setup(settings, setup_db, tenant, 12)
    coverage = default_coverage()

    async def worker() -> int:
        async with UnitOfWork(Database(engine), None) as uow:
            result = await price_sessions(uow.conn, ids, coverage=coverage, actor="worker")
            await uow.commit()
        return result.claims

    made = await asyncio.gather(worker(), worker(), worker())
    assert sorted(made) == [0, 0, 12]  # the row locks serialise them; the losers find nothing
    assert set((await _claims_per_session(setup_db, ids)).values()) == {1}
    claim_events, session_events = await _event_counts(setup_db, tenant)
    assert (claim_events, session_events) == (2 * 12, 12)
