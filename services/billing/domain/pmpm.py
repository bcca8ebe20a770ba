"""PMPM reconciliation rules (domain.md §2 and §10): pure, no I/O.

The production path classifies a whole contract-month in one SQL statement
(`services/billing/pmpm_sql.py`); this module is the specification it mirrors, and a test
checks the SQL `CASE` against `classify` on generated facts.

Expected amounts (the member-month ledger)
-----------------------------------------
The ledger is built from coverage spans as known when the run starts, with the contract's
proration rule (the reference implementation is `services/coverage/domain/member_months.py`):

* ``first_of_month``: the member counts for the whole month iff covered on the 1st.
* ``fifteen_thirty``: a change on days 1-15 counts this month, on day 16 or later next month;
  months are paid whole. Both halves reduce to: **the member counts iff covered on the 15th**
  (coverage from the 15th counts, from the 16th does not; coverage ending the 14th does not,
  ending the 15th does).
* ``daily``: covered days / days in month; under a mid-month tier change each day is priced
  at the tier in force that day; the sum is rounded once, half up, to whole cents.

Where the contract pays capitation the expected amount is that prorated rate. Where it bills
by claim (``monthly_claim``) the expected amount is the allowed amount of the monthly codes
the member-month earns (the highest "at least" threshold reached, plus add-on units for each
further full step, capped), priced on the month's last day, and 0 when the member-month does
not qualify (activity requirement not met or no threshold reached).

Classification (one per member-month, first rule that applies)
--------------------------------------------------------------
Not on the roster (no counted coverage for the month):

1. ``retro_term``: the member was on the roster of the month's closed run, or the payer
   recouped money for the month (a negative payment): coverage ended retroactively.
2. ``paid_not_on_roster``: otherwise (overpaid; hold the money in reserve).

On the roster:

3. ``activity_not_met``: the contract requires documented activity and the month's sessions
   fall short (at risk of clawback even when paid).
4. ``duplicate``: more than one positive payment and more received than expected.
5. ``wrong_tier``: the payer paid a tier other than ours (named on the payment, or inferred
   when the amount equals another tier's full-month rate) and the amount differs.
6. ``retro_add``: the member was not on the closed run's roster, or the coverage that counts
   was first recorded after the month ended (the payer told us late; paid in a later month).
7. ``paid_as_expected``: received == expected.
8. ``missing``: nothing received (net).
9. ``underpaid`` / 10. ``overpaid``: received below / above expected.

Variance is always ``received - expected`` (negative: money owed to us). Every amount is
integer cents.
"""

from __future__ import annotations

import calendar
import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from shared.money import AmountError, Cents, parse_amount


class Classification(StrEnum):
    PAID_AS_EXPECTED = "paid_as_expected"
    UNDERPAID = "underpaid"
    OVERPAID = "overpaid"
    MISSING = "missing"
    PAID_NOT_ON_ROSTER = "paid_not_on_roster"
    WRONG_TIER = "wrong_tier"
    RETRO_ADD = "retro_add"
    RETRO_TERM = "retro_term"
    DUPLICATE = "duplicate"
    ACTIVITY_NOT_MET = "activity_not_met"


# Classifications that need a person even when the money balances.
ALWAYS_WORK = frozenset({Classification.ACTIVITY_NOT_MET})


@dataclass(frozen=True, slots=True)
class LineFacts:
    """What the reconciliation knows about one member in one month."""

    on_roster: bool
    expected: Cents
    received: Cents  # net of recoupments
    positive_payments: int
    recouped: bool  # any negative payment for the month
    tier: str | None = None  # ours
    paid_tier: str | None = None  # the payer's, when known or inferred
    activity_met: bool | None = None  # None: the contract sets no requirement
    prior_on_roster: bool | None = None  # None: the month has no closed run to compare to
    recorded_late: bool = False  # counted coverage first recorded after the month ended


def classify(f: LineFacts) -> Classification:
    if not f.on_roster:
        if f.prior_on_roster or f.recouped:
            return Classification.RETRO_TERM
        return Classification.PAID_NOT_ON_ROSTER
    if f.activity_met is False:
        return Classification.ACTIVITY_NOT_MET
    if f.positive_payments > 1 and f.received > f.expected:
        return Classification.DUPLICATE
    if f.paid_tier is not None and f.paid_tier != f.tier and f.received != f.expected:
        return Classification.WRONG_TIER
    if f.prior_on_roster is False or f.recorded_late:
        return Classification.RETRO_ADD
    if f.received == f.expected:
        return Classification.PAID_AS_EXPECTED
    if f.received == 0:
        return Classification.MISSING
    if f.received < f.expected:
        return Classification.UNDERPAID
    return Classification.OVERPAID


