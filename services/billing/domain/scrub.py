"""Claim scrubber: named edits run on a claim before it may leave for the payer.

Every edit has a stable ``EditCode`` with a fixed severity and follow-up action (``EDITS``).
An ``error`` holds the claim (``on_hold``) until fixed; a ``warning`` lets it proceed but is
shown to the biller. ``scrub(draft, prior_billed, today)`` returns every finding, in edit
order, and ``passed`` is True when there is no error.

Inputs are plain values: the claim as it would be sent (``ClaimDraft``), the lines already
billed for the same patient (``PriorLine``, for duplicate detection) and ``today``. Nothing
here reads a clock or a database.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from types import MappingProxyType

from services.billing.domain.claim_state import ClaimStatus
from services.billing.domain.identifiers import (
    EntityType,
    icd10_is_valid_format,
    icd10_normalize,
    npi_is_valid,
    taxonomy_is_valid_format,
    tin_problem,
)
from shared.codes import CodeTable, PlaceOfService, load_pos
from shared.money import Cents, format_cents

__all__ = [
    "ADDON_BASES",
    "BASE_CODES",
    "EDITS",
    "MAX_DIAGNOSES",
    "MAX_POINTERS_PER_LINE",
    "PCN_MAX_LENGTH",
    "RULES",
    "TIMELY_FILING_WARNING_DAYS",
    "Address",
    "ClaimDraft",
    "ClaimLine",
    "EditCode",
    "EditSpec",
    "Finding",
    "FollowUp",
    "PriorLine",
    "ProviderRef",
    "ScrubResult",
    "Severity",
    "Subscriber",
    "scrub",
]

MAX_DIAGNOSES = 12
MAX_POINTERS_PER_LINE = 4
PCN_MAX_LENGTH = 20
TIMELY_FILING_WARNING_DAYS = 14

BASE_CODES: frozenset[str] = frozenset({"99605", "99606"})
"""Initial 15-minute MTM codes: billed once per encounter (one unit, one of the two)."""

ADDON_BASES: Mapping[str, frozenset[str]] = MappingProxyType({"99607": BASE_CODES})
"""Add-on code -> base codes one of which must be on the same claim and date of service."""

TELEHEALTH_MODIFIERS: frozenset[str] = frozenset({"95", "93"})

# Claim control numbers go into CLM01 and come back in CLP01: letters, digits and hyphen only,
# so no X12 delimiter (* ~ : ^) can slip in and no payer strips or truncates characters.
_PCN = re.compile(r"^[A-Za-z0-9-]+$")
_PROCEDURE = re.compile(r"^[0-9A-Z][0-9]{3}[0-9A-Z]$")
_MODIFIER = re.compile(r"^[0-9A-Z]{2}$")
_STATE = re.compile(r"^[A-Z]{2}$")
_ZIP9 = re.compile(r"^[0-9]{9}$")
_PO_BOX = re.compile(r"\b(P\.?\s*O\.?\s*BOX|POST\s+OFFICE\s+BOX|POB)\b", re.IGNORECASE)

# A prior line in one of these statuses never reached (or no longer stands at) the payer.
_NOT_BILLED: frozenset[ClaimStatus] = frozenset(
    {ClaimStatus.VOIDED, ClaimStatus.REPLACED, ClaimStatus.REJECTED, ClaimStatus.NOT_BILLABLE}
)


class Severity(StrEnum):
    ERROR = "error"  # hold the claim
    WARNING = "warning"  # let it proceed, show the biller


class FollowUp(StrEnum):
    FIX_PROVIDER_DATA = "fix_provider_data"
    FIX_PATIENT_DATA = "fix_patient_data"
    VERIFY_ELIGIBILITY = "verify_eligibility"
    FIX_CODING = "fix_coding"
    FIX_DIAGNOSES = "fix_diagnoses"
    FIX_CHARGES = "fix_charges"
    FIX_CLAIM_FREQUENCY = "fix_claim_frequency"
    FIX_CLAIM_ID = "fix_claim_id"
    REVIEW_DUPLICATE = "review_duplicate"
    SUBMIT_NOW = "submit_now"
    WAIT_UNTIL_SERVICE = "wait_until_service"
    WRITE_OFF_OR_PROVE_TIMELY = "write_off_or_prove_timely"


class EditCode(StrEnum):
    BILLING_NPI_INVALID = "billing_npi_invalid"
    BILLING_NPI_TYPE = "billing_npi_type"
    RENDERING_NPI_INVALID = "rendering_npi_invalid"
    RENDERING_NPI_TYPE = "rendering_npi_type"
    BILLING_TIN_INVALID = "billing_tin_invalid"
    TAXONOMY_MISSING = "taxonomy_missing"
    TAXONOMY_INVALID = "taxonomy_invalid"
    BILLING_ADDRESS_INCOMPLETE = "billing_address_incomplete"
    BILLING_ADDRESS_PO_BOX = "billing_address_po_box"
    BILLING_ZIP_INVALID = "billing_zip_invalid"
    MEMBER_ID_MISSING = "member_id_missing"
    SUBSCRIBER_INCOMPLETE = "subscriber_incomplete"
    BIRTH_DATE_AFTER_SERVICE = "birth_date_after_service"
    PCN_INVALID = "pcn_invalid"
    FREQUENCY_INVALID = "frequency_invalid"
    FREQUENCY_ICN_MISSING = "frequency_icn_missing"
    ICN_ON_ORIGINAL = "icn_on_original"
    POS_INVALID = "pos_invalid"
    POS_MODIFIER_MISMATCH = "pos_modifier_mismatch"
    NO_LINES = "no_lines"
    PROCEDURE_CODE_INVALID = "procedure_code_invalid"
    MODIFIER_INVALID = "modifier_invalid"
    LINE_DOS_MISMATCH = "line_dos_mismatch"
    DOS_IN_FUTURE = "dos_in_future"
    DOS_OUTSIDE_COVERAGE = "dos_outside_coverage"
    TIMELY_FILING_EXPIRED = "timely_filing_expired"
    TIMELY_FILING_NEAR = "timely_filing_near"
    DX_MISSING = "dx_missing"
    DX_TOO_MANY = "dx_too_many"
    DX_FORMAT = "dx_format"
    DX_DUPLICATE = "dx_duplicate"
    POINTER_MISSING = "pointer_missing"
    POINTER_TOO_MANY = "pointer_too_many"
    POINTER_OUT_OF_RANGE = "pointer_out_of_range"
    POINTER_REPEATED = "pointer_repeated"
    UNITS_NOT_POSITIVE = "units_not_positive"
    BASE_UNITS = "base_units"
    MULTIPLE_BASE_CODES = "multiple_base_codes"
    ADDON_WITHOUT_BASE = "addon_without_base"
    ADDON_UNITS_OVER_CAP = "addon_units_over_cap"
    DUPLICATE_LINE = "duplicate_line"
    DUPLICATE_SERVICE = "duplicate_service"
    LINE_CHARGE_NOT_POSITIVE = "line_charge_not_positive"
    TOTAL_CHARGE_MISMATCH = "total_charge_mismatch"


@dataclass(frozen=True, slots=True)
class EditSpec:
    severity: Severity
    action: FollowUp
    summary: str


_E, _W = Severity.ERROR, Severity.WARNING
_F = FollowUp

EDITS: Mapping[EditCode, EditSpec] = MappingProxyType(
    {
        EditCode.BILLING_NPI_INVALID: EditSpec(
            _E, _F.FIX_PROVIDER_DATA, "billing NPI fails the format or check digit"
        ),
        EditCode.BILLING_NPI_TYPE: EditSpec(
            _E, _F.FIX_PROVIDER_DATA, "billing provider must be an organization NPI (type 2)"
        ),
        EditCode.RENDERING_NPI_INVALID: EditSpec(
            _E, _F.FIX_PROVIDER_DATA, "rendering NPI fails the format or check digit"
        ),
        EditCode.RENDERING_NPI_TYPE: EditSpec(
            _E, _F.FIX_PROVIDER_DATA, "rendering provider must be a person NPI (type 1)"
        ),
        EditCode.BILLING_TIN_INVALID: EditSpec(
            _E, _F.FIX_PROVIDER_DATA, "billing TIN is not a valid EIN"
        ),
        EditCode.TAXONOMY_MISSING: EditSpec(
            _E, _F.FIX_PROVIDER_DATA, "provider taxonomy code is missing"
        ),
        EditCode.TAXONOMY_INVALID: EditSpec(
            _E, _F.FIX_PROVIDER_DATA, "provider taxonomy code is not ten characters ending in X"
        ),
        EditCode.BILLING_ADDRESS_INCOMPLETE: EditSpec(
            _E, _F.FIX_PROVIDER_DATA, "billing provider street, city or state is missing"
        ),
        EditCode.BILLING_ADDRESS_PO_BOX: EditSpec(
            _E, _F.FIX_PROVIDER_DATA, "billing provider address must be a street address"
        ),
        EditCode.BILLING_ZIP_INVALID: EditSpec(
            _E, _F.FIX_PROVIDER_DATA, "billing provider ZIP must have nine digits (ZIP+4)"
        ),
        EditCode.MEMBER_ID_MISSING: EditSpec(_E, _F.VERIFY_ELIGIBILITY, "member ID is missing"),
        EditCode.SUBSCRIBER_INCOMPLETE: EditSpec(
            _E, _F.FIX_PATIENT_DATA, "subscriber name, birth date or sex is missing"
        ),
        EditCode.BIRTH_DATE_AFTER_SERVICE: EditSpec(
            _E, _F.FIX_PATIENT_DATA, "birth date is after the date of service"
        ),
        EditCode.PCN_INVALID: EditSpec(
            _E, _F.FIX_CLAIM_ID, "patient control number is empty, too long or has bad characters"
        ),
        EditCode.FREQUENCY_INVALID: EditSpec(
            _E, _F.FIX_CLAIM_FREQUENCY, "claim frequency must be 1, 7 or 8"
        ),
        EditCode.FREQUENCY_ICN_MISSING: EditSpec(
            _E, _F.FIX_CLAIM_FREQUENCY, "replacement or void needs the payer claim number (ICN)"
        ),
        EditCode.ICN_ON_ORIGINAL: EditSpec(
            _W, _F.FIX_CLAIM_FREQUENCY, "an original claim carries a payer ICN"
        ),
        EditCode.POS_INVALID: EditSpec(
            _E, _F.FIX_CODING, "place of service is unknown or not valid on the date of service"
        ),
        EditCode.POS_MODIFIER_MISMATCH: EditSpec(
            _W, _F.FIX_CODING, "telehealth place of service and 95/93 modifiers disagree"
        ),
        EditCode.NO_LINES: EditSpec(_E, _F.FIX_CODING, "claim has no service lines"),
        EditCode.PROCEDURE_CODE_INVALID: EditSpec(
            _E, _F.FIX_CODING, "procedure code is not a five-character CPT/HCPCS code"
        ),
        EditCode.MODIFIER_INVALID: EditSpec(
            _E, _F.FIX_CODING, "modifiers must be two characters, at most four per line"
        ),
        EditCode.LINE_DOS_MISMATCH: EditSpec(
            _W, _F.FIX_CODING, "line date of service differs from the claim's"
        ),
        EditCode.DOS_IN_FUTURE: EditSpec(
            _E, _F.WAIT_UNTIL_SERVICE, "date of service is in the future"
        ),
        EditCode.DOS_OUTSIDE_COVERAGE: EditSpec(
            _E, _F.VERIFY_ELIGIBILITY, "date of service is outside the coverage window"
        ),
        EditCode.TIMELY_FILING_EXPIRED: EditSpec(
            _E, _F.WRITE_OFF_OR_PROVE_TIMELY, "timely filing deadline has passed"
        ),
        EditCode.TIMELY_FILING_NEAR: EditSpec(_W, _F.SUBMIT_NOW, "timely filing deadline is close"),
        EditCode.DX_MISSING: EditSpec(_E, _F.FIX_DIAGNOSES, "claim has no diagnosis"),
        EditCode.DX_TOO_MANY: EditSpec(
            _E, _F.FIX_DIAGNOSES, "claim has more than twelve diagnoses"
        ),
        EditCode.DX_FORMAT: EditSpec(_E, _F.FIX_DIAGNOSES, "diagnosis is not in ICD-10-CM format"),
        EditCode.DX_DUPLICATE: EditSpec(_W, _F.FIX_DIAGNOSES, "diagnosis is listed twice"),
        EditCode.POINTER_MISSING: EditSpec(_E, _F.FIX_DIAGNOSES, "line points to no diagnosis"),
        EditCode.POINTER_TOO_MANY: EditSpec(
            _E, _F.FIX_DIAGNOSES, "line has more than four diagnosis pointers"
        ),
        EditCode.POINTER_OUT_OF_RANGE: EditSpec(
            _E, _F.FIX_DIAGNOSES, "diagnosis pointer does not match a listed diagnosis"
        ),
        EditCode.POINTER_REPEATED: EditSpec(
            _E, _F.FIX_DIAGNOSES, "line repeats a diagnosis pointer"
        ),
        EditCode.UNITS_NOT_POSITIVE: EditSpec(_E, _F.FIX_CODING, "line units must be positive"),
        EditCode.BASE_UNITS: EditSpec(
            _E, _F.FIX_CODING, "an initial MTM code (99605/99606) is billed with one unit"
        ),
        EditCode.MULTIPLE_BASE_CODES: EditSpec(
            _E, _F.FIX_CODING, "more than one initial MTM code on the same date of service"
        ),
        EditCode.ADDON_WITHOUT_BASE: EditSpec(
            _E, _F.FIX_CODING, "add-on code without its base code on the same date of service"
        ),
        EditCode.ADDON_UNITS_OVER_CAP: EditSpec(
            _E, _F.FIX_CODING, "add-on units exceed the payer's cap"
        ),
        EditCode.DUPLICATE_LINE: EditSpec(
            _E, _F.FIX_CODING, "the same code is on two lines for the same date of service"
        ),
        EditCode.DUPLICATE_SERVICE: EditSpec(
            _E, _F.REVIEW_DUPLICATE, "this service was already billed for this patient and date"
        ),
        EditCode.LINE_CHARGE_NOT_POSITIVE: EditSpec(
            _E, _F.FIX_CHARGES, "line charge must be positive"
        ),
        EditCode.TOTAL_CHARGE_MISMATCH: EditSpec(
            _E, _F.FIX_CHARGES, "claim total charge differs from the sum of the lines"
        ),
    }
)


@dataclass(frozen=True, slots=True)
class Address:
    line1: str
    city: str
    state: str
    postal_code: str
    line2: str = ""


@dataclass(frozen=True, slots=True)
class ProviderRef:
    """An NPI with the entity type the claim declares for it, and its NUCC taxonomy."""

    npi: str
    entity_type: EntityType
    taxonomy: str


@dataclass(frozen=True, slots=True)
class Subscriber:
    member_id: str
    last_name: str
    first_name: str
    birth_date: date | None
    sex: str  # F, M or U (DMG03)


@dataclass(frozen=True, slots=True)
class ClaimLine:
    procedure_code: str
    modifiers: tuple[str, ...]
    units: int
    charge_cents: Cents
    date_of_service: date
    diagnosis_pointers: tuple[int, ...]  # 1-based positions in ClaimDraft.diagnoses


@dataclass(frozen=True, slots=True)
class ClaimDraft:
    """The claim as it would go out in an 837P, in plain values."""

    patient_control_number: str
    patient_id: str
    billing_provider: ProviderRef
    billing_tin: str
    billing_address: Address
    rendering_provider: ProviderRef
    subscriber: Subscriber
    date_of_service: date
    coverage_from: date
    coverage_to: date | None
    timely_filing_deadline: date
    place_of_service: str
    diagnoses: tuple[str, ...]
    lines: tuple[ClaimLine, ...]
    total_charge_cents: Cents
    max_addon_units: int | None = None  # per date of service; None = no payer cap
    frequency_code: str = "1"
    payer_icn: str | None = None


@dataclass(frozen=True, slots=True)
class PriorLine:
    """A line already on another claim for the same patient (from the claim store)."""

    patient_id: str
    procedure_code: str
    date_of_service: date
    claim_status: ClaimStatus
    patient_control_number: str = ""
    payer_icn: str | None = None
    # Another claim was rebilled from this one ("bill another payer": some claim's
    # rebilled_from_claim_id is this claim's id).
    rebilled: bool = False


@dataclass(frozen=True, slots=True)
class Finding:
    code: EditCode
    severity: Severity
    message: str
    field: str
    action: FollowUp


@dataclass(frozen=True, slots=True)
class ScrubResult:
    findings: tuple[Finding, ...]
    passed: bool = field(init=False)

    def __post_init__(self) -> None:
        passed = all(finding.severity is not Severity.ERROR for finding in self.findings)
        object.__setattr__(self, "passed", passed)

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.WARNING)

    @property
    def codes(self) -> frozenset[EditCode]:
        return frozenset(f.code for f in self.findings)


@dataclass(frozen=True, slots=True)
class _Context:
    draft: ClaimDraft
    prior_billed: Sequence[PriorLine]
    today: date
    pos_table: CodeTable[PlaceOfService]


def _finding(code: EditCode, field_path: str, message: str) -> Finding:
    spec = EDITS[code]
    return Finding(
        code=code, severity=spec.severity, message=message, field=field_path, action=spec.action
    )


_Check = Callable[[_Context], Iterable[Finding]]


def _check_npis(ctx: _Context) -> Iterable[Finding]:
    places = (
        ("billing_provider", ctx.draft.billing_provider, EntityType.ORGANIZATION),
        ("rendering_provider", ctx.draft.rendering_provider, EntityType.PERSON),
    )
    for place, provider, expected in places:
        invalid, wrong_type = (
            (EditCode.BILLING_NPI_INVALID, EditCode.BILLING_NPI_TYPE)
            if expected is EntityType.ORGANIZATION
            else (EditCode.RENDERING_NPI_INVALID, EditCode.RENDERING_NPI_TYPE)
        )
        if not npi_is_valid(provider.npi):
            yield _finding(
                invalid,
                f"{place}.npi",
                f"{place} NPI {provider.npi!r} is not ten digits starting 1 or 2 "
                "with a valid check digit",
            )
        if provider.entity_type != expected:
            yield _finding(
                wrong_type,
                f"{place}.entity_type",
                f"{place} is declared entity type {provider.entity_type.value}; "
                f"this place needs type {expected.value}",
            )


def _check_tin(ctx: _Context) -> Iterable[Finding]:
    problem = tin_problem(ctx.draft.billing_tin)
    if problem is not None:
        yield _finding(EditCode.BILLING_TIN_INVALID, "billing_tin", f"billing TIN {problem}")


def _check_taxonomies(ctx: _Context) -> Iterable[Finding]:
    for place, provider in (
        ("billing_provider", ctx.draft.billing_provider),
        ("rendering_provider", ctx.draft.rendering_provider),
    ):
        if not provider.taxonomy.strip():
            yield _finding(
                EditCode.TAXONOMY_MISSING, f"{place}.taxonomy", f"{place} taxonomy is missing"
            )
        elif not taxonomy_is_valid_format(provider.taxonomy):
            yield _finding(
                EditCode.TAXONOMY_INVALID,
                f"{place}.taxonomy",
                f"{place} taxonomy {provider.taxonomy!r} is not ten characters ending in X",
            )


def _check_billing_address(ctx: _Context) -> Iterable[Finding]:
    address = ctx.draft.billing_address
    missing = [
        name
        for name, value in (("line1", address.line1), ("city", address.city))
        if not value.strip()
    ]
    if not _STATE.match(address.state):
        missing.append("state")
    if missing:
        yield _finding(
            EditCode.BILLING_ADDRESS_INCOMPLETE,
            "billing_address",
            f"billing address is missing or has an invalid {', '.join(missing)}",
        )
    if _PO_BOX.search(address.line1) or _PO_BOX.search(address.line2):
        yield _finding(
            EditCode.BILLING_ADDRESS_PO_BOX,
            "billing_address.line1",
            "billing provider address is a post office box; 2010AA needs a street address "
            "(use a pay-to address for a box)",
        )
    if not _ZIP9.match(address.postal_code.replace("-", "")):
        yield _finding(
            EditCode.BILLING_ZIP_INVALID,
            "billing_address.postal_code",
            f"billing ZIP {address.postal_code!r} must be nine digits (ZIP+4)",
        )


def _check_subscriber(ctx: _Context) -> Iterable[Finding]:
    subscriber = ctx.draft.subscriber
    if not subscriber.member_id.strip():
        yield _finding(EditCode.MEMBER_ID_MISSING, "subscriber.member_id", "member ID is empty")
    missing = [
        name
        for name, present in (
            ("last_name", bool(subscriber.last_name.strip())),
            ("first_name", bool(subscriber.first_name.strip())),
            ("birth_date", subscriber.birth_date is not None),
            ("sex", subscriber.sex in {"F", "M", "U"}),
        )
        if not present
    ]
    if missing:
        yield _finding(
            EditCode.SUBSCRIBER_INCOMPLETE,
            "subscriber",
            f"subscriber is missing or has an invalid {', '.join(missing)}",
        )
    if subscriber.birth_date is not None and subscriber.birth_date > ctx.draft.date_of_service:
        yield _finding(
            EditCode.BIRTH_DATE_AFTER_SERVICE,
            "subscriber.birth_date",
            f"birth date {subscriber.birth_date} is after the date of service "
            f"{ctx.draft.date_of_service}",
        )


def _check_pcn(ctx: _Context) -> Iterable[Finding]:
    pcn = ctx.draft.patient_control_number
    if not pcn or len(pcn) > PCN_MAX_LENGTH or not _PCN.match(pcn):
        yield _finding(
            EditCode.PCN_INVALID,
            "patient_control_number",
            f"patient control number {pcn!r} must be 1-{PCN_MAX_LENGTH} letters, digits or hyphens",
        )


def _check_frequency(ctx: _Context) -> Iterable[Finding]:
    draft = ctx.draft
    icn = (draft.payer_icn or "").strip()
    if draft.frequency_code not in {"1", "7", "8"}:
        yield _finding(
            EditCode.FREQUENCY_INVALID,
            "frequency_code",
            f"frequency {draft.frequency_code!r} is not 1 (original), 7 (replacement) or 8 (void)",
        )
    elif draft.frequency_code in {"7", "8"} and not icn:
        yield _finding(
            EditCode.FREQUENCY_ICN_MISSING,
            "payer_icn",
            f"frequency {draft.frequency_code} needs REF*F8 with the payer ICN from the 835",
        )
    elif draft.frequency_code == "1" and icn:
        yield _finding(
            EditCode.ICN_ON_ORIGINAL,
            "payer_icn",
            "an original claim carries a payer ICN; was a replacement (7) intended?",
        )


def _check_place_of_service(ctx: _Context) -> Iterable[Finding]:
    draft = ctx.draft
    pos = ctx.pos_table.lookup(draft.place_of_service, draft.date_of_service)
    if pos is None:
        yield _finding(
            EditCode.POS_INVALID,
            "place_of_service",
            f"place of service {draft.place_of_service!r} is not valid on {draft.date_of_service}",
        )
        return
    for index, line in enumerate(draft.lines):
        has_modifier = bool(TELEHEALTH_MODIFIERS.intersection(line.modifiers))
        if pos.telehealth != has_modifier:
            expected = "needs" if pos.telehealth else "should not carry"
            yield _finding(
                EditCode.POS_MODIFIER_MISMATCH,
                f"lines[{index}].modifiers",
                f"place of service {pos.code} ({pos.description}) {expected} modifier 95 or 93 "
                "unless the payer says otherwise",
            )


def _check_line_codes(ctx: _Context) -> Iterable[Finding]:
    draft = ctx.draft
    if not draft.lines:
        yield _finding(EditCode.NO_LINES, "lines", "claim has no service lines")
    for index, line in enumerate(draft.lines):
        if not _PROCEDURE.match(line.procedure_code):
            yield _finding(
                EditCode.PROCEDURE_CODE_INVALID,
                f"lines[{index}].procedure_code",
                f"procedure code {line.procedure_code!r} is not five characters",
            )
        bad = [m for m in line.modifiers if not _MODIFIER.match(m)]
        if bad or len(line.modifiers) > 4:
            yield _finding(
                EditCode.MODIFIER_INVALID,
                f"lines[{index}].modifiers",
                f"modifiers {list(line.modifiers)} must be at most four two-character codes",
            )
        if line.date_of_service != draft.date_of_service:
            yield _finding(
                EditCode.LINE_DOS_MISMATCH,
                f"lines[{index}].date_of_service",
                f"line date {line.date_of_service} differs from claim date {draft.date_of_service}",
            )


def _service_dates(draft: ClaimDraft) -> list[tuple[str, date]]:
    dates = [("date_of_service", draft.date_of_service)]
    dates.extend(
        (f"lines[{i}].date_of_service", line.date_of_service) for i, line in enumerate(draft.lines)
    )
    return dates


def _check_service_dates(ctx: _Context) -> Iterable[Finding]:
    draft = ctx.draft
    for path, dos in _service_dates(draft):
        if dos > ctx.today:
            yield _finding(
                EditCode.DOS_IN_FUTURE, path, f"date of service {dos} is after today {ctx.today}"
            )
        if dos < draft.coverage_from or (draft.coverage_to is not None and dos > draft.coverage_to):
            window_end = draft.coverage_to.isoformat() if draft.coverage_to else "open"
            yield _finding(
                EditCode.DOS_OUTSIDE_COVERAGE,
                path,
                f"date of service {dos} is outside coverage {draft.coverage_from} to {window_end}",
            )


def _check_timely_filing(ctx: _Context) -> Iterable[Finding]:
    draft = ctx.draft
    if draft.frequency_code == "8":
        return  # a void withdraws a claim; it is not a filing
    days_left = (draft.timely_filing_deadline - ctx.today).days
    if days_left < 0:
        yield _finding(
            EditCode.TIMELY_FILING_EXPIRED,
            "timely_filing_deadline",
            f"timely filing deadline {draft.timely_filing_deadline} passed {-days_left} days ago; "
            "write off unless there is proof of timely filing (999/277CA acceptance)",
        )
    elif days_left <= TIMELY_FILING_WARNING_DAYS:
        yield _finding(
            EditCode.TIMELY_FILING_NEAR,
            "timely_filing_deadline",
            f"timely filing deadline {draft.timely_filing_deadline} is {days_left} days away",
        )


def _check_diagnoses(ctx: _Context) -> Iterable[Finding]:
    diagnoses = ctx.draft.diagnoses
    if not diagnoses:
        yield _finding(EditCode.DX_MISSING, "diagnoses", "at least one diagnosis is required")
    if len(diagnoses) > MAX_DIAGNOSES:
        yield _finding(
            EditCode.DX_TOO_MANY,
            "diagnoses",
            f"{len(diagnoses)} diagnoses; an 837P claim carries at most {MAX_DIAGNOSES}",
        )
    seen: set[str] = set()
    for index, code in enumerate(diagnoses):
        if not icd10_is_valid_format(code):
            yield _finding(
                EditCode.DX_FORMAT, f"diagnoses[{index}]", f"{code!r} is not an ICD-10-CM code"
            )
        normalized = icd10_normalize(code)
        if normalized in seen:
            yield _finding(
                EditCode.DX_DUPLICATE, f"diagnoses[{index}]", f"{normalized} is listed twice"
            )
        seen.add(normalized)


def _check_pointers(ctx: _Context) -> Iterable[Finding]:
    count = len(ctx.draft.diagnoses)
    for index, line in enumerate(ctx.draft.lines):
        path = f"lines[{index}].diagnosis_pointers"
        pointers = line.diagnosis_pointers
        if not pointers:
            yield _finding(EditCode.POINTER_MISSING, path, "line must point to a diagnosis")
        if len(pointers) > MAX_POINTERS_PER_LINE:
            yield _finding(
                EditCode.POINTER_TOO_MANY,
                path,
                f"{len(pointers)} pointers; at most {MAX_POINTERS_PER_LINE} per line",
            )
        out_of_range = [p for p in pointers if not 1 <= p <= min(count, MAX_DIAGNOSES)]
        if out_of_range:
            yield _finding(
                EditCode.POINTER_OUT_OF_RANGE,
                path,
                f"pointers {out_of_range} do not match diagnoses 1..{count}",
            )
        if len(set(pointers)) != len(pointers):
            yield _finding(EditCode.POINTER_REPEATED, path, f"pointers {list(pointers)} repeat")


def _check_units(ctx: _Context) -> Iterable[Finding]:
    draft = ctx.draft
    base_lines: dict[date, list[int]] = {}
    addon_units: Counter[tuple[str, date]] = Counter()
    for index, line in enumerate(draft.lines):
        path = f"lines[{index}].units"
        if line.units <= 0:
            yield _finding(EditCode.UNITS_NOT_POSITIVE, path, f"units {line.units} must be >= 1")
        if line.procedure_code in BASE_CODES:
            base_lines.setdefault(line.date_of_service, []).append(index)
            if line.units != 1:
                yield _finding(
                    EditCode.BASE_UNITS,
                    path,
                    f"{line.procedure_code} covers the initial 15 minutes and is billed with "
                    f"one unit, not {line.units}; extra time goes on 99607",
                )
        if line.procedure_code in ADDON_BASES:
            addon_units[(line.procedure_code, line.date_of_service)] += max(line.units, 0)
    for dos, indexes in base_lines.items():
        if len(indexes) > 1:
            yield _finding(
                EditCode.MULTIPLE_BASE_CODES,
                f"lines[{indexes[1]}].procedure_code",
                f"lines {indexes} each bill an initial MTM code on {dos}; one encounter has one",
            )
    for index, line in enumerate(draft.lines):
        bases = ADDON_BASES.get(line.procedure_code)
        if bases is None:
            continue
        has_base = any(
            other.procedure_code in bases and other.date_of_service == line.date_of_service
            for other in draft.lines
        )
        if not has_base:
            yield _finding(
                EditCode.ADDON_WITHOUT_BASE,
                f"lines[{index}].procedure_code",
                f"{line.procedure_code} is an add-on and needs {' or '.join(sorted(bases))} "
                f"on {line.date_of_service}",
            )
    if draft.max_addon_units is not None:
        for (code, dos), units in addon_units.items():
            if units > draft.max_addon_units:
                yield _finding(
                    EditCode.ADDON_UNITS_OVER_CAP,
                    "lines",
                    f"{units} units of {code} on {dos}; the payer allows {draft.max_addon_units}",
                )


def _stands(prior: PriorLine) -> bool:
    """Whether the prior line's claim still bills the service to a payer (the duplicate
    check's one rule). Not when its status never reached or no longer stands at the payer
    (``_NOT_BILLED``), nor when it is a denied claim closed by "bill another payer": it is
    ``closed`` and another claim was rebilled from it, so the service now stands on that claim
    (which is itself a prior line, checked in turn). A rebilled claim the payer re-adjudicated
    or that was appealed since has left ``closed`` and stands again."""
    if prior.claim_status in _NOT_BILLED:
        return False
    return not (prior.rebilled and prior.claim_status is ClaimStatus.CLOSED)


def _check_duplicates(ctx: _Context) -> Iterable[Finding]:
    draft = ctx.draft
    first_seen: dict[tuple[str, tuple[str, ...], date], int] = {}
    for index, line in enumerate(draft.lines):
        key = (line.procedure_code, tuple(sorted(line.modifiers)), line.date_of_service)
        if key in first_seen:
            yield _finding(
                EditCode.DUPLICATE_LINE,
                f"lines[{index}]",
                f"line repeats line {first_seen[key]} ({line.procedure_code} on "
                f"{line.date_of_service}); combine the units",
            )
        else:
            first_seen[key] = index
    correcting_icn = (draft.payer_icn or "").strip() if draft.frequency_code in {"7", "8"} else ""
    for index, line in enumerate(draft.lines):
        for prior in ctx.prior_billed:
            if (
                prior.patient_id != draft.patient_id
                or prior.procedure_code != line.procedure_code
                or prior.date_of_service != line.date_of_service
                or not _stands(prior)
                or prior.patient_control_number == draft.patient_control_number
            ):
                continue
            if correcting_icn and (prior.payer_icn or "").strip() == correcting_icn:
                continue  # the claim this replacement or void corrects
            yield _finding(
                EditCode.DUPLICATE_SERVICE,
                f"lines[{index}]",
                f"{line.procedure_code} on {line.date_of_service} is already on claim "
                f"{prior.patient_control_number or '(unknown)'} ({prior.claim_status.value}); "
                "send a replacement (7) instead of a new claim",
            )
            break


def _check_charges(ctx: _Context) -> Iterable[Finding]:
    draft = ctx.draft
    for index, line in enumerate(draft.lines):
        if line.charge_cents <= 0:
            yield _finding(
                EditCode.LINE_CHARGE_NOT_POSITIVE,
                f"lines[{index}].charge_cents",
                f"line charge {format_cents(line.charge_cents)} must be positive",
            )
    total = sum(line.charge_cents for line in draft.lines)
    if total != draft.total_charge_cents:
        yield _finding(
            EditCode.TOTAL_CHARGE_MISMATCH,
            "total_charge_cents",
            f"claim total {format_cents(draft.total_charge_cents)} differs from the line sum "
            f"{format_cents(total)} (CLM02 must equal the sum of SV102)",
        )


RULES: tuple[tuple[str, _Check], ...] = (
    ("provider_npis", _check_npis),
    ("billing_tin", _check_tin),
    ("provider_taxonomies", _check_taxonomies),
    ("billing_address", _check_billing_address),
    ("subscriber", _check_subscriber),
    ("patient_control_number", _check_pcn),
    ("claim_frequency", _check_frequency),
    ("place_of_service", _check_place_of_service),
    ("line_codes", _check_line_codes),
    ("service_dates", _check_service_dates),
    ("timely_filing", _check_timely_filing),
    ("diagnoses", _check_diagnoses),
    ("diagnosis_pointers", _check_pointers),
    ("units", _check_units),
    ("duplicates", _check_duplicates),
    ("charges", _check_charges),
)
"""Named rules in run order; each emits findings with codes from ``EDITS``."""


def scrub(
    draft: ClaimDraft,
    prior_billed: Sequence[PriorLine],
    today: date,
    *,
    pos_table: CodeTable[PlaceOfService] | None = None,
) -> ScrubResult:
    """Run every edit and collect all findings (the scrubber never stops at the first)."""
    ctx = _Context(
        draft=draft,
        prior_billed=prior_billed,
        today=today,
        pos_table=pos_table if pos_table is not None else load_pos(),
    )
    findings: list[Finding] = []
    for _name, check in RULES:
        findings.extend(check(ctx))
    return ScrubResult(findings=tuple(findings))
