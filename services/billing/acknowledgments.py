"""999 and 277CA ingestion: link each acknowledgment to our batches and claims, store it
verbatim, and move claims to ``accepted`` or ``rejected`` with reasons a biller can act on.

Linking
    * 999: AK1-02 is the GS06 of our file and the 999's ISA06 the trading partner we sent it
      to; AK2-02 is the ST02 of a set, whose claims ``batch_claims`` lists.
    * 277CA: 2200D TRN02 is CLM01 (our patient control number, unique across tenants);
      2200B TRN02 echoes our BHT03 (the batch reference) when the sender follows the guide.

Effects
    * 999 IK5 R/M/W/X (and E, as the issue asks: errors noted are sent back for correction)
      or AK9 R with no set detail -> every claim of the set ``rejected``; reasons carry the
      IK3 segment/position/loop and IK4 element errors.
    * 277CA A3/A4/A6/A7/A8 -> ``rejected`` with STC codes and their meaning; A2 ->
      ``accepted``; A1 -> recorded as received (no status change).
    * Every acceptance is an ``ack_claims`` row with the time received and the verbatim file:
      the proof of timely filing. A rejected claim was never filed (the clock keeps running):
      each one opens a work item with the claim's timely-filing deadline.

A file we cannot parse, or that names no batch or claim of ours, is quarantined with the
reasons and nothing is applied. The same file twice changes nothing (unique per tenant and
content hash).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.acknowledgments_plan import _ClaimEffect, _Plan, _plan_277, _plan_999
from services.billing.acknowledgments_reasons import _work_category, reasons_277, reasons_999
from services.billing.domain.claim_state import ClaimEvent, ClaimStatus
from services.billing.submission_build import ClaimRow
from services.billing.submission_config import Transports
from services.billing.submission_send import confirm_batch
from services.billing.submission_transitions import lock_claims, move_claims
from services.billing.tables_submission import ack_claims, batches
from services.billing.transports import InboundFile, InboundKind, content_hash, detect_kind
from shared.clock import utc_now
from shared.logging import get_logger
from shared.uow import Database, UnitOfWork
from shared.x12.tokenizer import X12SyntaxError

__all__ = [
    "AckResult",
    "IngestSummary",
    "ingest_ack",
    "ingest_inbound",
    "reasons_277",
    "reasons_999",
]

log = get_logger("billing.acknowledgments")


@dataclass(frozen=True, slots=True)
class AckResult:
    kind: str
    status: str  # applied | duplicate | quarantined
    reasons: tuple[str, ...] = ()
    ack_ids: tuple[str, ...] = ()
    accepted: int = 0
    rejected: int = 0
    received: int = 0


# ----------------------------------------------------------------------------- apply


async def ingest_ack(
    conn: AsyncConnection,
    *,
    file_name: str,
    content: bytes,
    source: str,
    actor: str,
    tenant_id: str | None = None,
    now: datetime | None = None,
) -> AckResult:
    """Apply one 999 or 277CA in the caller's transaction. A quarantined result has
    applied nothing: the caller rolls back (or simply does not commit) and quarantines.
    ``tenant_id`` (uploads) links only that tenant's batches and claims."""
    now = now or utc_now()
    kind = detect_kind(content)
    if kind not in (InboundKind.ACK_999, InboundKind.ACK_277CA):
        return AckResult(str(kind), "quarantined", (f"not a 999 or 277CA (detected {kind})",))
    plan = _Plan(kind=str(kind), icn="")
    try:
        if kind is InboundKind.ACK_999:
            await _plan_999(conn, content, plan, tenant_id)
        else:
            await _plan_277(conn, content, plan, tenant_id)
    except (X12SyntaxError, ValueError) as exc:
        return AckResult(plan.kind, "quarantined", (f"unreadable {kind}: {exc}",))
    if plan.problems:
        return AckResult(plan.kind, "quarantined", tuple(plan.problems))

    digest = content_hash(content)
    tenants = sorted({e.tenant_id for e in plan.effects})
    if not tenants:  # a 999 for a batch whose claims are all gone: keep it for the batch
        tenants = [
            r.tenant_id
            for r in await conn.execute(
                select(batches.c.tenant_id).where(batches.c.id.in_(plan.batch_ids)).distinct()
            )
        ]
    ack_ids: list[str] = []
    totals = {"accepted": 0, "rejected": 0, "received": 0}
    for tenant in tenants:
        ack_id = str(uuid.uuid4())
        tenant_batches = [
            r.id
            for r in await conn.execute(
                select(batches.c.id).where(
                    batches.c.id.in_(plan.batch_ids), batches.c.tenant_id == tenant
                )
            )
        ]
        inserted = (
            await conn.execute(
                text(
                    """
                    INSERT INTO billing.acknowledgments (id, tenant_id, kind, file_name,
                        content_hash, content, source, batch_id, interchange_control_number,
                        summary, received_by, received_at)
                    VALUES (:id, :tenant, :kind, :name, :hash, :content, :source, :batch,
                            :icn, CAST(:summary AS jsonb), :actor, :at)
                    ON CONFLICT (tenant_id, content_hash) DO NOTHING
                    RETURNING id
                    """
                ),
                {
                    "id": ack_id,
                    "tenant": tenant,
                    "kind": plan.kind,
                    "name": file_name[:200],
                    "hash": digest,
                    "content": content,
                    "source": source[:20],
                    "batch": tenant_batches[0] if tenant_batches else None,
                    "icn": plan.icn[:9],
                    "summary": _json({**plan.summary, "batch_ids": tenant_batches}),
                    "actor": actor,
                    "at": now,
                },
            )
        ).scalar_one_or_none()
        if inserted is None:
            continue  # this tenant already has this exact file: nothing changes
        ack_ids.append(ack_id)
        effects = [e for e in plan.effects if e.tenant_id == tenant]
        applied = await _apply(conn, plan, ack_id, file_name, tenant, effects, actor, now)
        for key in totals:
            totals[key] += applied.get(key, 0)
    if not ack_ids:
        return AckResult(plan.kind, "duplicate")
    log.info("billing.ack.applied", kind=plan.kind, acks=len(ack_ids), **totals)
    return AckResult(
        plan.kind,
        "applied",
        (),
        tuple(ack_ids),
        totals["accepted"],
        totals["rejected"],
        totals["received"],
    )


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


