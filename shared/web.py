"""Litestar plumbing shared by both services: runtime state, auth guard, health and readiness."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from litestar import Request, Response, get
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.auth import KeyCache, Principal, authenticate, authorize
from shared.config import Settings
from shared.jobs import ArqQueue
from shared.uow import Database, UnitOfWork


@dataclass
class Runtime:
    """What handlers need, built once per app from Settings (in the lifespan, not at import)."""

    settings: Settings
    db: Database
    queue: ArqQueue | None
    redis: Redis | None
    keys: KeyCache
    extras: dict[str, Any] = field(default_factory=dict)

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.db, self.queue)

    @asynccontextmanager
    async def read_conn(self) -> AsyncIterator[AsyncConnection]:
        async with self.db.transaction() as (conn, _trans):
            yield conn


RUNTIME_KEY = "runtime"
OPENAPI_PATH = "/schema"


def runtime_of(request: ASGIConnection[Any, Any, Any, Any]) -> Runtime:
    rt: Runtime = request.app.state[RUNTIME_KEY]
    return rt


def principal_of(request: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    p: Principal = request.scope["state"]["principal"]
    return p


def request_id_of(request: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    rid = request.scope.get("state", {}).get("request_id")
    return rid if isinstance(rid, str) else None


async def auth_guard(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Every route requires a key unless it is marked public; then the role is checked
    against the route's policy name in `shared.auth.POLICY`."""
    if handler.opt.get("public") or connection.scope["path"].startswith(OPENAPI_PATH):
        return
    rt = runtime_of(connection)
    principal = await authenticate(rt.read_conn, rt.keys, connection.headers.get("authorization"))
    connection.scope["state"]["principal"] = principal
    authorize(principal, handler.opt.get("policy"))


@get("/health", opt={"public": True}, tags=["ops"], summary="Liveness", include_in_schema=True)
async def health() -> dict[str, str]:
    return {"status": "ok"}


@get("/ready", opt={"public": True}, tags=["ops"], summary="Readiness: PostgreSQL and Redis")
async def ready(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    rt = runtime_of(request)
    checks: dict[str, str] = {}

    async def check_db() -> None:
        try:
            async with rt.read_conn() as conn:
                await conn.execute(text("SELECT 1"))
            checks["postgres"] = "ok"
        except Exception as exc:
            checks["postgres"] = f"unavailable: {type(exc).__name__}"

    async def check_redis() -> None:
        if rt.redis is None:
            checks["redis"] = "unavailable: not configured"
            return
        try:
            await rt.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"unavailable: {type(exc).__name__}"

    try:
        await asyncio.wait_for(asyncio.gather(check_db(), check_redis()), timeout=3)
    except TimeoutError:
        checks.setdefault("postgres", "unavailable: timeout")
        checks.setdefault("redis", "unavailable: timeout")
    ok = all(v == "ok" for v in checks.values())
    return Response(
        {"status": "ready" if ok else "unavailable", "checks": checks},
        status_code=200 if ok else 503,
    )
