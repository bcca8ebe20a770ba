"""Money as integer cents. Amounts travel on the wire as decimal strings with two places."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

Cents = int

_AMOUNT = re.compile(r"^-?\d{1,12}(\.\d{1,2})?$")


class AmountError(ValueError):
    """A string that is not a decimal amount with at most two places."""


def parse_amount(text: str) -> Cents:
    """'75.00' -> 7500. Rejects floats in disguise ('1e3'), more than two places and blanks."""
    text = text.strip()
    if not _AMOUNT.match(text):
        raise AmountError(f"not a decimal amount with at most two places: {text!r}")
    return int((Decimal(text) * 100).to_integral_value())


def parse_x12_amount(text: str) -> Cents:
    """X12 R-type amounts ('150', '150.5', '-12.00', '.5') -> cents, rounding half up."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation as exc:
        raise AmountError(f"not an X12 amount: {text!r}") from exc
    return int((value * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def format_cents(cents: Cents) -> str:
    """7500 -> '75.00'; -5 -> '-0.05'."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole}.{part:02d}"


def format_x12_amount(cents: Cents) -> str:
    """X12 amounts drop trailing zeros after the point: 15000 -> '150', 15050 -> '150.5'."""
    text = format_cents(cents)
    if text.endswith(".00"):
        return text[:-3]
    if text.endswith("0"):
        return text[:-1]
    return text
