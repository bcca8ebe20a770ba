"""What an 835 says happened to a claim: outcome, amounts and the denial's category and action.

Inputs are plain values mapped from one CLP loop: the claim status code (CLP02), charge and
paid amounts, the claim- and line-level CAS adjustments (group, CARC, amount in cents) and the
remark codes (RARC from MIA/MOA and LQ*HE).

Every adjustment is classified as one of:

* ``patient_responsibility``: group PR, whatever the CARC (deductible, coinsurance, copay, or a
  non-covered service the patient agreed to pay). It goes to a secondary payer or the patient.
* ``contractual``: group CO/OA/PI with a CARC whose table category is ``contractual`` (CO-45
  above the fee schedule, CO-253 sequestration, OA-23 prior payer's effect, CO-24 capitation,
  ...). It is written off and is the only kind allowed out of the net-collection denominator.
* ``denial``: everything else (CO-50, CO-197, OA-18, PI-204, unknown CARCs, ...): money the
  payer did not pay that someone must work.

Outcome (CLP02 is *not* used to detect denials; 4 only means "patient not recognised"):

* CLP02 = 22 -> ``reversed`` (the payer takes back an earlier payment; amounts come negated).
* paid > 0 and no denial amount -> ``paid``; paid > 0 with a denial amount -> ``partially_paid``.
* paid == 0 with a denial amount -> ``denied``.
* paid == 0, no denial, patient responsibility > 0 -> ``patient_responsibility`` (adjudicated,
  e.g. applied to the deductible; not a denial).
* anything else (no payment and nothing explaining it, or a negative payment outside a
  reversal) -> ``needs_review``.

The primary denial is the denial adjustment with the largest amount (first one on a tie); its
CARC gives the category and default action from the versioned table, with two refinements:
for "see the remark codes" CARCs (16, 125, 226, 227, A1) the first remark code with a specific
category supplies category and action, and group CO turns "bill the patient" into "write off"
(a contractual obligation forbids billing the patient). A remark saying the decision cannot be
appealed (MA130, N704, MA44, N211) replaces an ``appeal`` action with the remark's own action.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from shared.codes import (
    AdjustmentReason,
    CodeTable,
    DefaultAction,
    DenialCategory,
    RemarkCode,
    load_carc,
    load_rarc,
)
from shared.money import Cents

__all__ = [
    "REVERSAL_STATUS",
    "SEE_REMARK_CARCS",
    "AdjustmentKind",
    "ClassifiedAdjustment",
    "DenialSummary",
    "GroupCode",
    "RemitAdjustment",
    "RemitClaim",
    "RemitDecision",
    "RemitLine",
    "RemitOutcome",
    "classify_adjustment",
    "decide_remit",
]

REVERSAL_STATUS = "22"
SEE_REMARK_CARCS: frozenset[str] = frozenset({"16", "125", "226", "227", "A1"})


class GroupCode(StrEnum):
    """CAS01 claim adjustment group (CR was removed in 5010)."""

    CO = "CO"  # contractual obligation: never bill the patient
    PR = "PR"  # patient responsibility
    OA = "OA"  # other adjustment
    PI = "PI"  # payer initiated, no contract basis


class AdjustmentKind(StrEnum):
    CONTRACTUAL = "contractual"
    PATIENT_RESPONSIBILITY = "patient_responsibility"
    DENIAL = "denial"


class RemitOutcome(StrEnum):
    PAID = "paid"
    PARTIALLY_PAID = "partially_paid"
    DENIED = "denied"
    PATIENT_RESPONSIBILITY = "patient_responsibility"
    REVERSED = "reversed"
    NEEDS_REVIEW = "needs_review"


@dataclass(frozen=True, slots=True)
class RemitAdjustment:
    group: GroupCode
    carc: str
    amount_cents: Cents


@dataclass(frozen=True, slots=True)
class RemitLine:
    procedure_code: str
    charge_cents: Cents
    paid_cents: Cents
    adjustments: tuple[RemitAdjustment, ...] = ()
    remark_codes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RemitClaim:
    status_code: str  # CLP02
    charge_cents: Cents  # CLP03
    paid_cents: Cents  # CLP04
    adjustments: tuple[RemitAdjustment, ...] = ()  # claim-level CAS
    lines: tuple[RemitLine, ...] = ()
    remark_codes: tuple[str, ...] = ()  # MIA/MOA remarks


@dataclass(frozen=True, slots=True)
class ClassifiedAdjustment:
    adjustment: RemitAdjustment
    kind: AdjustmentKind
    line_index: int | None  # None for claim level
    reason: AdjustmentReason | None  # None when the CARC is unknown on the date


@dataclass(frozen=True, slots=True)
class DenialSummary:
    group: GroupCode
    carc: str
    description: str
    category: DenialCategory
    action: DefaultAction
    remark_codes: tuple[str, ...]
    no_appeal: bool
    amount_cents: Cents


@dataclass(frozen=True, slots=True)
class RemitDecision:
    outcome: RemitOutcome
    charge_cents: Cents
    paid_cents: Cents
    denied_cents: Cents  # amount at stake: what the payer did not pay and someone must work
    contractual_cents: Cents
    patient_responsibility_cents: Cents
    denial: DenialSummary | None
    adjustments: tuple[ClassifiedAdjustment, ...]
    balanced: bool  # CLP03 - all CAS == CLP04 and SVC02 - line CAS == SVC03 for every line
    unknown_codes: tuple[str, ...]  # CARCs/RARCs missing from the tables on the date


def classify_adjustment(
    adjustment: RemitAdjustment, reason: AdjustmentReason | None
) -> AdjustmentKind:
    """PR -> patient responsibility; contractual CARC -> contractual; else a denial."""
    if adjustment.group == GroupCode.PR:
        return AdjustmentKind.PATIENT_RESPONSIBILITY
    if reason is not None and reason.category is DenialCategory.CONTRACTUAL:
        return AdjustmentKind.CONTRACTUAL
    return AdjustmentKind.DENIAL


def _unique(codes: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for code in codes:
        cleaned = code.strip().upper()
        if cleaned:
            seen.setdefault(cleaned, None)
    return tuple(seen)


def _all_adjustments(
    remit: RemitClaim,
) -> list[tuple[RemitAdjustment, int | None]]:
    found: list[tuple[RemitAdjustment, int | None]] = [(a, None) for a in remit.adjustments]
    for index, line in enumerate(remit.lines):
        found.extend((a, index) for a in line.adjustments)
    return found


def _balanced(remit: RemitClaim) -> bool:
    total = sum(a.amount_cents for a, _ in _all_adjustments(remit))
    if remit.charge_cents - total != remit.paid_cents:
        return False
    return all(
        line.charge_cents - sum(a.amount_cents for a in line.adjustments) == line.paid_cents
        for line in remit.lines
    )


def _summarise_denial(
    primary: ClassifiedAdjustment,
    remarks: Sequence[RemarkCode],
    remark_codes: tuple[str, ...],
    amount_cents: Cents,
) -> DenialSummary:
    reason = primary.reason
    group = primary.adjustment.group
    category = reason.category if reason is not None else DenialCategory.OTHER
    action = reason.default_action if reason is not None else DefaultAction.CHECK_STATUS
    if primary.adjustment.carc in SEE_REMARK_CARCS:
        specific = next((r for r in remarks if r.category is not DenialCategory.OTHER), None)
        if specific is not None:
            category, action = specific.category, specific.default_action
    if group == GroupCode.CO and action is DefaultAction.BILL_PATIENT:
        action = DefaultAction.WRITE_OFF
    blocking = next((r for r in remarks if r.no_appeal), None)
    if blocking is not None and action is DefaultAction.APPEAL:
        action = blocking.default_action
    return DenialSummary(
        group=group,
        carc=primary.adjustment.carc,
        description=reason.description if reason is not None else "unknown adjustment reason",
        category=category,
        action=action,
        remark_codes=remark_codes,
        no_appeal=blocking is not None,
        amount_cents=amount_cents,
    )


def decide_remit(
    remit: RemitClaim,
    *,
    on: date,
    carc_table: CodeTable[AdjustmentReason] | None = None,
    rarc_table: CodeTable[RemarkCode] | None = None,
) -> RemitDecision:
    """Classify every adjustment, total them and decide the claim's outcome (see module doc).

    ``on`` is the date the codes are looked up for (the 835's production date).
    """
    carcs = carc_table if carc_table is not None else load_carc()
    rarcs = rarc_table if rarc_table is not None else load_rarc()
    unknown: list[str] = []

    classified: list[ClassifiedAdjustment] = []
    for adjustment, line_index in _all_adjustments(remit):
        reason = carcs.lookup(adjustment.carc, on)
        if reason is None:
            unknown.append(f"CARC {adjustment.carc}")
        classified.append(
            ClassifiedAdjustment(
                adjustment=adjustment,
                kind=classify_adjustment(adjustment, reason),
                line_index=line_index,
                reason=reason,
            )
        )

    def total(kind: AdjustmentKind) -> Cents:
        return sum(c.adjustment.amount_cents for c in classified if c.kind is kind)

    denied = total(AdjustmentKind.DENIAL)
    contractual = total(AdjustmentKind.CONTRACTUAL)
    patient = total(AdjustmentKind.PATIENT_RESPONSIBILITY)
    paid = remit.paid_cents

    if remit.status_code.strip() == REVERSAL_STATUS:
        outcome = RemitOutcome.REVERSED
    elif paid > 0:
        outcome = RemitOutcome.PARTIALLY_PAID if denied > 0 else RemitOutcome.PAID
    elif paid == 0 and denied > 0:
        outcome = RemitOutcome.DENIED
    elif paid == 0 and patient > 0:
        outcome = RemitOutcome.PATIENT_RESPONSIBILITY
    else:
        outcome = RemitOutcome.NEEDS_REVIEW

    denial: DenialSummary | None = None
    denials = [c for c in classified if c.kind is AdjustmentKind.DENIAL]
    if outcome in {RemitOutcome.PARTIALLY_PAID, RemitOutcome.DENIED} and denials:
        primary = max(denials, key=lambda c: c.adjustment.amount_cents)
        line_remarks = (
            remit.lines[primary.line_index].remark_codes if primary.line_index is not None else ()
        )
        remark_codes = _unique((*line_remarks, *remit.remark_codes))
        remarks: list[RemarkCode] = []
        for code in remark_codes:
            remark = rarcs.lookup(code, on)
            if remark is None:
                unknown.append(f"RARC {code}")
            else:
                remarks.append(remark)
        denial = _summarise_denial(primary, remarks, remark_codes, denied)

    return RemitDecision(
        outcome=outcome,
        charge_cents=remit.charge_cents,
        paid_cents=paid,
        denied_cents=denied,
        contractual_cents=contractual,
        patient_responsibility_cents=patient,
        denial=denial,
        adjustments=tuple(classified),
        balanced=_balanced(remit),
        unknown_codes=_unique(unknown),
    )
