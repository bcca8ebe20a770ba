"""arq plumbing: the Redis-backed queue, the outbox sweeper and worker settings.

PostgreSQL is the source of truth for pending work (`core.outbox`); Redis only wakes workers.
Every job has a deterministic id (`price_session:<uuid>`) and is idempotent, because arq may
run a job twice and the sweeper re-sends any outbox row not processed within a minute.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from arq import cron
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import job_key_prefix
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import utc_now
from shared.config import Settings
from shared.db import create_engine
from shared.logging import bind_context, clear_context, configure_logging, get_logger
from shared.tables import outbox
from shared.uow import Database, PendingJob, UnitOfWork

log = get_logger("shared.jobs")


def redis_settings(url: str) -> RedisSettings:
    rs = RedisSettings.from_dsn(url)
    rs.conn_timeout = 2
    rs.conn_retries = 2
    rs.conn_retry_delay = 1
    return rs


class ArqQueue:
    def __init__(self, redis: ArqRedis, queue_name: str) -> None:
        self.redis = redis
        self.queue_name = queue_name
        self._coalesced: dict[str, float] = {}

    async def enqueue(self, job: PendingJob) -> bool:
        if job.coalesce:
            if job.job_id in self._coalesced:
                return False
            if len(self._coalesced) > 256:
                self._coalesced.clear()
            self._coalesced[job.job_id] = job.defer_until or 0.0
        defer = (
            datetime.fromtimestamp(job.defer_until, UTC) if job.defer_until is not None else None
        )
        try:
            sent = await self.redis.enqueue_job(
                job.name,
                _job_id=job.job_id,
                _queue_name=self.queue_name,
                _defer_until=defer,
                **job.kwargs,
            )
        except Exception:
            self._coalesced.pop(job.job_id, None)
            raise
        return sent is not None

    async def discard(self, job_ids: Sequence[str]) -> None:
        """Drop queued jobs whose work a batch already did, so workers skip the no-op runs."""
        if not job_ids:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrem(self.queue_name, *job_ids)
            pipe.delete(*[job_key_prefix + j for j in job_ids])
            await pipe.execute()

    async def close(self) -> None:
        await self.redis.aclose()


async def connect_queue(settings: Settings) -> ArqQueue:
    pool = await create_pool(
        redis_settings(settings.redis_url), default_queue_name=settings.queue_name
    )
    return ArqQueue(pool, settings.queue_name)


async def mark_processed(conn: AsyncConnection, job_ids: Sequence[str]) -> None:
    if job_ids:
        await conn.execute(
            update(outbox)
            .where(outbox.c.job_id.in_(list(job_ids)), outbox.c.processed_at.is_(None))
            .values(processed_at=func.now())
        )


async def sweep_outbox(ctx: dict[str, Any]) -> int:
    """Re-send outbox rows not processed within `outbox_redeliver_after_seconds`."""
    settings: Settings = ctx["settings"]
    db: Database = ctx["db"]
    queue: ArqQueue = ctx["queue"]
    cutoff = utc_now() - timedelta(seconds=settings.outbox_redeliver_after_seconds)
    async with UnitOfWork(db, None) as uow:
        rows = (
            await uow.conn.execute(
                select(outbox.c.id, outbox.c.job_name, outbox.c.job_id, outbox.c.args)
                .where(
                    outbox.c.processed_at.is_(None),
                    outbox.c.created_at < cutoff,
                    or_(outbox.c.enqueued_at.is_(None), outbox.c.enqueued_at < cutoff),
                )
                .order_by(outbox.c.id)
                .limit(2000)
                .with_for_update(skip_locked=True)
            )
        ).all()
        sent = 0
        for row in rows:
            try:
                if await queue.enqueue(PendingJob(row.job_name, row.job_id, dict(row.args))):
                    sent += 1
            except Exception as exc:
                log.warning("jobs.sweep_enqueue_failed", error_type=type(exc).__name__)
                break
        if rows:
            await uow.conn.execute(
                update(outbox)
                .where(and_(outbox.c.id.in_([r.id for r in rows])))
                .values(enqueued_at=func.now(), attempts=outbox.c.attempts + 1)
            )
        await uow.commit()
    if rows:
        log.info("jobs.outbox_swept", pending=len(rows), sent=sent)
    return len(rows)


async def _startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx["settings"]
    configure_logging(settings.log_level, json=settings.log_json)
    engine = create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
    )
    ctx["db"] = Database(engine)
    ctx["queue"] = ArqQueue(ctx["redis"], settings.queue_name)
    log.info("worker.started", queue=settings.queue_name)


async def _shutdown(ctx: dict[str, Any]) -> None:
    db: Database | None = ctx.get("db")
    if db is not None:
        await db.dispose()


async def _job_start(ctx: dict[str, Any]) -> None:
    clear_context()
    bind_context(job_id=ctx.get("job_id"), job_try=ctx.get("job_try"))


async def _job_end(ctx: dict[str, Any]) -> None:
    clear_context()


def worker_settings(
    settings: Settings,
    functions: Sequence[Callable[..., Any]],
    cron_jobs: Sequence[Any] = (),
) -> dict[str, Any]:
    """Keyword arguments for `arq.worker.Worker` (also usable as a WorkerSettings class body)."""
    sweep_seconds = set(range(0, 60, max(1, min(59, settings.outbox_sweep_every_seconds))))
    return {
        "functions": list(functions),
        "cron_jobs": [
            cron(sweep_outbox, second=sweep_seconds, run_at_startup=True, unique=True),
            *cron_jobs,
        ],
        "queue_name": settings.queue_name,
        "redis_settings": redis_settings(settings.redis_url),
        "on_startup": _startup,
        "on_shutdown": _shutdown,
        "on_job_start": _job_start,
        "on_job_end": _job_end,
        "ctx": {"settings": settings},
        "max_jobs": settings.worker_max_jobs,
        # Results are not kept: a job id may then be re-sent by the sweeper at once, and
        # idempotent jobs make a repeat harmless.
        "keep_result": 0,
        "poll_delay": 0.05,
        "max_tries": 10,
        "job_timeout": 300,
        "handle_signals": True,
        "log_results": False,
    }
