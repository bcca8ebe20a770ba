"""Expected member-months for a PMPM contract in one calendar month (domain.md §10).

Proration rules:

* ``first_of_month``: the member counts for the whole month (factor 1) iff covered on the 1st.
* ``fifteen_thirty``: a change on days 1-15 takes effect this month, a change on day 16 or
  later takes effect next month, and months are paid whole (UHC's 15/30 rule). For an
  enrollment the change date is ``effective_from``; for a termination or opt-out it is the
  first day no longer covered (``effective_to + 1`` or ``opt_out_date``). So coverage starting
  on the 15th counts this month and on the 16th does not; coverage ending on the 14th (change
  on the 15th) does not count this month and coverage ending on the 15th (change on the 16th)
  does. Both halves reduce to one test, used here: **the member counts (factor 1) iff covered
  on the 15th.** A stay that starts and ends on the same side of the 15th never counts.
* ``daily``: factor = covered days / days in the month, exactly, as a `Fraction`.

Counting rules shared by all three:

* Only spans of the requested contract count, whatever their COB priority, and a member with
  several overlapping spans counts once (spans are grouped by ``patient_id``).
* An opt-out ends counting from the opt-out date (see `spans.opt_out_for`).
* Spans carrying a population flag listed in ``exclusions`` do not count.
* On a day covered by several spans, the span that wins is the one eligibility would pick:
  highest priority, then the latest start, then the span id. Its tier prices that day. Under
  ``daily`` a mid-month tier change is priced per tier (Σ rate × days / days-in-month) and
  rounded once.
* Expected cents = rate × factor, rounded half up to whole cents. A member whose tier has no
  rate is still listed (so the roster is complete) with ``rate`` and ``expected_cents`` None.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from fractions import Fraction

from services.coverage.domain.contracts import PmpmTerms, ProrationRule
from services.coverage.domain.spans import CoverageSpan, as_known_at, opt_out_for
from shared.money import Cents


@dataclass(frozen=True, slots=True)
class MemberMonth:
    patient_id: str
    member_id: str
    contract_id: str
    year: int
    month: int
    rule: ProrationRule
    tier: str | None
    factor: Fraction
    # Days covered in the month (the union of the member's spans), whatever the rule.
    enrolled_days: int
    days_in_month: int
    rate: Cents | None
    expected_cents: Cents | None
    span_ids: tuple[str, ...]


def round_half_up(amount: Fraction) -> int:
    """Nearest integer, halves rounded up. Amounts here are never negative."""
    return (2 * amount.numerator + amount.denominator) // (2 * amount.denominator)


@dataclass(frozen=True, slots=True)
class _Clipped:
    """A span cut to the month and to its opt-out, as day numbers 1..days_in_month."""

    span: CoverageSpan
    first_day: int
    last_day: int
    order: tuple[int, int, str]


def member_months(
    spans: Iterable[CoverageSpan],
    contract_id: str,
    terms: PmpmTerms,
    year: int,
    month: int,
    *,
    known_at: datetime | None = None,
    exclusions: frozenset[str] = frozenset(),
) -> list[MemberMonth]:
    """Members of `contract_id` who count in `year`-`month`, sorted by patient id.

    `spans` may be the full append-only history; it is collapsed as known at `known_at`
    (None: everything recorded). See the module docstring for the rules."""
    if not 1 <= month <= 12:
        raise ValueError(f"month must be 1-12, got {month}")
    days_in_month = calendar.monthrange(year, month)[1]
    month_start = date(year, month, 1)
    month_end = date(year, month, days_in_month)
    current = [s for s in as_known_at(spans, known_at) if s.contract_id == contract_id]
    by_patient: dict[str, list[CoverageSpan]] = {}
    for span in current:
        by_patient.setdefault(span.patient_id, []).append(span)
    result: list[MemberMonth] = []
    for patient_id in sorted(by_patient):
        patient_spans = by_patient[patient_id]
        clipped = [
            c
            for span in patient_spans
            if not (exclusions & span.population_flags)
            and (c := _clip(span, patient_spans, month_start, month_end)) is not None
        ]
        if clipped:
            counted = _count(patient_id, contract_id, terms, year, month, days_in_month, clipped)
            if counted is not None:
                result.append(counted)
    return result


def _clip(
    span: CoverageSpan, siblings: list[CoverageSpan], month_start: date, month_end: date
) -> _Clipped | None:
    first = max(span.effective_from, month_start)
    last = month_end if span.effective_to is None else min(span.effective_to, month_end)
    opt_out = opt_out_for(span, siblings)
    if opt_out is not None and opt_out <= last:
        last = date.fromordinal(opt_out.toordinal() - 1)
    if last < first:
        return None
    order = (span.priority.rank, -span.effective_from.toordinal(), span.span_id)
    return _Clipped(span, first.day, last.day, order)


def _winner(clipped: list[_Clipped], day: int) -> _Clipped | None:
    best: _Clipped | None = None
    for candidate in clipped:
        if candidate.first_day <= day <= candidate.last_day and (
            best is None or candidate.order < best.order
        ):
            best = candidate
    return best


def _union_days(clipped: list[_Clipped]) -> int:
    total = 0
    reach = 0  # last day already counted
    for c in sorted(clipped, key=lambda c: c.first_day):
        if c.last_day > reach:
            total += c.last_day - max(c.first_day, reach + 1) + 1
            reach = c.last_day
    return total


def _daily_weighted(terms: PmpmTerms, clipped: list[_Clipped], days_in_month: int) -> int | None:
    """Σ over covered days of the winning span's rate, in cents; None if a tier has no rate.
    Walks days only when the member's spans disagree on the rate (a rare mid-month change)."""
    rates = {terms.rate_for(c.span.rate_tier) for c in clipped}
    if None in rates:
        return None
    if len(rates) == 1:
        (rate,) = rates
        return None if rate is None else rate * _union_days(clipped)
    weighted = 0
    for day in range(1, days_in_month + 1):
        winner = _winner(clipped, day)
        if winner is not None:
            day_rate = terms.rate_for(winner.span.rate_tier)
            if day_rate is None:
                return None
            weighted += day_rate
    return weighted


