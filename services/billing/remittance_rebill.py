"""Work-queue action "bill another payer": coverage must make that payer responsible on the
date of service; the denied claim is closed and a new original claim is coded, priced and
scrubbed from the session under that payer's contract (see `remittance_actions`)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing import claim_repository as repo
from services.billing import claims as creation
from services.billing import claims_manage
from services.billing.claims_build import decide, patient_control_number
from services.billing.domain.claim_state import ClaimEvent, ClaimStatus
from services.billing.ports import CoveragePort, EligibilityEvidence, PayerInfo
from services.billing.remittance_action_steps import (
    _begin,
    _move,
    _next_claim_version,
    _resolve,
)
from services.billing.remittance_schemas import ActionResult, BillOtherPayer
from services.billing.schemas import SessionCreate
from services.billing.tables import claim_lines, claims, sessions
from services.billing.work_queue import item_read
from shared import audit
from shared.auth import Principal
from shared.clock import utc_now, utc_today
from shared.errors import Conflict, FieldProblem, RuleViolation
from shared.logging import get_logger
from shared.money import format_cents

log = get_logger("billing.work_queue.actions")

__all__ = ["bill_other_payer"]


def _responsible_payer(evidence: EligibilityEvidence, payer_id: str, claim: Any) -> PayerInfo:
    """The payer coverage makes responsible for the session, when it is `payer_id`; else the
    422 saying why not. Coverage answers for the payer it chooses (its COB order), so an
    unknown payer id and a payer ranked behind an eligible one are refused alike."""
    dos = claim.date_of_service.isoformat()
    record = (
        f"record the patient's coverage with payer {payer_id} (a span with the member id) in "
        "coverage, primary for the date of service (end or demote the other payer's span if it "
        "no longer applies), then bill again"
    )
    if not evidence.eligible or evidence.payer is None:
        reasons = evidence.reasons
        why = "; ".join(r.message for r in reasons) or "no coverage on the date of service"
        raise RuleViolation(
            f"coverage finds no payer the patient is eligible with on {dos}: {why}",
            code="not_eligible_with_payer",
            errors=tuple(FieldProblem("payer_id", r.message, r.code) for r in reasons)
            or (FieldProblem("payer_id", "no coverage on the date of service", "not_eligible"),),
            action=reasons[0].fix if reasons else record,
        )
    chosen = evidence.payer
    if chosen.payer_id.lower() == payer_id:
        return chosen
    which = "the denied claim's payer" if str(claim.payer_id) == chosen.payer_id else "a payer"
    raise RuleViolation(
        f"coverage does not make payer {payer_id} responsible for this patient on {dos}: it "
        f"chooses {which}, {chosen.name} ({chosen.payer_id})",
        code="payer_not_responsible",
        errors=(
            FieldProblem(
                "payer_id",
                f"unknown, or not the payer coverage chooses on {dos} ({chosen.payer_id})",
                "payer_not_responsible",
            ),
        ),
        action=record,
    )


async def _session_of(conn: AsyncConnection, claim: Any) -> tuple[Any, SessionCreate]:
    row = (
        await conn.execute(
            select(
                sessions.c.id, sessions.c.state, sessions.c.created_at, sessions.c.payload
            ).where(sessions.c.id == claim.session_id, sessions.c.tenant_id == claim.tenant_id)
        )
    ).first()
    if row is None:  # claims come from sessions, which are never deleted
        raise Conflict(
            "the claim has no documented session on file to code again",
            code="no_session",
            action="bill the other payer outside this service, or write off",
        )
    try:
        return row, msgspec.convert(row.payload, SessionCreate)
    except msgspec.ValidationError:
        raise Conflict(
            "the claim's stored session no longer parses, so it cannot be coded again",
            code="session_unreadable",
            action="bill the other payer outside this service, or write off",
        ) from None


async def bill_other_payer(
    conn: AsyncConnection,
    principal: Principal,
    item_id: str,
    cmd: BillOtherPayer,
    *,
    request_id: str | None,
    coverage: CoveragePort | None = None,
    today: date | None = None,
) -> ActionResult:
    """Close the denied claim and create the other payer's original claim (module doc)."""
    today = today or utc_today()
    coverage = coverage or creation.default_coverage()
    payer_id = cmd.payer_id.lower()
    item, claim = await _begin(conn, principal, item_id)
    # Everything is checked before the first write (a refusal changes nothing).
    claims_manage._transition(
        claim.status, ClaimStatus.CLOSED, cmd.reason, ClaimEvent.BILL_OTHER_PAYER
    )
    if claim.status in (ClaimStatus.PAID.value, ClaimStatus.PARTIALLY_PAID.value):
        raise Conflict(
            "the payer paid (part of) this claim, so the other payer is secondary: a secondary "
            "claim carries the first payer's adjudication (837P loops 2320/2430), not sent yet",
            code="secondary_claim_not_supported",
            action="bill the secondary payer outside this service, bill the patient, or close",
        )
    if claim.payer_id is not None and str(claim.payer_id).lower() == payer_id:
        raise RuleViolation(
            "the other payer is the payer that denied this claim",
            code="same_payer",
            errors=(FieldProblem("payer_id", "same payer as the denied claim", "same_payer"),),
            action="correct and resubmit or appeal to this payer; or name the other payer",
        )
    session, cmd_session = await _session_of(conn, claim)
    pending = creation._Pending(
        str(session.id),
        principal.tenant_id,
        claim.patient_ref,
        session.state,
        cmd_session,
        session.created_at,
    )
    key = (principal.tenant_id, claim.patient_ref)
    # Without the denied claim (closed just before the insert); closed claims the session was
    # rebilled from before it do not stand either (the duplicate rule in domain.scrub).
    history = (await repo.histories(conn, [key], exclude_claim=str(claim.id)))[key]
    evidence = await creation._evidence_one(
        conn, coverage, principal.tenant_id, creation._request(pending, history)
    )
    payer = _responsible_payer(evidence, payer_id, claim)
    pcn = patient_control_number(principal.tenant_id, (await repo.next_pcn_numbers(conn, 1))[0])
    try:
        d = decide(pcn=pcn, cmd=cmd_session, evidence=evidence, history=history, today=today)
    except ValueError as exc:  # contract terms the engine cannot code against
        raise RuleViolation(
            f"{payer.name}'s contract terms cannot code this session: {exc}"[:500],
            code="not_billable_with_payer",
            errors=(FieldProblem("payer_id", "contract terms cannot be coded", "invalid"),),
            action="fix the contract in coverage, then bill again",
        ) from None
    if d.status is ClaimStatus.NOT_BILLABLE:
        raise RuleViolation(
            f"the session is not billable to {payer.name}: {d.transition.reason}",
            code="not_billable_with_payer",
            errors=tuple(FieldProblem("payer_id", r.message, r.code) for r in d.reasons),
            action=d.reasons[0].fix if d.reasons else None,
        )

    new_id = str(uuid.uuid4())
    # The denied claim leaves first, so nothing counts it as standing next to the new one.
    status = await _move(
        conn,
        principal,
        claim,
        ClaimStatus.CLOSED,
        ClaimEvent.BILL_OTHER_PAYER,
        cmd.reason,
        request_id,
        after={
            "work_item_id": str(item.id),
            "other_payer_id": payer.payer_id,
            "other_payer": payer.name,
            "other_payer_npi": cmd.payer_npi,
            "payer_name_given": cmd.payer_name,
            "new_claim_id": new_id,
            "new_patient_control_number": pcn,
        },
    )
    now = utc_now()
    row = creation.claim_row(claim_id=new_id, pcn=pcn, p=pending, evidence=evidence, d=d, now=now)
    row["claim_version"] = await _next_claim_version(conn, principal.tenant_id, claim)
    row["rebilled_from_claim_id"] = str(claim.id)
    await conn.execute(claims.insert().values(**row))
    lines = creation._line_rows(new_id, d)
    if lines:
        await conn.execute(claim_lines.insert(), lines)
    await audit.append(
        conn,
        tenant_id=principal.tenant_id,
        entity_type="claim",
        entity_id=new_id,
        action="claim.created",
        actor=principal.actor,
        request_id=request_id,
        reason=f"bill_other_payer: {cmd.reason}",
        after={
            "status": ClaimStatus.DRAFT.value,
            "session_id": row["session_id"],
            "frequency_code": "1",
            "claim_version": row["claim_version"],
            "patient_control_number": pcn,
            "payer_id": row["payer_id"],
            "contract_id": row["contract_id"],
            "contract_version": row["contract_version"],
            "rule_version": d.coding_json.get("rule_version"),
            "total_charge": format_cents(row["total_charge_cents"]),
            "lines": [f"{line.procedure_code} x{line.units}" for line in d.lines],
            "rebilled_from_claim_id": str(claim.id),
            "rebilled_from_patient_control_number": claim.patient_control_number,
            "work_item_id": str(item.id),
        },
        new_entity=True,
    )
    await audit.append(
        conn,
        tenant_id=principal.tenant_id,
        entity_type="claim",
        entity_id=new_id,
        action=f"claim.{d.transition.event.value}",
        actor=principal.actor,
        request_id=request_id,
        reason=d.transition.reason,
        before={"status": d.transition.source.value},
        after={"status": d.status.value, "reasons": [r.code for r in d.reasons]},
    )
    done = await _resolve(conn, principal, item, "bill_other_payer", cmd.reason, request_id)
    log.info(
        "billing.claim.billed_other_payer",
        claim_id=str(claim.id),
        new_claim_id=new_id,
        payer_id=payer.payer_id,
        status=d.status.value,
    )
    return ActionResult(
        item_read(done),
        str(claim.id),
        status,
        new_claim_id=new_id,
        new_claim_status=d.status.value,
    )
