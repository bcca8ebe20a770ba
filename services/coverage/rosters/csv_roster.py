"""Payer roster CSV parsing.

The file's first record is a header; `ColumnMap` says which header names hold which fields
(matched case-insensitively, surrounding spaces ignored, extra columns ignored). Row numbers
in errors count CSV records with the header as row 1, so the first member is row 2: the
number a spreadsheet shows. Every row with a problem is reported, once per bad field, and left
out of `rows`; nothing is skipped silently. Blank lines at the end of the file are not rows;
blank lines between rows are reported.

Field rules (blank means empty after trimming spaces):

==================  ===================================================================
member_id           required
last_name           required
first_name          required
birth_date          required, YYYY-MM-DD or MM/DD/YYYY, not after effective_from
sex                 M, F or U (any case); blank or a missing column means U
address1, city      optional text
state               optional, two letters
zip                 optional, 12345 or 12345-6789 (stored without the hyphen, as X12 N403)
group               optional text
relationship        optional two-digit X12 code; blank or missing column means 18 (self)
effective_from      required date
effective_to        optional date, not before effective_from (blank: open-ended)
rate_tier           optional text
opt_out_date        optional date, not before effective_from
part_d_eligible     Y or N (any case); blank or missing column means N
==================  ===================================================================

A member listed twice with the same effective_from is reported on the second row: the two
rows would be the same logical span and the file would not say which one is right.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, fields
from datetime import date, datetime
from enum import StrEnum
from operator import itemgetter
from typing import NamedTuple

from services.coverage.domain.spans import (
    PART_D_ELIGIBLE,
    CoverageSpan,
    Priority,
    SpanSource,
    roster_span_id,
)

REQUIRED_FIELDS: tuple[str, ...] = (
    "member_id",
    "last_name",
    "first_name",
    "birth_date",
    "effective_from",
)
_ZIP = re.compile(r"^(\d{5})(?:-?(\d{4}))?$")


class Sex(StrEnum):
    MALE = "M"
    FEMALE = "F"
    UNKNOWN = "U"


@dataclass(frozen=True, slots=True, kw_only=True)
class ColumnMap:
    """Header name for each roster field. Override the names a payer uses, e.g.
    ``ColumnMap(member_id="Subscriber ID", birth_date="DOB")``."""

    member_id: str = "member_id"
    last_name: str = "last_name"
    first_name: str = "first_name"
    birth_date: str = "birth_date"
    sex: str = "sex"
    address1: str = "address1"
    city: str = "city"
    state: str = "state"
    zip: str = "zip"
    group: str = "group"
    relationship: str = "relationship"
    effective_from: str = "effective_from"
    effective_to: str = "effective_to"
    rate_tier: str = "rate_tier"
    opt_out_date: str = "opt_out_date"
    part_d_eligible: str = "part_d_eligible"

    def headers(self) -> dict[str, str]:
        """Field name -> header name."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


class RosterRow(NamedTuple):
    """One valid roster row. Immutable like the domain's frozen dataclasses, but a NamedTuple:
    building a 17-field frozen dataclass costs ~4 µs (one object.__setattr__ per field),
    which alone would take half of the 1 s budget for a 100,000-row roster."""

    row_number: int
    member_id: str
    last_name: str
    first_name: str
    birth_date: date
    sex: Sex
    address1: str | None
    city: str | None
    state: str | None
    zip: str | None
    group: str | None
    relationship: str
    effective_from: date
    effective_to: date | None
    rate_tier: str | None
    opt_out_date: date | None
    part_d_eligible: bool

    @property
    def population_flags(self) -> frozenset[str]:
        return frozenset({PART_D_ELIGIBLE}) if self.part_d_eligible else frozenset()

    def to_span(
        self,
        *,
        patient_id: str,
        payer_id: str,
        contract_id: str,
        recorded_at: datetime,
        priority: Priority = Priority.PRIMARY,
    ) -> CoverageSpan:
        """This row as a new version of its logical span (see `spans.roster_span_id`)."""
        return CoverageSpan(
            span_id=roster_span_id(payer_id, contract_id, self.member_id, self.effective_from),
            patient_id=patient_id,
            payer_id=payer_id,
            contract_id=contract_id,
            member_id=self.member_id,
            group=self.group,
            relationship=self.relationship,
            priority=priority,
            effective_from=self.effective_from,
            effective_to=self.effective_to,
            rate_tier=self.rate_tier,
            opt_out_date=self.opt_out_date,
            source=SpanSource.CSV,
            recorded_at=recorded_at,
            population_flags=self.population_flags,
        )