async def _apply(
    conn: AsyncConnection,
    plan: _Plan,
    ack_id: str,
    file_name: str,
    tenant: str,
    effects: list[_ClaimEffect],
    actor: str,
    now: datetime,
) -> dict[str, int]:
    from services.billing.work_queue import open_work_item

    source = "999" if plan.kind == InboundKind.ACK_999.value else "277ca"
    label = "999" if source == "999" else "277CA"
    # An acknowledgment proves delivery: a batch still waiting for its transport's
    # confirmation (a crash between send and confirm) is confirmed now.
    pending = {
        r.id
        for r in await conn.execute(
            select(batches.c.id).where(
                batches.c.id.in_({e.batch_id for e in effects if e.batch_id}),
                batches.c.status == "recorded",
            )
        )
    }
    for batch_id in sorted(pending):
        await confirm_batch(
            conn, batch_id, actor=actor, receipt=None,
            evidence=f"{label} {file_name} acknowledged the file", now=now,
        )  # fmt: skip
    locked = await lock_claims(conn, sorted({e.claim_id for e in effects}))
    applied: dict[str, str] = {}
    counts = {"accepted": 0, "rejected": 0, "received": 0}
    rejected = [e for e in effects if e.outcome == "rejected"]
    accepted = [e for e in effects if e.outcome == "accepted"]
    for group, target, event, action in (
        (rejected, ClaimStatus.REJECTED, ClaimEvent.ACK_REJECTED, "claim.ack_rejected"),
        (accepted, ClaimStatus.ACCEPTED, ClaimEvent.ACK_ACCEPTED, "claim.ack_accepted"),
    ):
        rows: list[ClaimRow] = []
        reasons: dict[str, str] = {}
        after: dict[str, dict[str, Any]] = {}
        for e in group:
            row = locked.get(e.claim_id)
            if row is None or row.status == target.value or e.claim_id in applied:
                continue
            rows.append(row)
            if e.reasons:
                reasons[e.claim_id] = f"{label} rejected the claim: " + "; ".join(
                    r["message"] for r in e.reasons
                )
            else:
                reasons[e.claim_id] = f"{label} accepted the claim ({', '.join(e.codes)})"
            after[e.claim_id] = {"ack_id": ack_id, "codes": e.codes, "batch_id": e.batch_id}
        moved = await move_claims(
            conn, rows, target, event, action=action, actor=actor, reasons=reasons,
            after=after, now=now,
        )  # fmt: skip
        for claim_id in moved.moved:
            applied[claim_id] = target.value
    for e in effects:
        counts[e.outcome] = counts.get(e.outcome, 0) + 1
    if effects:
        await conn.execute(
            insert(ack_claims),
            [
                {
                    "ack_id": ack_id,
                    "claim_id": e.claim_id,
                    "tenant_id": tenant,
                    "batch_id": e.batch_id,
                    "patient_control_number": e.pcn,
                    "outcome": e.outcome,
                    "codes": e.codes,
                    "reasons": e.reasons,
                    "effective_date": e.effective_date,
                    "payer_claim_id": e.payer_claim_id,
                    "applied_status": applied.get(e.claim_id),
                    "received_at": now,
                }
                for e in _unique(effects)
            ],
        )
    for e in _unique(rejected):
        row = locked.get(e.claim_id)
        if applied.get(e.claim_id) != "rejected" and (row is None or row.status != "rejected"):
            continue  # e.g. already paid: recorded on the claim, nothing to work
        await open_work_item(
            conn,
            tenant_id=tenant,
            category=_work_category(e.reasons),
            source=source,
            summary=f"{label} rejected claim {e.pcn}: {e.reasons[0]['message']}"[:500],
            actor=actor,
            claim_id=e.claim_id,
            batch_id=e.batch_id,
            amount_cents=row.total_charge_cents if row else 0,
            reasons=e.reasons,
            deadline=row.timely_filing_deadline if row else None,
        )
    return counts


