"""Revenue-cycle KPIs computed from posted records (HFMA MAP-style definitions).

Every KPI is a ``Ratio`` of exact numbers (``Fraction``) so results are reproducible to the
cent; ``Ratio.decimal()`` rounds half-up to four places and ``Ratio.percent()`` gives "95.00%".
A zero denominator gives ``None`` rather than 0 or an error.

Population: the *cohort* is every claim whose first submission date falls in
``[period_start, period_end]``. Stock measures (A/R) are taken *as of* ``period_end``, counting
only payments and adjustments posted on or before it.

* clean claim rate   = cohort claims that passed the edits first time with no manual touch
                       / cohort claims
* first-pass yield   = cohort claims paid on their first adjudication after one submission
                       / cohort claims with a first adjudication (paid, partially paid, denied)
* denial rate count  = cohort claims whose first adjudication was denied or partially paid
                       / cohort claims
* denial rate $      = denied dollars on those first adjudications / cohort charges
* A/R                = for every claim submitted on or before ``period_end``:
                       charge - payments + refunds - adjustments (all kinds), netted
* days in A/R        = A/R / (cohort charges / days in the period)
* A/R over 90 days   = A/R of claims first submitted more than 90 days before ``period_end``
                       / A/R
* net collection     = (payments - refunds on cohort claims)
                       / (cohort charges - *contractual* adjustments on cohort claims)
                       Timely-filing, no-authorization and other write-offs stay in the
                       denominator: they are lost money, not contract terms.
* overturn rate      = appeals filed in the period that were won (fully or partly)
                       / appeals filed in the period
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from fractions import Fraction

from services.billing.domain.claim_state import ClaimStatus
from shared.money import Cents

__all__ = [
    "AR_AGING_DAYS",
    "AdjustmentRecord",
    "AdjustmentType",
    "AppealOutcome",
    "AppealRecord",
    "ClaimRecord",
    "KpiReport",
    "PaymentKind",
    "PaymentRecord",
    "Ratio",
    "compute_kpis",
]

AR_AGING_DAYS = 90

_ADJUDICATED = frozenset({ClaimStatus.PAID, ClaimStatus.PARTIALLY_PAID, ClaimStatus.DENIED})
_DENIED_FIRST = frozenset({ClaimStatus.DENIED, ClaimStatus.PARTIALLY_PAID})


@dataclass(frozen=True, slots=True)
class ClaimRecord:
    claim_id: str
    charge_cents: Cents
    submitted_on: date | None  # first submission; None = never sent
    submission_count: int
    passed_edits_first_time: bool
    manual_touch: bool
    first_outcome: ClaimStatus | None = None  # paid / partially_paid / denied / rejected
    first_denied_cents: Cents = 0  # amount denied on the first adjudication


class PaymentKind(StrEnum):
    PAYMENT = "payment"  # from a payer or the patient
    REFUND = "refund"  # money given back (overpayment, recoupment); a positive amount


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    claim_id: str
    amount_cents: Cents
    posted_on: date
    kind: PaymentKind = PaymentKind.PAYMENT


class AdjustmentType(StrEnum):
    CONTRACTUAL = "contractual"  # CO-45 and other contract terms
    TIMELY_FILING_WRITE_OFF = "timely_filing_write_off"
    NO_AUTHORIZATION_WRITE_OFF = "no_authorization_write_off"
    DENIAL_WRITE_OFF = "denial_write_off"
    SMALL_BALANCE_WRITE_OFF = "small_balance_write_off"
    BAD_DEBT = "bad_debt"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class AdjustmentRecord:
    claim_id: str
    amount_cents: Cents  # positive reduces the balance
    posted_on: date
    kind: AdjustmentType


class AppealOutcome(StrEnum):
    PENDING = "pending"
    WON = "won"
    PARTIALLY_WON = "partially_won"
    LOST = "lost"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True, slots=True)
class AppealRecord:
    claim_id: str
    filed_on: date
    outcome: AppealOutcome


@dataclass(frozen=True, slots=True)
class Ratio:
    numerator: Fraction
    denominator: Fraction

    @property
    def value(self) -> Fraction | None:
        if self.denominator == 0:
            return None
        return self.numerator / self.denominator

    def decimal(self, places: int = 4) -> Decimal | None:
        value = self.value
        if value is None:
            return None
        exact = Decimal(value.numerator) / Decimal(value.denominator)
        return exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)

    def percent(self, places: int = 2) -> str | None:
        value = self.value
        if value is None:
            return None
        hundred = Ratio(Fraction(value.numerator * 100), Fraction(value.denominator))
        shown = hundred.decimal(places)
        return f"{shown}%"


def _ratio(numerator: int | Fraction, denominator: int | Fraction) -> Ratio:
    return Ratio(Fraction(numerator), Fraction(denominator))


@dataclass(frozen=True, slots=True)
class KpiReport:
    period_start: date
    period_end: date
    claims_submitted: int
    charges_cents: Cents
    ar_cents: Cents
    ar_over_90_cents: Cents
    clean_claim_rate: Ratio
    first_pass_yield: Ratio
    denial_rate_count: Ratio
    denial_rate_dollars: Ratio
    days_in_ar: Ratio
    ar_over_90_share: Ratio
    net_collection_rate: Ratio
    overturn_rate: Ratio


def _sum_by_claim(records: Iterable[tuple[str, Cents]]) -> dict[str, Cents]:
    totals: dict[str, Cents] = {}
    for claim_id, amount in records:
        totals[claim_id] = totals.get(claim_id, 0) + amount
    return totals


def compute_kpis(
    claims: Sequence[ClaimRecord],
    payments: Sequence[PaymentRecord],
    adjustments: Sequence[AdjustmentRecord],
    appeals: Sequence[AppealRecord],
    *,
    period_start: date,
    period_end: date,
) -> KpiReport:
    """All KPIs for one period (see the module docstring for each definition)."""
    if period_end < period_start:
        raise ValueError("period_end is before period_start")

    def in_period(day: date | None) -> bool:
        return day is not None and period_start <= day <= period_end

    cohort = [c for c in claims if in_period(c.submitted_on)]
    cohort_ids = {c.claim_id for c in cohort}
    charges = sum(c.charge_cents for c in cohort)

    clean = sum(1 for c in cohort if c.passed_edits_first_time and not c.manual_touch)
    adjudicated = [c for c in cohort if c.first_outcome in _ADJUDICATED]
    first_pass = sum(
        1 for c in adjudicated if c.first_outcome == ClaimStatus.PAID and c.submission_count == 1
    )
    denied_count = sum(1 for c in cohort if c.first_outcome in _DENIED_FIRST)
    denied_dollars = sum(c.first_denied_cents for c in cohort if c.first_outcome in _DENIED_FIRST)

    posted_payments = [p for p in payments if p.posted_on <= period_end]
    posted_adjustments = [a for a in adjustments if a.posted_on <= period_end]
    net_paid = _sum_by_claim(
        (p.claim_id, p.amount_cents if p.kind == PaymentKind.PAYMENT else -p.amount_cents)
        for p in posted_payments
    )
    adjusted = _sum_by_claim((a.claim_id, a.amount_cents) for a in posted_adjustments)

    ar_total = 0
    ar_old = 0
    for claim in claims:
        if claim.submitted_on is None or claim.submitted_on > period_end:
            continue
        balance = (
            claim.charge_cents - net_paid.get(claim.claim_id, 0) - adjusted.get(claim.claim_id, 0)
        )
        ar_total += balance
        if (period_end - claim.submitted_on).days > AR_AGING_DAYS:
            ar_old += balance

    period_days = (period_end - period_start).days + 1
    average_daily_charges = Fraction(charges, period_days)

    cohort_collected = sum(net_paid.get(claim_id, 0) for claim_id in cohort_ids)
    cohort_contractual = sum(
        a.amount_cents
        for a in posted_adjustments
        if a.claim_id in cohort_ids and a.kind == AdjustmentType.CONTRACTUAL
    )

    filed = [a for a in appeals if in_period(a.filed_on)]
    won = sum(1 for a in filed if a.outcome in {AppealOutcome.WON, AppealOutcome.PARTIALLY_WON})

    return KpiReport(
        period_start=period_start,
        period_end=period_end,
        claims_submitted=len(cohort),
        charges_cents=charges,
        ar_cents=ar_total,
        ar_over_90_cents=ar_old,
        clean_claim_rate=_ratio(clean, len(cohort)),
        first_pass_yield=_ratio(first_pass, len(adjudicated)),
        denial_rate_count=_ratio(denied_count, len(cohort)),
        denial_rate_dollars=_ratio(denied_dollars, charges),
        days_in_ar=_ratio(ar_total, average_daily_charges),
        ar_over_90_share=_ratio(ar_old, ar_total),
        net_collection_rate=_ratio(cohort_collected, charges - cohort_contractual),
        overturn_rate=_ratio(won, len(filed)),
    )