@dataclass(frozen=True, slots=True)
class RowError:
    row_number: int
    field: str
    message: str


@dataclass(frozen=True, slots=True)
class RosterParse:
    rows: list[RosterRow]
    errors: list[RowError]


class _DateParser:
    """Parses the two accepted date formats, remembering valid results in `known` because
    roster dates repeat heavily (most members share a handful of effective dates)."""

    __slots__ = ("known",)

    def __init__(self) -> None:
        self.known: dict[str, date] = {}

    def __call__(self, text: str) -> date | None:
        found = self.known.get(text)
        if found is not None:
            return found
        # int() accepts signs and spaces; only plain digits and the separators are dates.
        if len(text) != 10 or not text.replace("-", "").replace("/", "").isdigit():
            return None
        try:
            if text[4] == "-" and text[7] == "-":
                parsed = date(int(text[0:4]), int(text[5:7]), int(text[8:10]))
            elif text[2] == "/" and text[5] == "/":
                parsed = date(int(text[6:10]), int(text[0:2]), int(text[3:5]))
            else:
                return None
        except ValueError:
            return None
        self.known[text] = parsed
        return parsed


_DATE_HINT = "expected YYYY-MM-DD or MM/DD/YYYY"
_SEXES = {"M": Sex.MALE, "F": Sex.FEMALE, "U": Sex.UNKNOWN}


def parse_roster(text: str, columns: ColumnMap | None = None) -> RosterParse:
    """Parse roster CSV `text` (see the module docstring for formats and rules)."""
    column_map = columns if columns is not None else ColumnMap()
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")), strict=True)
    errors: list[RowError] = []
    try:
        header = next(reader)
    except StopIteration:
        return RosterParse([], [RowError(1, "header", "file is empty")])
    except csv.Error as exc:
        return RosterParse([], [RowError(1, "header", f"unreadable header: {exc}")])
    positions = _header_positions(header, column_map, errors)
    if errors:
        return RosterParse([], errors)
    parse_date = _DateParser()
    pick = itemgetter(*positions)
    width = len(header)
    rows: list[RosterRow] = []
    seen: dict[tuple[str, date], int] = {}
    blank_rows: list[int] = []
    row_number = 1
    while True:
        try:
            for record in reader:
                row_number += 1
                # Only a row whose first cell is empty can be blank; test the rest only then.
                if not record or (not record[0].strip() and not "".join(record).strip()):
                    blank_rows.append(row_number)
                    continue
                # Blank rows followed by data are holes in the file, not its trailing newline.
                if blank_rows:
                    errors.extend(RowError(blank, "row", "blank row") for blank in blank_rows)
                    blank_rows.clear()
                if len(record) != width:
                    errors.append(
                        RowError(row_number, "row", f"expected {width} fields, found {len(record)}")
                    )
                    continue
                record.append("")  # absent optional columns point here
                parsed = _parse_row(pick(record), row_number, parse_date, errors)
                if parsed is None:
                    continue
                key = (parsed.member_id, parsed.effective_from)
                first_row = seen.get(key)
                if first_row is not None:
                    errors.append(
                        RowError(
                            row_number,
                            "member_id",
                            f"same member and effective_from as row {first_row}",
                        )
                    )
                    continue
                seen[key] = row_number
                rows.append(parsed)
            break
        except csv.Error as exc:
            # The reader resumes after the bad record, so keep going and report the rest.
            row_number += 1
            errors.append(RowError(row_number, "row", f"malformed CSV: {exc}"))
    return RosterParse(rows, errors)


def _header_positions(
    header: list[str], column_map: ColumnMap, errors: list[RowError]
) -> tuple[int, ...]:
    """Column position of each field in `ColumnMap` order; len(header) for absent columns."""
    wanted = {name.strip().lower() for name in column_map.headers().values()}
    found: dict[str, int] = {}
    for position, name in enumerate(header):
        normalized = name.strip().lower()
        # A mapped column given twice is ambiguous; duplicates we ignore anyway do no harm.
        if normalized in found and normalized in wanted:
            errors.append(RowError(1, name.strip(), "column appears twice in the header"))
        found.setdefault(normalized, position)
    positions: list[int] = []
    for field_name, header_name in column_map.headers().items():
        at = found.get(header_name.strip().lower())
        if at is None and field_name in REQUIRED_FIELDS:
            errors.append(RowError(1, field_name, f"required column {header_name!r} is missing"))
        positions.append(len(header) if at is None else at)
    return tuple(positions)


