"""Golden rationales: the exact text a biller reads for each scenario.

Each scenario's rationale is compared byte for byte with
``tests/unit/billing/golden/coding_<scenario>.txt``. After an intended wording change,
regenerate the files and review the diff before committing:

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/billing -q -p no:cacheprovider -k golden
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from services.billing.domain.coding import (
    ActivityRequirement,
    Modality,
    PatientLocation,
    ServiceType,
    TelehealthPolicy,
    TimeRule,
    code_member_month,
    code_session,
)
from tests.unit.billing.test_coding_support import (
    NO_HISTORY,
    OTHER_TIN,
    TERMS,
    TIN,
    facts,
    history,
    terms,
)

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

_VIDEO_HOME = {"modality": Modality.VIDEO, "patient_location": PatientLocation.HOME}

SCENARIOS: dict[str, Callable[[], str]] = {
    "established_midpoint_video_42": lambda: (
        code_session(
            TERMS,
            facts(face_to_face_minutes=42, **_VIDEO_HOME),
            history((date(2026, 3, 2), TIN, "99605"), (date(2026, 4, 1), OTHER_TIN)),
        ).rationale
    ),
    "new_full_increment_29": lambda: (
        code_session(
            terms(time_rule=TimeRule.FULL_INCREMENT),
            facts(face_to_face_minutes=29, service_type=ServiceType.TMR),
            NO_HISTORY,
        ).rationale
    ),
    "new_outside_lookback_up_to_31": lambda: (
        code_session(
            terms(time_rule=TimeRule.UP_TO),
            facts(face_to_face_minutes=31, modality=Modality.AUDIO),
            history((date(2023, 5, 9), TIN)),
        ).rationale
    ),
    "midpoint_short_base_10": lambda: (
        code_session(
            TERMS, facts(face_to_face_minutes=10, service_type=ServiceType.FOLLOW_UP), NO_HISTORY
        ).rationale
    ),
    "cap_two_of_three": lambda: (
        code_session(
            terms(max_addon_units=2),
            facts(face_to_face_minutes=60),
            history((date(2025, 1, 7), TIN)),
        ).rationale
    ),
    "cap_zero": lambda: (
        code_session(terms(max_addon_units=0), facts(face_to_face_minutes=40), NO_HISTORY).rationale
    ),
    "below_minimum_7": lambda: (
        code_session(TERMS, facts(face_to_face_minutes=7), NO_HISTORY).rationale
    ),
    "held_consent_and_documentation": lambda: (
        code_session(
            TERMS,
            facts(consent=False, documentation_elements=frozenset({"med_list"})),
            NO_HISTORY,
        ).rationale
    ),
    "not_billable_modality_and_eligibility": lambda: (
        code_session(
            terms(telehealth=TelehealthPolicy(frozenset({Modality.IN_PERSON}))),
            facts(**_VIDEO_HOME),
            NO_HISTORY,
            ("FREQUENCY_LIMIT_REACHED", "PRIOR_AUTH_PENDING"),
        ).rationale
    ),
    "no_fee_schedule": lambda: (
        code_session(TERMS, facts(date_of_service=date(2024, 12, 31)), NO_HISTORY).rationale
    ),
    "diagnoses_invalid_and_pointers": lambda: (
        code_session(
            TERMS,
            facts(diagnoses=("E11.9", "I10", "E78.5", "J44.9", "N18.3", "E1.19")),
            NO_HISTORY,
        ).rationale
    ),
    "monthly_addon_capped": lambda: (
        code_member_month(TERMS, [35, 30, 25], [1, 2], 2026, 3).rationale
    ),
    "monthly_activity_not_met": lambda: (
        code_member_month(
            terms(pmpm_activity=ActivityRequirement(min_minutes=30, min_interventions=1)),
            [12, 10],
            [],
            2026,
            4,
        ).rationale
    ),
    "monthly_below_threshold": lambda: (
        code_member_month(terms(pmpm_activity=None), [19], [1], 2026, 2).rationale
    ),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_rationale_matches_golden(name: str) -> None:
    path = GOLDEN / f"coding_{name}.txt"
    text = SCENARIOS[name]() + "\n"
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing {path}; run with UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(encoding="utf-8")


def test_no_orphan_golden_files() -> None:
    expected = {f"coding_{name}.txt" for name in SCENARIOS}
    present = {p.name for p in GOLDEN.glob("coding_*.txt")}
    assert present == expected
