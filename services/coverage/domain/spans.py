"""Coverage spans: who is covered, under which payer contract, between which dates.

History is append-only. A *logical span* is identified by `span_id` (see `span_key`); each
change the payer tells us about (a retro-termination from an 834, an opt-out on a roster, a
corrected tier) is stored as a new *version* of that span with a later `recorded_at`. Nothing
is edited in place, so "what did we believe on 3 March?" is answerable with `as_known_at`, and
a claim priced on old information can be explained later.

A version whose `effective_to` is before its `effective_from` is *void*: the payer rescinded
the span and it covers no date. That is how an importer retracts a span whose start date
changed (the new start date makes a new logical span, see `roster_span_id`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

PART_D_ELIGIBLE = "PART_D_ELIGIBLE"


class Priority(StrEnum):
    """Coordination-of-benefits order: the primary payer is billed first."""

    PRIMARY = "primary"
    SECONDARY = "secondary"
    TERTIARY = "tertiary"

    @property
    def rank(self) -> int:
        return _PRIORITY_RANK[self]


_PRIORITY_RANK = {Priority.PRIMARY: 0, Priority.SECONDARY: 1, Priority.TERTIARY: 2}


class SpanSource(StrEnum):
    CSV = "csv"
    X12_834 = "834"
    X12_271 = "271"
    MANUAL = "manual"


SpanKey = str


@dataclass(frozen=True, slots=True, kw_only=True)
class CoverageSpan:
    """One version of a logical coverage span. Dates are inclusive; `effective_to=None` is
    open-ended. Coverage stops on `opt_out_date` itself (the member opted out that day)."""

    span_id: str
    patient_id: str
    payer_id: str
    contract_id: str
    member_id: str
    effective_from: date
    recorded_at: datetime
    effective_to: date | None = None
    group: str | None = None
    # X12 individual relationship code; 18 = self (subscriber).
    relationship: str = "18"
    priority: Priority = Priority.PRIMARY
    rate_tier: str | None = None
    opt_out_date: date | None = None
    source: SpanSource = SpanSource.MANUAL
    population_flags: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        # Naive timestamps would make as_known_at comparisons raise or silently shift by
        # the server's offset; reject them where they enter.
        if self.recorded_at.tzinfo is None:
            raise ValueError("recorded_at must be timezone-aware")

    @property
    def is_void(self) -> bool:
        return self.effective_to is not None and self.effective_to < self.effective_from

    def covers(self, day: date) -> bool:
        """True when `day` is inside the effective window (opt-outs are checked separately,
        because an opt-out ends eligibility but is not a change of coverage)."""
        return self.effective_from <= day and (
            self.effective_to is None or day <= self.effective_to
        )


def span_key(span: CoverageSpan) -> SpanKey:
    """The logical key shared by every version of a span."""
    return span.span_id


def roster_span_id(payer_id: str, contract_id: str, member_id: str, effective_from: date) -> str:
    """A stable span id for importers whose source has no span identifier of its own
    (CSV rosters, 271s): the same member starting on the same date under the same contract is
    the same logical span, so a later roster row with a new end date becomes a new version."""
    return f"{payer_id}|{contract_id}|{member_id}|{effective_from.isoformat()}"


def as_known_at(
    span_versions: Iterable[CoverageSpan], at: datetime | None = None
) -> list[CoverageSpan]:
    """The latest version of each logical span recorded at or before `at` (None: latest of
    all). Ties on `recorded_at` go to the version that comes later in the input, so an
    importer that appends in order gets the last row it wrote."""
    if at is not None and at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    latest: dict[SpanKey, CoverageSpan] = {}
    for span in span_versions:
        if at is not None and span.recorded_at > at:
            continue
        current = latest.get(span.span_id)
        if current is None or span.recorded_at >= current.recorded_at:
            latest[span.span_id] = span
    return list(latest.values())


def opt_out_for(span: CoverageSpan, spans: Sequence[CoverageSpan]) -> date | None:
    """The opt-out date that ends `span`: the earliest opt-out recorded on any span of the same
    patient and contract that began on or before it.

    A member opts out of a program, not of one row of a roster, so an opt-out carried by a
    sibling span (e.g. the same enrollment arriving from both a CSV and an 834) also ends this
    one. A span that starts after the opt-out is a re-enrollment and is not affected.
    """
    found = span.opt_out_date
    for other in spans:
        opt_out = other.opt_out_date
        if (
            opt_out is not None
            and other is not span
            and other.contract_id == span.contract_id
            and other.patient_id == span.patient_id
            and span.effective_from <= opt_out
            and (found is None or opt_out < found)
        ):
            found = opt_out
    return found
