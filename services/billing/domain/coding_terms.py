"""Inputs and outputs of the MTM coding engine (see ``coding.py`` for the rules).

Billing never imports the coverage package: the lead maps coverage's contract terms into
``CodingTerms`` so the coding rules depend only on what they actually read.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from itertools import pairwise

from shared.money import Cents


class CodingTermsError(ValueError):
    """Contract terms that cannot be coded against (bad or ambiguous configuration)."""


class TimeRule(StrEnum):
    MIDPOINT = "midpoint"
    FULL_INCREMENT = "full_increment"
    UP_TO = "up_to"


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
    FOLLOW_UP = "FOLLOW_UP"


class CodingStatus(StrEnum):
    BILLABLE = "billable"
    HELD = "held"
    NOT_BILLABLE = "not_billable"


class PatientStatus(StrEnum):
    NEW = "new"
    ESTABLISHED = "established"


class ReasonCode(StrEnum):
    BELOW_MINIMUM_TIME = "BELOW_MINIMUM_TIME"
    NO_CONSENT = "NO_CONSENT"
    MISSING_DOCUMENTATION = "MISSING_DOCUMENTATION"
    MODALITY_NOT_COVERED = "MODALITY_NOT_COVERED"
    LOCATION_NOT_COVERED = "LOCATION_NOT_COVERED"
    NO_DIAGNOSIS = "NO_DIAGNOSIS"
    INVALID_DIAGNOSIS = "INVALID_DIAGNOSIS"
    TOO_MANY_DIAGNOSES = "TOO_MANY_DIAGNOSES"
    NO_FEE_SCHEDULE = "NO_FEE_SCHEDULE"
    FREQUENCY_LIMIT_REACHED = "FREQUENCY_LIMIT_REACHED"
    EXCLUDED_POPULATION = "EXCLUDED_POPULATION"
    NO_COVERAGE_ON_DOS = "NO_COVERAGE_ON_DOS"
    OPTED_OUT = "OPTED_OUT"
    OUTSIDE_CONTRACT_WINDOW = "OUTSIDE_CONTRACT_WINDOW"
    UNRECOGNIZED_ELIGIBILITY_REASON = "UNRECOGNIZED_ELIGIBILITY_REASON"
    ACTIVITY_REQUIREMENT_NOT_MET = "ACTIVITY_REQUIREMENT_NOT_MET"
    BELOW_MONTHLY_THRESHOLD = "BELOW_MONTHLY_THRESHOLD"
    PMPM_CONTRACT = "PMPM_CONTRACT"


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a result is not (yet) billable; ``fix`` is the action that clears it."""

    code: ReasonCode
    message: str
    fix: str
    status: CodingStatus


@dataclass(frozen=True, slots=True)
class PlaceOfServiceRule:
    """Where the contract says a (modality, patient location) pair is billed, and with what."""

    modality: Modality
    patient_location: PatientLocation
    place_of_service: str
    modifier: str | None = None

    def __post_init__(self) -> None:
        if len(self.place_of_service) != 2 or not self.place_of_service.isdigit():
            raise CodingTermsError(
                f"place of service must be two digits: {self.place_of_service!r}"
            )


# CMS POS 02 is telehealth with the patient somewhere other than home and 10 is telehealth in
# the patient's home (domain.md §11 warns that secondary tables swap them).
STANDARD_PLACES_OF_SERVICE: tuple[PlaceOfServiceRule, ...] = (
    PlaceOfServiceRule(Modality.IN_PERSON, PatientLocation.PHARMACY, "01"),
    PlaceOfServiceRule(Modality.IN_PERSON, PatientLocation.OTHER, "11"),
    PlaceOfServiceRule(Modality.VIDEO, PatientLocation.HOME, "10", "95"),
    PlaceOfServiceRule(Modality.VIDEO, PatientLocation.PHARMACY, "02", "95"),
    PlaceOfServiceRule(Modality.VIDEO, PatientLocation.OTHER, "02", "95"),
    PlaceOfServiceRule(Modality.AUDIO, PatientLocation.HOME, "10", "93"),
    PlaceOfServiceRule(Modality.AUDIO, PatientLocation.PHARMACY, "02", "93"),
    PlaceOfServiceRule(Modality.AUDIO, PatientLocation.OTHER, "02", "93"),
)


