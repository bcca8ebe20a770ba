"""Versioned code tables (CARC, RARC, place of service) kept as CSV data next to this module.

Each row is one *version* of a code: ``start_date`` is the first day the meaning applies,
``stop_date`` (empty when still active) is the first day it no longer applies, so a code is
valid on ``start_date <= on < stop_date``. A code may have several non-overlapping versions
(POS 02 changed meaning in 2022), and a retired code stays in the table so old remittances
still resolve. Descriptions are our own short wording, not the official text.

Provenance: CARC start/stop dates up to code 237 were checked against a 2011 copy of the X12
list; later CARC dates (242 to 288), RARC dates and POS dates are best-known approximations.
Refresh all of them from the official X12 / CMS lists when those are loaded.

Only the standard library is used; tables are read once and cached. ``parse_*`` functions
take the CSV text so tests can feed their own tables.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import cache
from importlib import resources
from itertools import pairwise
from types import MappingProxyType
from typing import Generic, Protocol, TypeVar

__all__ = [
    "AdjustmentReason",
    "CodeTable",
    "CodeTableError",
    "DefaultAction",
    "DenialCategory",
    "PlaceOfService",
    "RemarkCode",
    "load_carc",
    "load_pos",
    "load_rarc",
    "parse_carc",
    "parse_pos",
    "parse_rarc",
]


class DenialCategory(StrEnum):
    """Root cause of an adjustment, as used by the denial work queue."""

    ELIGIBILITY_COB = "eligibility_cob"
    AUTHORIZATION = "authorization"
    CODING = "coding"
    DOCUMENTATION = "documentation"
    MEDICAL_NECESSITY = "medical_necessity"
    DUPLICATE = "duplicate"
    TIMELY_FILING = "timely_filing"
    CREDENTIALING = "credentialing"
    BUNDLING = "bundling"
    MISSING_INFORMATION = "missing_information"
    CONTRACTUAL = "contractual"
    PATIENT_RESPONSIBILITY = "patient_responsibility"
    OTHER = "other"


class DefaultAction(StrEnum):
    """What a biller usually does about an adjustment with this code."""

    CORRECT_RESUBMIT = "correct_resubmit"
    APPEAL = "appeal"
    BILL_OTHER_PAYER = "bill_other_payer"
    BILL_PATIENT = "bill_patient"
    WRITE_OFF = "write_off"
    NO_ACTION = "no_action"
    CHECK_STATUS = "check_status"
    SEND_DOCUMENTATION = "send_documentation"


class CodeTableError(ValueError):
    """A code table file that is malformed (bad date, unknown category, overlapping versions)."""


@dataclass(frozen=True, slots=True)
class AdjustmentReason:
    """One version of a claim adjustment reason code (CARC)."""

    code: str
    description: str
    start_date: date
    stop_date: date | None
    category: DenialCategory
    default_action: DefaultAction

    def valid_on(self, on: date) -> bool:
        return _valid(self.start_date, self.stop_date, on)


@dataclass(frozen=True, slots=True)
class RemarkCode:
    """One version of a remittance advice remark code (RARC).

    ``no_appeal`` marks remarks saying the decision cannot be appealed (MA130, N704, ...):
    the fix is a new or corrected claim, never an appeal.
    """

    code: str
    description: str
    start_date: date
    stop_date: date | None
    category: DenialCategory
    default_action: DefaultAction
    no_appeal: bool

    def valid_on(self, on: date) -> bool:
        return _valid(self.start_date, self.stop_date, on)


@dataclass(frozen=True, slots=True)
class PlaceOfService:
    """One version of a CMS place-of-service code."""

    code: str
    description: str
    start_date: date
    stop_date: date | None
    telehealth: bool

    def valid_on(self, on: date) -> bool:
        return _valid(self.start_date, self.stop_date, on)


class _Versioned(Protocol):
    @property
    def code(self) -> str: ...

    @property
    def start_date(self) -> date: ...

    @property
    def stop_date(self) -> date | None: ...

    def valid_on(self, on: date) -> bool: ...


E = TypeVar("E", bound=_Versioned)
S = TypeVar("S", bound=StrEnum)


@dataclass(frozen=True, slots=True)
class CodeTable(Generic[E]):
    """Immutable lookup of code versions by code; ``lookup(code, on)`` honours the dates."""

    name: str
    versions: Mapping[str, tuple[E, ...]]

    def lookup(self, code: str, on: date) -> E | None:
        """The version of ``code`` in force on ``on``, or None (unknown or not valid then)."""
        for entry in self.versions.get(_normalize_code(code), ()):
            if entry.valid_on(on):
                return entry
        return None

    def latest(self, code: str) -> E | None:
        """The most recent version of ``code`` regardless of dates (for display of old codes)."""
        entries = self.versions.get(_normalize_code(code), ())
        return entries[-1] if entries else None

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and _normalize_code(code) in self.versions

    def __iter__(self) -> Iterator[str]:
        return iter(self.versions)

    def __len__(self) -> int:
        return len(self.versions)


def _valid(start: date, stop: date | None, on: date) -> bool:
    return start <= on and (stop is None or on < stop)


def _normalize_code(code: str) -> str:
    return code.strip().upper()


def _parse_date(text: str, *, field: str, row: int) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError as exc:
        raise CodeTableError(f"row {row}: {field} is not an ISO date: {text!r}") from exc


def _parse_bool(text: str, *, field: str, row: int) -> bool:
    value = text.strip().lower()
    if value in {"true", "yes", "1"}:
        return True
    if value in {"false", "no", "0", ""}:
        return False
    raise CodeTableError(f"row {row}: {field} is not a boolean: {text!r}")


def _enum_value(kind: type[S], text: str, *, field: str, row: int) -> S:
    try:
        return kind(text.strip())
    except ValueError as exc:
        raise CodeTableError(f"row {row}: unknown {field} {text!r}") from exc


class _Row(Protocol):
    def __getitem__(self, key: str) -> str: ...


def _parse_table(
    name: str,
    text: str,
    required: tuple[str, ...],
    build: Callable[[_Row, int, date, date | None], E],
) -> CodeTable[E]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [column for column in required if column not in (reader.fieldnames or [])]
    if missing:
        raise CodeTableError(f"{name}: missing columns {missing}")
    grouped: dict[str, list[E]] = {}
    for row_number, raw in enumerate(reader, start=2):
        row: dict[str, str] = {key: (value or "") for key, value in raw.items() if key}
        code = _normalize_code(row["code"])
        if not code or not row["description"].strip():
            raise CodeTableError(f"{name} row {row_number}: code and description are required")
        start = _parse_date(row["start_date"], field="start_date", row=row_number)
        stop_text = row["stop_date"].strip()
        stop = _parse_date(stop_text, field="stop_date", row=row_number) if stop_text else None
        if stop is not None and stop <= start:
            raise CodeTableError(f"{name} row {row_number}: stop_date must be after start_date")
        grouped.setdefault(code, []).append(build(row, row_number, start, stop))
    versions: dict[str, tuple[E, ...]] = {}
    for code, entries in grouped.items():
        ordered = sorted(entries, key=lambda entry: entry.start_date)
        for earlier, later in pairwise(ordered):
            if earlier.stop_date is None or earlier.stop_date > later.start_date:
                raise CodeTableError(f"{name}: versions of {code} overlap")
        versions[code] = tuple(ordered)
    return CodeTable(name=name, versions=MappingProxyType(versions))


_COMMON = ("code", "description", "start_date", "stop_date")


def parse_carc(text: str) -> CodeTable[AdjustmentReason]:
    def build(row: _Row, n: int, start: date, stop: date | None) -> AdjustmentReason:
        return AdjustmentReason(
            code=_normalize_code(row["code"]),
            description=row["description"].strip(),
            start_date=start,
            stop_date=stop,
            category=_enum_value(DenialCategory, row["category"], field="category", row=n),
            default_action=_enum_value(
                DefaultAction, row["default_action"], field="default_action", row=n
            ),
        )

    return _parse_table("carc", text, (*_COMMON, "category", "default_action"), build)


def parse_rarc(text: str) -> CodeTable[RemarkCode]:
    def build(row: _Row, n: int, start: date, stop: date | None) -> RemarkCode:
        return RemarkCode(
            code=_normalize_code(row["code"]),
            description=row["description"].strip(),
            start_date=start,
            stop_date=stop,
            category=_enum_value(DenialCategory, row["category"], field="category", row=n),
            default_action=_enum_value(
                DefaultAction, row["default_action"], field="default_action", row=n
            ),
            no_appeal=_parse_bool(row["no_appeal"], field="no_appeal", row=n),
        )

    return _parse_table("rarc", text, (*_COMMON, "category", "default_action", "no_appeal"), build)


def parse_pos(text: str) -> CodeTable[PlaceOfService]:
    def build(row: _Row, n: int, start: date, stop: date | None) -> PlaceOfService:
        code = _normalize_code(row["code"])
        if len(code) != 2 or not code.isdigit():
            raise CodeTableError(f"pos row {n}: code must be two digits: {code!r}")
        return PlaceOfService(
            code=code,
            description=row["description"].strip(),
            start_date=start,
            stop_date=stop,
            telehealth=_parse_bool(row["telehealth"], field="telehealth", row=n),
        )

    return _parse_table("pos", text, (*_COMMON, "telehealth"), build)


def _read(filename: str) -> str:
    return resources.files(__name__).joinpath(filename).read_text(encoding="utf-8")


@cache
def load_carc() -> CodeTable[AdjustmentReason]:
    """The packaged CARC table (read once)."""
    return parse_carc(_read("carc.csv"))


@cache
def load_rarc() -> CodeTable[RemarkCode]:
    """The packaged RARC table (read once)."""
    return parse_rarc(_read("rarc.csv"))


@cache
def load_pos() -> CodeTable[PlaceOfService]:
    """The packaged place-of-service table (read once)."""
    return parse_pos(_read("pos.csv"))
