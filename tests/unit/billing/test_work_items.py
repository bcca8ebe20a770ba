from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.billing.domain.work_items import (
    WORK_ITEM_TRANSITIONS,
    InvalidWorkItemTransition,
    Route,
    WorkItemCategory,
    WorkItemStatus,
    add_months,
    appeal_deadline,
    category_for_denial,
    days_until,
    priority,
    priority_score,
    recommend,
    timely_filing_deadline,
    work_item_transition,
)
from shared.codes import DefaultAction, DenialCategory

TODAY = date(2025, 3, 10)

amounts = st.integers(min_value=0, max_value=10_000_000_00)
days = st.integers(min_value=0, max_value=5000)
rates = st.none() | st.fractions(min_value=0, max_value=1)


def test_timely_filing_in_days_and_months() -> None:
    assert timely_filing_deadline(date(2025, 1, 15), days=90) == date(2025, 4, 15)
    assert timely_filing_deadline(date(2025, 1, 15), days=0) == date(2025, 1, 15)
    assert timely_filing_deadline(date(2024, 3, 1), months=12) == date(2025, 3, 1)
    assert timely_filing_deadline(date(2024, 2, 29), months=12) == date(2025, 2, 28)
    assert add_months(date(2025, 1, 31), 1) == date(2025, 2, 28)
    assert add_months(date(2024, 12, 15), 2) == date(2025, 2, 15)


@pytest.mark.parametrize("kwargs", [{}, {"days": 90, "months": 12}, {"days": -1}, {"months": -1}])
def test_timely_filing_needs_one_non_negative_limit(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="filing limit"):
        timely_filing_deadline(date(2025, 1, 1), **kwargs)


def test_appeal_deadline_and_days_until() -> None:
    assert appeal_deadline(date(2025, 1, 10), 120) == date(2025, 5, 10)
    with pytest.raises(ValueError, match="appeal window"):
        appeal_deadline(date(2025, 1, 10), -1)
    assert days_until(date(2025, 3, 20), TODAY) == 10
    assert days_until(TODAY, TODAY) == 0
    assert days_until(date(2025, 3, 1), TODAY) == -9


@given(amounts, amounts, st.none() | days, rates)
def test_more_dollars_never_lower_the_score(
    a: int, b: int, d: int | None, rate: Fraction | None
) -> None:
    low, high = sorted((a, b))
    assert priority_score(low, d, rate) <= priority_score(high, d, rate)


@given(amounts, days, days, rates)
def test_nearer_deadline_never_lowers_the_score(
    cents: int, a: int, b: int, rate: Fraction | None
) -> None:
    near, far = sorted((a, b))
    assert priority_score(cents, near, rate) >= priority_score(cents, far, rate)


@given(amounts, st.integers(min_value=-5000, max_value=-1))
def test_past_due_ranks_below_due_today(cents: int, overdue: int) -> None:
    assert priority_score(cents, overdue) < priority_score(cents, 0)
    assert priority_score(cents, overdue) == priority_score(cents, None)


@given(amounts, st.none() | days, st.fractions(0, 1), st.fractions(0, 1))
def test_higher_overturn_rate_never_lowers_the_score(
    cents: int, d: int | None, a: Fraction, b: Fraction
) -> None:
    low, high = sorted((a, b))
    assert priority_score(cents, d, low) <= priority_score(cents, d, high)


def test_score_examples() -> None:
    # $999 due today: 10*log10(1000) + 40*1 = 70
    assert priority_score(99900, 0) == pytest.approx(70.0)
    # same at 14 days: urgency halves
    assert priority_score(99900, 14) == pytest.approx(50.0)
    # overturn rate 0 keeps a quarter of the score
    assert priority_score(99900, 0, Fraction(0)) == pytest.approx(17.5)
    with pytest.raises(ValueError, match="overturn"):
        priority_score(100, 0, 1.5)


