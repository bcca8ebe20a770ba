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
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import msgspec
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.domain.claim_state import ClaimEvent, ClaimStatus
from services.billing.submission import Transports, confirm_batch
from services.billing.submission_build import ClaimRow
from services.billing.submission_transitions import lock_claims, move_claims
from services.billing.tables_submission import ack_claims, batch_claims, batches
from services.billing.transports import InboundFile, InboundKind, content_hash, detect_kind
from shared.clock import utc_now
from shared.logging import get_logger
from shared.uow import Database, UnitOfWork
from shared.x12.ack import (
    Ack277CA,
    Ack999,
    ClaimAck,
    SegmentError,
    SetAck,
    StatusInfo,
    parse_277ca,
    parse_999,
)
from shared.x12.tokenizer import X12SyntaxError, parse_interchanges, tokenize

__all__ = [
    "AckResult",
    "IngestSummary",
    "ingest_ack",
    "ingest_inbound",
    "reasons_277",
    "reasons_999",
]

log = get_logger("billing.acknowledgments")

# IK501 values that send the set's claims back to the biller (see the module docstring).
REJECTING_IK5 = frozenset({"R", "M", "W", "X", "E"})

_IK304 = {
    "1": "unrecognized segment ID",
    "2": "unexpected segment",
    "3": "required segment missing",
    "4": "loop occurs over maximum times",
    "5": "segment exceeds maximum use",
    "6": "segment not in defined transaction set",
    "7": "segment not in proper sequence",
    "8": "segment has data element errors",
    "I4": "implementation 'not used' segment present",
    "I6": "implementation dependent segment missing",
    "I7": "implementation loop occurs under minimum times",
    "I8": "implementation segment below minimum use",
    "I9": "implementation dependent 'not used' segment present",
}
_IK403 = {
    "1": "required data element missing",
    "2": "conditional required data element missing",
    "3": "too many data elements",
    "4": "data element too short",
    "5": "data element too long",
    "6": "invalid character in data element",
    "7": "invalid code value",
    "8": "invalid date",
    "9": "invalid time",
    "10": "exclusion condition violated",
    "12": "too many repetitions",
    "13": "too many components",
    "I6": "code value not used in implementation",
    "I9": "implementation dependent data element missing",
    "I10": "implementation 'not used' data element present",
    "I11": "implementation too few repetitions",
    "I12": "implementation pattern match failure",
    "I13": "implementation dependent 'not used' data element present",
}
_CATEGORY = {
    "A1": "received",
    "A2": "accepted into adjudication",
    "A3": "returned as unprocessable",
    "A4": "not found",
    "A6": "missing information",
    "A7": "invalid information",
    "A8": "relational field in error",
}
# Health care claim status codes seen on MTM rejections (STC01-2), in our words.
_STATUS = {
    "19": "entity acknowledges receipt of claim",
    "20": "accepted for processing",
    "21": "missing or invalid information",
    "33": "subscriber and subscriber id not found",
    "54": "duplicate of a previously processed claim",
    "97": "patient eligibility not found with entity",
    "109": "entity not eligible",
    "145": "entity's primary identifier",
    "164": "entity's contract/member number",
    "187": "date(s) of service",
    "454": "procedure code for services rendered",
    "496": "submitter not approved for electronic claim submissions",
    "562": "entity's National Provider Identifier (NPI)",
}
_ENTITY = {
    "85": "billing provider",
    "82": "rendering provider",
    "IL": "subscriber",
    "QC": "patient",
    "PR": "payer",
    "41": "submitter",
    "40": "receiver",
}
_WORK_CATEGORY = {
    "33": "eligibility_cob",
    "97": "eligibility_cob",
    "109": "eligibility_cob",
    "164": "eligibility_cob",
    "54": "duplicate",
    "145": "credentialing",
    "496": "credentialing",
    "562": "credentialing",
    "187": "coding",
    "454": "coding",
}


# ----------------------------------------------------------------------------- reasons


