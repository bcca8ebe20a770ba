"""msgspec Structs for the coverage HTTP edge. Amounts are decimal strings ("75.00"), dates
ISO; domain objects and rows never leak out (see `service.py` for the mapping)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from msgspec import Meta, Struct

from services.coverage.domain.contracts import (
    BillingModel,
    LimitPeriod,
    LimitScope,
    Modality,
    PatientLocation,
    PaymentMode,
    ProrationRule,
    TimeRule,
)

Amount = Annotated[
    str,
    Meta(pattern=r"^-?[0-9]{1,10}(\.[0-9]{1,2})?$", description="decimal amount, e.g. 75.00"),
]
Text100 = Annotated[str, Meta(min_length=1, max_length=100)]
Text60 = Annotated[str, Meta(min_length=1, max_length=60)]
Ref = Annotated[str, Meta(min_length=1, max_length=100, pattern=r"^[\x21-\x7e]+$")]
MemberId = Annotated[str, Meta(min_length=1, max_length=80)]
Uuid = Annotated[str, Meta(min_length=1, max_length=64)]
Sex = Literal["M", "F", "U"]
PriorityName = Literal["primary", "secondary", "tertiary"]
Limit = Annotated[int, Meta(ge=1, le=500)]


# ----------------------------------------------------------------------------- payers


class PayerCreate(Struct, frozen=True, forbid_unknown_fields=True):
    name: Text100
    x12_payer_id: Annotated[str, Meta(min_length=2, max_length=80)]
    receiver_id: Annotated[str, Meta(min_length=2, max_length=80)]
    receiver_name: Text60
    claim_filing_indicator: Annotated[
        str, Meta(pattern=r"^[0-9A-Z]{2}$", description="SBR09: MC, MB, CI, HM, ...")
    ]
    timely_filing_days: Annotated[int, Meta(ge=1, le=3650)]
    appeal_window_days: Annotated[int, Meta(ge=0, le=3650)]
    trading_partner_id: Annotated[str, Meta(min_length=1, max_length=15)]
    transport: Literal["directory", "http"] = "directory"
    roster_columns: dict[str, Text100] | None = None


class PayerUpdate(Struct, frozen=True, forbid_unknown_fields=True):
    """Only the fields sent change."""

    name: Text100 | None = None
    receiver_id: Annotated[str, Meta(min_length=2, max_length=80)] | None = None
    receiver_name: Text60 | None = None
    claim_filing_indicator: Annotated[str, Meta(pattern=r"^[0-9A-Z]{2}$")] | None = None
    timely_filing_days: Annotated[int, Meta(ge=1, le=3650)] | None = None
    appeal_window_days: Annotated[int, Meta(ge=0, le=3650)] | None = None
    trading_partner_id: Annotated[str, Meta(min_length=1, max_length=15)] | None = None
    transport: Literal["directory", "http"] | None = None
    roster_columns: dict[str, Text100] | None = None


class PayerRead(Struct):
    id: str
    name: str
    x12_payer_id: str
    receiver_id: str
    receiver_name: str
    claim_filing_indicator: str
    timely_filing_days: int
    appeal_window_days: int
    transport: str
    trading_partner_id: str
    roster_columns: dict[str, str] | None
    version: int
    created_at: datetime
    updated_at: datetime


class PayerPage(Struct):
    items: list[PayerRead]
    next: str | None = None


# ----------------------------------------------------------------------------- contract terms


class FrequencyLimitIn(Struct, frozen=True, forbid_unknown_fields=True):
    service_type: LimitScope
    max_count: int
    period: LimitPeriod


class TelehealthRuleIn(Struct, frozen=True, forbid_unknown_fields=True):
    modality: Modality
    location: PatientLocation
    place_of_service: Annotated[str, Meta(max_length=2)]
    modifier: Annotated[str, Meta(max_length=2)] | None = None


class TelehealthIn(Struct, frozen=True, forbid_unknown_fields=True):
    allowed_modalities: list[Modality]
    rules: list[TelehealthRuleIn]


class FeeEntryIn(Struct, frozen=True, forbid_unknown_fields=True):
    code: Annotated[str, Meta(min_length=1, max_length=10)]
    charge: Amount
    allowed: Amount
    effective_from: date
    effective_to: date | None = None
    modifier: Annotated[str, Meta(max_length=2)] | None = None


class TierRateIn(Struct, frozen=True, forbid_unknown_fields=True):
    tier: Annotated[str, Meta(max_length=40)]
    rate: Amount


class ActivityIn(Struct, frozen=True, forbid_unknown_fields=True):
    min_minutes: int | None = None
    min_interventions: int | None = None


class MonthlyCodeIn(Struct, frozen=True, forbid_unknown_fields=True):
    code: Annotated[str, Meta(min_length=1, max_length=10)]
    min_minutes: int
    addon_code: Annotated[str, Meta(max_length=10)] | None = None
    addon_step_minutes: int | None = None
    max_addon_units: int | None = None


class PmpmIn(Struct, frozen=True, forbid_unknown_fields=True):
    rates: list[TierRateIn]
    default_tier: str | None = None
    proration: ProrationRule = ProrationRule.FIRST_OF_MONTH
    activity: ActivityIn | None = None
    monthly_codes: list[MonthlyCodeIn] = []
    retro_window_months: int = 6
    payment_mode: PaymentMode = PaymentMode.CAPITATION


class Terms(Struct, frozen=True, forbid_unknown_fields=True):
    """Contract terms on the wire; the same shape is returned on read."""

    billing_model: BillingModel
    time_rule: TimeRule = TimeRule.MIDPOINT
    new_patient_lookback_years: int = 3
    min_base_minutes: int | None = None
    max_addon_units: int | None = None
    frequency_limits: list[FrequencyLimitIn] = []
    plan_year_start_month: int = 1
    # None: in-person only (POS 01 at the pharmacy, 11 elsewhere).
    telehealth: TelehealthIn | None = None
    fee_schedule: list[FeeEntryIn] = []
    pmpm: PmpmIn | None = None
    exclusions: list[Annotated[str, Meta(max_length=60)]] = []
    required_documentation: list[Annotated[str, Meta(max_length=60)]] = []


class ContractCreate(Struct, frozen=True, forbid_unknown_fields=True):
    payer_id: Uuid
    name: Text100
    effective_from: date
    terms: Terms
    effective_to: date | None = None


class ContractVersionCreate(Struct, frozen=True, forbid_unknown_fields=True):
    """A new version; an open-ended version in force before `effective_from` is closed on
    the day before, any other overlap is a 422."""

    effective_from: date
    terms: Terms
    effective_to: date | None = None


class ContractVersionRead(Struct):
    version: int
    effective_from: date
    effective_to: date | None
    terms: Terms
    created_at: datetime


class ContractRead(Struct):
    id: str
    payer_id: str
    name: str
    created_at: datetime
    versions: list[ContractVersionRead]


class ContractSummary(Struct):
    id: str
    payer_id: str
    name: str
    created_at: datetime
    latest_version: int


class ContractPage(Struct):
    items: list[ContractSummary]
    next: str | None = None


# ----------------------------------------------------------------------------- patients, spans


class AddressIn(Struct, frozen=True, forbid_unknown_fields=True):
    line1: Text100
    city: Text60
    state: Annotated[str, Meta(pattern=r"^[A-Z]{2}$")]
    zip: Annotated[str, Meta(pattern=r"^[0-9]{5}(-?[0-9]{4})?$")]
    line2: Annotated[str, Meta(max_length=100)] | None = None


class PatientCreate(Struct, frozen=True, forbid_unknown_fields=True):
    patient_ref: Ref
    first_name: Text60
    last_name: Text60
    birth_date: date
    sex: Sex = "U"
    address: AddressIn | None = None


class PatientRead(Struct):
    id: str
    patient_ref: str
    first_name: str
    last_name: str
    birth_date: date
    sex: str
    address: AddressIn | None
    created_at: datetime
    updated_at: datetime


class PatientPage(Struct):
    items: list[PatientRead]
    next: str | None = None


class SpanCreate(Struct, frozen=True, forbid_unknown_fields=True):
    """A manual span, or (with `span_id`) a new version of an existing span: a
    retro-termination is a new version with an earlier `effective_to`."""

    contract_id: Uuid
    member_id: MemberId
    effective_from: date
    effective_to: date | None = None
    span_id: Annotated[str, Meta(min_length=1, max_length=200)] | None = None
    group: Annotated[str, Meta(max_length=50)] | None = None
    relationship: Annotated[str, Meta(pattern=r"^[0-9]{2}$")] = "18"
    priority: PriorityName = "primary"
    rate_tier: Annotated[str, Meta(max_length=40)] | None = None
    opt_out_date: date | None = None
    population_flags: list[Annotated[str, Meta(pattern=r"^[A-Z][A-Z0-9_]*$")]] = []


class SpanRead(Struct):
    span_id: str
    version: int
    payer_id: str
    contract_id: str
    member_id: str
    group: str | None
    relationship: str
    priority: str
    effective_from: date
    effective_to: date | None
    rate_tier: str | None
    opt_out_date: date | None
    population_flags: list[str]
    source: str
    recorded_at: datetime
    void: bool


class SpansRead(Struct):
    patient_id: str
    as_known_at: datetime | None
    # The latest version of each span known at `as_known_at`.
    spans: list[SpanRead]
    # Every version recorded up to `as_known_at`, oldest first.
    history: list[SpanRead]


# ----------------------------------------------------------------------------- eligibility


class EligibilityCheck(Struct, frozen=True, forbid_unknown_fields=True):
    patient_ref: Ref
    date_of_service: date
    service_type: Literal["CMR", "TMR", "FOLLOW_UP", "follow_up"]
    modality: Modality | None = None
    patient_location: PatientLocation | None = None
    as_known_at: datetime | None = None


class ReasonRead(Struct):
    code: str
    message: str
    fix: str
    span_id: str | None = None


class UsageRead(Struct):
    service_type: str
    period: str
    period_start: date
    period_end: date
    used: int
    max_count: int
    text: str


class WindowRead(Struct):
    start: date
    end: date | None


class ChosenCoverage(Struct):
    span_id: str
    span_version: int
    payer_id: str
    payer_name: str
    contract_id: str
    contract_version: int
    billing_model: str
    member_id: str
    group: str | None
    priority: str
    rate_tier: str | None
    source: str


class RoutingRead(Struct):
    place_of_service: str
    modifier: str | None


class RejectedSpan(Struct):
    span_id: str
    reasons: list[ReasonRead]
    usage: list[UsageRead]


class EligibilityRead(Struct):
    eligible: bool
    patient_id: str
    patient_ref: str
    date_of_service: date
    service_type: str
    as_known_at: datetime | None
    reasons: list[ReasonRead]
    coverage: ChosenCoverage | None
    window: WindowRead | None
    usage: list[UsageRead]
    usage_text: list[str]
    routing: RoutingRead | None
    rejected: list[RejectedSpan]


# ----------------------------------------------------------------------------- rosters


class ImportRead(Struct):
    import_id: str
    format: str
    payer_id: str
    contract_id: str
    # True when this exact file was imported before: nothing changed this time.
    replayed: bool
    members: int
    patients_created: int
    span_versions_added: int
    unchanged: int
    terminated: int
    imported_at: datetime
    warnings: list[str] = []
    # 834 BGN08 4 (verify): reported, not applied.
    applied: bool = True
