"""Persistent state of the payer simulator (development tool): which 837 files were already
adjudicated, the claims it paid or denied (so voids, replacements and reversals can refer to
them), control-number and ICN counters, and capitation already paid.

Kept as one JSON file written atomically; it holds synthetic test data only.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import msgspec

__all__ = [
    "ClaimRecord",
    "LineRecord",
    "PayeeRecord",
    "PayerRecord",
    "ProcessedRecord",
    "SimState",
    "load_state",
    "save_state",
]

STATE_VERSION = 1


class LineRecord(msgspec.Struct, kw_only=True):
    code: str
    modifiers: list[str] = []
    charge: int
    paid: int
    units: str
    dos: str | None = None  # YYYYMMDD
    adjustments: list[tuple[str, str, int]] = []  # (group, CARC, cents)
    allowed: int | None = None
    remarks: list[str] = []


class ClaimRecord(msgspec.Struct, kw_only=True):
    icn: str
    pcn: str
    payer_id: str
    payee_npi: str
    status: str  # CLP02 of the original adjudication (1/2/3)
    charge: int
    paid: int
    patient_responsibility: int
    filing_indicator: str
    facility: str
    frequency: str
    patient_last: str
    patient_first: str
    member_id: str
    lines: list[LineRecord] = []
    denied: bool = False
    reversed: bool = False
    replaced_by: str | None = None  # ICN of the correction/replacement that superseded it
    source_hash: str = ""


class PayerRecord(msgspec.Struct, kw_only=True):
    payer_id: str
    name: str
    # ISA05..ISA08 and ISA15 the payer answers with (the 837's, swapped)
    sender_qualifier: str
    sender_id: str
    receiver_qualifier: str
    receiver_id: str
    usage: str = "T"


class PayeeRecord(msgspec.Struct, kw_only=True):
    npi: str
    name: str
    tin: str = ""


class ProcessedRecord(msgspec.Struct, kw_only=True):
    file: str
    claims: int
    outputs: list[str] = []
    error: str | None = None


class SimState(msgspec.Struct, kw_only=True):
    version: int = STATE_VERSION
    processed: dict[str, ProcessedRecord] = {}  # 837 content sha256 -> what came of it
    counters: dict[str, int] = {}
    claims: dict[str, ClaimRecord] = {}  # payer ICN -> adjudication
    payers: dict[str, PayerRecord] = {}
    payees: dict[str, PayeeRecord] = {}
    payer_payees: dict[str, list[str]] = {}  # payer id -> payee NPIs seen, first first
    capitation_paid: list[str] = []  # "payer|member|YYYY-MM"

    def next(self, counter: str) -> int:
        value = self.counters.get(counter, 0) + 1
        self.counters[counter] = value
        return value

    def live(self, icn: str) -> ClaimRecord | None:
        """The claim currently standing for ``icn``, following replacements."""
        seen: set[str] = set()
        record = self.claims.get(icn)
        while record is not None and record.replaced_by and record.replaced_by not in seen:
            seen.add(record.replaced_by)
            record = self.claims.get(record.replaced_by)
        if record is None or record.reversed:
            return None
        return record


def load_state(path: Path | None) -> SimState:
    if path is None or not path.exists():
        return SimState()
    state = msgspec.json.decode(path.read_bytes(), type=SimState)
    if state.version != STATE_VERSION:
        raise ValueError(f"{path}: state version {state.version}, expected {STATE_VERSION}")
    return state


def save_state(path: Path | None, state: SimState) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(msgspec.json.format(msgspec.json.encode(state), indent=1))
    try:
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