def reasons_999(set_ack: SetAck, errors: Sequence[SegmentError]) -> list[dict[str, Any]]:
    """One reason per IK3 (with its IK4 element errors); a bare IK5 code when none."""
    out: list[dict[str, Any]] = []
    for err in errors:
        elements = [
            {
                "position": el.position,
                "component": el.component,
                "repetition": el.repetition,
                "element_ref": el.element_ref,
                "code": el.code,
                "message": _IK403.get(el.code, f"element error {el.code}"),
            }
            for el in err.elements
        ]
        where = f"{err.segment_id} (segment {err.position} of set {set_ack.control_number}"
        where += f", loop {err.loop_id})" if err.loop_id else ")"
        detail = "; ".join(
            f"{err.segment_id}{el['position']:02d}: {el['message']}" for el in elements
        )
        out.append(
            {
                "source": "999",
                "code": f"IK3-{err.code}",
                "message": f"{where}: {_IK304.get(err.code, 'segment error ' + err.code)}"
                + (f" ({detail})" if detail else ""),
                "segment": err.segment_id,
                "position": err.position,
                "loop": err.loop_id,
                "elements": elements,
                "fix": "correct the claim data behind the named segment/element and resubmit",
            }
        )
    if not out:
        codes = ",".join(set_ack.codes) or "none"
        out.append(
            {
                "source": "999",
                "code": f"IK5-{set_ack.status}",
                "message": f"transaction set {set_ack.control_number} rejected "
                f"(IK5 {set_ack.status}, codes {codes})",
                "fix": "ask the clearinghouse for the detail, correct and resubmit",
            }
        )
    return out


def _status_text(category: str, status: str, entity: str) -> str:
    text_ = f"{category} {_CATEGORY.get(category, 'status')}"
    if status:
        text_ += f": {_STATUS.get(status, 'status code ' + status)}"
    if entity:
        text_ += f" ({_ENTITY.get(entity, 'entity ' + entity)})"
    return text_


def reasons_277(claim: ClaimAck) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    statuses: list[tuple[StatusInfo, str]] = [(s, "") for s in claim.statuses]
    for line in claim.lines:
        statuses.extend((s, line.procedure) for s in line.statuses)
    for info, procedure in statuses:
        for c in info.codes:
            if not c.is_rejection:
                continue
            reason: dict[str, Any] = {
                "source": "277CA",
                "code": f"{c.category}:{c.status}" + (f":{c.entity}" if c.entity else ""),
                "category": c.category,
                "status": c.status,
                "entity": c.entity,
                "message": _status_text(c.category, c.status, c.entity),
                "fix": "correct the named information and send the claim again (a new "
                "original: a rejected claim was never filed)",
            }
            if procedure:
                reason["procedure"] = procedure
            if info.message:
                reason["payer_message"] = info.message
            out.append(reason)
    return out


def _work_category(reasons: Sequence[dict[str, Any]]) -> str:
    for r in reasons:
        found = _WORK_CATEGORY.get(str(r.get("status", "")))
        if found:
            return found
        if r.get("entity") in ("IL", "QC"):
            return "eligibility_cob"
    first = reasons[0] if reasons else {}
    if first.get("category") in ("A6", "A7", "A8"):
        return "missing_information"
    if first.get("source") == "999":
        codes = {e["code"] for r in reasons for e in r.get("elements", [])}
        return "missing_information" if codes & {"1", "2", "I9"} else "other"
    return "other"


# ----------------------------------------------------------------------------- plan


@dataclass(slots=True)
class _ClaimEffect:
    claim_id: str
    tenant_id: str
    batch_id: str | None
    pcn: str
    outcome: str  # accepted | received | rejected | other
    codes: list[str]
    reasons: list[dict[str, Any]]
    effective_date: date | None = None
    payer_claim_id: str | None = None


@dataclass(slots=True)
class _Plan:
    kind: str
    icn: str
    effects: list[_ClaimEffect] = field(default_factory=list)
    batch_ids: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class AckResult:
    kind: str
    status: str  # applied | duplicate | quarantined
    reasons: tuple[str, ...] = ()
    ack_ids: tuple[str, ...] = ()
    accepted: int = 0
    rejected: int = 0
    received: int = 0


