"""What a roster file asks for, whatever its format: one `MemberChange` per member (and
coverage), with row numbers for error reports. The CSV, 834 and 271 readers produce these;
`importer.apply_changes` turns them into span versions in bulk."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import NamedTuple

from services.coverage.domain.spans import SpanSource


class Action(StrEnum):
    # The member is covered from effective_from to effective_to (add, change, audit rows).
    UPSERT = "upsert"
    # Coverage ends on effective_to (the last covered day); a span starting later is voided.
    TERMINATE = "terminate"
    # A terminated span is open again (or runs to effective_to).
    REINSTATE = "reinstate"


class Demographics(NamedTuple):
    last_name: str
    first_name: str
    birth_date: date | None
    sex: str
    address1: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None


class MemberChange(NamedTuple):
    row: int
    member_id: str
    action: Action
    demographics: Demographics
    effective_from: date | None
    effective_to: date | None
    group: str | None = None
    relationship: str = "18"
    rate_tier: str | None = None
    opt_out_date: date | None = None
    population_flags: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class RowProblem:
    row: int
    field: str
    message: str


@dataclass(slots=True)
class ParsedFile:
    source: SpanSource
    changes: list[MemberChange]
    problems: list[RowProblem]
    # Full files (834 RX) end the open coverage of members they no longer list, the day
    # before `full_file_as_of`.
    full_file_as_of: date | None = None
    # 834 verify (BGN08 4): compare and report, apply nothing.
    verify_only: bool = False
    warnings: list[str] | None = None
