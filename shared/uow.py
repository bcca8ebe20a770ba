"""Unit of work: the one owner of commit, with jobs buffered until after the commit.

    async with UnitOfWork(db, queue) as uow:
        ... uow.conn.execute(...) ...
        await uow.add_job(tenant, "price_session", f"price_session:{sid}", {"session_id": sid})
        await uow.commit()          # leaving without commit rolls back and drops the jobs

`add_job` writes an outbox row in the same transaction (PostgreSQL is the source of truth)
and buffers the arq job; after the commit the job is sent to Redis. If Redis is down the
request still succeeds: the outbox sweeper re-sends the job later.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

from shared.logging import get_logger
from shared.tables import outbox

log = get_logger("shared.uow")


@dataclass(frozen=True, slots=True)
class PendingJob:
    name: str
    job_id: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    #: Run no earlier than this UNIX time (seconds); None = now.
    defer_until: float | None = None
    #: Several units of work may ask for the same job id: send it to Redis once per process.
    coalesce: bool = False


def batch_wakeup(name: str, now: float, window_seconds: float = 0.5) -> PendingJob:
    """A wake-up job for everything committed in one time window.

    Its id is deterministic (`<name>:batch:<window number>`) and it runs just after the
    window closes, so it sees every row committed by a unit of work that asked for it
    (they ask after their commit). One Redis call per window per process instead of one per
    request; a lost wake-up is covered by the outbox sweeper.
    """
    bucket = int(now // window_seconds)
    return PendingJob(
        name,
        f"{name}:batch:{bucket}",
        {"bucket": bucket},
        defer_until=(bucket + 1) * window_seconds + 0.05,
        coalesce=True,
    )


class Queue(Protocol):
    async def enqueue(self, job: PendingJob) -> bool: ...


async def _no_reset(_conn: Any) -> None:
    return None


class Database:
    """Hands out a connection with a transaction; the test double shares one connection.

    `fetchrow_atomic` runs ONE statement in autocommit on a raw asyncpg pool: a single
    statement is atomic by itself, so the hot intake path needs no BEGIN/COMMIT round trips
    and no ORM/Core overhead. Use it only for statements that are complete units of work.
    """

    def __init__(self, engine: AsyncEngine, *, raw_pool_size: int = 10) -> None:
        self.engine = engine
        self._raw_pool: Any = None
        self._raw_pool_size = raw_pool_size
        self._raw_lock = asyncio.Lock()

    async def _pool(self) -> Any:
        if self._raw_pool is None:
            async with self._raw_lock:
                if self._raw_pool is None:
                    import asyncpg

                    from shared.db import asyncpg_dsn

                    url = self.engine.url.render_as_string(hide_password=False)
                    self._raw_pool = await asyncpg.create_pool(
                        asyncpg_dsn(url),
                        min_size=1,
                        max_size=self._raw_pool_size,
                        # Single autocommit statements leave no session state behind, so the
                        # reset query (an extra round trip per release) is not needed.
                        reset=_no_reset,
                    )
        return self._raw_pool

    async def fetchrow_atomic(self, sql: str, *args: Any) -> Any:
        pool = await self._pool()
        async with pool.acquire() as conn:
            return await conn.fetchrow(sql, *args)

    @asynccontextmanager
    async def raw(self) -> AsyncIterator[Any]:
        """A pooled asyncpg connection in autocommit, for read-only hot paths (each statement
        sees committed data; no BEGIN/ROLLBACK round trips, no pool reset query)."""
        pool = await self._pool()
        async with pool.acquire() as conn:
            yield conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[tuple[AsyncConnection, AsyncTransaction]]:
        async with self.engine.connect() as conn:
            trans = await conn.begin()
            try:
                yield conn, trans
            finally:
                if trans.is_active:
                    await trans.rollback()

    async def dispose(self) -> None:
        if self._raw_pool is not None:
            await self._raw_pool.close()
            self._raw_pool = None
        await self.engine.dispose()


class SharedConnectionDatabase(Database):
    """Tests: every unit of work is a savepoint on one connection whose outer transaction
    the test rolls back. A lock keeps concurrent units of work from interleaving on it."""

    def __init__(self, engine: AsyncEngine, conn: AsyncConnection) -> None:
        super().__init__(engine)
        self.conn = conn
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[tuple[AsyncConnection, AsyncTransaction]]:
        async with self._lock:
            trans = await self.conn.begin_nested()
            try:
                yield self.conn, trans
            finally:
                if trans.is_active:
                    await trans.rollback()

    @asynccontextmanager
    async def raw(self) -> AsyncIterator[Any]:
        # Autocommit in production: here the savepoint stands in for it and is released
        # (committed into the test's outer transaction) when the block ends without error.
        async with self.transaction() as (conn, trans):
            raw = await conn.get_raw_connection()
            yield raw.driver_connection
            await trans.commit()

    async def fetchrow_atomic(self, sql: str, *args: Any) -> Any:
        async with self.transaction() as (conn, trans):
            raw = await conn.get_raw_connection()
            row = await raw.driver_connection.fetchrow(sql, *args)  # type: ignore[union-attr]
            await trans.commit()
            return row

    async def dispose(self) -> None:
        return None


async def send_after_commit(queue: Queue | None, jobs: list[PendingJob]) -> None:
    """Send jobs whose work is already committed; Redis trouble only delays them (outbox)."""
    if queue is None:
        return
    for job in jobs:
        try:
            await queue.enqueue(job)
        except Exception as exc:
            log.warning("jobs.enqueue_failed", job_id=job.job_id, error_type=type(exc).__name__)


class UnitOfWork:
    def __init__(self, db: Database, queue: Queue | None) -> None:
        self._db = db
        self._queue = queue
        self._jobs: list[PendingJob] = []
        self._committed = False
        self._cm: Any = None
        self.conn: AsyncConnection
        self._trans: AsyncTransaction

    async def __aenter__(self) -> UnitOfWork:
        self._cm = self._db.transaction()
        self.conn, self._trans = await self._cm.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if not self._committed and self._trans.is_active:
                await self._trans.rollback()
        finally:
            await self._cm.__aexit__(exc_type, exc, tb)
        if self._committed:
            await self._send_jobs()

    async def add_job(
        self, tenant_id: str, name: str, job_id: str, kwargs: dict[str, Any] | None = None
    ) -> None:
        args = kwargs or {}
        await self.conn.execute(
            pg_insert(outbox)
            .values(tenant_id=tenant_id, job_name=name, job_id=job_id, args=args)
            .on_conflict_do_nothing(index_elements=["job_id"])
        )
        self._jobs.append(PendingJob(name, job_id, args))

    def defer(self, job: PendingJob) -> None:
        """Buffer a job whose outbox row the caller wrote itself (bulk paths)."""
        self._jobs.append(job)

    async def commit(self) -> None:
        await self._trans.commit()
        self._committed = True

    async def _send_jobs(self) -> None:
        jobs, self._jobs = self._jobs, []
        await send_after_commit(self._queue, jobs)
