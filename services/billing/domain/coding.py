"""MTM coding engine: one documented session -> 99605/99606 (+99607), place of service,
modifiers, diagnoses, prices and a billability verdict with a rationale a biller can read.

Rules (domain.md §1, §12):
- New vs established comes only from the encounter history of the billing TIN. The look-back
  window is ``[DOS minus N years, DOS)``: a visit on the same calendar date N years earlier
  counts (Feb 29 maps to Feb 28), a visit on the DOS itself does not.
- +99607 units follow the contract's time rule (``session_units``) and its unit cap; an
  add-on line exists only next to its base line.
- Time and history are arguments; the same input always gives the same output.

Types live in ``coding_terms``; PMPM monthly coding in ``coding_monthly``. Both are
re-exported here so callers import one module.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from functools import lru_cache

from services.billing.domain.coding_monthly import code_member_month
from services.billing.domain.coding_reasons import NO_CONSENT, NO_DIAGNOSIS, eligibility_reason
from services.billing.domain.coding_terms import (
    STANDARD_PLACES_OF_SERVICE,
    ActivityRequirement,
    CodedLine,
    CodingResult,
    CodingStatus,
    CodingTerms,
    CodingTermsError,
    EncounterHistory,
    FeeScheduleEntry,
    Modality,
    MonthlyAddOn,
    MonthlyCode,
    MonthlyCodingResult,
    MonthlyLine,
    PatientLocation,
    PatientStatus,
    PlaceOfServiceRule,
    PriorEncounter,
    Reason,
    ReasonCode,
    ServiceType,
    SessionFacts,
    TelehealthPolicy,
    TimeRule,
    normalize_tin,
)
from shared.money import format_cents as _format_cents

__all__ = [
    "ADDON_CODE",
    "ESTABLISHED_PATIENT_CODE",
    "MAX_CLAIM_DIAGNOSES",
    "MAX_LINE_POINTERS",
    "NEW_PATIENT_CODE",
    "STANDARD_PLACES_OF_SERVICE",
    "ActivityRequirement",
    "CodedLine",
    "CodingResult",
    "CodingStatus",
    "CodingTerms",
    "CodingTermsError",
    "EncounterHistory",
    "FeeScheduleEntry",
    "Modality",
    "MonthlyAddOn",
    "MonthlyCode",
    "MonthlyCodingResult",
    "MonthlyLine",
    "PatientLocation",
    "PatientStatus",
    "PlaceOfServiceRule",
    "PriorEncounter",
    "Reason",
    "ReasonCode",
    "ServiceType",
    "SessionFacts",
    "TelehealthPolicy",
    "TimeRule",
    "base_minimum_minutes",
    "code_member_month",
    "code_session",
    "lookback_start",
    "normalize_diagnosis",
    "normalize_tin",
    "session_units",
]

NEW_PATIENT_CODE = "99605"
ESTABLISHED_PATIENT_CODE = "99606"
ADDON_CODE = "99607"
MAX_CLAIM_DIAGNOSES = 12
MAX_LINE_POINTERS = 4
_UNIT_MINUTES = 15

_DEFAULT_BASE_MINIMUM = {TimeRule.MIDPOINT: 8, TimeRule.FULL_INCREMENT: 15, TimeRule.UP_TO: 1}
_RULE_LABEL = {
    TimeRule.MIDPOINT: "midpoint rule",
    TimeRule.FULL_INCREMENT: "full-increment rule",
    TimeRule.UP_TO: "up-to rule",
}
_ADDON_EXPLANATION = {
    TimeRule.MIDPOINT: "a further 15-min unit counts once its midpoint is passed (23, 38, 53 min ...)",
    TimeRule.FULL_INCREMENT: "a further unit needs a full further 15 min (30, 45, 60 min ...)",
    TimeRule.UP_TO: "each started 15-min block beyond the first counts (16, 31, 46 min ...)",
}
_SERVICE_LABEL = {
    ServiceType.CMR: "CMR",
    ServiceType.TMR: "TMR",
    ServiceType.FOLLOW_UP: "Follow-up",
}
_MODALITY_LABEL = {
    Modality.IN_PERSON: "in person",
    Modality.VIDEO: "video",
    Modality.AUDIO: "audio only",
}

# ICD-10-CM shape from domain.md §8, checked after the dot is removed (X12 sends no dots).
_ICD10_SHAPE = re.compile(r"[A-Z][0-9][0-9A-Z](?:[0-9A-Z]{1,4})?")

_NOT = CodingStatus.NOT_BILLABLE
_HELD = CodingStatus.HELD

# The same few fee amounts recur in every rationale; formatting each once keeps coding fast.
_money = lru_cache(maxsize=4096)(_format_cents)


def base_minimum_minutes(terms: CodingTerms) -> int:
    """Minutes needed for 99605/99606: the contract override, else the time rule's default."""
    if terms.min_base_minutes is not None:
        return terms.min_base_minutes
    return _DEFAULT_BASE_MINIMUM[terms.time_rule]


