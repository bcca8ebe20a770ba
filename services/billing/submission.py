"""Submission: ready claims -> 837P batches -> the clearinghouse, exactly once.

The protocol, in three steps with a commit between each:

1. **record** (one transaction): lock ready claims not held by another batch
   (``FOR UPDATE SKIP LOCKED``), group them per tenant / trading partner / receiver / payer,
   take control numbers from the partner's sequences, build the file and store the batch
   (file name, bytes, sha256, control numbers, claims). Claims stay ``ready``; the batch
   holds them (``batch_claims.active``, unique per claim), so no other run can batch them.
2. **send** (no transaction open): the stored bytes under the stored name, with retries. A
   session advisory lock on the batch keeps two processes from sending it at once; it dies
   with the process.
3. **confirm** (one transaction): only after the transport confirmed, the batch becomes
   ``sent`` and its claims ``submitted`` (audited, version bumped). When the tries run out
   (or the error is permanent) the batch becomes ``failed`` and a work item; its claims stay
   held until a manager retries it.

A crash after step 1 or 2 leaves a ``recorded`` batch; every run (and the worker's start)
first re-sends those, with the SAME name and bytes: the directory mailbox treats an
identical file as already delivered and the HTTP clearinghouse dedupes on the
Idempotency-Key (the content hash). A new batch is never made for claims a batch holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.submission_config import (
    BATCH,
    BatchResult,
    RunHooks,
    RunResult,
    SubmissionConfig,
    Transports,
)
from services.billing.submission_record import record_batches
from services.billing.submission_send import confirm_batch, send_batch, unconfirmed_batches
from services.billing.tables_submission import batches
from shared import audit
from shared.clock import utc_now
from shared.logging import get_logger
from shared.uow import Database, UnitOfWork

__all__ = [
    "BatchResult",
    "RunHooks",
    "RunResult",
    "SubmissionConfig",
    "Transports",
    "confirm_batch",
    "record_batches",
    "retry_batch",
    "run_submission",
    "send_batch",
]

log = get_logger("billing.submission")


# ----------------------------------------------------------------------------- run


async def run_submission(
    db: Database,
    transports: Transports,
    config: SubmissionConfig,
    *,
    actor: str,
    tenant_id: str | None = None,
    hooks: RunHooks | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> RunResult:
    """Recover unconfirmed batches, then batch and send the ready claims."""
    result = RunResult()
    for batch_id in await unconfirmed_batches(db, tenant_id):
        result.recovered.append(
            await send_batch(
                db, transports, config, batch_id, actor=actor, hooks=hooks, sleep=sleep
            )
        )
    recorded: list[BatchResult] = []
    for attempt in (1, 2):
        try:
            async with UnitOfWork(db, None) as uow:
                recorded, held = await record_batches(
                    uow.conn, config, actor=actor, tenant_id=tenant_id
                )
                await uow.commit()
            result.held_claims.extend(held)
            break
        except IntegrityError:
            # A concurrent run batched one of these claims between our read and our insert
            # (the active-claim unique index refused it); read again.
            if attempt == 2:
                raise
            log.warning("billing.batch.record_conflict")
    if hooks is not None and hooks.after_record is not None and recorded:
        hooks.after_record([r.batch_id for r in recorded])
    for r in recorded:
        result.batches.append(
            await send_batch(
                db, transports, config, r.batch_id, actor=actor, hooks=hooks, sleep=sleep
            )
        )
    return result


async def retry_batch(
    conn: AsyncConnection,
    tenant_id: str,
    batch_id: str,
    *,
    actor: str,
    reason: str,
    request_id: str | None = None,
) -> bool:
    """A failed batch goes back to ``recorded``; the next send uses the same bytes."""
    b = (
        await conn.execute(
            select(batches)
            .where(batches.c.id == batch_id, batches.c.tenant_id == tenant_id)
            .with_for_update()
        )
    ).first()
    if b is None or b.status != "failed":
        return False
    await conn.execute(
        update(batches)
        .where(batches.c.id == batch_id)
        .values(status="recorded", updated_at=utc_now(), failed_at=None)
    )
    await audit.append(
        conn,
        tenant_id=tenant_id,
        entity_type=BATCH,
        entity_id=batch_id,
        action="batch.retry",
        actor=actor,
        request_id=request_id,
        reason=reason,
        before={"status": "failed"},
        after={"status": "recorded"},
    )
    return True


def batch_ids(results: Sequence[BatchResult]) -> list[str]:
    return [r.batch_id for r in results]
