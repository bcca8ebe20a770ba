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
