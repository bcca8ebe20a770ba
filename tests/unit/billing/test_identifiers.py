from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.billing.domain.identifiers import (
    icd10_is_valid_format,
    icd10_normalize,
    normalize_tin,
    npi_check_digit,
    npi_is_valid,
    taxonomy_is_valid_format,
    tin_is_valid,
    tin_problem,
)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def test_known_npi() -> None:
    assert npi_check_digit("123456789") == 3
    assert npi_is_valid("1234567893")


@pytest.mark.parametrize(
    "npi",
    [
        "1234567890",
        "123456789",
        "12345678931",
        "3234567893",
        "0234567893",
        "12345678a3",
        " 1234567893",
        "1234-56789",
    ],
)
def test_invalid_npis(npi: str) -> None:
    assert not npi_is_valid(npi)


def test_check_digit_needs_nine_digits() -> None:
    with pytest.raises(ValueError, match="nine digits"):
        npi_check_digit("12345678")


nine_digits = st.text(alphabet="0123456789", min_size=8, max_size=8).flatmap(
    lambda rest: st.sampled_from(["1", "2"]).map(lambda first: first + rest)
)


@given(nine_digits)
def test_computed_check_digit_validates(first9: str) -> None:
    npi = first9 + str(npi_check_digit(first9))
    assert npi_is_valid(npi)
    assert _luhn_ok("80840" + npi)  # same as Luhn over the prefixed number


@given(nine_digits, st.integers(min_value=1, max_value=9), st.integers(min_value=1, max_value=9))
def test_changing_one_digit_invalidates(first9: str, position: int, delta: int) -> None:
    npi = first9 + str(npi_check_digit(first9))
    changed_digit = (int(npi[position]) + delta) % 10
    changed = npi[:position] + str(changed_digit) + npi[position + 1 :]
    assert not npi_is_valid(changed)


@pytest.mark.parametrize("tin", ["123456789", "12-3456789", " 12-3456789 "])
def test_valid_tins(tin: str) -> None:
    assert tin_is_valid(tin)
    assert normalize_tin(tin) == "123456789"


@pytest.mark.parametrize(
    ("tin", "reason"),
    [
        ("123-45-6789", "social security"),
        ("000000000", "repeated"),
        ("11-1111111", "repeated"),
        ("12345678", "nine digits"),
        ("1234567890", "nine digits"),
        ("123-456789", "nine digits"),
        ("12 3456789", "nine digits"),
        ("", "nine digits"),
    ],
)
def test_invalid_tins(tin: str, reason: str) -> None:
    assert not tin_is_valid(tin)
    problem = tin_problem(tin)
    assert problem is not None
    assert reason in problem
    with pytest.raises(ValueError, match="invalid TIN"):
        normalize_tin(tin)


def test_icd10_normalize() -> None:
    assert icd10_normalize(" e11.9 ") == "E119"
    assert icd10_normalize("Z79.4") == "Z794"


@pytest.mark.parametrize(
    "code",
    [
        "E11.9",
        "E119",
        "I10",
        "Z79.4",
        "U07.1",
        "U09.9",
        "S72.001A",
        "T38.3X5A",
        "e11.65",
        "M1A.071",
    ],
)
def test_valid_icd10_formats(code: str) -> None:
    assert icd10_is_valid_format(code)


@pytest.mark.parametrize(
    "code",
    ["", "E1", "11.9", "EE1.9", "E11.", "E1.19", "E11..9", "E11.99999", "E11-9", "E11 9"],
)
def test_invalid_icd10_formats(code: str) -> None:
    assert not icd10_is_valid_format(code)


@pytest.mark.parametrize("code", ["3336C0003X", "183500000X", "1835P1300X"])
def test_valid_taxonomies(code: str) -> None:
    assert taxonomy_is_valid_format(code)


@pytest.mark.parametrize("code", ["", "3336C0003", "3336C00031", "3336c0003X", "3336C0003XX"])
def test_invalid_taxonomies(code: str) -> None:
    assert not taxonomy_is_valid_format(code)
