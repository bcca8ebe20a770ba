"""Work-queue action "appeal": recorded with its deadline and a letter draft built from the
claim's evidence (see `remittance_actions` for the overview of all actions)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing import claim_repository as repo
from services.billing.domain.claim_state import ClaimEvent, ClaimStatus
from services.billing.remittance_action_steps import _begin, _move, _resolve
from services.billing.remittance_schemas import ActionResult, SimpleAction
from services.billing.tables import sessions
from services.billing.tables_remittance import appeals
from services.billing.work_queue import item_read
from shared.auth import Principal
from shared.clock import utc_today
from shared.errors import Conflict
from shared.money import format_cents
from shared.tables import audit_events

__all__ = ["appeal"]


async def _letter(conn: AsyncConnection, principal: Principal, item: Any, claim: Any) -> str:
    """An appeal letter draft from what the claim can prove (no secrets, for a person to edit)."""
    coding = claim.coding or {}
    # A session's claim documents one session; a PMPM claim the month's (coding["sessions"]).
    session_ids = (
        [claim.session_id]
        if claim.session_id is not None
        else [s.get("session_id") for s in coding.get("sessions") or [] if s.get("session_id")]
    )
    documented = (
        list(
            await conn.execute(
                select(sessions.c.date_of_service, sessions.c.payload)
                .where(sessions.c.tenant_id == claim.tenant_id, sessions.c.id.in_(session_ids))
                .order_by(sessions.c.date_of_service)
            )
        )
        if session_ids
        else []
    )
    elig = claim.eligibility or {}
    payer = (elig.get("payer") or {}).get("name") or "the plan"
    acks = list(
        await conn.execute(
            select(audit_events.c.action, audit_events.c.occurred_at, audit_events.c.after)
            .where(
                audit_events.c.tenant_id == principal.tenant_id,
                audit_events.c.entity_type == "claim",
                audit_events.c.entity_id == str(claim.id),
            )
            .order_by(audit_events.c.seq)
        )
    )
    reasons = item.reasons or [{}]
    denial = reasons[0]
    lines = list(await repo.lines_of(conn, str(claim.id)))
    out = [
        f"Re: Request for reconsideration - claim {claim.patient_control_number}"
        + (f", payer claim number {claim.payer_icn}" if claim.payer_icn else ""),
        f"Date of service: {claim.date_of_service.isoformat()}",
        f"To: {payer} appeals department",
        "",
        (
            f"We ask you to reconsider the denial ({denial.get('code', 'see remittance')}: "
            f"{denial.get('description', '')}) of {format_cents(item.amount_cents)} for the "
            "medication therapy management service described below."
        ),
        "",
        "Services billed:",
        *[
            f"  - {ln.procedure_code}"
            + (f"-{'-'.join(ln.modifiers)}" if ln.modifiers else "")
            + f" x {ln.units} unit(s), {format_cents(ln.charge_cents)}"
            for ln in lines
        ],
        "",
        "Documented time and coding rationale:",
        f"  {coding.get('minutes', 'n/a')} documented minutes. {coding.get('rationale', '')}".rstrip(),
        f"  Coding rule version: {coding.get('rule_version') or 'n/a'}.",
    ]
    interventions = [
        (dos, i) for dos, payload in documented for i in (payload or {}).get("interventions") or []
    ]
    if interventions:
        several = len(documented) > 1
        out += [
            "",
            "Interventions documented during the "
            + ("month's sessions:" if several else "session:"),
        ]
        out += [
            "  - "
            + (f"{dos.isoformat()} " if several else "")
            + f"{i.get('type')}: {i.get('dtp_category')} - {i.get('recommendation')} "
            f"(outcome: {i.get('outcome')}, prescriber contacted: "
            f"{'yes' if i.get('prescriber_contacted') else 'no'})"
            for dos, i in interventions
        ]
    out += [
        "",
        "Eligibility evidence:",
        (
            f"  Coverage verified on {elig.get('checked_on', 'n/a')} for the date of service: "
            f"{'eligible' if elig.get('eligible') else 'see attached'}."
        ),
    ]
    ack_lines = [
        f"  - {a.action} on {a.occurred_at.date().isoformat()}"
        for a in acks
        if "ack" in a.action or (a.after or {}).get("status") in ("submitted", "accepted")
    ]
    if ack_lines:
        out += ["", "Filing and acknowledgment record (proof of timely filing):", *ack_lines]
    out += [
        "",
        "Enclosed: session documentation and time record. Please reprocess the claim.",
        "",
        "Sincerely,",
        "Billing department",
    ]
    return "\n".join(out)


async def appeal(
    conn: AsyncConnection,
    principal: Principal,
    item_id: str,
    cmd: SimpleAction,
    *,
    request_id: str | None,
    today: date | None = None,
) -> ActionResult:
    today = today or utc_today()
    item, claim = await _begin(conn, principal, item_id)
    if item.no_appeal:
        raise Conflict(
            "this decision cannot be appealed (remark codes or a rejection say so)",
            code="no_appeal_rights",
            action="correct and resubmit, or write off",
        )
    if item.appeal_deadline is not None and item.appeal_deadline < today:
        raise Conflict(
            f"the appeal deadline ({item.appeal_deadline.isoformat()}) has passed",
            code="appeal_deadline_passed",
            action="write off, or reopen with proof of timely filing",
        )
    letter = await _letter(conn, principal, item, claim)
    status = await _move(
        conn,
        principal,
        claim,
        ClaimStatus.APPEALED,
        ClaimEvent.APPEAL,
        cmd.reason,
        request_id,
        after={"work_item_id": str(item.id), "deadline": str(item.appeal_deadline)},
    )
    appeal_id = str(uuid.uuid4())
    await conn.execute(
        appeals.insert().values(
            id=appeal_id,
            tenant_id=principal.tenant_id,
            claim_id=claim.id,
            work_item_id=item.id,
            payer_id=claim.payer_id,
            amount_cents=item.amount_cents,
            deadline=item.appeal_deadline,
            letter=letter,
            status="filed",
            filed_on=today,
            created_by=principal.actor,
        )
    )
    done = await _resolve(conn, principal, item, "appeal", cmd.reason, request_id)
    return ActionResult(
        item_read(done), str(claim.id), status, appeal_id=appeal_id, appeal_letter=letter
    )
