"""Submission steps 2 and 3: send a recorded batch's stored bytes (advisory lock, retries
with backoff), then confirm it (``sent``, claims ``submitted``) or fail it (``failed`` and a
work item)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.domain.claim_state import ClaimEvent, ClaimStatus
from services.billing.submission_config import (
    BATCH,
    BatchResult,
    RunHooks,
    SubmissionConfig,
    Transports,
)
from services.billing.submission_transitions import lock_claims, move_claims
from services.billing.tables_submission import batch_claims, batches
from services.billing.transports import (
    Attempt,
    OutgoingFile,
    PermanentTransportError,
    SendOutcome,
    SendReceipt,
    send_with_retry,
)
from shared import audit
from shared.clock import utc_now
from shared.logging import get_logger
from shared.uow import Database, UnitOfWork

log = get_logger("billing.submission")

# ----------------------------------------------------------------------------- confirm / fail


async def confirm_batch(
    conn: AsyncConnection,
    batch_id: str,
    *,
    actor: str,
    receipt: SendReceipt | None,
    attempts: int = 0,
    evidence: str = "the transport confirmed receipt",
    now: datetime | None = None,
) -> bool:
    """Step 3: the batch is ``sent`` and its ready claims ``submitted``. False when the
    batch was already confirmed (idempotent)."""
    now = now or utc_now()
    b = (
        await conn.execute(select(batches).where(batches.c.id == batch_id).with_for_update())
    ).one()
    if b.status == "sent":
        return False
    links = list(
        await conn.execute(
            select(batch_claims.c.claim_id).where(batch_claims.c.batch_id == batch_id)
        )
    )
    locked = await lock_claims(conn, [r.claim_id for r in links])
    reason = f"sent in batch {b.file_name} (ISA13 {b.isa13:09d}): {evidence}"
    ready = [c for c in locked.values() if c.status == ClaimStatus.READY.value]
    moved = await move_claims(
        conn,
        ready,
        ClaimStatus.SUBMITTED,
        ClaimEvent.SUBMIT,
        action="claim.submitted",
        actor=actor,
        reasons={c.id: reason for c in ready},
        after={c.id: {"batch_id": batch_id, "file_name": b.file_name} for c in ready},
        now=now,
    )
    for c in locked.values():
        if c.id not in moved.moved:
            # The payer has the claim anyway: say so where the biller will look.
            note = f"the claim was {c.status} when the batch was confirmed; it was sent"
            await conn.execute(
                update(batch_claims)
                .where(batch_claims.c.batch_id == batch_id, batch_claims.c.claim_id == c.id)
                .values(note=note)
            )
            log.warning("billing.batch.claim_not_ready", batch_id=batch_id, claim_id=c.id)
    await conn.execute(
        update(batch_claims).where(batch_claims.c.batch_id == batch_id).values(active=False)
    )
    await conn.execute(
        update(batches)
        .where(batches.c.id == batch_id)
        .values(
            status="sent",
            sent_at=now,
            updated_at=now,
            attempts=batches.c.attempts + attempts,
            remote_ref=receipt.remote_ref if receipt else b.remote_ref,
            last_error=None,
        )
    )
    await audit.append(
        conn,
        tenant_id=b.tenant_id,
        entity_type=BATCH,
        entity_id=batch_id,
        action="batch.sent",
        actor=actor,
        reason=evidence,
        before={"status": b.status},
        after={
            "status": "sent",
            "claims_submitted": len(moved.moved),
            "remote_ref": receipt.remote_ref if receipt else None,
            "already_present": receipt.already_present if receipt else None,
        },
    )
    log.info("billing.batch.sent", batch_id=batch_id, claims=len(moved.moved))
    return True


async def _fail_batch(
    conn: AsyncConnection, batch_id: str, outcome: SendOutcome, *, actor: str, now: datetime
) -> None:
    from services.billing.work_queue import open_work_item

    b = (
        await conn.execute(select(batches).where(batches.c.id == batch_id).with_for_update())
    ).one()
    if b.status != "recorded":
        return
    error = outcome.last_error or outcome.status
    await conn.execute(
        update(batches)
        .where(batches.c.id == batch_id)
        .values(
            status="failed",
            failed_at=now,
            updated_at=now,
            attempts=batches.c.attempts + len(outcome.attempts),
            last_error=error[:2000],
        )
    )
    await audit.append(
        conn,
        tenant_id=b.tenant_id,
        entity_type=BATCH,
        entity_id=batch_id,
        action="batch.failed",
        actor=actor,
        reason=f"{outcome.status} after {len(outcome.attempts)} attempt(s): {error}",
        before={"status": b.status},
        after={"status": "failed", "attempts": b.attempts + len(outcome.attempts)},
    )
    code = "TRANSPORT_GAVE_UP" if outcome.status == "gave_up" else "TRANSPORT_REFUSED"
    await open_work_item(
        conn,
        tenant_id=b.tenant_id,
        category="submission_failure",
        source="submission",
        summary=(
            f"Batch {b.file_name} ({b.claim_count} claims) was not delivered: "
            f"{outcome.status} after {len(outcome.attempts)} attempt(s) ({error}). "
            "Fix the clearinghouse connection, then retry the batch "
            f"(POST /v1/batches/{batch_id}/retry)."
        ),
        actor=actor,
        batch_id=batch_id,
        amount_cents=b.total_charge_cents,
        reasons=[{"code": code, "message": error}],
    )
    log.error("billing.batch.failed", batch_id=batch_id, status=outcome.status)


# ----------------------------------------------------------------------------- send


def _lock_key(batch_id: str) -> str:
    return f"batch-send:{batch_id}"


async def send_batch(
    db: Database,
    transports: Transports,
    config: SubmissionConfig,
    batch_id: str,
    *,
    actor: str,
    hooks: RunHooks | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> BatchResult:
    """Steps 2 and 3 for one recorded batch: send its stored bytes, then confirm or fail."""
    async with db.engine.connect() as lock_conn:
        got = (
            await lock_conn.execute(
                text("SELECT pg_try_advisory_lock(hashtextextended(:k, 0))"),
                {"k": _lock_key(batch_id)},
            )
        ).scalar_one()
        await lock_conn.commit()
        if not got:
            return BatchResult(batch_id, "busy", "", 0)
        try:
            return await _send_locked(db, transports, config, batch_id, actor, hooks, sleep)
        finally:
            await lock_conn.execute(
                text("SELECT pg_advisory_unlock(hashtextextended(:k, 0))"),
                {"k": _lock_key(batch_id)},
            )
            await lock_conn.commit()


async def _send_locked(
    db: Database,
    transports: Transports,
    config: SubmissionConfig,
    batch_id: str,
    actor: str,
    hooks: RunHooks | None,
    sleep: Callable[[float], Awaitable[Any]],
) -> BatchResult:
    async with db.transaction() as (conn, _t):
        b = (await conn.execute(select(batches).where(batches.c.id == batch_id))).one()
    if b.status != "recorded":
        return BatchResult(batch_id, b.status, b.file_name, b.claim_count, b.attempts)
    outgoing = OutgoingFile(b.file_name, bytes(b.content), batch_id, b.content_hash)
    try:
        transport = transports.get(b.transport)
    except PermanentTransportError as exc:
        outcome = SendOutcome("failed", b.file_name, batch_id, None, (Attempt(1, str(exc), False),))
    else:
        outcome = await send_with_retry(transport, outgoing, config.retry, sleep)
    if outcome.ok and hooks is not None and hooks.after_send is not None:
        hooks.after_send(batch_id)
    now = utc_now()
    async with UnitOfWork(db, None) as uow:
        if outcome.ok:
            await confirm_batch(
                uow.conn, batch_id, actor=actor, receipt=outcome.receipt,
                attempts=len(outcome.attempts), now=now,
            )  # fmt: skip
        else:
            await _fail_batch(uow.conn, batch_id, outcome, actor=actor, now=now)
        await uow.commit()
    return BatchResult(
        batch_id,
        "sent" if outcome.ok else "failed",
        b.file_name,
        b.claim_count,
        b.attempts + len(outcome.attempts),
        None if outcome.ok else outcome.last_error,
    )


async def unconfirmed_batches(db: Database, tenant_id: str | None = None) -> list[str]:
    async with db.transaction() as (conn, _t):
        stmt = select(batches.c.id).where(batches.c.status == "recorded")
        if tenant_id:
            stmt = stmt.where(batches.c.tenant_id == tenant_id)
        rows = await conn.execute(stmt.order_by(batches.c.created_at, batches.c.id))
        return [r.id for r in rows]