def session_units(
    rule: TimeRule, minutes: int, min_base_minutes: int | None = None
) -> tuple[int, int]:
    """(base units 0|1, +99607 units before any cap) for raw face-to-face minutes.

    midpoint: base from 8 min, add-on n from 15n + 8 (23, 38, 53 ...);
    full_increment: base from 15 min, add-on n from 15(n + 1) (30, 45 ...);
    up_to: base from 1 min, add-on n from 15n + 1 (16, 31 ...).
    A ``min_base_minutes`` override moves only the base threshold.
    """
    minimum = _DEFAULT_BASE_MINIMUM[rule] if min_base_minutes is None else min_base_minutes
    if minutes < minimum:
        return (0, 0)
    if rule is TimeRule.MIDPOINT:
        addon = (minutes - 8) // _UNIT_MINUTES
    elif rule is TimeRule.FULL_INCREMENT:
        addon = (minutes - _UNIT_MINUTES) // _UNIT_MINUTES
    else:
        addon = (minutes - 1) // _UNIT_MINUTES
    return (1, max(addon, 0))


def lookback_start(dos: date, years: int) -> date:
    """First day inside the new-patient look-back; Feb 29 maps to Feb 28."""
    try:
        return dos.replace(year=dos.year - years)
    except ValueError:
        return dos.replace(year=dos.year - years, day=28)


@lru_cache(maxsize=8192)
def normalize_diagnosis(raw: str) -> str | None:
    """'e11.9 ' -> 'E119'; None when the text is not ICD-10-CM shaped.

    A dot may only follow the third character and must have characters after it: 'E11.'
    looks like a truncated code, so it is rejected rather than read as the category E11.
    """
    text = raw.strip().upper()
    dot = text.find(".")
    if dot != -1:
        if dot != 3 or len(text) == 4 or text.count(".") != 1:
            return None
        text = text.replace(".", "")
    return text if _ICD10_SHAPE.fullmatch(text) else None