@dataclass(frozen=True, slots=True)
class TelehealthPolicy:
    allowed_modalities: frozenset[Modality]
    places: tuple[PlaceOfServiceRule, ...] = STANDARD_PLACES_OF_SERVICE
    _by_pair: dict[tuple[Modality, PatientLocation], PlaceOfServiceRule] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        by_pair: dict[tuple[Modality, PatientLocation], PlaceOfServiceRule] = {}
        for rule in self.places:
            pair = (rule.modality, rule.patient_location)
            if pair in by_pair:
                raise CodingTermsError(f"two place-of-service rules for {pair[0]} at {pair[1]}")
            by_pair[pair] = rule
        object.__setattr__(self, "_by_pair", by_pair)

    def place_for(self, modality: Modality, location: PatientLocation) -> PlaceOfServiceRule | None:
        return self._by_pair.get((modality, location))


@dataclass(frozen=True, slots=True)
class FeeScheduleEntry:
    """One priced code; ``effective_to`` is the last day in force (inclusive), None = open."""

    code: str
    modifier: str | None
    charge_cents: Cents
    allowed_cents: Cents
    effective_from: date
    effective_to: date | None = None

    def __post_init__(self) -> None:
        if self.charge_cents < 0 or self.allowed_cents < 0:
            raise CodingTermsError(f"negative amount in fee schedule entry for {self.code}")
        if self.effective_to is not None and self.effective_to < self.effective_from:
            raise CodingTermsError(f"fee schedule entry for {self.code} ends before it starts")

    def in_force(self, day: date) -> bool:
        return self.effective_from <= day and (
            self.effective_to is None or day <= self.effective_to
        )


@dataclass(frozen=True, slots=True)
class MonthlyAddOn:
    """Add-on for each further *full* block of minutes above the base code's threshold."""

    code: str
    each_additional_minutes: int
    max_units: int | None = None

    def __post_init__(self) -> None:
        if self.each_additional_minutes <= 0:
            raise CodingTermsError(f"{self.code}: each_additional_minutes must be positive")
        if self.max_units is not None and self.max_units < 0:
            raise CodingTermsError(f"{self.code}: max_units must not be negative")


@dataclass(frozen=True, slots=True)
class MonthlyCode:
    """A calendar-month code with an "at least" threshold (no midpoint rounding)."""

    code: str
    min_minutes: int
    add_on: MonthlyAddOn | None = None

    def __post_init__(self) -> None:
        if self.min_minutes <= 0:
            raise CodingTermsError(f"{self.code}: min_minutes must be positive")


@dataclass(frozen=True, slots=True)
class ActivityRequirement:
    """Documented engagement a PMPM contract requires in a month; every set minimum applies."""

    min_minutes: int | None = None
    min_interventions: int | None = None


@dataclass(frozen=True, slots=True)
class CodingTerms:
    rule_version: str
    time_rule: TimeRule
    telehealth: TelehealthPolicy
    fee_schedule: tuple[FeeScheduleEntry, ...]
    required_documentation: frozenset[str] = frozenset()
    new_patient_lookback_years: int = 3
    min_base_minutes: int | None = None
    max_addon_units: int | None = None
    monthly_codes: tuple[MonthlyCode, ...] = ()
    pmpm_activity: ActivityRequirement | None = None
    _fees: dict[tuple[str, str | None], tuple[FeeScheduleEntry, ...]] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        if self.new_patient_lookback_years < 1:
            raise CodingTermsError("new_patient_lookback_years must be at least 1")
        if self.min_base_minutes is not None and self.min_base_minutes < 1:
            raise CodingTermsError("min_base_minutes must be at least 1")
        if self.max_addon_units is not None and self.max_addon_units < 0:
            raise CodingTermsError("max_addon_units must not be negative")
        thresholds = [code.min_minutes for code in self.monthly_codes]
        if len(set(thresholds)) != len(thresholds):
            # The engine picks the highest threshold reached; a tie would have no answer.
            raise CodingTermsError("two monthly codes share one minute threshold")
        grouped: dict[tuple[str, str | None], list[FeeScheduleEntry]] = {}
        for entry in self.fee_schedule:
            grouped.setdefault((entry.code, entry.modifier), []).append(entry)
        fees: dict[tuple[str, str | None], tuple[FeeScheduleEntry, ...]] = {}
        for key, entries in grouped.items():
            entries.sort(key=_effective_from)
            for earlier, later in pairwise(entries):
                # Two prices for one day would make the claim amount depend on list order.
                if earlier.effective_to is None or earlier.effective_to >= later.effective_from:
                    raise CodingTermsError(
                        f"overlapping fee schedule entries for {key[0]}"
                        f"{'-' + key[1] if key[1] else ''} from {later.effective_from}"
                    )
            fees[key] = tuple(entries)
        object.__setattr__(self, "_fees", fees)

    def fee_for(self, code: str, modifier: str | None, day: date) -> FeeScheduleEntry | None:
        """Entry in force on ``day``: the code with this modifier first, then the bare code."""
        keys = ((code, modifier), (code, None)) if modifier is not None else ((code, None),)
        for key in keys:
            for entry in self._fees.get(key, ()):
                if entry.in_force(day):
                    return entry
        return None


