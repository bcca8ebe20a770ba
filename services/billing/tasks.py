"""arq jobs for billing: take ids, reload state, call one use case; idempotent."""

from __future__ import annotations

from typing import Any

from services.billing.intake import (
    PRICE_SESSION,
    claim_pending_sessions,
    mark_awaiting_pricing,
)
from shared.jobs import ArqQueue, mark_processed
from shared.logging import get_logger
from shared.uow import Database, UnitOfWork

log = get_logger("billing.tasks")

WORKER_ACTOR = "worker"


async def price_session(ctx: dict[str, Any], session_id: str, tenant_id: str) -> int:
    """Process the session this job names plus any other pending ones, in one transaction.

    Batching is what lets one worker keep up with intake: one arq job drains up to
    `worker_batch_size` sessions and drops their now-redundant jobs from the queue.
    Running twice is harmless: processed outbox rows are skipped and the state moves once.
    """
    db: Database = ctx["db"]
    queue: ArqQueue = ctx["queue"]
    batch = ctx["settings"].worker_batch_size
    async with UnitOfWork(db, None) as uow:
        claimed = await claim_pending_sessions(uow.conn, session_id, batch)
        if not claimed:
            return 0
        job_ids = [job_id for job_id, _ in claimed]
        session_ids = [job_id.split(":", 1)[1] for job_id in job_ids]
        moved = await mark_awaiting_pricing(uow.conn, session_ids, actor=WORKER_ACTOR)
        await mark_processed(uow.conn, job_ids)
        await uow.commit()
    others = [j for j in job_ids if j != f"{PRICE_SESSION}:{session_id}"]
    try:
        await queue.discard(others)
    except Exception as exc:
        log.warning("billing.discard_failed", error_type=type(exc).__name__)
    log.info("billing.sessions.processed", count=len(moved), batch=len(job_ids))
    return len(moved)


FUNCTIONS = [price_session]
