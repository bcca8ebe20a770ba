"""Build X12 segments with string joins.

Data containing a delimiter is rejected rather than escaped: X12 has no escape
mechanism, so a stray ``*`` or ``~`` in a name would silently shift every later
element for the receiver.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import NoReturn

from shared.x12.tokenizer import Delimiters

__all__ = [
    "DEFAULT_DELIMITERS",
    "Element",
    "X12WriteError",
    "X12Writer",
]

DEFAULT_DELIMITERS = Delimiters(element="*", segment="~", component=":", repetition="^")

# A plain string is a simple element; a tuple is a composite whose parts are joined with
# the component separator; None is an omitted element.
Element = str | tuple[str, ...] | None


class X12WriteError(ValueError):
    """Data that cannot be written as X12 (contains a delimiter, too long for a fixed field)."""


def _strip_trailing_empty(values: list[str]) -> list[str]:
    end = len(values)
    while end and not values[end - 1]:
        end -= 1
    return values[:end] if end != len(values) else values


class X12Writer:
    """Accumulate segments; ``getvalue()`` returns the text.

    ``line_break`` is appended after each terminator for human-readable output;
    the tokenizer ignores it.
    """

    __slots__ = ("_bad", "_comp", "_delims", "_elem", "_parts", "_suffix")

    def __init__(self, delims: Delimiters = DEFAULT_DELIMITERS, *, line_break: str = "") -> None:
        declared = [delims.element, delims.segment, delims.component, delims.repetition]
        chars = {c for c in declared if c}
        if len(chars) != len([c for c in declared if c]):
            raise X12WriteError(f"delimiters must be distinct: {delims!r}")
        if any(len(c) != 1 for c in chars):
            raise X12WriteError(f"delimiters must be single characters: {delims!r}")
        # Digits, letters, '.', '-' and space appear in generated amounts, dates, codes and the
        # ISA padding, so a delimiter among them would corrupt output that is never checked.
        if any(c.isalnum() or c in ".- " for c in chars):
            raise X12WriteError(
                f"delimiters cannot be letters, digits, '.', '-' or space: {delims!r}"
            )
        if line_break and (set(line_break) & chars or line_break.strip("\r\n")):
            raise X12WriteError(f"line_break must be CR/LF and not a delimiter: {line_break!r}")
        self._delims = delims
        self._elem = delims.element
        self._comp = delims.component
        self._suffix = delims.segment + line_break
        # One search over the concatenated data of a segment finds any delimiter in any element.
        # Line breaks are rejected too: readers may strip them as formatting.
        self._bad = re.compile("[" + re.escape("".join(sorted(chars))) + "\r\n]")
        self._parts: list[str] = []

    @property
    def delimiters(self) -> Delimiters:
        return self._delims

    def __len__(self) -> int:
        """Number of segments written so far (used for SE01 counts)."""
        return len(self._parts)

    def format(self, seg_id: str, *elements: Element) -> str:
        """One segment including its terminator, without appending it."""
        values: list[str] = []
        data: list[str] = []
        comp = self._comp
        for value in elements:
            if value is None:
                values.append("")
            elif isinstance(value, str):
                values.append(value)
                data.append(value)
            else:
                data.extend(value)
                values.append(comp.join(_strip_trailing_empty(list(value))))
        values = _strip_trailing_empty(values)
        match = self._bad.search("".join(data))
        if match is not None:
            self._raise_bad(seg_id, elements, match.group())
        if values:
            return seg_id + self._elem + self._elem.join(values) + self._suffix
        return seg_id + self._suffix

    def _raise_bad(self, seg_id: str, elements: tuple[Element, ...], char: str) -> NoReturn:
        for pos, value in enumerate(elements, start=1):
            parts = (value,) if isinstance(value, str) else (value or ())
            for sub, part in enumerate(parts, start=1):
                if char in part:
                    where = f"{seg_id}{pos:02d}" + (f"-{sub}" if isinstance(value, tuple) else "")
                    raise X12WriteError(
                        f"{where} contains delimiter {char!r}: {part!r}; "
                        "X12 cannot escape delimiters, clean the data first"
                    )
        raise X12WriteError(f"{seg_id} contains delimiter {char!r}")  # pragma: no cover

    def check(self, where: str, *values: str) -> None:
        """Reject delimiters in many values with one regex search (hot-path builders use this
        and then join pre-validated values themselves)."""
        match = self._bad.search("".join(values))
        if match is not None:
            for value in values:
                if match.group() in value:
                    raise X12WriteError(
                        f"{where}: value {value!r} contains delimiter {match.group()!r}; "
                        "X12 cannot escape delimiters, clean the data first"
                    )

    def seg(self, seg_id: str, *elements: Element) -> None:
        """Append one segment; trailing empty elements are dropped as X12 requires."""
        self._parts.append(self.format(seg_id, *elements))

    def raw(self, segment_text: str) -> None:
        """Append a segment already formatted by ``format`` with the same delimiters."""
        self._parts.append(segment_text)

    def isa(
        self,
        *,
        sender_qualifier: str,
        sender_id: str,
        receiver_qualifier: str,
        receiver_id: str,
        created_at: datetime,
        control_number: int,
        usage: str,
        ack_requested: bool = False,
        version: str = "00501",
    ) -> None:
        """ISA with every element at its fixed width, so the segment is exactly 106 chars."""
        if usage not in ("T", "P"):
            raise X12WriteError(f"ISA15 usage indicator must be T or P, got {usage!r}")
        if not 0 <= control_number <= 999_999_999:
            raise X12WriteError(f"ISA13 must fit 9 digits, got {control_number}")
        if not self._delims.repetition:
            raise X12WriteError("00501 ISA11 needs a repetition separator")
        fields = [
            ("ISA05", sender_qualifier, 2),
            ("ISA06", sender_id, 15),
            ("ISA07", receiver_qualifier, 2),
            ("ISA08", receiver_id, 15),
        ]
        padded = []
        for name, value, width in fields:
            if not value or len(value) > width:
                raise X12WriteError(f"{name} must be 1-{width} characters, got {value!r}")
            padded.append(value.ljust(width))
        text = self._elem.join(
            [
                "ISA",
                "00",
                " " * 10,
                "00",
                " " * 10,
                *padded,
                created_at.strftime("%y%m%d"),
                created_at.strftime("%H%M"),
                self._delims.repetition,
                version,
                f"{control_number:09d}",
                "1" if ack_requested else "0",
                usage,
                self._comp,
            ]
        )
        data = "".join(padded)
        match = self._bad.search(data)
        if match is not None:
            raise X12WriteError(f"ISA sender/receiver contains delimiter {match.group()!r}")
        self._parts.append(text + self._suffix)

    def extend(self, other: Sequence[str]) -> None:
        self._parts.extend(other)

    def segments(self) -> list[str]:
        """The formatted segments written so far (terminators included)."""
        return self._parts

    def getvalue(self) -> str:
        return "".join(self._parts)
