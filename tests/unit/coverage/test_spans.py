from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.coverage.domain.spans import (
    Priority,
    as_known_at,
    opt_out_for,
    roster_span_id,
    span_key,
)
from tests.unit.coverage.factories import RECORDED, span

LATER = RECORDED + timedelta(days=30)


def test_as_known_at_picks_latest_version_recorded_by_then() -> None:
    v1 = span(effective_to=None, recorded_at=RECORDED)
    v2 = span(effective_to=date(2025, 3, 31), recorded_at=LATER)
    other = span(span_id="s2", recorded_at=LATER + timedelta(days=1))
    history = [v2, other, v1]
    assert as_known_at(history, RECORDED) == [v1]
    assert as_known_at(history, LATER) == [v2]
    assert as_known_at(history) == [v2, other]
    assert as_known_at(history, RECORDED - timedelta(microseconds=1)) == []


def test_same_recorded_at_goes_to_the_later_input() -> None:
    first = span(rate_tier="a")
    second = span(rate_tier="b")
    assert as_known_at([first, second]) == [second]


def test_naive_timestamps_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        span(recorded_at=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        as_known_at([span()], datetime(2025, 1, 1))


def test_void_span_covers_nothing() -> None:
    void = span(effective_from=date(2025, 5, 1), effective_to=date(2025, 4, 30))
    assert void.is_void
    assert not void.covers(date(2025, 5, 1))
    assert not span(effective_to=date(2025, 5, 1)).is_void


def test_keys_and_priority_rank() -> None:
    assert span_key(span(span_id="abc")) == "abc"
    assert roster_span_id("pay", "c1", "M1", date(2026, 1, 1)) == "pay|c1|M1|2026-01-01"
    ranks = [p.rank for p in (Priority.PRIMARY, Priority.SECONDARY, Priority.TERTIARY)]
    assert ranks == [0, 1, 2]


def test_opt_out_for_uses_earliest_applicable_sibling() -> None:
    a = span(span_id="a", effective_from=date(2026, 1, 1), opt_out_date=date(2026, 5, 1))
    b = span(span_id="b", effective_from=date(2026, 1, 1), opt_out_date=date(2026, 3, 1))
    other_contract = span(span_id="c", contract_id="c9", opt_out_date=date(2026, 1, 2))
    late_start = span(span_id="d", effective_from=date(2026, 4, 1))
    spans = [a, b, other_contract, late_start]
    assert opt_out_for(a, spans) == date(2026, 3, 1)
    assert opt_out_for(late_start, spans) == date(2026, 5, 1)
    assert opt_out_for(other_contract, spans) == date(2026, 1, 2)


@given(
    recorded=st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=8),
    at=st.integers(min_value=-1, max_value=51),
)
def test_as_known_at_never_returns_the_future(recorded: list[int], at: int) -> None:
    versions = [
        span(span_id=f"s{i % 3}", recorded_at=RECORDED + timedelta(days=d), member_id=str(i))
        for i, d in enumerate(recorded)
    ]
    cutoff = RECORDED + timedelta(days=at)
    known = as_known_at(versions, cutoff)
    assert all(v.recorded_at <= cutoff for v in known)
    assert len({v.span_id for v in known}) == len(known)
    for version in known:
        rivals = [v for v in versions if v.span_id == version.span_id and v.recorded_at <= cutoff]
        assert version.recorded_at == max(v.recorded_at for v in rivals)
    expected_keys = {v.span_id for v in versions if v.recorded_at <= cutoff}
    assert {v.span_id for v in known} == expected_keys


def test_recorded_at_in_other_timezones_compares_by_instant() -> None:
    from datetime import timezone

    east = timezone(timedelta(hours=5))
    v1 = span(recorded_at=datetime(2025, 1, 1, 12, tzinfo=UTC))
    v2 = span(rate_tier="x", recorded_at=datetime(2025, 1, 1, 16, tzinfo=east))  # 11:00 UTC
    assert as_known_at([v1, v2]) == [v1]
