"""Split an X12 interchange into segments and elements.

The delimiters are declared by the ISA segment itself, so nothing is assumed:
the element separator is the character at offset 3, the repetition separator is
ISA11, the component separator is ISA16 and the segment terminator is the
character right after ISA16.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

__all__ = [
    "Delimiters",
    "FunctionalGroup",
    "Interchange",
    "TransactionSet",
    "X12SyntaxError",
    "iter_transactions",
    "parse_interchanges",
    "tokenize",
]

_LINE_BREAKS = ("\r", "\n")
# Trailing padding some transports append after IEA (EOF markers, NULs, spaces).
_TRAILER_JUNK = " \t\r\n\x00\x1a"


@dataclass(frozen=True, slots=True)
class Delimiters:
    element: str
    segment: str
    component: str
    repetition: str


class X12SyntaxError(ValueError):
    """Input that cannot be read as X12; the message names the segment index or offset."""

    def __init__(
        self, message: str, *, segment_index: int | None = None, offset: int | None = None
    ) -> None:
        where = []
        if segment_index is not None:
            where.append(f"segment {segment_index}")
        if offset is not None:
            where.append(f"offset {offset}")
        super().__init__(f"{message} (at {', '.join(where)})" if where else message)
        self.segment_index = segment_index
        self.offset = offset


def _decode(data: str | bytes) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # X12 extended character sets predate UTF-8; latin-1 never fails and keeps offsets.
        return data.decode("latin-1")


def _read_isa(text: str) -> tuple[Delimiters, int]:
    """Return the delimiters and the offset of the segment terminator closing the ISA."""
    if not text.startswith("ISA"):
        raise X12SyntaxError(f"interchange must start with ISA, found {text[:3]!r}", offset=0)
    if len(text) < 4:
        raise X12SyntaxError("truncated ISA segment", offset=0)
    element = text[3]
    if element.isalnum() or element == " ":
        raise X12SyntaxError(f"invalid element separator {element!r}", offset=3)
    # ISA is nominally fixed-width (separator at 103), but some senders trim the padding,
    # so the 16th separator is located instead of trusting the offset.
    pos = 3
    starts = []
    for _ in range(15):
        pos = text.find(element, pos + 1)
        if pos < 0:
            raise X12SyntaxError("ISA has fewer than 16 elements", segment_index=0)
        starts.append(pos)
    # starts[-1] precedes ISA16; ISA11 sits between the 10th and 11th separators.
    isa16 = starts[-1] + 1
    if isa16 + 1 >= len(text):
        raise X12SyntaxError("ISA is truncated before its segment terminator", offset=isa16)
    component = text[isa16]
    segment = text[isa16 + 1]
    repetition = text[starts[9] + 1 : starts[10]]
    if len(repetition) != 1 or repetition.isalnum() or repetition == " ":
        # Before 00501 ISA11 was the standards identifier ('U'), not a separator.
        repetition = ""
    if component.isalnum() or segment.isalnum():
        raise X12SyntaxError(
            f"invalid ISA16 component {component!r} or segment terminator {segment!r}",
            offset=isa16,
        )
    declared = [element, segment, component] + ([repetition] if repetition else [])
    if len(set(declared)) != len(declared):
        raise X12SyntaxError(f"ISA declares duplicate delimiters {declared!r}", segment_index=0)
    return Delimiters(element, segment, component, repetition), isa16 + 1


def tokenize(data: str | bytes) -> tuple[Delimiters, list[list[str]]]:
    """Read delimiters from the ISA and split the whole input into segments.

    Each segment is a list whose element 0 is the segment id. Line breaks that are
    not themselves the segment terminator are dropped everywhere: X12 character sets
    exclude control characters, so they can only be cosmetic wrapping.
    """
    text = _decode(data).lstrip("\ufeff \t\r\n\x00")
    delims, _ = _read_isa(text)
    for brk in _LINE_BREAKS:
        if brk not in (delims.segment, delims.element, delims.component) and brk in text:
            text = text.replace(brk, "")
    element = delims.element
    pieces = text.split(delims.segment)
    if pieces and not pieces[-1].strip(_TRAILER_JUNK):
        pieces.pop()
    # Hundreds of thousands of fresh acyclic lists would trigger repeated cyclic-GC passes
    # that find nothing; pausing the collector roughly halves tokenize time on large files.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        segments = [piece.split(element) for piece in pieces]
    finally:
        if gc_was_enabled:
            gc.enable()
    _check_ids(segments)
    return delims, segments


def _check_ids(segments: list[list[str]]) -> None:
    # Checking the distinct ids keeps validation out of the per-segment hot path.
    ids = {seg[0] for seg in segments}
    bad = {sid for sid in ids if not (2 <= len(sid) <= 3 and sid.isalnum() and sid.isupper())}
    bad.discard("")  # reported below with the better message
    if "" in ids or bad:
        for index, seg in enumerate(segments):
            sid = seg[0]
            if sid == "" or sid in bad:
                raise X12SyntaxError(f"invalid segment id {sid!r}", segment_index=index)


@dataclass(frozen=True, slots=True)
class TransactionSet:
    """ST..SE inclusive; ``segments[0]`` is ST and ``segments[-1]`` is SE."""

    segments: list[list[str]]
    start_index: int

    @property
    def set_id(self) -> str:
        return self.segments[0][1]

    @property
    def control_number(self) -> str:
        return self.segments[0][2]

    @property
    def body(self) -> list[list[str]]:
        return self.segments[1:-1]


@dataclass(frozen=True, slots=True)
class FunctionalGroup:
    gs: list[str]
    ge: list[str]
    transactions: list[TransactionSet]

    @property
    def functional_id(self) -> str:
        return self.gs[1]

    @property
    def control_number(self) -> str:
        return self.gs[6]

    @property
    def version(self) -> str:
        return self.gs[8] if len(self.gs) > 8 else ""


@dataclass(frozen=True, slots=True)
class Interchange:
    isa: list[str]
    iea: list[str]
    groups: list[FunctionalGroup]

    @property
    def control_number(self) -> str:
        return self.isa[13]

    @property
    def sender(self) -> tuple[str, str]:
        return self.isa[5], self.isa[6].rstrip()

    @property
    def receiver(self) -> tuple[str, str]:
        return self.isa[7], self.isa[8].rstrip()

    @property
    def usage(self) -> str:
        return self.isa[15]


def _el(seg: Sequence[str], pos: int) -> str:
    return seg[pos] if len(seg) > pos else ""


def _int_el(seg: Sequence[str], pos: int, index: int) -> int:
    raw = _el(seg, pos).strip()
    if not raw.isdigit():
        raise X12SyntaxError(f"{seg[0]}{pos:02d} is not a number: {raw!r}", segment_index=index)
    return int(raw)


def parse_interchanges(segments: list[list[str]], *, check: bool = True) -> list[Interchange]:
    """Group segments into ISA/GS/ST envelopes.

    With ``check`` the trailer counts and control numbers are verified (SE01 counts
    ST through SE, SE02 = ST02, GE01/GE02, IEA01/IEA02) and mismatches raise.
    """
    interchanges: list[Interchange] = []
    isa: list[str] | None = None
    gs: list[str] | None = None
    groups: list[FunctionalGroup] = []
    sets: list[TransactionSet] = []
    st_index = -1
    for index, seg in enumerate(segments):
        sid = seg[0]
        if sid == "ISA":
            if isa is not None:
                raise X12SyntaxError("ISA before IEA closed the previous one", segment_index=index)
            if len(seg) != 17:
                raise X12SyntaxError(
                    f"ISA must have 16 elements, has {len(seg) - 1}", segment_index=index
                )
            isa = seg
        elif sid == "GS":
            if isa is None or gs is not None:
                raise X12SyntaxError(
                    "GS outside an interchange or inside a group", segment_index=index
                )
            gs = seg
        elif sid == "ST":
            if gs is None or st_index >= 0:
                raise X12SyntaxError("ST outside a group or inside a set", segment_index=index)
            st_index = index
        elif sid == "SE":
            if st_index < 0:
                raise X12SyntaxError("SE without ST", segment_index=index)
            body = segments[st_index : index + 1]
            if check:
                count = _int_el(seg, 1, index)
                if count != len(body):
                    raise X12SyntaxError(
                        f"SE01 says {count} segments, set has {len(body)}", segment_index=index
                    )
                if _el(seg, 2) != _el(body[0], 2):
                    raise X12SyntaxError(
                        f"SE02 {_el(seg, 2)!r} != ST02 {_el(body[0], 2)!r}", segment_index=index
                    )
            sets.append(TransactionSet(body, st_index))
            st_index = -1
        elif sid == "GE":
            if gs is None or st_index >= 0:
                raise X12SyntaxError("GE without GS or inside a set", segment_index=index)
            if check:
                if _int_el(seg, 1, index) != len(sets):
                    raise X12SyntaxError(
                        f"GE01 says {_el(seg, 1)} sets, group has {len(sets)}", segment_index=index
                    )
                if _el(seg, 2) != _el(gs, 6):
                    raise X12SyntaxError(
                        f"GE02 {_el(seg, 2)!r} != GS06 {_el(gs, 6)!r}", segment_index=index
                    )
            groups.append(FunctionalGroup(gs, seg, sets))
            gs, sets = None, []
        elif sid == "IEA":
            if isa is None or gs is not None:
                raise X12SyntaxError("IEA without ISA or inside a group", segment_index=index)
            if check:
                if _int_el(seg, 1, index) != len(groups):
                    raise X12SyntaxError(
                        f"IEA01 says {_el(seg, 1)} groups, interchange has {len(groups)}",
                        segment_index=index,
                    )
                if _el(seg, 2) != isa[13]:
                    raise X12SyntaxError(
                        f"IEA02 {_el(seg, 2)!r} != ISA13 {isa[13]!r}", segment_index=index
                    )
            interchanges.append(Interchange(isa, seg, groups))
            isa, groups = None, []
        elif st_index < 0:
            raise X12SyntaxError(f"segment {sid} outside a transaction set", segment_index=index)
    if isa is not None or gs is not None or st_index >= 0:
        raise X12SyntaxError(
            "input ends inside an envelope (missing SE, GE or IEA)", segment_index=len(segments)
        )
    return interchanges


def iter_transactions(
    segments: list[list[str]], *, check: bool = True
) -> Iterator[tuple[Interchange, FunctionalGroup, TransactionSet]]:
    """Every transaction set with the group and interchange that enclose it."""
    for interchange in parse_interchanges(segments, check=check):
        for group in interchange.groups:
            for tset in group.transactions:
                yield interchange, group, tset
