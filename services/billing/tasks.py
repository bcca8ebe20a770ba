"""arq jobs for billing: take ids, reload state, call one use case; idempotent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.billing.claims import PriceResult, default_coverage, price_sessions
from services.billing.intake import claim_pending_sessions
from services.billing.ports import CoveragePort
from shared.jobs import ArqQueue, mark_processed
from shared.logging import get_logger
from shared.uow import Database, UnitOfWork

log = get_logger("billing.tasks")

WORKER_ACTOR = "worker"


def _coverage(ctx: dict[str, Any]) -> CoveragePort:
    port: CoveragePort | None = ctx.get("coverage_port")
    if port is None:
        port = ctx["coverage_port"] = default_coverage()
    return port


async def _drain_once(
    ctx: dict[str, Any], own_session_id: str | None
) -> tuple[PriceResult, list[str]]:
    """Turn up to `worker_batch_size` pending sessions into claims in one transaction."""
    db: Database = ctx["db"]
    batch = ctx["settings"].worker_batch_size
    async with UnitOfWork(db, None) as uow:
        claimed = await claim_pending_sessions(uow.conn, own_session_id, batch)
        if not claimed:
            return PriceResult(), []
        job_ids = [job_id for job_id, _ in claimed]
        session_ids = [job_id.split(":", 1)[1] for job_id in job_ids]
        result = await price_sessions(
            uow.conn, session_ids, coverage=_coverage(ctx), actor=WORKER_ACTOR
        )
        await mark_processed(uow.conn, job_ids)
        await uow.commit()
    return result, job_ids


async def _drain(ctx: dict[str, Any], own_session_id: str | None) -> int:
    queue: ArqQueue = ctx["queue"]
    total = 0
    claims = 0
    by_status: dict[str, int] = {}
    while True:
        result, job_ids = await _drain_once(ctx, own_session_id)
        own_session_id = None
        if not job_ids:
            break
        total += result.sessions
        claims += result.claims
        for status, n in result.by_status.items():
            by_status[status] = by_status.get(status, 0) + n
        # Drop the per-session jobs the sweeper may have queued for work now done.
        try:
            await queue.discard(job_ids)
        except Exception as exc:
            log.warning("billing.discard_failed", error_type=type(exc).__name__)
        if len(job_ids) < ctx["settings"].worker_batch_size:
            break
    if total:
        log.info("billing.sessions.processed", count=total, claims=claims, **by_status)
    return total


async def price_session(ctx: dict[str, Any], session_id: str, tenant_id: str) -> int:
    """One session's job (as the outbox sweeper re-sends it): it drains that session first,
    then any other pending ones. Running twice is harmless: processed rows are skipped."""
    return await _drain(ctx, session_id)


async def price_sessions_batch(ctx: dict[str, Any], bucket: int) -> int:
    """The wake-up for every session committed in one time window (see `batch_wakeup`)."""
    return await _drain(ctx, None)


FUNCTIONS: list[Callable[..., Any]] = [price_session, price_sessions_batch]
