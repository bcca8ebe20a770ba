from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest

from services.billing.domain.claim_state import ClaimStatus
from services.billing.domain.kpis import (
    AdjustmentRecord,
    AdjustmentType,
    AppealOutcome,
    AppealRecord,
    ClaimRecord,
    PaymentKind,
    PaymentRecord,
    Ratio,
    compute_kpis,
)

START, END = date(2025, 1, 1), date(2025, 3, 31)  # 90 days
S = ClaimStatus


def claim(
    cid: str,
    charge: int,
    submitted: date | None,
    count: int,
    clean: bool,
    touched: bool,
    first: ClaimStatus | None,
    denied: int = 0,
) -> ClaimRecord:
    return ClaimRecord(cid, charge, submitted, count, clean, touched, first, denied)


CLAIMS = [
    claim("C1", 10000, date(2025, 1, 10), 1, True, False, S.PAID),
    claim("C2", 10000, date(2025, 2, 5), 1, True, True, S.DENIED, 10000),
    claim("C3", 5000, date(2025, 3, 1), 2, False, True, S.PAID),
    claim("C4", 7500, date(2025, 3, 15), 1, True, False, S.PARTIALLY_PAID, 2500),
    claim("C5", 12500, date(2025, 3, 20), 1, True, False, None),
    claim("C6", 8000, date(2024, 11, 15), 1, True, False, S.DENIED, 8000),  # before period
    claim("C7", 5000, None, 0, False, False, None),  # never sent
]
PAYMENTS = [
    PaymentRecord("C1", 6000, date(2025, 2, 1)),
    PaymentRecord("C1", 1500, date(2025, 2, 20)),  # patient coinsurance
    PaymentRecord("C1", 500, date(2025, 2, 25)),  # payer overpaid
    PaymentRecord("C1", 500, date(2025, 3, 10), PaymentKind.REFUND),
    PaymentRecord("C2", 7000, date(2025, 3, 20)),  # after winning the appeal
    PaymentRecord("C3", 3000, date(2025, 3, 25)),
    PaymentRecord("C4", 4000, date(2025, 3, 28)),
    PaymentRecord("C5", 1000, date(2025, 4, 5)),  # after the period: ignored
]
ADJUSTMENTS = [
    AdjustmentRecord("C1", 2500, date(2025, 2, 1), AdjustmentType.CONTRACTUAL),
    AdjustmentRecord("C2", 3000, date(2025, 3, 20), AdjustmentType.CONTRACTUAL),
    AdjustmentRecord("C3", 1000, date(2025, 3, 25), AdjustmentType.CONTRACTUAL),
    AdjustmentRecord("C4", 1000, date(2025, 3, 28), AdjustmentType.CONTRACTUAL),
    AdjustmentRecord("C4", 2500, date(2025, 3, 30), AdjustmentType.NO_AUTHORIZATION_WRITE_OFF),
]
APPEALS = [
    AppealRecord("C2", date(2025, 3, 1), AppealOutcome.WON),
    AppealRecord("C6", date(2025, 1, 5), AppealOutcome.LOST),
    AppealRecord("C4", date(2025, 3, 30), AppealOutcome.PENDING),
    AppealRecord("C6", date(2024, 12, 20), AppealOutcome.WON),  # before period
]


def test_hand_worked_example() -> None:
    report = compute_kpis(
        CLAIMS, PAYMENTS, ADJUSTMENTS, APPEALS, period_start=START, period_end=END
    )
    # cohort C1..C5, charges 10000 + 10000 + 5000 + 7500 + 12500
    assert report.claims_submitted == 5
    assert report.charges_cents == 45000
    # clean: C1, C4, C5 (C2 touched, C3 failed edits) -> 3/5
    assert report.clean_claim_rate.value == Fraction(3, 5)
    assert report.clean_claim_rate.percent() == "60.00%"
    # adjudicated C1, C2, C3, C4; paid first time with one submission: C1 only -> 1/4
    assert report.first_pass_yield.decimal() == Decimal("0.2500")
    # denied or partially paid first: C2, C4 -> 2/5; dollars (10000 + 2500) / 45000
    assert report.denial_rate_count.decimal() == Decimal("0.4000")
    assert report.denial_rate_dollars.value == Fraction(12500, 45000)
    assert report.denial_rate_dollars.decimal() == Decimal("0.2778")
    assert report.denial_rate_dollars.percent() == "27.78%"
    # A/R at 03-31: C1 10000-7500-2500=0, C2 0, C3 5000-3000-1000=1000, C4 7500-4000-3500=0,
    # C5 12500 (April payment ignored), C6 8000 -> 21500
    assert report.ar_cents == 21500
    # only C6 (136 days) is older than 90 days; C1 is 80 days
    assert report.ar_over_90_cents == 8000
    assert report.ar_over_90_share.decimal() == Decimal("0.3721")
    # average daily charges 45000 / 90 = 500 -> 21500 / 500 = 43 days
    assert report.days_in_ar.value == 43
    assert report.days_in_ar.decimal() == Decimal("43.0000")
    # collected on cohort 7500 + 7000 + 3000 + 4000 = 21500; denominator 45000 - 7500 contractual
    # (the 2500 no-authorization write-off stays in) -> 21500 / 37500
    assert report.net_collection_rate.value == Fraction(21500, 37500)
    assert report.net_collection_rate.decimal() == Decimal("0.5733")
    assert report.net_collection_rate.percent() == "57.33%"
    # appeals filed in period: C2 won, C6 lost, C4 pending -> 1/3
    assert report.overturn_rate.decimal() == Decimal("0.3333")


def test_write_offs_are_not_contractual() -> None:
    as_contractual = [
        AdjustmentRecord(a.claim_id, a.amount_cents, a.posted_on, AdjustmentType.CONTRACTUAL)
        for a in ADJUSTMENTS
    ]
    honest = compute_kpis(
        CLAIMS, PAYMENTS, ADJUSTMENTS, APPEALS, period_start=START, period_end=END
    )
    inflated = compute_kpis(
        CLAIMS, PAYMENTS, as_contractual, APPEALS, period_start=START, period_end=END
    )
    assert inflated.net_collection_rate.value == Fraction(21500, 35000)
    assert honest.net_collection_rate.value < inflated.net_collection_rate.value  # type: ignore[operator]


def test_zero_denominators_give_none() -> None:
    report = compute_kpis([], [], [], [], period_start=START, period_end=END)
    for ratio in (
        report.clean_claim_rate,
        report.first_pass_yield,
        report.denial_rate_count,
        report.denial_rate_dollars,
        report.days_in_ar,
        report.ar_over_90_share,
        report.net_collection_rate,
        report.overturn_rate,
    ):
        assert ratio.value is None
        assert ratio.decimal() is None
        assert ratio.percent() is None


def test_ratio_rounding_is_half_up() -> None:
    assert Ratio(Fraction(1), Fraction(8)).decimal(2) == Decimal("0.13")
    assert Ratio(Fraction(2), Fraction(3)).percent() == "66.67%"
    assert Ratio(Fraction(1), Fraction(1)).percent() == "100.00%"


def test_period_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="period_end"):
        compute_kpis([], [], [], [], period_start=END, period_end=START)