def test_priority_picks_the_nearest_live_deadline() -> None:
    filing = TODAY - timedelta(days=3)
    appeal = TODAY + timedelta(days=20)
    result = priority(50000, [filing, appeal, None], TODAY)
    assert result.nearest_deadline == appeal
    assert result.days_left == 20
    assert not result.past_due
    overdue = priority(50000, [filing], TODAY)
    assert overdue.past_due
    assert overdue.days_left == -3
    assert overdue.score < priority(50000, [TODAY], TODAY).score
    none = priority(50000, [], TODAY)
    assert none.nearest_deadline is None
    assert not none.past_due


def test_work_item_status_transitions() -> None:
    assert set(WORK_ITEM_TRANSITIONS) == set(WorkItemStatus)
    assert (
        work_item_transition(WorkItemStatus.OPEN, WorkItemStatus.IN_PROGRESS)
        is WorkItemStatus.IN_PROGRESS
    )
    assert (
        work_item_transition(WorkItemStatus.IN_PROGRESS, WorkItemStatus.BLOCKED)
        is WorkItemStatus.BLOCKED
    )
    assert (
        work_item_transition(WorkItemStatus.BLOCKED, WorkItemStatus.RESOLVED)
        is WorkItemStatus.RESOLVED
    )
    assert work_item_transition(WorkItemStatus.RESOLVED, WorkItemStatus.OPEN) is WorkItemStatus.OPEN
    with pytest.raises(InvalidWorkItemTransition) as caught:
        work_item_transition(WorkItemStatus.OPEN, WorkItemStatus.BLOCKED)
    assert caught.value.allowed == WORK_ITEM_TRANSITIONS[WorkItemStatus.OPEN]
    with pytest.raises(InvalidWorkItemTransition):
        work_item_transition(WorkItemStatus.RESOLVED, WorkItemStatus.IN_PROGRESS)


@pytest.mark.parametrize("category", list(DenialCategory))
def test_every_denial_category_maps(category: DenialCategory) -> None:
    mapped = category_for_denial(category)
    if category in {DenialCategory.CONTRACTUAL, DenialCategory.PATIENT_RESPONSIBILITY}:
        assert mapped is WorkItemCategory.OTHER
    else:
        assert mapped.value == category.value


@pytest.mark.parametrize(
    ("category", "route"),
    [
        (WorkItemCategory.CODING, Route.CODER),
        (WorkItemCategory.BUNDLING, Route.CODER),
        (WorkItemCategory.MEDICAL_NECESSITY, Route.PHARMACIST),
        (WorkItemCategory.DOCUMENTATION, Route.PHARMACIST),
        (WorkItemCategory.ELIGIBILITY_COB, Route.BILLING_STAFF),
        (WorkItemCategory.TIMELY_FILING, Route.BILLING_STAFF),
        (WorkItemCategory.SUBMISSION_FAILURE, Route.BILLING_STAFF),
    ],
)
def test_routing(category: WorkItemCategory, route: Route) -> None:
    assert recommend(category, DefaultAction.CORRECT_RESUBMIT).route is route


def test_recommendations() -> None:
    appeal = recommend(WorkItemCategory.MEDICAL_NECESSITY, DefaultAction.APPEAL)
    assert appeal.action is DefaultAction.APPEAL
    assert "appeal" in appeal.text.lower()
    barred = recommend(WorkItemCategory.CODING, DefaultAction.APPEAL, no_appeal=True)
    assert barred.action is DefaultAction.CORRECT_RESUBMIT
    late = recommend(
        WorkItemCategory.TIMELY_FILING, DefaultAction.APPEAL, appeal_deadline_passed=True
    )
    assert late.action is DefaultAction.WRITE_OFF
    rejected = recommend(WorkItemCategory.SUBMISSION_FAILURE, DefaultAction.CORRECT_RESUBMIT)
    assert "new original" in rejected.text
    for category in WorkItemCategory:
        for action in DefaultAction:
            assert recommend(category, action).text
