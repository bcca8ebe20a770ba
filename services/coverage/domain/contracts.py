"""Payer MTM contract terms, versioned by effective dates.

A contract is a list of `ContractVersion`s; each version carries the complete `ContractTerms`
in force between its dates (inclusive). Terms are plain data: every rule that differs between
payers (time rule, look-back, caps, telehealth, fees, PMPM) lives here rather than in code,
because domain.md §11 lists them as unsettled nationally. Validation of these terms lives in
`contract_validation` (kept apart only for module size).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from shared.money import Cents

# Encounter codes (domain.md §1). 99607 is an add-on and never stands alone.
ENCOUNTER_CODES: frozenset[str] = frozenset({"99605", "99606", "99607"})

# Monthly care-management codes (domain.md §2): base code -> its add-on (None when the code
# has no time-based add-on, as for APCM G0556-G0558).
MONTHLY_BASE_TO_ADDON: dict[str, str | None] = {
    "99490": "99439",
    "99491": "99437",
    "99487": "99489",
    "99424": "99425",
    "99426": "99427",
    "G0556": None,
    "G0557": None,
    "G0558": None,
}
MONTHLY_ADDON_CODES: frozenset[str] = frozenset(
    addon for addon in MONTHLY_BASE_TO_ADDON.values() if addon is not None
)
MONTHLY_CODES: frozenset[str] = frozenset(MONTHLY_BASE_TO_ADDON) | MONTHLY_ADDON_CODES
KNOWN_CODES: frozenset[str] = ENCOUNTER_CODES | MONTHLY_CODES

# Place-of-service codes the service derives (domain.md §4) and telehealth modifiers.
PLACES_OF_SERVICE: frozenset[str] = frozenset({"01", "02", "10", "11"})
TELEHEALTH_MODIFIERS: frozenset[str] = frozenset({"95", "93"})


class BillingModel(StrEnum):
    PER_ENCOUNTER = "per_encounter"
    PMPM = "pmpm"


class TimeRule(StrEnum):
    """How documented minutes become 15-minute units (domain.md §1, a per-payer choice)."""

    MIDPOINT = "midpoint"
    FULL_INCREMENT = "full_increment"
    UP_TO = "up_to"


class ServiceType(StrEnum):
    CMR = "CMR"
    TMR = "TMR"
    FOLLOW_UP = "FOLLOW_UP"


class LimitScope(StrEnum):
    """Which services a frequency limit counts; ANY counts every service type together."""

    CMR = "CMR"
    TMR = "TMR"
    FOLLOW_UP = "FOLLOW_UP"
    ANY = "ANY"

    def matches(self, service_type: ServiceType) -> bool:
        # Plain str comparison: both enums share their values, and enum attribute access is
        # slow enough to show in the eligibility hot path.
        return str.__eq__(self, "ANY") or str.__eq__(self, service_type)


class LimitPeriod(StrEnum):
    """The window a frequency limit counts over.

    plan_year and quarter follow the contract's plan-year start month (a July plan year has
    quarters Jul-Sep, Oct-Dec, ...); rolling_365 is the 365 days ending on the date of service;
    calendar_month is the DOS's month.
    """

    PLAN_YEAR = "plan_year"
    ROLLING_365 = "rolling_365"
    CALENDAR_MONTH = "calendar_month"
    QUARTER = "quarter"


class Modality(StrEnum):
    IN_PERSON = "in_person"
    VIDEO = "video"
    AUDIO = "audio"


class PatientLocation(StrEnum):
    PHARMACY = "pharmacy"
    HOME = "home"
    OTHER = "other"


class ProrationRule(StrEnum):
    FIRST_OF_MONTH = "first_of_month"
    FIFTEEN_THIRTY = "fifteen_thirty"
    DAILY = "daily"


class PaymentMode(StrEnum):
    """capitation: the payer pays the roster (835 PLB CT, 820, CSV); monthly_claim: we bill a
    monthly code per member, so the contract must say which codes."""

    CAPITATION = "capitation"
    MONTHLY_CLAIM = "monthly_claim"


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with contract data, addressed by a path such as
    'terms.fee_schedule[2].charge' so an API can point at the offending field."""

    path: str
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class FrequencyLimit:
    service_type: LimitScope
    max_count: int
    period: LimitPeriod


@dataclass(frozen=True, slots=True)
class TelehealthRule:
    """How a visit in `modality` with the patient at `location` is billed.

    place_of_service and modifier are kept as strings (not enums) so that data loaded from a
    payer file can be held and reported by `validate_terms` instead of failing to construct.
    """

    modality: Modality
    location: PatientLocation
    place_of_service: str
    modifier: str | None = None


_DEFAULT_RULES: tuple[TelehealthRule, ...] = (
    TelehealthRule(Modality.IN_PERSON, PatientLocation.PHARMACY, "01"),
    TelehealthRule(Modality.IN_PERSON, PatientLocation.OTHER, "11"),
)