def code_session(
    terms: CodingTerms,
    facts: SessionFacts,
    history: EncounterHistory,
    eligibility_reasons: Iterable[str] = (),
) -> CodingResult:
    """Code one MTM session under ``terms``; ``history`` holds the prior MTM encounters."""
    dos = facts.date_of_service
    minutes = facts.face_to_face_minutes
    reasons: list[Reason] = [eligibility_reason(raw) for raw in dict.fromkeys(eligibility_reasons)]
    text: list[str] = [
        f"{_SERVICE_LABEL[facts.service_type]}, {minutes} min face-to-face "
        f"({_MODALITY_LABEL[facts.modality]}, patient at {facts.patient_location})."
    ]

    years = terms.new_patient_lookback_years
    start = lookback_start(dos, years)
    last = history.last_before(facts.billing_tin, dos)
    tin = normalize_tin(facts.billing_tin)
    if last is not None and last.dos >= start:
        patient_status = PatientStatus.ESTABLISHED
        base_code = ESTABLISHED_PATIENT_CODE
        who = (
            f"Established patient (last MTM visit {last.dos.isoformat()}, {last.code}, "
            f"under TIN {tin}, within the {years}-year look-back from {start.isoformat()})"
        )
    else:
        patient_status = PatientStatus.NEW
        base_code = NEW_PATIENT_CODE
        if last is None:
            who = f"New patient (no earlier MTM visit under TIN {tin})"
        else:
            who = (
                f"New patient (last MTM visit {last.dos.isoformat()} under TIN {tin} is "
                f"before the {years}-year look-back start {start.isoformat()})"
            )

    place, place_text = _place_of_service(terms, facts, reasons)
    modifiers: tuple[str, ...] = (
        () if place is None or place.modifier is None else (place.modifier,)
    )

    base_units, addon_units, time_text = _time(terms, minutes, base_code)
    text.append(f"{who}: {time_text}")
    if base_units == 0:
        reasons.append(
            Reason(
                ReasonCode.BELOW_MINIMUM_TIME,
                f"{minutes} min is below the {base_minimum_minutes(terms)} min the "
                f"{_RULE_LABEL[terms.time_rule]} requires for {base_code}",
                "document the full face-to-face time if more was spent; otherwise the "
                "session is not billable",
                _NOT,
            )
        )
    text.append(place_text)

    if not facts.consent:
        reasons.append(NO_CONSENT)
    if terms.required_documentation:
        missing = terms.required_documentation - facts.documentation_elements
        if missing:
            names = ", ".join(sorted(missing))
            reasons.append(
                Reason(
                    ReasonCode.MISSING_DOCUMENTATION,
                    f"required documentation missing: {names}",
                    f"document {names} in the session record",
                    _HELD,
                )
            )

    diagnoses, pointers, diagnosis_text = _diagnoses(facts.diagnoses, reasons)
    text.append(diagnosis_text)

    lines: tuple[CodedLine, ...] = ()
    if base_units:
        priced = [_priced_line(terms, base_code, modifiers, 1, pointers, dos, reasons)]
        if addon_units:
            priced.append(
                _priced_line(terms, ADDON_CODE, modifiers, addon_units, pointers, dos, reasons)
            )
        lines = tuple(line for line, _ in priced)
        text.append(_pricing_text(priced))

    status = _worst(reasons)
    if reasons:
        codes = ", ".join(dict.fromkeys(r.code for r in reasons))
        text.append(f"Status: {status} ({codes}).")
    else:
        text.append(f"Status: {status}.")
    text.append(f"Rule version: {terms.rule_version}.")

    return CodingResult(
        status=status,
        reasons=tuple(reasons),
        lines=lines,
        place_of_service=None if place is None else place.place_of_service,
        diagnoses=diagnoses,
        minutes=minutes,
        patient_status=patient_status,
        last_visit=None if last is None else last.dos,
        rationale="\n".join(text),
        rule_version=terms.rule_version,
    )


def _place_of_service(
    terms: CodingTerms, facts: SessionFacts, reasons: list[Reason]
) -> tuple[PlaceOfServiceRule | None, str]:
    modality, location = facts.modality, facts.patient_location
    label = _MODALITY_LABEL[modality]
    if modality not in terms.telehealth.allowed_modalities:
        reasons.append(
            Reason(
                ReasonCode.MODALITY_NOT_COVERED,
                f"the contract does not cover {label} MTM sessions",
                "deliver the session in a modality the contract covers "
                f"({_modalities(terms)}) or confirm the contract's telehealth terms",
                _NOT,
            )
        )
        return None, f"No place of service: {label} is not a covered modality."
    rule = terms.telehealth.place_for(modality, location)
    if rule is None:
        reasons.append(
            Reason(
                ReasonCode.LOCATION_NOT_COVERED,
                f"the contract has no place of service for {label} with the patient at {location}",
                "deliver the session where the contract covers it, or confirm the contract's "
                "place-of-service terms",
                _NOT,
            )
        )
        return None, f"No place of service: {label} at {location} is not covered."
    if rule.modifier is None:
        return rule, f"POS {rule.place_of_service}, no modifier."
    return rule, f"POS {rule.place_of_service} with modifier {rule.modifier}."


def _modalities(terms: CodingTerms) -> str:
    allowed = terms.telehealth.allowed_modalities
    return ", ".join(_MODALITY_LABEL[m] for m in Modality if m in allowed) or "none"


def _time(terms: CodingTerms, minutes: int, base_code: str) -> tuple[int, int, str]:
    rule = terms.time_rule
    label = _RULE_LABEL[rule]
    minimum = base_minimum_minutes(terms)
    base, earned = session_units(rule, minutes, terms.min_base_minutes)
    if not base:
        return 0, 0, f"{label} needs at least {minimum} min for {base_code}; nothing billable."
    cap = terms.max_addon_units
    units = earned if cap is None else min(earned, cap)
    if minutes <= _UNIT_MINUTES:
        # Every rule's first add-on threshold lies beyond 15 min, so nothing more to explain.
        return (
            1,
            0,
            (
                f"{base_code} x1 for the first 15 min ({label}: base from {minimum} min); "
                f"no {ADDON_CODE}."
            ),
        )
    head = f"{base_code} x1 for the first 15 min; {minutes - _UNIT_MINUTES} min remain"
    if units == earned:
        count = f"{ADDON_CODE} x{units}" if units else f"no {ADDON_CODE}"
    elif units:
        count = f"{ADDON_CODE} x{units}, capped at {cap} by the contract ({earned} earned)"
    else:
        count = f"no {ADDON_CODE}, the contract allows none ({earned} earned)"
    return 1, units, f"{head}; {label}: {count}; {_ADDON_EXPLANATION[rule]}."