def _unique(effects: list[_ClaimEffect]) -> list[_ClaimEffect]:
    """One ack_claims row per claim: a rejection wins over an acceptance in the same file."""
    rank = {"rejected": 3, "accepted": 2, "received": 1, "other": 0}
    best: dict[str, _ClaimEffect] = {}
    for e in effects:
        if e.claim_id not in best or rank[e.outcome] > rank[best[e.claim_id].outcome]:
            best[e.claim_id] = e
    return list(best.values())


# ----------------------------------------------------------------------------- inbox


@dataclass(slots=True)
class IngestSummary:
    applied: int = 0
    duplicates: int = 0
    quarantined: int = 0
    skipped: int = 0  # 835s: remittance's job
    results: list[tuple[str, AckResult]] = field(default_factory=list)


async def ingest_file(
    db: Database,
    *,
    file_name: str,
    content: bytes,
    source: str,
    actor: str,
    tenant_id: str | None = None,
) -> AckResult:
    """One file in its own transaction; rolled back unless it applied cleanly."""
    async with UnitOfWork(db, None) as uow:
        result = await ingest_ack(
            uow.conn,
            file_name=file_name,
            content=content,
            source=source,
            actor=actor,
            tenant_id=tenant_id,
        )
        if result.status == "applied":
            await uow.commit()
    return result


async def ingest_inbound(db: Database, transports: Transports, *, actor: str) -> IngestSummary:
    """Read 999/277CA files from every inbound transport; archive what applied (or was a
    duplicate), quarantine what could not be used. 835 files are left for remittance."""
    summary = IngestSummary()
    for transport in transports.inbound():
        files: list[InboundFile] = await transport.fetch_inbound()
        for f in files:
            if f.kind is InboundKind.ERA_835:
                summary.skipped += 1
                continue
            try:
                result = await ingest_file(
                    db, file_name=f.name, content=f.content, source=transport.name, actor=actor
                )
            except Exception as exc:  # a bug must not block the inbox: keep the file, log
                log.error("billing.ack.failed", file=f.name, error_type=type(exc).__name__)
                continue
            summary.results.append((f.name, result))
            if result.status == "quarantined":
                summary.quarantined += 1
                await transport.quarantine(f, list(result.reasons))
            else:
                if result.status == "duplicate":
                    summary.duplicates += 1
                else:
                    summary.applied += 1
                await transport.mark_processed(f)
    return summary
