from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.coverage.domain.contracts import ProrationRule, TierRate
from services.coverage.domain.member_months import MemberMonth, member_months, round_half_up
from services.coverage.domain.spans import PART_D_ELIGIBLE, CoverageSpan, Priority
from tests.unit.coverage.factories import RECORDED, pmpm, span

FIRST = ProrationRule.FIRST_OF_MONTH
FIFTEEN = ProrationRule.FIFTEEN_THIRTY
DAILY = ProrationRule.DAILY


def months(
    spans: list[CoverageSpan],
    rule: ProrationRule,
    year: int = 2026,
    month: int = 3,
    **kw: Any,
) -> list[MemberMonth]:
    return member_months(spans, "c1", pmpm(proration=rule), year, month, **kw)


@given(
    year=st.integers(min_value=2000, max_value=2100),
    rule=st.sampled_from(list(ProrationRule)),
    rate=st.integers(min_value=0, max_value=1_000_000),
)
def test_member_enrolled_all_year_has_twelve_full_months(
    year: int, rule: ProrationRule, rate: int
) -> None:
    terms = pmpm(proration=rule, rates=(TierRate("standard", rate),))
    s = span(effective_from=date(year, 1, 1), effective_to=date(year, 12, 31))
    found = [m for month in range(1, 13) for m in member_months([s], "c1", terms, year, month)]
    assert len(found) == 12
    assert all(m.factor == 1 and m.expected_cents == rate for m in found)


@pytest.mark.parametrize(
    ("start_day", "counted"), [(1, True), (14, True), (15, True), (16, False), (31, False)]
)
def test_fifteen_thirty_enrollment_boundary(start_day: int, counted: bool) -> None:
    s = span(effective_from=date(2026, 3, start_day))
    assert bool(months([s], FIFTEEN)) is counted
    # Late joiners start counting the next month.
    assert len(months([s], FIFTEEN, month=4)) == 1


@pytest.mark.parametrize(
    ("last_day", "counted"), [(13, False), (14, False), (15, True), (16, True), (31, True)]
)
def test_fifteen_thirty_termination_boundary(last_day: int, counted: bool) -> None:
    s = span(effective_from=date(2025, 1, 1), effective_to=date(2026, 3, last_day))
    assert bool(months([s], FIFTEEN)) is counted
    assert months([s], FIFTEEN, month=4) == []


def test_fifteen_thirty_opt_out_is_a_change_like_termination() -> None:
    on_15 = span(effective_from=date(2025, 1, 1), opt_out_date=date(2026, 3, 15))
    on_16 = span(effective_from=date(2025, 1, 1), opt_out_date=date(2026, 3, 16))
    assert months([on_15], FIFTEEN) == []
    assert len(months([on_16], FIFTEEN)) == 1


def test_first_of_month() -> None:
    on_first = span(effective_from=date(2026, 3, 1), effective_to=date(2026, 3, 1))
    on_second = span(effective_from=date(2026, 3, 2))
    assert [m.factor for m in months([on_first], FIRST)] == [1]
    assert months([on_second], FIRST) == []
    opted = span(effective_from=date(2025, 1, 1), opt_out_date=date(2026, 3, 1))
    assert months([opted], FIRST) == []
    assert len(months([opted], FIRST, month=2)) == 1


def test_daily_proration_and_half_up_rounding() -> None:
    # 10 of 31 days at $10.00 = 322.58...c -> 323c; complex at $25.50 = 822.58 -> 823c.
    s = span(effective_from=date(2026, 3, 22))
    [m] = months([s], DAILY)
    assert (m.factor, m.enrolled_days, m.days_in_month) == (Fraction(10, 31), 10, 31)
    assert m.expected_cents == 323
    assert round_half_up(Fraction(5, 2)) == 3
    assert round_half_up(Fraction(249, 100)) == 2
    # 15 of 30 days of 1001c is 500.5c: the half rounds up.
    terms = pmpm(proration=DAILY, rates=(TierRate("standard", 1001),))
    half = span(effective_from=date(2026, 4, 16))
    [m] = member_months([half], "c1", terms, 2026, 4)
    assert m.expected_cents == 501


def test_daily_mid_month_tier_change_is_priced_per_tier() -> None:
    standard = span(
        span_id="a",
        effective_from=date(2026, 1, 1),
        effective_to=date(2026, 4, 10),
        rate_tier="standard",
    )
    complex_ = span(span_id="b", effective_from=date(2026, 4, 11), rate_tier="complex")
    [m] = months([standard, complex_], DAILY, month=4)
    assert m.factor == 1
    assert m.tier == "complex"
    # (10 * 1000 + 20 * 2550) / 30 = 2033.33
    assert m.expected_cents == 2033
    assert m.span_ids == ("a", "b")


