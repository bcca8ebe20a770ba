"""X12 D8 dates (CCYYMMDD), read and written the same way by every transaction set."""

from __future__ import annotations

from datetime import date


def parse_d8(text: str) -> date:
    """CCYYMMDD -> date; ValueError for anything else (callers name the element)."""
    if len(text) != 8 or not text.isdecimal() or not text.isascii():
        raise ValueError(f"not a CCYYMMDD date: {text!r}")
    return date(int(text[:4]), int(text[4:6]), int(text[6:8]))


def format_d8(value: date) -> str:
    return f"{value.year:04d}{value.month:02d}{value.day:02d}"