def variance(f: LineFacts) -> Cents:
    return f.received - (f.expected if f.on_roster else 0)


def needs_work(classification: str, variance_cents: Cents) -> bool:
    """A line becomes a `pmpm_variance` work item when money is off or activity is short."""
    return variance_cents != 0 or classification in ALWAYS_WORK


# ----------------------------------------------------------------------------- months


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_end(period: date) -> date:
    return period.replace(day=calendar.monthrange(period.year, period.month)[1])


def add_months(period: date, n: int) -> date:
    index = period.year * 12 + period.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def months_between(earlier: date, later: date) -> int:
    """Whole calendar months from `earlier`'s month to `later`'s month."""
    return (later.year - earlier.year) * 12 + later.month - earlier.month


def parse_month(text: str) -> date:
    """'2026-03' (or '2026-03-01') -> date(2026, 3, 1); ValueError otherwise."""
    text = text.strip()
    parts = text.split("-")
    if len(parts) not in (2, 3) or len(parts[0]) != 4 or len(parts[1]) != 2:
        raise ValueError(f"not a month (YYYY-MM): {text!r}")
    if len(parts) == 3 and parts[2] != "01":
        raise ValueError(f"a month is YYYY-MM or its first day: {text!r}")
    year, month = int(parts[0]), int(parts[1])
    if not 1 <= month <= 12:
        raise ValueError(f"month out of range: {text!r}")
    return date(year, month, 1)


def within_retro_window(period: date, today: date, window_months: int) -> bool:
    """A closed month may still be re-run (as adjustments) until `window_months` months after
    it (UHC reprocesses up to 6 months, domain.md §10)."""
    return months_between(period, today) <= window_months


# ----------------------------------------------------------------------------- CSV payments

# The payer capitation CSV: our field -> default header. A payer's own header names are passed
# as a mapping of the same fields (see `parse_payment_csv`).
CSV_FIELDS: dict[str, str] = {
    "member_id": "member_id",  # required: the payer's member id (as on the roster)
    "month": "month",  # required: the month paid, YYYY-MM (or its first day YYYY-MM-01)
    "amount": "amount",  # required: decimal dollars, 2 places max; negative = recoupment
    "tier": "tier",  # optional: the payer's rate tier
    "paid_date": "paid_date",  # optional: YYYY-MM-DD
    "reference": "reference",  # optional: the payer's check/EFT or line reference
}
REQUIRED_CSV_FIELDS = ("member_id", "month", "amount")


@dataclass(frozen=True, slots=True)
class PaymentRow:
    row: int  # line number in the file (the header is line 1)
    member_id: str
    period: date
    amount: Cents
    tier: str | None = None
    paid_date: date | None = None
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class RowProblem:
    row: int
    field: str
    message: str
    code: str = "invalid"


def parse_payment_csv(
    content: str, columns: Mapping[str, str] | None = None
) -> tuple[list[PaymentRow], list[RowProblem]]:
    """Every row parsed, or every problem found (row numbers count the header as line 1).

    `columns` maps our field names (`CSV_FIELDS`) to the payer's headers; unknown fields are
    reported against row 1."""
    problems: list[RowProblem] = []
    names = dict(CSV_FIELDS)
    for field, header in (columns or {}).items():
        if field not in CSV_FIELDS:
            problems.append(RowProblem(1, field, f"unknown column mapping {field!r}", "unknown"))
        else:
            names[field] = header
    reader = csv.reader(io.StringIO(content.lstrip("\ufeff")))
    try:
        header_row = next(reader)
    except StopIteration:
        return [], [RowProblem(1, "header", "the file is empty", "empty")]
    headers = [h.strip() for h in header_row]
    index: dict[str, int] = {}
    for field, header in names.items():
        if header in headers:
            index[field] = headers.index(header)
        elif field in REQUIRED_CSV_FIELDS:
            problems.append(
                RowProblem(1, field, f"missing column {header!r} for {field}", "missing_column")
            )
    if problems:
        return [], problems
    rows: list[PaymentRow] = []
    for line_no, record in enumerate(reader, start=2):
        if not any(cell.strip() for cell in record):
            continue
        parsed = _parse_row(line_no, record, index, problems)
        if parsed is not None:
            rows.append(parsed)
    if not rows and not problems:
        problems.append(RowProblem(1, "rows", "the file has no payment rows", "empty"))
    return rows, problems