def _count(
    patient_id: str,
    contract_id: str,
    terms: PmpmTerms,
    year: int,
    month: int,
    days_in_month: int,
    clipped: list[_Clipped],
) -> MemberMonth | None:
    rule = terms.proration
    expected: Cents | None
    if rule is ProrationRule.DAILY:
        # The tier reported is the one in force on the last covered day: the current one.
        decisive = _winner(clipped, max(c.last_day for c in clipped))
        factor = Fraction(_union_days(clipped), days_in_month)
        weighted = _daily_weighted(terms, clipped, days_in_month)
        expected = None if weighted is None else round_half_up(Fraction(weighted, days_in_month))
    else:
        decisive = _winner(clipped, 1 if rule is ProrationRule.FIRST_OF_MONTH else 15)
        factor = Fraction(1)
        expected = None if decisive is None else terms.rate_for(decisive.span.rate_tier)
    if decisive is None:
        return None
    enrolled_days = _union_days(clipped)
    rate = terms.rate_for(decisive.span.rate_tier)
    span_ids = tuple(sorted({c.span.span_id for c in clipped}))
    tier = decisive.span.rate_tier if decisive.span.rate_tier is not None else terms.default_tier
    return MemberMonth(
        patient_id=patient_id,
        member_id=decisive.span.member_id,
        contract_id=contract_id,
        year=year,
        month=month,
        rule=rule,
        tier=tier,
        factor=factor,
        enrolled_days=enrolled_days,
        days_in_month=days_in_month,
        rate=rate,
        expected_cents=expected,
        span_ids=span_ids,
    )
