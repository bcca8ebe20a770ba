"""msgspec Structs for the billing HTTP edge. Domain objects and rows never leak out."""

from __future__ import annotations

from datetime import date, datetime, time
from enum import StrEnum
from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct

NPI = Annotated[str, Meta(pattern=r"^[12][0-9]{9}$", description="10-digit NPI")]
TIN = Annotated[str, Meta(pattern=r"^[0-9]{2}-?[0-9]{7}$", description="EIN, 9 digits")]
Text100 = Annotated[str, Meta(min_length=1, max_length=100)]
Text60 = Annotated[str, Meta(min_length=1, max_length=60)]
ExternalId = Annotated[str, Meta(min_length=1, max_length=100, pattern=r"^[\x21-\x7e]+$")]
ICD10 = Annotated[
    str,
    Meta(
        pattern=r"^[A-Za-z][0-9][0-9A-Za-z](\.?[0-9A-Za-z]{1,4})?$",
        description="ICD-10-CM code, with or without the dot",
    ),
]
Taxonomy = Annotated[str, Meta(pattern=r"^[0-9]{3}[0-9A-Z]{6}X$")]
State = Annotated[str, Meta(pattern=r"^[A-Z]{2}$")]
Zip = Annotated[str, Meta(pattern=r"^[0-9]{5}(-?[0-9]{4})?$")]
Element = Annotated[str, Meta(min_length=1, max_length=60)]


class Modality(StrEnum):
    IN_PERSON = "in_person"
    VIDEO = "video"
    AUDIO = "audio"


class PatientLocation(StrEnum):
    PHARMACY = "pharmacy"
    HOME = "home"
    OTHER = "other"


class ServiceType(StrEnum):
    CMR = "CMR"
    TMR = "TMR"
    FOLLOW_UP = "follow_up"


class InterventionOutcome(StrEnum):
    ACCEPTED = "accepted"
    MODIFIED = "modified"
    DECLINED = "declined"
    PENDING = "pending"
    NOT_APPLICABLE = "not_applicable"


class DtpCategory(StrEnum):
    """Drug therapy problem categories (Cipolle/Strand): indication, effectiveness, safety,
    adherence."""

    UNNECESSARY_THERAPY = "unnecessary_therapy"
    NEEDS_ADDITIONAL_THERAPY = "needs_additional_therapy"
    INEFFECTIVE_DRUG = "ineffective_drug"
    DOSAGE_TOO_LOW = "dosage_too_low"
    ADVERSE_DRUG_REACTION = "adverse_drug_reaction"
    DOSAGE_TOO_HIGH = "dosage_too_high"
    NONADHERENCE = "nonadherence"
    NONE = "none"


class Address(Struct, frozen=True, forbid_unknown_fields=True):
    line1: Text100
    city: Text60
    state: State
    zip: Zip
    line2: Annotated[str, Meta(max_length=100)] | None = None


class Pharmacy(Struct, frozen=True, forbid_unknown_fields=True):
    npi: NPI
    tin: TIN
    name: Text100
    address: Address
    taxonomy: Taxonomy = "3336C0003X"


class Pharmacist(Struct, frozen=True, forbid_unknown_fields=True):
    npi: NPI
    first_name: Text60
    last_name: Text60
    taxonomy: Taxonomy = "183500000X"


class Intervention(Struct, frozen=True, forbid_unknown_fields=True):
    type: Annotated[str, Meta(min_length=1, max_length=60)]
    dtp_category: DtpCategory
    recommendation: Annotated[str, Meta(min_length=1, max_length=2000)]
    prescriber_contacted: bool
    outcome: InterventionOutcome
    drug: Annotated[str, Meta(max_length=200)] | None = None


class SessionCreate(Struct, frozen=True, forbid_unknown_fields=True):
    external_id: ExternalId
    patient_ref: ExternalId
    pharmacy: Pharmacy
    pharmacist: Pharmacist
    date_of_service: date
    modality: Modality
    patient_location: PatientLocation
    service_type: ServiceType
    consent: bool
    diagnoses: Annotated[list[ICD10], Meta(max_length=50)] = []
    interventions: Annotated[list[Intervention], Meta(max_length=100)] = []
    documentation_elements: Annotated[list[Element], Meta(max_length=100)] = []
    start_time: time | None = None
    end_time: time | None = None
    documented_minutes: Annotated[int, Meta(ge=0, le=600)] | None = None


class HistoryEntry(Struct):
    seq: int
    action: str
    actor: str
    occurred_at: datetime
    reason: str | None
    request_id: str | None
    after: Any = None


class SessionRead(Struct):
    id: str
    external_id: str
    patient_ref: str
    date_of_service: date
    state: str
    state_reason: str | None
    minutes: int
    created_at: datetime
    updated_at: datetime
    session: SessionCreate
    history: list[HistoryEntry] = []


class AuditEventRead(Struct):
    seq: int
    action: str
    actor: str
    occurred_at: datetime
    request_id: str | None
    reason: str | None
    before: Any
    after: Any
    prev_hash: str
    hash: str