def _cell(record: Sequence[str], index: Mapping[str, int], field: str) -> str:
    pos = index.get(field)
    return record[pos].strip() if pos is not None and pos < len(record) else ""


def _parse_row(
    line_no: int, record: Sequence[str], index: Mapping[str, int], problems: list[RowProblem]
) -> PaymentRow | None:
    before = len(problems)
    member = _cell(record, index, "member_id")
    if not member or len(member) > 80:
        problems.append(RowProblem(line_no, "member_id", "member_id is blank or too long"))
    period = date.min
    try:
        period = parse_month(_cell(record, index, "month"))
    except ValueError as exc:
        problems.append(RowProblem(line_no, "month", str(exc)))
    amount = 0
    try:
        amount = parse_amount(_cell(record, index, "amount"))
    except AmountError as exc:
        problems.append(RowProblem(line_no, "amount", str(exc), "invalid_amount"))
    paid: date | None = None
    paid_text = _cell(record, index, "paid_date")
    if paid_text:
        try:
            paid = date.fromisoformat(paid_text)
        except ValueError:
            problems.append(RowProblem(line_no, "paid_date", f"not a date: {paid_text!r}"))
    tier = _cell(record, index, "tier") or None
    if tier is not None and len(tier) > 40:
        problems.append(RowProblem(line_no, "tier", "tier is longer than 40 characters"))
    reference = _cell(record, index, "reference")[:80] or None
    if len(problems) > before:
        return None
    return PaymentRow(line_no, member, period, amount, tier, paid, reference)


# ----------------------------------------------------------------------------- contract view


@dataclass(frozen=True, slots=True)
class MonthlyCodeTerm:
    code: str
    min_minutes: int
    addon_code: str | None = None
    addon_step_minutes: int | None = None
    max_addon_units: int | None = None


@dataclass(frozen=True, slots=True)
class FeeTerm:
    code: str
    charge: Cents
    allowed: Cents
    effective_from: date
    effective_to: date | None = None


@dataclass(frozen=True, slots=True)
class PmpmTermsView:
    """A contract version's PMPM terms as billing reads them (mapped by the coverage port)."""

    version: int
    effective_from: date
    effective_to: date | None
    proration: str  # first_of_month | fifteen_thirty | daily
    payment_mode: str  # capitation | monthly_claim
    rates: tuple[tuple[str, Cents], ...]
    default_tier: str | None = None
    min_minutes: int | None = None
    min_interventions: int | None = None
    monthly_codes: tuple[MonthlyCodeTerm, ...] = ()
    fees: tuple[FeeTerm, ...] = ()
    retro_window_months: int = 6
    # Population flags the contract does not cover (spans carrying one do not count).
    exclusions: frozenset[str] = frozenset()

    @property
    def has_activity_requirement(self) -> bool:
        return self.min_minutes is not None or self.min_interventions is not None

    def in_force(self, day: date) -> bool:
        return self.effective_from <= day and (
            self.effective_to is None or day <= self.effective_to
        )

    def fee(self, code: str, day: date) -> FeeTerm | None:
        """The unmodified fee schedule entry for `code` in force on `day`."""
        for entry in self.fees:
            if (
                entry.code == code
                and entry.effective_from <= day
                and (entry.effective_to is None or day <= entry.effective_to)
            ):
                return entry
        return None


@dataclass(frozen=True, slots=True)
class PmpmContractView:
    contract_id: str
    payer_id: str
    name: str
    # Versions with PMPM terms only.
    versions: tuple[PmpmTermsView, ...]

    def terms_for(self, period: date) -> PmpmTermsView | None:
        """The version in force on the month's first day, else on its last day; the highest
        version number wins an overlap (as `version_in_force` does)."""
        for day in (period, month_end(period)):
            found = [v for v in self.versions if v.in_force(day)]
            if found:
                return max(found, key=lambda v: v.version)
        return None
