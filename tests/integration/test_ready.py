"""Liveness and readiness against real and unreachable dependencies."""

from __future__ import annotations

from typing import Any

import msgspec

from services.app import create_app
from shared.config import Settings
from tests.asgi import asgi_client


async def test_ready_when_postgres_and_redis_answer(client: Any) -> None:
    resp = await client.get("/ready")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ready", "checks": {"postgres": "ok", "redis": "ok"}}


async def test_not_ready_when_redis_is_down(settings: Settings, db: Any) -> None:
    down = msgspec.structs.replace(settings, redis_url="redis://127.0.0.1:1/0")
    async with asgi_client(create_app(down, database=db, configure_logs=False)) as client:
        assert (await client.get("/health")).status_code == 200
        resp = await client.get("/ready")
    assert resp.status_code == 503
    assert resp.json()["checks"]["postgres"] == "ok"
    assert resp.json()["checks"]["redis"].startswith("unavailable")


async def test_not_ready_when_postgres_is_down(settings: Settings) -> None:
    down = msgspec.structs.replace(settings, database_url="postgresql://postgres@127.0.0.1:1/none")
    async with asgi_client(create_app(down, configure_logs=False)) as client:
        resp = await client.get("/ready")
    assert resp.status_code == 503
    assert resp.json()["checks"]["postgres"].startswith("unavailable")


async def test_openapi_is_served(client: Any) -> None:
    doc = (await client.get("/schema/openapi.json")).json()
    assert "/v1/sessions" in doc["paths"]
    assert doc["info"]["title"] == "mtm-billing"