class AuditTrailRead(Struct):
    entity_type: str
    entity_id: str
    chain_valid: bool
    events: list[AuditEventRead]
    broken_at_seq: int | None = None
    problem: str | None = None


session_encoder = msgspec.json.Encoder()


# ----------------------------------------------------------------------------- claims

Reason500 = Annotated[str, Meta(min_length=1, max_length=500)]
MemberId = Annotated[str, Meta(min_length=1, max_length=80, pattern=r"^[\x21-\x7e]+$")]


class ClaimLineRead(Struct):
    line_no: int
    procedure_code: str
    modifiers: list[str]
    units: int
    charge: str
    expected: str
    unit_charge: str
    date_of_service: date
    diagnosis_pointers: list[int]


class FindingRead(Struct):
    """One scrub edit that fired: a named rule, its severity and the follow-up action."""

    code: str
    severity: str
    message: str
    field: str
    action: str


class HoldReasonRead(Struct):
    """Why a claim is held or not billable; `source` is coding, eligibility, scrub or manual."""

    source: str
    code: str
    message: str
    fix: str
    field: str | None = None


class ClaimSummary(Struct):
    """`session_id` is the documented session the claim bills; a PMPM claim bills a
    member-month instead (`pmpm_period`, the month's first day) and has no session."""

    id: str
    session_id: str | None
    patient_control_number: str
    status: str
    patient_ref: str
    payer_id: str | None
    payer_name: str | None
    date_of_service: date
    total_charge: str
    expected: str
    version: int
    created_at: datetime
    updated_at: datetime
    pmpm_period: date | None = None


class ClaimPage(Struct):
    items: list[ClaimSummary]
    next_cursor: str | None = None


class ClaimRead(Struct):
    """A claim bills one documented session (`session_id`) or, for a PMPM contract that bills
    by claim, one member-month (`pmpm_period`: the month's first day; `pmpm_run_id`: the
    closed run whose line it bills; `session_id` is then null)."""

    id: str
    session_id: str | None
    patient_control_number: str
    claim_version: int
    frequency_code: str
    payer_icn: str | None
    status: str
    status_reason: str | None
    allowed_actions: list[str]
    patient_ref: str
    patient_id: str | None
    payer_id: str | None
    contract_id: str | None
    contract_version: int | None
    service_type: str
    date_of_service: date
    place_of_service: str | None
    total_charge: str
    expected: str
    timely_filing_deadline: date | None
    billing_provider: Any
    rendering_provider: Any
    subscriber: Any
    payer: Any
    diagnoses: list[str]
    lines: list[ClaimLineRead]
    hold_reasons: list[HoldReasonRead]
    scrub_findings: list[FindingRead]
    coding: Any
    eligibility: Any
    version: int
    created_at: datetime
    updated_at: datetime
    pmpm_period: date | None = None
    pmpm_run_id: str | None = None


class ClaimAction(Struct, frozen=True, forbid_unknown_fields=True):
    """Hold or release: why (for the audit trail) and, optionally, the version read."""

    reason: Reason500
    version: Annotated[int, Meta(ge=1)] | None = None


class ProviderPatch(Struct, frozen=True, forbid_unknown_fields=True):
    npi: NPI | None = None
    taxonomy: Taxonomy | None = None


class BillingProviderPatch(Struct, frozen=True, forbid_unknown_fields=True):
    npi: NPI | None = None
    taxonomy: Taxonomy | None = None
    tin: TIN | None = None
    address: Address | None = None


class LinePatch(Struct, frozen=True, forbid_unknown_fields=True):
    line_no: Annotated[int, Meta(ge=1, le=50)]
    units: Annotated[int, Meta(ge=1, le=99)]


class ClaimPatch(Struct, frozen=True, forbid_unknown_fields=True):
    """A biller's correction of a held claim; `version` is the one read (optimistic lock)."""

    version: Annotated[int, Meta(ge=1)]
    reason: Reason500 | None = None
    diagnoses: Annotated[list[ICD10], Meta(min_length=1, max_length=12)] | None = None
    member_id: MemberId | None = None
    rendering_provider: ProviderPatch | None = None
    billing_provider: BillingProviderPatch | None = None
    lines: Annotated[list[LinePatch], Meta(max_length=50)] | None = None


# ----------------------------------------------------------------------------- coding preview


class PreviewLineRead(Struct):
    procedure_code: str
    modifiers: list[str]
    units: int
    charge: str
    expected: str
    diagnosis_pointers: list[int]


class EligibilityRead(Struct):
    eligible: bool
    checked_on: date
    payer_id: str | None
    payer_name: str | None
    contract_id: str | None
    contract_version: int | None
    member_id: str | None
    usage: list[str]


class CodingPreviewRead(Struct):
    """What the worker would decide for this session now; nothing is written."""

    billable: bool
    coding_status: str
    claim_status: str
    reasons: list[HoldReasonRead]
    lines: list[PreviewLineRead]
    place_of_service: str | None
    modifiers: list[str]
    diagnoses: list[str]
    minutes: int
    patient_status: str | None
    last_visit: date | None
    total_charge: str
    expected: str
    rationale: str
    rule_version: str | None
    eligibility: EligibilityRead
    scrub_findings: list[FindingRead]
