"""Acknowledgment linking: read a 999 or 277CA and plan its effect on our batches and
claims (999: GS06 / partner / ST02; 277CA: patient control number), applying nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.acknowledgments_reasons import REJECTING_IK5, reasons_277, reasons_999
from services.billing.tables_submission import batch_claims, batches
from shared.logging import get_logger
from shared.x12.ack import Ack277CA, Ack999, SetAck, parse_277ca, parse_999
from shared.x12.tokenizer import parse_interchanges, tokenize

log = get_logger("billing.acknowledgments")

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