async def _plan_999(
    conn: AsyncConnection, content: bytes, plan: _Plan, tenant_id: str | None
) -> None:
    acks: list[Ack999] = parse_999(content)
    interchanges = parse_interchanges(tokenize(content)[1])
    partner = interchanges[0].sender[1] if interchanges else ""
    plan.icn = interchanges[0].control_number if interchanges else ""
    groups = []
    for ack in acks:
        if ack.functional_id != "HC":
            plan.problems.append(f"999 {ack.control_number} acknowledges {ack.functional_id}")
            continue
        gs06 = int(ack.group_control_number) if ack.group_control_number.isdigit() else -1
        stmt = select(batches.c.id, batches.c.tenant_id, batches.c.trading_partner_id).where(
            batches.c.gs06 == gs06
        )
        if tenant_id is not None:
            stmt = stmt.where(batches.c.tenant_id == tenant_id)
        found = list(await conn.execute(stmt))
        exact = [b for b in found if b.trading_partner_id == partner]
        match = exact or (found if len(found) == 1 else [])
        if len(match) != 1:
            plan.problems.append(
                f"999 {ack.control_number}: no batch of ours has GS06 "
                f"{ack.group_control_number} for trading partner {partner or '?'}"
            )
            continue
        batch = match[0]
        plan.batch_ids.append(batch.id)
        links = list(
            await conn.execute(
                select(
                    batch_claims.c.claim_id, batch_claims.c.st02, batch_claims.c.tenant_id,
                    batch_claims.c.patient_control_number,
                ).where(batch_claims.c.batch_id == batch.id)
            )
        )  # fmt: skip
        by_set: dict[str, list[Any]] = {}
        for link in links:
            by_set.setdefault(link.st02, []).append(link)
        set_acks = {s.control_number: s for s in ack.sets}
        unknown = sorted(set(set_acks) - set(by_set))
        if unknown:
            plan.problems.append(
                f"999 {ack.control_number}: sets {', '.join(unknown)} are not in batch GS06 "
                f"{ack.group_control_number}"
            )
            continue
        groups.append(
            {"gs06": ack.group_control_number, "status": ack.group_status, "batch_id": batch.id}
        )
        for st02, members in by_set.items():
            set_ack = set_acks.get(st02)
            if set_ack is None:
                if ack.group_status == "R" and not ack.sets:
                    set_ack = SetAck("837", st02, "R", ack.group_codes)
                else:
                    continue
            rejected = set_ack.status in REJECTING_IK5
            for m in members:
                errors = [
                    e
                    for e in set_ack.errors
                    if e.business_unit is None or e.business_unit[1] == m.patient_control_number
                ]
                plan.effects.append(
                    _ClaimEffect(
                        claim_id=m.claim_id,
                        tenant_id=m.tenant_id,
                        batch_id=batch.id,
                        pcn=m.patient_control_number,
                        outcome="rejected" if rejected else "received",
                        codes=[f"IK5:{set_ack.status}", *set_ack.codes],
                        reasons=reasons_999(set_ack, errors) if rejected else [],
                    )
                )
    plan.summary = {"groups": groups, "partner": partner}


async def _plan_277(
    conn: AsyncConnection, content: bytes, plan: _Plan, tenant_id: str | None
) -> None:
    acks: list[Ack277CA] = parse_277ca(content)
    plan.icn = acks[0].interchange_control_number if acks else ""
    pcns = [c.patient_control_number for a in acks for c in a.claims]
    rows = {
        r.patient_control_number: r
        for r in await conn.execute(
            text(
                """
                SELECT c.id::text AS id, c.tenant_id, c.patient_control_number,
                       (SELECT bc.batch_id::text FROM billing.batch_claims bc
                        JOIN billing.batches b ON b.id = bc.batch_id
                        WHERE bc.claim_id = c.id ORDER BY b.created_at DESC LIMIT 1) AS batch_id
                FROM billing.claims c WHERE c.patient_control_number = ANY(:pcns)
                  AND (CAST(:tenant AS text) IS NULL OR c.tenant_id = :tenant)
                """
            ),
            {"pcns": pcns, "tenant": tenant_id},
        )
    }
    unknown: list[str] = []
    counts = {"accepted": 0, "received": 0, "rejected": 0, "other": 0}
    for ack in acks:
        for c in ack.claims:
            row = rows.get(c.patient_control_number)
            if row is None or row.batch_id is None:
                unknown.append(c.patient_control_number)
                continue
            if c.is_rejection:
                outcome = "rejected"
            elif any(code.category == "A2" for code in c.codes):
                outcome = "accepted"
            elif c.is_acceptance:
                outcome = "received"
            else:
                outcome = "other"
            counts[outcome] += 1
            first = c.statuses[0] if c.statuses else None
            plan.effects.append(
                _ClaimEffect(
                    claim_id=row.id,
                    tenant_id=row.tenant_id,
                    batch_id=row.batch_id,
                    pcn=c.patient_control_number,
                    outcome=outcome,
                    codes=[
                        f"{s.category}:{s.status}" + (f":{s.entity}" if s.entity else "")
                        for s in c.codes
                    ],
                    reasons=reasons_277(c) if outcome == "rejected" else [],
                    effective_date=first.effective_date if first else None,
                    payer_claim_id=c.payer_claim_id,
                )
            )
            if row.batch_id not in plan.batch_ids:
                plan.batch_ids.append(row.batch_id)
    if not plan.effects:
        plan.problems.append(
            f"277CA names no claim we sent ({len(unknown)} unknown patient control numbers)"
        )
    plan.summary = {
        "references": sorted({a.reference for a in acks}),
        "receiver_traces": sorted({a.receiver_trace for a in acks}),
        "counts": counts,
        "unmatched_claims": len(unknown),
    }
    if unknown:
        log.warning("billing.ack.unmatched_claims", count=len(unknown))


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
