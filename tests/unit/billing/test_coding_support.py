"""Builders shared by the coding tests (no tests here).

A fixed contract, ``TERMS``, and helpers that vary one thing at a time, so each test row
shows only the fact it is about.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from services.billing.domain.coding import (
    ActivityRequirement,
    CodingResult,
    CodingTerms,
    EncounterHistory,
    FeeScheduleEntry,
    Modality,
    MonthlyAddOn,
    MonthlyCode,
    PatientLocation,
    PriorEncounter,
    ServiceType,
    SessionFacts,
    TelehealthPolicy,
    TimeRule,
)

TIN = "123456789"
OTHER_TIN = "987654321"
DOS = date(2026, 5, 10)
PRICE_CHANGE = date(2026, 7, 1)
_OPEN = date(2025, 1, 1)
_OLD_END = date(2026, 6, 30)

FEES = (
    FeeScheduleEntry("99605", None, 9000, 7000, _OPEN, _OLD_END),
    FeeScheduleEntry("99606", None, 7500, 6000, _OPEN, _OLD_END),
    FeeScheduleEntry("99607", None, 4000, 3200, _OPEN, _OLD_END),
    FeeScheduleEntry("99607", "95", 4100, 3300, _OPEN, _OLD_END),
    FeeScheduleEntry("99605", None, 9500, 7400, PRICE_CHANGE),
    FeeScheduleEntry("99606", None, 8000, 6400, PRICE_CHANGE),
    FeeScheduleEntry("99607", None, 4200, 3400, PRICE_CHANGE),
    FeeScheduleEntry("99490", None, 6000, 4200, _OPEN),
    FeeScheduleEntry("99439", None, 4500, 3100, _OPEN),
    FeeScheduleEntry("99487", None, 13000, 9500, _OPEN),
)

TERMS = CodingTerms(
    rule_version="contract 12 v3",
    time_rule=TimeRule.MIDPOINT,
    telehealth=TelehealthPolicy(frozenset(Modality)),
    fee_schedule=FEES,
    required_documentation=frozenset({"care_plan", "med_list"}),
    monthly_codes=(MonthlyCode("99490", 20, MonthlyAddOn("99439", 20, max_units=2)),),
    pmpm_activity=ActivityRequirement(min_minutes=20, min_interventions=1),
)

COMPLETE_DOCS = frozenset({"care_plan", "med_list", "recommendations"})


def terms(**changes: Any) -> CodingTerms:
    return replace(TERMS, **changes)


def facts(**changes: Any) -> SessionFacts:
    base = SessionFacts(
        date_of_service=DOS,
        face_to_face_minutes=30,
        modality=Modality.IN_PERSON,
        patient_location=PatientLocation.PHARMACY,
        service_type=ServiceType.CMR,
        diagnoses=("E11.9", "I10"),
        interventions=2,
        consent=True,
        documentation_elements=COMPLETE_DOCS,
        billing_tin=TIN,
    )
    return replace(base, **changes)


def history(*visits: tuple[date, str] | tuple[date, str, str]) -> EncounterHistory:
    """(dos, tin) or (dos, tin, code) per prior encounter; the code defaults to 99606."""
    return EncounterHistory(
        tuple(PriorEncounter(v[0], v[1], v[2] if len(v) == 3 else "99606") for v in visits)
    )


NO_HISTORY = EncounterHistory()


def line_units(result: CodingResult) -> list[tuple[str, int]]:
    return [(line.code, line.units) for line in result.lines]


def reason_codes(result: CodingResult) -> list[str]:
    return [reason.code.value for reason in result.reasons]
