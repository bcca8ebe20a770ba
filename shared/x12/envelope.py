"""ISA/GS/ST envelopes with trailer counts and control numbers computed, never hand-set.

Control numbers are inputs: persisting and incrementing them (unique ISA13, GS06,
ST02 per trading partner) is the caller's job; nothing here reads a clock either.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from shared.x12.writer import X12WriteError, X12Writer

__all__ = [
    "ControlNumbers",
    "EnvelopeWriter",
    "Parties",
    "TransactionBody",
    "wrap_transactions",
]


@dataclass(frozen=True, slots=True)
class ControlNumbers:
    """ISA13 (9 digits), GS06, and the ST02 of the first set (later sets count up)."""

    isa13: int
    gs06: int
    st02_start: int

    def __post_init__(self) -> None:
        if not 1 <= self.isa13 <= 999_999_999:
            raise X12WriteError(f"ISA13 must be 1..999999999, got {self.isa13}")
        if not 1 <= self.gs06 <= 999_999_999:
            raise X12WriteError(f"GS06 must be 1..999999999, got {self.gs06}")
        if not 1 <= self.st02_start <= 999_999_999:
            raise X12WriteError(f"ST02 must be 1..999999999, got {self.st02_start}")


@dataclass(frozen=True, slots=True)
class Parties:
    """Interchange sender/receiver (ISA05-08) and optional GS02/GS03 application codes."""

    sender_qualifier: str
    sender_id: str
    receiver_qualifier: str
    receiver_id: str
    usage: str = "T"
    gs_sender: str | None = None
    gs_receiver: str | None = None

    def __post_init__(self) -> None:
        if self.usage not in ("T", "P"):
            raise X12WriteError(f"usage indicator must be T or P, got {self.usage!r}")


class EnvelopeWriter:
    """Open/close ISA, GS and ST around segments written to an ``X12Writer``.

    Only one interchange with one functional group is produced; that is what
    trading partners expect per submitted file.
    """

    __slots__ = (
        "_control",
        "_created_at",
        "_next_st",
        "_parties",
        "_sets",
        "_st02",
        "_st_mark",
        "w",
    )

    def __init__(
        self,
        writer: X12Writer,
        parties: Parties,
        control: ControlNumbers,
        created_at: datetime,
    ) -> None:
        self.w = writer
        self._parties = parties
        self._control = control
        self._created_at = created_at
        self._next_st = control.st02_start
        self._sets = 0
        self._st_mark = -1
        self._st02 = ""

    def open(self, functional_id: str, version: str) -> None:
        """ISA + GS. ``functional_id`` e.g. HC (837), FA (999), HN (277)."""
        p = self._parties
        self.w.isa(
            sender_qualifier=p.sender_qualifier,
            sender_id=p.sender_id,
            receiver_qualifier=p.receiver_qualifier,
            receiver_id=p.receiver_id,
            created_at=self._created_at,
            control_number=self._control.isa13,
            usage=p.usage,
        )
        self.w.seg(
            "GS",
            functional_id,
            p.gs_sender or p.sender_id,
            p.gs_receiver or p.receiver_id,
            self._created_at.strftime("%Y%m%d"),
            self._created_at.strftime("%H%M"),
            str(self._control.gs06),
            "X",
            version,
        )

    def open_set(self, set_id: str, version: str | None) -> str:
        """Write ST and return its ST02; ST03 carries the implementation guide version."""
        if self._st_mark >= 0:
            raise X12WriteError("ST opened before the previous set was closed")
        if self._next_st > 999_999_999:
            raise X12WriteError("ST02 overflowed 9 digits")
        self._st02 = f"{self._next_st:04d}"
        self._next_st += 1
        self._st_mark = len(self.w)
        self.w.seg("ST", set_id, self._st02, version)
        return self._st02

    def close_set(self) -> None:
        if self._st_mark < 0:
            raise X12WriteError("SE without an open ST")
        # SE01 counts ST and SE themselves.
        count = len(self.w) - self._st_mark + 1
        self.w.seg("SE", str(count), self._st02)
        self._st_mark = -1
        self._sets += 1

    def close(self) -> None:
        """GE + IEA."""
        if self._st_mark >= 0:
            raise X12WriteError("GE written while a transaction set is open")
        self.w.seg("GE", str(self._sets), str(self._control.gs06))
        self.w.seg("IEA", "1", f"{self._control.isa13:09d}")


# Segments of one transaction set body (between ST and SE), already formatted.
TransactionBody = Sequence[str]


def wrap_transactions(
    writer: X12Writer,
    parties: Parties,
    control: ControlNumbers,
    created_at: datetime,
    *,
    functional_id: str,
    set_id: str,
    version: str,
    bodies: Iterable[TransactionBody],
) -> str:
    """One interchange/group with one ST..SE per body; returns the writer's full text."""
    env = EnvelopeWriter(writer, parties, control, created_at)
    env.open(functional_id, version)
    for body in bodies:
        env.open_set(set_id, version)
        writer.extend(body)
        env.close_set()
    env.close()
    return writer.getvalue()
