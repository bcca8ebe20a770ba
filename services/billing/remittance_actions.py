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

This module is the actions' façade (the API imports every action from here). The steps all
actions share live in `remittance_action_steps`, the appeal and its letter draft in
`remittance_appeal`, billing another payer in `remittance_rebill`.
"""

from __future__ import annotations

import uuid
from datetime import date
from types import SimpleNamespace
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing import claim_repository as repo
from services.billing import claims_manage
from services.billing.claims_build import findings_json, patient_control_number
from services.billing.domain.claim_state import ClaimEvent, ClaimStatus
from services.billing.domain.work_items import WorkItemStatus
from services.billing.remittance_action_steps import (
    _begin,
    _move,
    _next_claim_version,
    _resolve,
)
from services.billing.remittance_appeal import appeal
from services.billing.remittance_rebill import bill_other_payer
from services.billing.remittance_schemas import (
    ActionResult,
    CorrectResubmit,
    SimpleAction,
    WriteOffAction,
)
from services.billing.schemas import ClaimPatch
from services.billing.tables import claim_lines, claims
from services.billing.tables_remittance import write_offs
from services.billing.work_queue import get_row, item_read, set_status
from shared import audit
from shared.auth import Principal
from shared.clock import utc_today
from shared.errors import Conflict, FieldProblem, RuleViolation
from shared.money import parse_amount

__all__ = [
    "appeal",
    "bill_other_payer",
    "bill_patient",
    "correct_resubmit",
    "reopen",
    "void",
    "write_off",
]


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
