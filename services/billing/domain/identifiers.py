"""Format checks for the identifiers on a claim: NPI, TIN (EIN), ICD-10-CM, NUCC taxonomy.

These are *format* checks only. A well-formed NPI may still be unknown to the payer (CARC 208),
and a well-formed ICD-10-CM code may not exist in the code set for the date of service.

NPI entity type: the number itself does not say whether it belongs to a person (type 1) or an
organization (type 2); both kinds share the same 10-digit space and check digit. The claim
therefore carries a *declared* entity type for each place an NPI appears (billing provider
2010AA is the pharmacy, type 2; rendering provider 2310B is the pharmacist, type 1), and the
scrubber checks the declaration against the role. Confirming it needs the NPPES registry.
"""

from __future__ import annotations

import re
from enum import StrEnum

__all__ = [
    "NPI_PREFIX",
    "EntityType",
    "icd10_is_valid_format",
    "icd10_normalize",
    "normalize_tin",
    "npi_check_digit",
    "npi_is_valid",
    "taxonomy_is_valid_format",
    "tin_is_valid",
    "tin_problem",
]

NPI_PREFIX = "80840"
"""Card-issuer prefix the NPI check digit is computed with (ISO 7812, US health)."""

# The prefix's own Luhn contribution: in 80840 the 4 and the second 0 sit in doubled
# positions (8 and 0), so 8 + 0 + 8 + 8 + 0 = 24.
_PREFIX_SUM = 24

_NPI = re.compile(r"^[12][0-9]{9}$")
_NINE_DIGITS = re.compile(r"^[0-9]{9}$")
_EIN = re.compile(r"^[0-9]{2}-[0-9]{7}$")
_SSN_SHAPE = re.compile(r"^[0-9]{3}-[0-9]{2}-[0-9]{4}$")
_ICD10 = re.compile(r"^[A-Z][0-9][0-9A-Z]([0-9A-Z]{1,4})?$")
_TAXONOMY = re.compile(r"^[0-9A-Z]{9}X$")


class EntityType(StrEnum):
    """X12 NM102 entity type qualifier, declared per place on the claim."""

    PERSON = "1"
    ORGANIZATION = "2"


def npi_check_digit(first9: str) -> int:
    """Luhn check digit for the first nine NPI digits, as if prefixed by 80840.

    Doubles every other digit starting from the rightmost of the nine, adds the digits of the
    products and the undoubled digits, adds 24 for the prefix, and returns
    ``(10 - total % 10) % 10``. ``npi_check_digit("123456789") == 3``.
    """
    if not _NINE_DIGITS.match(first9):
        raise ValueError(f"expected nine digits, got {first9!r}")
    total = _PREFIX_SUM
    for position, char in enumerate(reversed(first9)):
        digit = int(char)
        if position % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return (10 - total % 10) % 10


def npi_is_valid(npi: str) -> bool:
    """Ten digits, first digit 1 or 2, and a correct check digit. No whitespace is tolerated."""
    if not _NPI.match(npi):
        return False
    return npi_check_digit(npi[:9]) == int(npi[9])


def tin_problem(tin: str) -> str | None:
    """Why ``tin`` is not a usable EIN, or None when it is.

    Accepts ``123456789`` or ``12-3456789``. Rejects the SSN shape ``123-45-6789`` (an EIN is
    expected in 2010AA REF*EI), any other punctuation, and runs of one repeated digit.
    """
    text = tin.strip()
    if _SSN_SHAPE.match(text):
        return "looks like a social security number (3-2-4); an EIN (XX-XXXXXXX) is expected"
    if not (_NINE_DIGITS.match(text) or _EIN.match(text)):
        return "must be nine digits, optionally written XX-XXXXXXX"
    digits = text.replace("-", "")
    if len(set(digits)) == 1:
        return "a single repeated digit is a placeholder, not a real EIN"
    return None


def tin_is_valid(tin: str) -> bool:
    return tin_problem(tin) is None


def normalize_tin(tin: str) -> str:
    """The nine digits to send in REF*EI (no hyphen); raises ValueError when invalid."""
    problem = tin_problem(tin)
    if problem is not None:
        raise ValueError(f"invalid TIN: {problem}")
    return tin.strip().replace("-", "")


def icd10_normalize(code: str) -> str:
    """Upper-case, trimmed, without the dot (X12 HI segments carry no decimal point)."""
    return code.strip().upper().replace(".", "")


def icd10_is_valid_format(code: str) -> bool:
    """Letter, digit, alphanumeric, then up to four alphanumerics (3 to 7 characters).

    A dot is accepted only right after the third character (``E11.9``). U codes (U07.1,
    U09.9) are valid. This does not prove the code exists or is billable to full length.
    """
    text = code.strip().upper()
    if "." in text and (text.count(".") != 1 or text.index(".") != 3 or text.endswith(".")):
        return False
    return bool(_ICD10.match(text.replace(".", "")))


def taxonomy_is_valid_format(code: str) -> bool:
    """NUCC health-care provider taxonomy: ten upper-case alphanumerics ending in X."""
    return bool(_TAXONOMY.match(code))