def _parse_row(
    cells: tuple[str, ...],
    row_number: int,
    parse_date: _DateParser,
    errors: list[RowError],
) -> RosterRow | None:
    # Unpacked in ColumnMap field order (see _header_positions).
    (
        member_id,
        last_name,
        first_name,
        birth_text,
        sex_text,
        address1,
        city,
        state_text,
        zip_text,
        group,
        relationship_text,
        from_text,
        to_text,
        rate_tier,
        opt_out_text,
        part_d_text,
    ) = map(str.strip, cells)
    problems: list[tuple[str, str]] = []
    if not member_id:
        problems.append(("member_id", "member_id is blank"))
    if not last_name:
        problems.append(("last_name", "last_name is blank"))
    if not first_name:
        problems.append(("first_name", "first_name is blank"))

    # Cache hits first: nearly every roster date has been seen before, and a method call per
    # date is a measurable share of the 100,000-row budget.
    known = parse_date.known
    effective_from = known.get(from_text)
    if effective_from is None:
        effective_from = _date(from_text, "effective_from", True, parse_date, problems)
    birth_date = known.get(birth_text)
    if birth_date is None:
        birth_date = _date(birth_text, "birth_date", True, parse_date, problems)
    effective_to = known.get(to_text) if to_text else None
    if effective_to is None and to_text:
        effective_to = _date(to_text, "effective_to", False, parse_date, problems)
    opt_out_date = known.get(opt_out_text) if opt_out_text else None
    if opt_out_date is None and opt_out_text:
        opt_out_date = _date(opt_out_text, "opt_out_date", False, parse_date, problems)
    if effective_from is not None:
        if birth_date is not None and birth_date > effective_from:
            problems.append(("birth_date", "birth_date is after effective_from"))
        if effective_to is not None and effective_to < effective_from:
            problems.append(("effective_to", "effective_to is before effective_from"))
        if opt_out_date is not None and opt_out_date < effective_from:
            problems.append(("opt_out_date", "opt_out_date is before effective_from"))

    sex_code = sex_text.upper() or "U"
    sex = _SEXES.get(sex_code)
    if sex is None:
        problems.append(("sex", f"sex must be M, F or U, got {sex_text!r}"))
    state = state_text.upper() or None
    if state is not None and not (len(state) == 2 and state.isascii() and state.isalpha()):
        problems.append(("state", f"state must be two letters, got {state_text!r}"))
    zip_code: str | None = None
    if zip_text:
        if len(zip_text) == 5 and zip_text.isdigit():
            zip_code = zip_text
        else:
            zip_match = _ZIP.match(zip_text)
            if zip_match is None:
                problems.append(("zip", f"zip must be 12345 or 12345-6789, got {zip_text!r}"))
            else:
                zip_code = zip_match.group(1) + (zip_match.group(2) or "")
    relationship = relationship_text or "18"
    if not (len(relationship) == 2 and relationship.isascii() and relationship.isdigit()):
        problems.append(
            ("relationship", f"relationship must be a two-digit code, got {relationship!r}")
        )
    part_d = part_d_text.upper() or "N"
    if part_d not in ("Y", "N"):
        problems.append(("part_d_eligible", f"part_d_eligible must be Y or N, got {part_d_text!r}"))

    if problems or effective_from is None or birth_date is None or sex is None:
        errors.extend(RowError(row_number, name, message) for name, message in problems)
        return None
    return RosterRow(
        row_number,
        member_id,
        last_name,
        first_name,
        birth_date,
        sex,
        address1 or None,
        city or None,
        state,
        zip_code,
        group or None,
        relationship,
        effective_from,
        effective_to,
        rate_tier or None,
        opt_out_date,
        part_d == "Y",
    )


def _date(
    text: str,
    field_name: str,
    required: bool,
    parse_date: _DateParser,
    problems: list[tuple[str, str]],
) -> date | None:
    if not text:
        if required:
            problems.append((field_name, f"{field_name} is blank"))
        return None
    parsed = parse_date(text)
    if parsed is None:
        problems.append((field_name, f"{text!r} is not a date ({_DATE_HINT})"))
    return parsed
