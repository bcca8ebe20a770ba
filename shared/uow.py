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


class Queue(Protocol):
    async def enqueue(self, job: PendingJob) -> bool: ...


class Database:
    """Hands out a connection with a transaction; the test double shares one connection."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

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

    async def dispose(self) -> None:
        return None


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
        if not jobs or self._queue is None:
            return
        for job in jobs:
            try:
                await self._queue.enqueue(job)
            except Exception as exc:
                # Redis down: the outbox row is committed, so the sweeper will re-send it.
                log.warning("jobs.enqueue_failed", job_id=job.job_id, error_type=type(exc).__name__)
