"""Decisions of an 835 posting (`remittance_post`): `decide_remit` memoised per file
(`_Decider`), made for every CLP in slices, and one adjudication applied to its claim (status
move, audit event, work items)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

from services.billing.domain.adjustments import (
    GroupCode,
    RemitAdjustment,
    RemitClaim,
    RemitDecision,
    RemitLine,
    RemitOutcome,
    decide_remit,
)
from services.billing.domain.claim_state import (
    ClaimEvent,
    ClaimStatus,
    InvalidTransition,
    transition,
)
from services.billing.domain.work_items import (
    WorkItemCategory,
    appeal_deadline,
    category_for_denial,
    recommend,
)
from services.billing.remittance_items import _Claim, _item
from services.billing.remittance_pipeline import SLICE
from shared.codes import DefaultAction
from shared.x12.x835 import ClaimPayment, Remittance

_GROUPS = {g.value: g for g in GroupCode}


_TARGET = {
    RemitOutcome.PAID: (ClaimStatus.PAID, ClaimEvent.REMIT_PAID),
    RemitOutcome.PATIENT_RESPONSIBILITY: (ClaimStatus.PAID, ClaimEvent.REMIT_PAID),
    RemitOutcome.PARTIALLY_PAID: (ClaimStatus.PARTIALLY_PAID, ClaimEvent.REMIT_PARTIAL),
    RemitOutcome.DENIED: (ClaimStatus.DENIED, ClaimEvent.REMIT_DENIED),
}


def _remit_claim(cp: ClaimPayment) -> RemitClaim:
    def adj(a: Any) -> RemitAdjustment:
        return RemitAdjustment(_GROUPS.get(a.group, GroupCode.OA), a.carc, a.amount)

    return RemitClaim(
        status_code=cp.status,
        charge_cents=cp.charge,
        paid_cents=cp.paid,
        adjustments=tuple(adj(a) for a in cp.adjustments),
        lines=tuple(
            RemitLine(
                ln.code,
                ln.charge,
                ln.paid,
                tuple(adj(a) for a in ln.adjustments),
                tuple(ln.remark_codes),
            )
            for ln in cp.lines
        ),
    )


class _Decider:
    """`decide_remit` memoised on everything it reads, plus the adjustment rows it implies.

    The key is the claim's full adjudication content (CLP02, charge, paid, every CAS triple
    and line with its remarks) and the lookup date, and the code tables are fixed for the
    file, so a hit returns exactly what a fresh call would."""

    __slots__ = ("carcs", "hits", "memo", "rarcs")

    def __init__(self, carcs: Any, rarcs: Any) -> None:
        self.carcs = carcs
        self.rarcs = rarcs
        self.memo: dict[Any, tuple[RemitDecision, list[tuple[Any, ...]]]] = {}
        self.hits = 0

    def __call__(self, cp: ClaimPayment, on: date) -> tuple[RemitDecision, list[tuple[Any, ...]]]:
        key = (
            cp.status,
            cp.charge,
            cp.paid,
            tuple([(a.group, a.carc, a.amount) for a in cp.adjustments]),
            tuple(
                [
                    (
                        ln.code,
                        ln.charge,
                        ln.paid,
                        tuple([(a.group, a.carc, a.amount) for a in ln.adjustments]),
                        tuple(ln.remark_codes),
                    )
                    for ln in cp.lines
                ]
            ),
            on,
        )
        found = self.memo.get(key)
        if found is not None:
            self.hits += 1
            return found
        decision = decide_remit(
            _remit_claim(cp), on=on, carc_table=self.carcs, rarc_table=self.rarcs
        )
        adjustments = [
            (
                ci.line_index + 1 if ci.line_index is not None else None,
                ci.adjustment.group.value,
                ci.adjustment.carc[:5],
                ci.adjustment.amount_cents,
                None,
                ci.kind.value,
            )
            for ci in decision.adjustments
        ]
        self.memo[key] = (decision, adjustments)
        return decision, adjustments


_Decided = tuple[RemitDecision, list[tuple[Any, ...]]]


_Planned = tuple[tuple[Remittance, ClaimPayment], _Decided]


def _remit_date(remit: Remittance, today: date) -> date:
    return remit.production_date or remit.payment_date or today


def _decide_all(
    decide: _Decider,
    flat: Sequence[tuple[Remittance, ClaimPayment]],
    today: date,
    out: list[_Decided],
) -> Iterator[None]:
    """Append the decision of every CLP to `out`, yielding every `SLICE` CLPs."""
    for n, (remit, cp) in enumerate(flat, start=1):
        out.append(decide(cp, _remit_date(remit, today)))
        if n % SLICE == 0:
            yield


def _apply_outcome(
    claim: _Claim,
    cp: ClaimPayment,
    decision: RemitDecision,
    pay_id: str,
    file_id: str,
    tenant_id: str,
    items: list[dict[str, Any]],
    remit_date: date,
    today: date,
) -> None:
    if cp.payer_icn:
        claim.icn = cp.payer_icn[:50]
    facts = {
        "payment_id": pay_id,
        "file_id": file_id,
        "outcome": decision.outcome.value,
        "paid_cents": decision.paid_cents,
        "denied_cents": decision.denied_cents,
        "contractual_cents": decision.contractual_cents,
        "patient_responsibility_cents": decision.patient_responsibility_cents,
        "payer_icn": cp.payer_icn,
    }
    target = _TARGET.get(decision.outcome)
    if target is None:  # needs review: nothing explains the (non-)payment
        claim.events.append(("claim.remit_posted", "835 needs review", {}, facts))
        items.append(
            _item(
                tenant_id,
                source="835_review",
                category=WorkItemCategory.OTHER,
                action=DefaultAction.CHECK_STATUS.value,
                text="The remittance neither pays nor explains the claim: check its status.",
                claim=claim,
                batch=None,
                payment=pay_id,
                amount=max(cp.charge - cp.paid, 0),
                reasons=[{"code": "NEEDS_REVIEW", "clp02": cp.status}],
                summary=f"835 outcome needs review (CLP02 {cp.status})",
                today=today,
            )
        )
        return
    status, event = target
    before = claim.status
    if before != status.value:
        try:
            move = transition(
                ClaimStatus(before),
                status,
                reason=f"835 {decision.outcome.value} (ICN {cp.payer_icn or '-'})",
                event=event,
            )
        except InvalidTransition as exc:
            claim.events.append(("claim.remit_posted", str(exc)[:500], {}, facts))
            items.append(
                _item(
                    tenant_id,
                    source="835_review",
                    category=WorkItemCategory.OTHER,
                    action=DefaultAction.CHECK_STATUS.value,
                    text=f"An 835 adjudicated a claim that is {before}: review the posting.",
                    claim=claim,
                    batch=None,
                    payment=pay_id,
                    amount=decision.denied_cents or max(cp.charge - cp.paid, 0),
                    reasons=[{"code": "STATE_CONFLICT", "status": before}],
                    summary=f"835 {decision.outcome.value} on a {before} claim",
                    today=today,
                )
            )
            return
        claim.status = move.target.value
        claim.moved = True
        claim.events.append(
            (
                f"claim.{move.event.value}",
                move.reason,
                {"status": before},
                {**facts, "status": claim.status},
            )
        )
    else:
        claim.moved = True  # same status; the ICN and the event still change
        claim.events.append(
            (
                "claim.remit_posted",
                f"835 {decision.outcome.value}",
                {"status": before},
                {**facts, "status": before},
            )
        )
    if before == ClaimStatus.APPEALED.value:
        claim.appeal_result = "lost" if status is ClaimStatus.DENIED else "won"
    claim.paid_in_full = status is ClaimStatus.PAID
    denial = decision.denial
    if denial is None or decision.denied_cents <= 0:
        return
    category = category_for_denial(denial.category)
    appeal_by = appeal_deadline(remit_date, claim.appeal_window)
    rec = recommend(
        category,
        denial.action,
        appeal_deadline_passed=appeal_by < today,
        no_appeal=denial.no_appeal,
    )
    items.append(
        _item(
            tenant_id,
            source="835",
            category=category,
            action=rec.action.value,
            text=rec.text,
            route=rec.route,
            claim=claim,
            batch=None,
            payment=pay_id,
            amount=decision.denied_cents,
            reasons=[
                {
                    "code": f"{denial.group.value}-{denial.carc}",
                    "group": denial.group.value,
                    "carc": denial.carc,
                    "description": denial.description,
                    "remarks": list(denial.remark_codes),
                    "payer_icn": cp.payer_icn,
                }
            ],
            summary=(
                f"{decision.outcome.value.replace('_', ' ')}: {denial.group.value}-{denial.carc} "
                f"{denial.description}"
            )[:500],
            appeal_by=appeal_by,
            no_appeal=denial.no_appeal,
            today=today,
        )
    )