@dataclass(frozen=True, slots=True)
class TelehealthPolicy:
    """Allowed modalities and the POS/modifier for each modality and patient location.

    The default is in-person only, because the 99605-99607 descriptor says face-to-face and
    telehealth coverage is payer-specific (domain.md §4).
    """

    allowed_modalities: frozenset[Modality] = frozenset({Modality.IN_PERSON})
    rules: tuple[TelehealthRule, ...] = _DEFAULT_RULES

    def route(self, modality: Modality, location: PatientLocation) -> TelehealthRule | None:
        if modality not in self.allowed_modalities:
            return None
        for rule in self.rules:
            if rule.modality is modality and rule.location is location:
                return rule
        return None


@dataclass(frozen=True, slots=True)
class FeeScheduleEntry:
    """Charge and allowed amount for a code (and modifier) between two dates, inclusive."""

    code: str
    modifier: str | None
    charge: Cents
    allowed: Cents
    effective_from: date
    effective_to: date | None = None

    def in_force(self, dos: date) -> bool:
        return self.effective_from <= dos and (
            self.effective_to is None or dos <= self.effective_to
        )


@dataclass(frozen=True, slots=True)
class TierRate:
    tier: str
    rate: Cents


@dataclass(frozen=True, slots=True)
class ActivityRequirement:
    """Documented engagement a member-month needs before it is payable (CPESN-style
    programs, domain.md §2). Both thresholds apply when both are set."""

    min_minutes: int | None = None
    min_interventions: int | None = None

    def met(self, minutes: int, interventions: int) -> bool:
        if self.min_minutes is not None and minutes < self.min_minutes:
            return False
        return self.min_interventions is None or interventions >= self.min_interventions


@dataclass(frozen=True, slots=True)
class MonthlyCode:
    """An "at least" monthly code: `code` once `min_minutes` are met in the calendar month,
    then `addon_code` for each further full `addon_step_minutes`, up to `max_addon_units`.

    The CPT midpoint rule does not apply to "at least" descriptors (domain.md §1), so units
    here are only ever earned by full thresholds.
    """

    code: str
    min_minutes: int
    addon_code: str | None = None
    addon_step_minutes: int | None = None
    max_addon_units: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PmpmTerms:
    rates: tuple[TierRate, ...]
    # Used for members whose span carries no tier.
    default_tier: str | None = None
    proration: ProrationRule = ProrationRule.FIRST_OF_MONTH
    activity: ActivityRequirement | None = None
    monthly_codes: tuple[MonthlyCode, ...] = ()
    retro_window_months: int = 6
    payment_mode: PaymentMode = PaymentMode.CAPITATION

    def rate_for(self, tier: str | None) -> Cents | None:
        wanted = tier if tier is not None else self.default_tier
        for tier_rate in self.rates:
            if tier_rate.tier == wanted:
                return tier_rate.rate
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class ContractTerms:
    billing_model: BillingModel
    time_rule: TimeRule = TimeRule.MIDPOINT
    # Default 3 years per billing entity (domain.md §1 [VERIFY]); payers may override.
    new_patient_lookback_years: int = 3
    # Overrides the minimum minutes the time rule implies for 99605/99606.
    min_base_minutes: int | None = None
    # Cap on +99607 units per encounter; None means no contractual cap.
    max_addon_units: int | None = None
    frequency_limits: tuple[FrequencyLimit, ...] = ()
    plan_year_start_month: int = 1
    telehealth: TelehealthPolicy = field(default_factory=TelehealthPolicy)
    fee_schedule: tuple[FeeScheduleEntry, ...] = ()
    pmpm: PmpmTerms | None = None
    # Population flags (as carried on coverage spans) the contract does not cover,
    # e.g. "PART_D_ELIGIBLE" for Michigan/Utah Medicaid MTM (domain.md §1).
    exclusions: frozenset[str] = frozenset()
    required_documentation: frozenset[str] = frozenset()

    def fee_for(self, code: str, modifier: str | None, dos: date) -> FeeScheduleEntry | None:
        for entry in self.fee_schedule:
            if entry.code == code and entry.modifier == modifier and entry.in_force(dos):
                return entry
        return None


@dataclass(frozen=True, slots=True)
class ContractVersion:
    version: int
    effective_from: date
    effective_to: date | None
    terms: ContractTerms

    def in_force(self, dos: date) -> bool:
        return self.effective_from <= dos and (
            self.effective_to is None or dos <= self.effective_to
        )


def version_in_force(versions: Sequence[ContractVersion], dos: date) -> ContractVersion | None:
    """The version whose window contains `dos`. If validation was skipped and windows
    overlap, the highest version number wins, so a later amendment is never shadowed."""
    found: ContractVersion | None = None
    for candidate in versions:
        if (
            candidate.effective_from <= dos
            and (candidate.effective_to is None or dos <= candidate.effective_to)
            and (found is None or candidate.version > found.version)
        ):
            found = candidate
    return found