def test_overlapping_spans_count_once_and_the_winning_span_sets_the_tier() -> None:
    a = span(span_id="a", effective_from=date(2026, 1, 1), rate_tier="standard")
    b = span(span_id="b", effective_from=date(2026, 2, 1), rate_tier="complex")
    for rule in ProrationRule:
        [m] = months([a, b], rule)
        assert m.factor == 1
        assert m.tier == "complex"  # later start wins at equal priority
        assert m.expected_cents == 2550
    secondary = span(span_id="c", priority=Priority.SECONDARY, rate_tier="complex")
    [m] = months([a, secondary], FIRST)
    assert m.tier == "standard"


def test_only_requested_contract_and_excluded_populations() -> None:
    other = span(span_id="x", contract_id="c2")
    flagged = span(span_id="y", patient_id="p2", population_flags=frozenset({PART_D_ELIGIBLE}))
    plain = span(span_id="z", patient_id="p3")
    found = months([other, flagged, plain], FIRST, exclusions=frozenset({PART_D_ELIGIBLE}))
    assert [m.patient_id for m in found] == ["p3"]
    assert [m.patient_id for m in months([other, flagged, plain], FIRST)] == ["p2", "p3"]


def test_unknown_tier_is_listed_without_expected_amount() -> None:
    [m] = months([span(rate_tier="gold")], FIRST)
    assert (m.tier, m.rate, m.expected_cents) == ("gold", None, None)
    [d] = months([span(rate_tier="gold")], DAILY)
    assert d.expected_cents is None


def test_no_tier_uses_default_tier() -> None:
    [m] = months([span()], FIRST)
    assert (m.tier, m.expected_cents) == ("standard", 1000)


def test_retro_termination_seen_only_after_it_was_recorded() -> None:
    original = span(effective_from=date(2026, 1, 1))
    retro = span(
        effective_from=date(2026, 1, 1),
        effective_to=date(2026, 2, 28),
        recorded_at=datetime(2026, 4, 2, tzinfo=UTC),
    )
    history = [original, retro]
    assert len(months(history, FIRST, known_at=datetime(2026, 4, 1, tzinfo=UTC))) == 1
    assert months(history, FIRST) == []


def test_bad_month_is_rejected() -> None:
    with pytest.raises(ValueError, match="month"):
        months([span()], FIRST, month=13)


DAY = st.dates(min_value=date(2025, 11, 1), max_value=date(2026, 5, 31))


@given(
    spans=st.lists(
        st.tuples(DAY, st.none() | st.integers(min_value=0, max_value=90), st.none() | DAY),
        min_size=1,
        max_size=3,
    ),
    month=st.integers(min_value=1, max_value=4),
)
def test_daily_factor_is_enrolled_days_over_days_in_month(
    spans: list[tuple[date, int | None, date | None]], month: int
) -> None:
    built = [
        span(
            span_id=f"s{i}",
            effective_from=start,
            effective_to=None if length is None else start + timedelta(days=length),
            opt_out_date=opt_out,
            recorded_at=RECORDED,
        )
        for i, (start, length, opt_out) in enumerate(spans)
    ]
    days = calendar.monthrange(2026, month)[1]
    enrolled = 0
    for day in range(1, days + 1):
        d = date(2026, month, day)
        # Brute force of the documented rule: covered by a span not ended by an opt-out that
        # applies to it (its own, or a sibling's that began after the span started).
        for s in built:
            opt_outs = [o.opt_out_date for o in built if o.opt_out_date is not None]
            applicable = [o for o in opt_outs if o == s.opt_out_date or s.effective_from <= o]
            if s.covers(d) and not any(o <= d for o in applicable):
                enrolled += 1
                break
    found = months(built, DAILY, month=month)
    if enrolled == 0:
        assert found == []
        return
    [m] = found
    assert m.enrolled_days == enrolled
    assert m.factor == Fraction(enrolled, days)
    assert m.expected_cents == round_half_up(1000 * m.factor)
    assert 0 < m.factor <= 1


@given(start=DAY, end=st.none() | DAY, month=st.integers(min_value=1, max_value=5))
def test_whole_month_rules_agree_with_their_decisive_day(
    start: date, end: date | None, month: int
) -> None:
    s = span(effective_from=start, effective_to=end)
    assert bool(months([s], FIRST, month=month)) == s.covers(date(2026, month, 1))
    assert bool(months([s], FIFTEEN, month=month)) == s.covers(date(2026, month, 15))
