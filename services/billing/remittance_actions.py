"""What a biller does with a work item. Every action is validated against the claim's state
(`claim_state.transition`, a 409 with the allowed events otherwise), bumps the claim's
`version`, appends audit events to the claim and the work item, and resolves the item with its
disposition, all in the caller's transaction.

* correct & resubmit: a replacement claim (frequency 7, REF*F8 = the payer ICN) copied from the
  claim with the biller's corrections, re-scrubbed (it must pass) and created `ready` so the
  submission cron sends it; the original becomes `replaced`. A *rejected* claim was never
  filed: it is corrected in place and goes back to `ready` as an original.
* void: a frequency 8 claim with the payer ICN, created `ready`; the original becomes `voided`.
* appeal: recorded with its deadline and a letter draft built from the claim's evidence; the
  claim becomes `appealed`. Refused when the remark codes bar an appeal or the deadline passed.
* write off, reason-coded (contractual, timely filing, no authorization, other): a write_offs
  row (kept apart in the KPIs), the claim becomes `written_off`.
* bill another payer (`payer_id`, a payer known to coverage): coverage is asked, through the
  billing -> coverage port, who covers the patient on the date of service; it must answer
  eligible with that payer (else a 422 and nothing changes). The denied claim is closed and a
  new original claim (frequency 1, new CLM01, next claim_version of the session) is coded,
  priced and scrubbed from the session under that payer's contract, exactly as the automatic
  path does (`claims_build.decide`), and starts `ready` or `on_hold`; it is sent as primary
  to that payer with the member id from coverage, and `rebilled_from_claim_id` links it to
  the denied claim. Refused once the first payer paid something (the other payer would be
  secondary, which needs the COB loops this service does not send).
* bill the patient: the claim is closed with that disposition (the patient statement is a
  separate record). Refused for a CO (contractual obligation) denial.
* reopen: a resolved item goes back to open; a written-off claim that was never adjudicated
  (rejected) goes back to `ready`, and its write-off is reversed.
"""

from __future__ import annotations

import uuid
from datetime import date
from types import SimpleNamespace
from typing import Any

import msgspec
from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing import claim_repository as repo
from services.billing import claims as creation
from services.billing import claims_manage
from services.billing.claims_build import decide, findings_json, patient_control_number
from services.billing.domain.claim_state import ClaimEvent, ClaimStatus
from services.billing.domain.work_items import WorkItemStatus
from services.billing.ports import CoveragePort, EligibilityEvidence, PayerInfo
from services.billing.remittance_schemas import (
    ActionResult,
    BillOtherPayer,
    CorrectResubmit,
    SimpleAction,
    WriteOffAction,
)
from services.billing.schemas import ClaimPatch, SessionCreate
from services.billing.tables import claim_lines, claims, sessions
from services.billing.tables_remittance import appeals, write_offs
from services.billing.work_queue import get_row, item_read, set_status
from shared import audit
from shared.auth import Principal
from shared.clock import utc_now, utc_today
from shared.errors import Conflict, FieldProblem, RuleViolation
from shared.logging import get_logger
from shared.money import format_cents, parse_amount
from shared.tables import audit_events

log = get_logger("billing.work_queue.actions")

__all__ = [
    "appeal",
    "bill_other_payer",
    "bill_patient",
    "correct_resubmit",
    "reopen",
    "void",
    "write_off",
]


async def _begin(conn: AsyncConnection, principal: Principal, item_id: str) -> tuple[Any, Any]:
    item = await get_row(conn, principal.tenant_id, item_id, for_update=True)
    if item.status == WorkItemStatus.RESOLVED.value:
        raise Conflict(
            "the work item is already resolved",
            code="invalid_transition",
            action="reopen it first (POST .../actions/reopen)",
        )
    if item.claim_id is None:
        raise Conflict(
            "this work item has no claim of ours (unmatched remittance or batch failure)",
            code="no_claim",
            action="find the claim, add a note and resolve it through the claim",
        )
    claim = await repo.get_claim(conn, principal.tenant_id, str(item.claim_id), for_update=True)
    if claim is None:  # pragma: no cover - claims are never deleted
        raise Conflict("the claim of this work item is gone", code="no_claim")
    return item, claim