def _diagnoses(
    raw_codes: tuple[str, ...], reasons: list[Reason]
) -> tuple[tuple[str, ...], tuple[int, ...], str]:
    codes: dict[str, None] = {}
    invalid: list[str] = []
    for raw in raw_codes:
        code = normalize_diagnosis(raw)
        if code is None:
            invalid.append(raw)
        else:
            # A repeated code adds nothing to the claim and some payers reject duplicates.
            codes[code] = None
    diagnoses = tuple(codes)
    if invalid:
        listed = ", ".join(repr(c) for c in invalid)
        reasons.append(
            Reason(
                ReasonCode.INVALID_DIAGNOSIS,
                f"not ICD-10-CM shaped: {listed}",
                f"correct or remove {listed} in the session record",
                _HELD,
            )
        )
    if not diagnoses:
        if not invalid:
            reasons.append(NO_DIAGNOSIS)
        return diagnoses, (), "No valid diagnosis."
    if len(diagnoses) > MAX_CLAIM_DIAGNOSES:
        reasons.append(
            Reason(
                ReasonCode.TOO_MANY_DIAGNOSES,
                f"{len(diagnoses)} diagnoses; a claim carries at most {MAX_CLAIM_DIAGNOSES}",
                f"keep the {MAX_CLAIM_DIAGNOSES} diagnoses most relevant to this session",
                _HELD,
            )
        )
    pointers = tuple(range(1, min(len(diagnoses), MAX_LINE_POINTERS) + 1))
    return (
        diagnoses,
        pointers,
        f"Diagnoses {', '.join(diagnoses)}; line pointers {', '.join(map(str, pointers))}.",
    )


def _priced_line(
    terms: CodingTerms,
    code: str,
    modifiers: tuple[str, ...],
    units: int,
    pointers: tuple[int, ...],
    dos: date,
    reasons: list[Reason],
) -> tuple[CodedLine, FeeScheduleEntry | None]:
    entry = terms.fee_for(code, modifiers[0] if modifiers else None, dos)
    if entry is None:
        shown = _line_label(code, modifiers)
        reasons.append(
            Reason(
                ReasonCode.NO_FEE_SCHEDULE,
                f"no fee schedule entry for {shown} in force on {dos.isoformat()}",
                f"add a fee schedule entry for {shown} covering {dos.isoformat()} "
                f"to contract {terms.rule_version!r}",
                _HELD,
            )
        )
        return CodedLine(code, modifiers, units, 0, 0, pointers), None
    line = CodedLine(
        code,
        modifiers,
        units,
        entry.charge_cents * units,
        entry.allowed_cents * units,
        pointers,
    )
    return line, entry


def _line_label(code: str, modifiers: tuple[str, ...]) -> str:
    return "-".join((code, *modifiers))


def _pricing_text(priced: list[tuple[CodedLine, FeeScheduleEntry | None]]) -> str:
    parts: list[str] = []
    for line, entry in priced:
        label = f"{_line_label(line.code, line.modifiers)} x{line.units}"
        if entry is None:
            parts.append(f"{label}: not priced")
            continue
        each = f" ({_money(entry.charge_cents)} each)" if line.units > 1 else ""
        matched = (
            ""
            if entry.modifier is not None or not line.modifiers
            else f", at the {line.code} rate without modifier"
        )
        parts.append(
            f"{label}: charge {_money(line.charge_cents)}{each}, expected "
            f"{_money(line.expected_cents)}{matched}"
        )
    charge = sum(line.charge_cents for line, _ in priced)
    expected = sum(line.expected_cents for line, _ in priced)
    return f"{'; '.join(parts)}; total charge {_money(charge)}, expected {_money(expected)}."


def _worst(reasons: list[Reason]) -> CodingStatus:
    status = CodingStatus.BILLABLE
    for reason in reasons:
        if reason.status is _NOT:
            return _NOT
        status = _HELD
    return status