def _effective_from(entry: FeeScheduleEntry) -> date:
    return entry.effective_from


@dataclass(frozen=True, slots=True)
class SessionFacts:
    """One documented MTM session. ``face_to_face_minutes`` is the raw time, never units."""

    date_of_service: date
    face_to_face_minutes: int
    modality: Modality
    patient_location: PatientLocation
    service_type: ServiceType
    diagnoses: tuple[str, ...]
    interventions: int
    consent: bool
    documentation_elements: frozenset[str]
    billing_tin: str

    def __post_init__(self) -> None:
        if self.face_to_face_minutes < 0:
            raise ValueError("face_to_face_minutes must not be negative")
        if self.interventions < 0:
            raise ValueError("interventions must not be negative")


@dataclass(frozen=True, slots=True)
class PriorEncounter:
    dos: date
    tin: str
    code: str


def normalize_tin(tin: str) -> str:
    """'12-3456789' and '123456789' are the same billing entity."""
    return tin.replace("-", "").strip()


@dataclass(frozen=True, slots=True)
class EncounterHistory:
    """Prior MTM encounters, indexed once per TIN so each look-up is a bisect, not a sort."""

    encounters: tuple[PriorEncounter, ...] = ()
    _dates: dict[str, tuple[date, ...]] = field(init=False, repr=False, compare=False, hash=False)
    _sorted: dict[str, tuple[PriorEncounter, ...]] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        grouped: dict[str, list[PriorEncounter]] = {}
        for encounter in self.encounters:
            grouped.setdefault(normalize_tin(encounter.tin), []).append(encounter)
        ordered = {
            # The code breaks ties so two same-day encounters always resolve the same way.
            tin: tuple(sorted(items, key=_dos_then_code))
            for tin, items in grouped.items()
        }
        object.__setattr__(self, "_sorted", ordered)
        object.__setattr__(
            self, "_dates", {tin: tuple(e.dos for e in items) for tin, items in ordered.items()}
        )

    def last_before(self, tin: str, day: date) -> PriorEncounter | None:
        """Latest encounter billed under ``tin`` strictly before ``day``."""
        key = normalize_tin(tin)
        dates = self._dates.get(key)
        if not dates:
            return None
        index = bisect_left(dates, day)
        return self._sorted[key][index - 1] if index else None


def _dos_then_code(encounter: PriorEncounter) -> tuple[date, str]:
    return (encounter.dos, encounter.code)


@dataclass(frozen=True, slots=True)
class CodedLine:
    code: str
    modifiers: tuple[str, ...]
    units: int
    charge_cents: Cents
    expected_cents: Cents
    diagnosis_pointers: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CodingResult:
    """Coding of one session. Lines show what the session codes to whatever the status;
    only a ``billable`` result may go on a claim. Unpriced lines carry 0 cents and a
    ``NO_FEE_SCHEDULE`` reason."""

    status: CodingStatus
    reasons: tuple[Reason, ...]
    lines: tuple[CodedLine, ...]
    place_of_service: str | None
    diagnoses: tuple[str, ...]
    minutes: int
    patient_status: PatientStatus
    last_visit: date | None
    rationale: str
    rule_version: str

    @property
    def total_charge_cents(self) -> Cents:
        return sum(line.charge_cents for line in self.lines)

    @property
    def total_expected_cents(self) -> Cents:
        return sum(line.expected_cents for line in self.lines)


@dataclass(frozen=True, slots=True)
class MonthlyLine:
    code: str
    units: int
    charge_cents: Cents
    expected_cents: Cents


@dataclass(frozen=True, slots=True)
class MonthlyCodingResult:
    year: int
    month: int
    status: CodingStatus
    reasons: tuple[Reason, ...]
    lines: tuple[MonthlyLine, ...]
    total_minutes: int
    total_interventions: int
    activity_met: bool
    rationale: str
    rule_version: str

    @property
    def total_charge_cents(self) -> Cents:
        return sum(line.charge_cents for line in self.lines)

    @property
    def total_expected_cents(self) -> Cents:
        return sum(line.expected_cents for line in self.lines)