async def _move(
    conn: AsyncConnection,
    principal: Principal,
    row: Any,
    target: ClaimStatus,
    event: ClaimEvent,
    reason: str,
    request_id: str | None,
    *,
    values: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> str:
    move = claims_manage._transition(row.status, target, reason, event)
    ok = await repo.update_claim(
        conn,
        principal.tenant_id,
        str(row.id),
        row.version,
        {
            "status": move.target.value,
            "status_reason": move.reason[:500],
            "updated_at": utc_now(),
            **(values or {}),
        },
    )
    if not ok:  # pragma: no cover - the row is locked
        raise Conflict("the claim changed", code="stale_version")
    await audit.append(
        conn,
        tenant_id=principal.tenant_id,
        entity_type="claim",
        entity_id=str(row.id),
        action=f"claim.{move.event.value}",
        actor=principal.actor,
        request_id=request_id,
        reason=move.reason,
        before={"status": move.source.value},
        after={"status": move.target.value, **(after or {})},
    )
    return move.target.value


async def _resolve(
    conn: AsyncConnection,
    principal: Principal,
    item: Any,
    disposition: str,
    reason: str,
    request_id: str | None,
) -> Any:
    row = item
    if row.status == WorkItemStatus.OPEN.value:
        row = await set_status(
            conn,
            row,
            tenant_id=principal.tenant_id,
            actor=principal.actor,
            target=WorkItemStatus.IN_PROGRESS,
            reason=reason,
            request_id=request_id,
            assignee=principal.actor,
        )
    return await set_status(
        conn,
        row,
        tenant_id=principal.tenant_id,
        actor=principal.actor,
        target=WorkItemStatus.RESOLVED,
        reason=reason,
        request_id=request_id,
        disposition=disposition,
    )


def _need_icn(claim: Any, what: str) -> str:
    if not claim.payer_icn:
        raise Conflict(
            f"a {what} needs the payer's claim number (CLP07) and this claim has none",
            code="no_payer_icn",
            action="a claim the payer never adjudicated is corrected as a new original",
        )
    return str(claim.payer_icn)


def _patch(cmd: CorrectResubmit, version: int) -> ClaimPatch | None:
    if all(
        v is None
        for v in (
            cmd.diagnoses,
            cmd.member_id,
            cmd.rendering_provider,
            cmd.billing_provider,
            cmd.lines,
        )
    ):
        return None
    return ClaimPatch(
        version=version,
        reason=cmd.reason,
        diagnoses=cmd.diagnoses,
        member_id=cmd.member_id,
        rendering_provider=cmd.rendering_provider,
        billing_provider=cmd.billing_provider,
        lines=cmd.lines,
    )


async def _next_claim_version(conn: AsyncConnection, tenant_id: str, claim: Any) -> int:
    """The claim series' next claim_version: a session's claims (UNIQUE (tenant, session,
    claim_version) keeps one row per number, so every further claim of a session, 7, 8 or
    another payer's, takes the next), or a PMPM claim's member-month (contract, patient,
    month)."""
    if claim.session_id is not None:
        same = claims.c.session_id == claim.session_id
    else:
        same = and_(
            claims.c.session_id.is_(None),
            claims.c.contract_id == claim.contract_id,
            claims.c.patient_id == claim.patient_id,
            claims.c.pmpm_period == claim.pmpm_period,
        )
    series = (
        await conn.execute(
            select(func.max(claims.c.claim_version)).where(claims.c.tenant_id == tenant_id, same)
        )
    ).scalar_one()
    return int(series or 1) + 1


async def _new_claim_version(
    conn: AsyncConnection,
    principal: Principal,
    claim: Any,
    snapshot: Any,
    *,
    frequency: str,
    scrub: list[dict[str, Any]],
    reason: str,
    request_id: str | None,
) -> str:
    """Insert the frequency 7/8 claim (next claim_version, new CLM01, the payer ICN)."""
    series = await _next_claim_version(conn, principal.tenant_id, claim)
    seq = (await repo.next_pcn_numbers(conn, 1))[0]
    new_id = str(uuid.uuid4())
    lines = snapshot.line_values()
    values = {
        k: v for k, v in claim._mapping.items() if k not in ("id", "created_at", "updated_at")
    }
    values.update(
        id=new_id,
        claim_version=series,
        frequency_code=frequency,
        patient_control_number=patient_control_number(principal.tenant_id, seq),
        payer_icn=claim.payer_icn,
        replaces_claim_id=str(claim.id),
        status=ClaimStatus.READY.value,
        status_reason=(
            f"{'replacement' if frequency == '7' else 'void'} of {claim.patient_control_number}"
        ),
        billing_provider=snapshot.billing,
        rendering_provider=snapshot.rendering,
        subscriber=snapshot.subscriber,
        diagnoses=snapshot.diagnoses,
        billing_tin=snapshot.billing["tin"][:9],
        total_charge_cents=sum(ln["charge_cents"] for ln in lines),
        expected_cents=sum(ln["expected_cents"] for ln in lines),
        scrub=scrub,
        hold_reasons=[],
        version=1,
    )
    await conn.execute(claims.insert().values(**values))
    await conn.execute(claim_lines.insert(), [{**ln, "claim_id": new_id} for ln in lines])
    await audit.append(
        conn,
        tenant_id=principal.tenant_id,
        entity_type="claim",
        entity_id=new_id,
        action="claim.created",
        actor=principal.actor,
        request_id=request_id,
        reason=reason,
        after={
            "status": ClaimStatus.READY.value,
            "frequency_code": frequency,
            "claim_version": values["claim_version"],
            "replaces_claim_id": str(claim.id),
            "payer_icn": claim.payer_icn,
            "patient_control_number": values["patient_control_number"],
        },
        new_entity=True,
    )
    return new_id


async def correct_resubmit(
    conn: AsyncConnection,
    principal: Principal,
    item_id: str,
    cmd: CorrectResubmit,
    *,
    request_id: str | None,
) -> ActionResult:
    item, claim = await _begin(conn, principal, item_id)
    snapshot = claims_manage._snapshot(claim, await repo.lines_of(conn, str(claim.id)))
    patch = _patch(cmd, claim.version)
    changed: dict[str, Any] = {}
    if patch is not None:
        _, changed, _ = claims_manage._apply(snapshot, patch)
    if claim.status == ClaimStatus.REJECTED.value:
        # Never filed: fix this claim and send it again as an original.
        checked = await claims_manage._rescrub(conn, principal, claim, snapshot)
        if not checked.passed:
            raise claims_manage._scrub_failed(checked)
        lines = snapshot.line_values()
        await repo.replace_lines(conn, str(claim.id), lines)
        status = await _move(
            conn,
            principal,
            claim,
            ClaimStatus.READY,
            ClaimEvent.CORRECT,
            cmd.reason,
            request_id,
            values={
                "billing_provider": snapshot.billing,
                "rendering_provider": snapshot.rendering,
                "subscriber": snapshot.subscriber,
                "diagnoses": snapshot.diagnoses,
                "total_charge_cents": sum(ln["charge_cents"] for ln in lines),
                "expected_cents": sum(ln["expected_cents"] for ln in lines),
                "scrub": findings_json(checked.findings),
                "hold_reasons": [],
            },
            after={"corrected": sorted(changed), "work_item_id": str(item.id)},
        )
        done = await _resolve(conn, principal, item, "new_claim", cmd.reason, request_id)
        return ActionResult(item_read(done), str(claim.id), status)
    icn = _need_icn(claim, "replacement claim")
    # The original leaves first, so the replacement's duplicate check does not count it.
    status = await _move(
        conn,
        principal,
        claim,
        ClaimStatus.REPLACED,
        ClaimEvent.REPLACE,
        cmd.reason,
        request_id,
        after={"payer_icn": icn, "corrected": sorted(changed), "work_item_id": str(item.id)},
    )
    draft_row = SimpleNamespace(
        **{**claim._mapping, "frequency_code": "7", "payer_icn": icn, "status": "ready"}
    )
    checked = await claims_manage._rescrub(conn, principal, draft_row, snapshot)
    if not checked.passed:
        raise claims_manage._scrub_failed(checked)
    new_id = await _new_claim_version(
        conn,
        principal,
        claim,
        snapshot,
        frequency="7",
        scrub=findings_json(checked.findings),
        reason=cmd.reason,
        request_id=request_id,
    )
    done = await _resolve(conn, principal, item, "correct_resubmit", cmd.reason, request_id)
    return ActionResult(item_read(done), str(claim.id), status, new_claim_id=new_id)


async def void(
    conn: AsyncConnection,
    principal: Principal,
    item_id: str,
    cmd: SimpleAction,
    *,
    request_id: str | None,
) -> ActionResult:
    item, claim = await _begin(conn, principal, item_id)
    icn = _need_icn(claim, "void")
    status = await _move(
        conn,
        principal,
        claim,
        ClaimStatus.VOIDED,
        ClaimEvent.VOID,
        cmd.reason,
        request_id,
        after={"payer_icn": icn, "work_item_id": str(item.id)},
    )
    snapshot = claims_manage._snapshot(claim, await repo.lines_of(conn, str(claim.id)))
    new_id = await _new_claim_version(
        conn,
        principal,
        claim,
        snapshot,
        frequency="8",
        scrub=list(claim.scrub or []),
        reason=cmd.reason,
        request_id=request_id,
    )
    done = await _resolve(conn, principal, item, "void", cmd.reason, request_id)
    return ActionResult(item_read(done), str(claim.id), status, new_claim_id=new_id)


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


async def write_off(
    conn: AsyncConnection,
    principal: Principal,
    item_id: str,
    cmd: WriteOffAction,
    *,
    request_id: str | None,
    today: date | None = None,
) -> ActionResult:
    today = today or utc_today()
    item, claim = await _begin(conn, principal, item_id)
    amount = parse_amount(cmd.amount) if cmd.amount is not None else item.amount_cents
    if amount <= 0:
        raise RuleViolation(
            "a write-off needs a positive amount",
            code="invalid_amount",
            errors=(FieldProblem("amount", "must be more than 0.00"),),
        )
    status = await _move(
        conn,
        principal,
        claim,
        ClaimStatus.WRITTEN_OFF,
        ClaimEvent.WRITE_OFF,
        f"{cmd.reason_code.value}: {cmd.reason}",
        request_id,
        after={"reason_code": cmd.reason_code.value, "amount_cents": amount},
    )
    wo_id = str(uuid.uuid4())
    await conn.execute(
        write_offs.insert().values(
            id=wo_id,
            tenant_id=principal.tenant_id,
            claim_id=claim.id,
            work_item_id=item.id,
            payer_id=claim.payer_id,
            reason=cmd.reason_code.value,
            amount_cents=amount,
            note=cmd.reason,
            written_off_on=today,
            created_by=principal.actor,
        )
    )
    done = await _resolve(conn, principal, item, "write_off", cmd.reason, request_id)
    return ActionResult(item_read(done), str(claim.id), status, write_off_id=wo_id)


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


async def bill_patient(
    conn: AsyncConnection,
    principal: Principal,
    item_id: str,
    cmd: SimpleAction,
    *,
    request_id: str | None,
) -> ActionResult:
    item, claim = await _begin(conn, principal, item_id)
    group = (item.reasons or [{}])[0].get("group")
    if group == "CO":
        raise Conflict(
            "a CO (contractual obligation) denial may not be billed to the patient",
            code="contractual_obligation",
            action="appeal, correct and resubmit, or write off",
        )
    status = await _move(
        conn,
        principal,
        claim,
        ClaimStatus.CLOSED,
        ClaimEvent.BILL_PATIENT,
        cmd.reason,
        request_id,
        after={"patient_amount_cents": item.amount_cents},
    )
    done = await _resolve(conn, principal, item, "bill_patient", cmd.reason, request_id)
    return ActionResult(item_read(done), str(claim.id), status)


async def reopen(
    conn: AsyncConnection,
    principal: Principal,
    item_id: str,
    cmd: SimpleAction,
    *,
    request_id: str | None,
    today: date | None = None,
) -> ActionResult:
    today = today or utc_today()
    item = await get_row(conn, principal.tenant_id, item_id, for_update=True)
    new = await set_status(
        conn,
        item,
        tenant_id=principal.tenant_id,
        actor=principal.actor,
        target=WorkItemStatus.OPEN,
        reason=cmd.reason,
        request_id=request_id,
    )
    claim_status = None
    if item.claim_id is not None:
        claim = await repo.get_claim(conn, principal.tenant_id, str(item.claim_id), for_update=True)
        claim_status = claim.status if claim else None
        if claim is not None and claim.status == ClaimStatus.WRITTEN_OFF.value:
            if claim.payer_icn:
                raise Conflict(
                    "the payer adjudicated this claim: a write-off is undone by an appeal or a "
                    "replacement claim, not by reopening",
                    code="invalid_transition",
                    action="appeal or correct and resubmit",
                )
            claim_status = await _move(
                conn,
                principal,
                claim,
                ClaimStatus.READY,
                ClaimEvent.REOPEN,
                cmd.reason,
                request_id,
            )
            net = await conn.execute(
                select(write_offs.c.reason, func.sum(write_offs.c.amount_cents).label("net"))
                .where(
                    write_offs.c.tenant_id == principal.tenant_id,
                    write_offs.c.claim_id == claim.id,
                )
                .group_by(write_offs.c.reason)
            )
            for wo in net:
                if wo.net and wo.net > 0:
                    await conn.execute(
                        write_offs.insert().values(
                            id=str(uuid.uuid4()),
                            tenant_id=principal.tenant_id,
                            claim_id=claim.id,
                            work_item_id=item.id,
                            payer_id=claim.payer_id,
                            reason=wo.reason,
                            amount_cents=-int(wo.net),
                            note=f"reversed on reopen: {cmd.reason}",
                            written_off_on=today,
                            created_by=principal.actor,
                        )
                    )
    return ActionResult(item_read(new), str(item.claim_id) if item.claim_id else None, claim_status)
