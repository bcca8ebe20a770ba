"""PMPM monthly coding: "at least" thresholds, full-block add-ons, activity requirement."""

from __future__ import annotations

import pytest

from services.billing.domain.coding import (
    ActivityRequirement,
    CodingStatus,
    CodingTermsError,
    MonthlyAddOn,
    MonthlyCode,
    ReasonCode,
    code_member_month,
)
from tests.unit.billing.test_coding_support import terms

NO_ACTIVITY_RULE = terms(pmpm_activity=None)


@pytest.mark.parametrize(
    ("minutes", "lines"),
    [
        (19, []),
        (20, [("99490", 1)]),
        (39, [("99490", 1)]),
        (40, [("99490", 1), ("99439", 1)]),
        (59, [("99490", 1), ("99439", 1)]),
        (60, [("99490", 1), ("99439", 2)]),
        (80, [("99490", 1), ("99439", 2)]),
        (200, [("99490", 1), ("99439", 2)]),
    ],
)
def test_at_least_thresholds_without_rounding(minutes: int, lines: list[tuple[str, int]]) -> None:
    result = code_member_month(NO_ACTIVITY_RULE, [minutes], [1], 2026, 3)
    assert [(line.code, line.units) for line in result.lines] == lines
    assert result.status is (CodingStatus.BILLABLE if lines else CodingStatus.NOT_BILLABLE)


def test_minutes_and_interventions_are_totalled() -> None:
    result = code_member_month(terms(), [12, 9, 20], [0, 1, 1], 2026, 3)
    assert (result.total_minutes, result.total_interventions) == (41, 2)
    assert [(line.code, line.units) for line in result.lines] == [("99490", 1), ("99439", 1)]
    assert result.total_charge_cents == 6000 + 4500
    assert result.total_expected_cents == 4200 + 3100
    assert "Priced on 2026-03-31" in result.rationale


def test_below_threshold_is_explained() -> None:
    result = code_member_month(NO_ACTIVITY_RULE, [19], [], 2026, 2)
    (reason,) = result.reasons
    assert reason.code is ReasonCode.BELOW_MONTHLY_THRESHOLD
    assert "19 min in 2026-02" in reason.message
    assert "remaining 1 min" in reason.fix


def test_activity_requirement_not_met_reports_the_numbers() -> None:
    contract = terms(pmpm_activity=ActivityRequirement(min_minutes=30, min_interventions=2))
    result = code_member_month(contract, [25], [1], 2026, 4)
    assert result.status is CodingStatus.NOT_BILLABLE
    assert not result.activity_met
    (reason,) = result.reasons
    assert reason.code is ReasonCode.ACTIVITY_REQUIREMENT_NOT_MET
    assert reason.message == ("2026-04: 25 of 30 required minutes; 1 of 2 required interventions")
    assert "missing 5 min and 1 intervention" in reason.fix


def test_interventions_only_requirement() -> None:
    contract = terms(pmpm_activity=ActivityRequirement(min_interventions=1), monthly_codes=())
    assert code_member_month(contract, [], [1], 2026, 1).status is CodingStatus.BILLABLE
    missed = code_member_month(contract, [45], [], 2026, 1)
    assert missed.status is CodingStatus.NOT_BILLABLE
    assert missed.reasons[0].message == "2026-01: 0 of 1 required interventions"


def test_highest_threshold_reached_wins() -> None:
    ladder = (
        MonthlyCode("99490", 20, MonthlyAddOn("99439", 20, 2)),
        MonthlyCode("99487", 60, MonthlyAddOn("99489", 30)),
    )
    contract = terms(monthly_codes=ladder, pmpm_activity=None)
    result = code_member_month(contract, [95], [], 2026, 5)
    assert [(line.code, line.units) for line in result.lines] == [("99487", 1), ("99489", 1)]
    # 99489 has no fee entry: the month is held, not silently priced at zero.
    assert result.status is CodingStatus.HELD
    assert [r.code for r in result.reasons] == [ReasonCode.NO_FEE_SCHEDULE]
    assert [
        (line.code, line.units) for line in code_member_month(contract, [59], [], 2026, 5).lines
    ] == [
        ("99490", 1),
        ("99439", 1),
    ]


def test_duplicate_thresholds_are_rejected() -> None:
    with pytest.raises(CodingTermsError):
        terms(monthly_codes=(MonthlyCode("99490", 20), MonthlyCode("99426", 20)))


def test_invalid_month_and_negative_minutes() -> None:
    with pytest.raises(ValueError, match="month"):
        code_member_month(terms(), [20], [1], 2026, 13)
    with pytest.raises(ValueError, match="negative"):
        code_member_month(terms(), [20, -5], [1], 2026, 1)
