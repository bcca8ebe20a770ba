"""Worked examples for the session coding engine, one rule per table."""

from __future__ import annotations

from dataclasses import fields
from datetime import date

import pytest

from services.billing.domain.coding import (
    CodingStatus,
    CodingTermsError,
    EncounterHistory,
    FeeScheduleEntry,
    Modality,
    PatientLocation,
    PatientStatus,
    PlaceOfServiceRule,
    PriorEncounter,
    ReasonCode,
    SessionFacts,
    TelehealthPolicy,
    TimeRule,
    code_session,
    lookback_start,
    normalize_diagnosis,
    session_units,
)
from tests.unit.billing.test_coding_support import (
    DOS,
    NO_HISTORY,
    OTHER_TIN,
    PRICE_CHANGE,
    TERMS,
    TIN,
    facts,
    history,
    line_units,
    reason_codes,
    terms,
)

MID, FULL, UPTO = TimeRule.MIDPOINT, TimeRule.FULL_INCREMENT, TimeRule.UP_TO

# (rule, minutes, base units, +99607 units) at every boundary the brief names.
TIME_TABLE = [
    (MID, 0, 0, 0),
    (MID, 7, 0, 0),
    (MID, 8, 1, 0),
    (MID, 14, 1, 0),
    (MID, 15, 1, 0),
    (MID, 16, 1, 0),
    (MID, 22, 1, 0),
    (MID, 23, 1, 1),
    (MID, 29, 1, 1),
    (MID, 30, 1, 1),
    (MID, 31, 1, 1),
    (MID, 37, 1, 1),
    (MID, 38, 1, 2),
    (MID, 52, 1, 2),
    (MID, 53, 1, 3),
    (FULL, 7, 0, 0),
    (FULL, 8, 0, 0),
    (FULL, 14, 0, 0),
    (FULL, 15, 1, 0),
    (FULL, 16, 1, 0),
    (FULL, 22, 1, 0),
    (FULL, 23, 1, 0),
    (FULL, 29, 1, 0),
    (FULL, 30, 1, 1),
    (FULL, 31, 1, 1),
    (FULL, 37, 1, 1),
    (FULL, 38, 1, 1),
    (FULL, 44, 1, 1),
    (FULL, 45, 1, 2),
    (FULL, 52, 1, 2),
    (FULL, 53, 1, 2),
    (FULL, 60, 1, 3),
    (UPTO, 0, 0, 0),
    (UPTO, 1, 1, 0),
    (UPTO, 7, 1, 0),
    (UPTO, 8, 1, 0),
    (UPTO, 14, 1, 0),
    (UPTO, 15, 1, 0),
    (UPTO, 16, 1, 1),
    (UPTO, 22, 1, 1),
    (UPTO, 23, 1, 1),
    (UPTO, 29, 1, 1),
    (UPTO, 30, 1, 1),
    (UPTO, 31, 1, 2),
    (UPTO, 37, 1, 2),
    (UPTO, 38, 1, 2),
    (UPTO, 45, 1, 2),
    (UPTO, 46, 1, 3),
    (UPTO, 52, 1, 3),
    (UPTO, 53, 1, 3),
]


@pytest.mark.parametrize(("rule", "minutes", "base", "addon"), TIME_TABLE)
def test_time_rule_boundaries(rule: TimeRule, minutes: int, base: int, addon: int) -> None:
    assert session_units(rule, minutes) == (base, addon)
    result = code_session(terms(time_rule=rule), facts(face_to_face_minutes=minutes), NO_HISTORY)
    expected = ([("99605", 1)] if base else []) + ([("99607", addon)] if addon else [])
    assert line_units(result) == expected
    assert result.minutes == minutes
    if base:
        assert result.status is CodingStatus.BILLABLE
    else:
        assert result.status is CodingStatus.NOT_BILLABLE
        assert reason_codes(result) == ["BELOW_MINIMUM_TIME"]


@pytest.mark.parametrize(
    ("rule", "override", "minutes", "expected"),
    [
        (MID, 10, 9, (0, 0)),
        (MID, 10, 10, (1, 0)),
        (MID, 10, 23, (1, 1)),
        (FULL, 10, 12, (1, 0)),
        (FULL, 10, 30, (1, 1)),
        (UPTO, 5, 4, (0, 0)),
        (UPTO, 5, 16, (1, 1)),
    ],
)
def test_min_base_override_moves_only_the_base_threshold(
    rule: TimeRule, override: int, minutes: int, expected: tuple[int, int]
) -> None:
    assert session_units(rule, minutes, override) == expected
    result = code_session(
        terms(time_rule=rule, min_base_minutes=override),
        facts(face_to_face_minutes=minutes),
        NO_HISTORY,
    )
    assert sum(units for _, units in line_units(result)) == sum(expected)


def test_below_minimum_names_the_threshold_and_has_no_lines() -> None:
    result = code_session(TERMS, facts(face_to_face_minutes=7), NO_HISTORY)
    assert result.lines == ()
    (reason,) = result.reasons
    assert reason.code is ReasonCode.BELOW_MINIMUM_TIME
    assert "7 min is below the 8 min" in reason.message
    assert reason.fix


@pytest.mark.parametrize(
    ("cap", "minutes", "addon", "phrase"),
    [
        (2, 60, 2, "99607 x2, capped at 2 by the contract (3 earned)"),
        (2, 38, 2, "midpoint rule: 99607 x2; "),
        (0, 40, 0, "no 99607, the contract allows none (2 earned)"),
        (None, 98, 6, "midpoint rule: 99607 x6; "),
    ],
)
def test_addon_cap(cap: int | None, minutes: int, addon: int, phrase: str) -> None:
    result = code_session(
        terms(max_addon_units=cap), facts(face_to_face_minutes=minutes), NO_HISTORY
    )
    expected = [("99605", 1)] + ([("99607", addon)] if addon else [])
    assert line_units(result) == expected
    assert phrase in result.rationale
    assert result.status is CodingStatus.BILLABLE


# --- new versus established -------------------------------------------------------------


@pytest.mark.parametrize(
    ("visits", "status", "last"),
    [
        ((), PatientStatus.NEW, None),
        (((date(2023, 5, 10), TIN),), PatientStatus.ESTABLISHED, date(2023, 5, 10)),
        (((date(2023, 5, 9), TIN),), PatientStatus.NEW, date(2023, 5, 9)),
        (((date(2023, 5, 11), TIN),), PatientStatus.ESTABLISHED, date(2023, 5, 11)),
        (((DOS, TIN),), PatientStatus.NEW, None),
        (((date(2026, 5, 11), TIN),), PatientStatus.NEW, None),
        (((date(2026, 5, 9), OTHER_TIN),), PatientStatus.NEW, None),
        (((date(2026, 5, 9), "12-3456789"),), PatientStatus.ESTABLISHED, date(2026, 5, 9)),
        (
            ((date(2022, 1, 3), TIN), (date(2026, 3, 2), TIN), (date(2024, 8, 1), TIN)),
            PatientStatus.ESTABLISHED,
            date(2026, 3, 2),
        ),
        (
            ((date(2026, 4, 1), OTHER_TIN), (date(2021, 4, 1), TIN)),
            PatientStatus.NEW,
            date(2021, 4, 1),
        ),
    ],
    ids=[
        "no-history",
        "exactly-3-years-counts",
        "one-day-beyond-3-years",
        "one-day-inside",
        "same-day-does-not-count",
        "after-dos-ignored",
        "other-tin-ignored",
        "hyphenated-tin-same-entity",
        "latest-of-unsorted-history",
        "other-tin-recent-own-tin-stale",
    ],
)
def test_new_versus_established(
    visits: tuple[tuple[date, str], ...], status: PatientStatus, last: date | None
) -> None:
    result = code_session(TERMS, facts(), history(*visits))
    assert result.patient_status is status
    assert result.last_visit == last
    assert result.lines[0].code == ("99606" if status is PatientStatus.ESTABLISHED else "99605")
    if last is not None:
        assert f"last MTM visit {last.isoformat()}" in result.rationale


def test_lookback_is_configurable() -> None:
    visit = history((date(2024, 5, 9), TIN))
    assert code_session(TERMS, facts(), visit).patient_status is PatientStatus.ESTABLISHED
    two_years = terms(new_patient_lookback_years=2)
    assert code_session(two_years, facts(), visit).patient_status is PatientStatus.NEW


@pytest.mark.parametrize(
    ("dos", "prior", "status"),
    [
        (date(2028, 2, 29), date(2025, 2, 28), PatientStatus.ESTABLISHED),
        (date(2028, 2, 29), date(2025, 2, 27), PatientStatus.NEW),
        (date(2027, 2, 28), date(2024, 2, 28), PatientStatus.ESTABLISHED),
        (date(2027, 2, 28), date(2024, 2, 27), PatientStatus.NEW),
    ],
)
def test_lookback_edge_on_leap_days(dos: date, prior: date, status: PatientStatus) -> None:
    result = code_session(TERMS, facts(date_of_service=dos), history((prior, TIN)))
    assert result.patient_status is status


def test_lookback_start() -> None:
    assert lookback_start(date(2026, 5, 10), 3) == date(2023, 5, 10)
    assert lookback_start(date(2028, 2, 29), 3) == date(2025, 2, 28)
    assert lookback_start(date(2028, 2, 29), 4) == date(2024, 2, 29)


def test_patient_status_cannot_come_from_a_caller_flag() -> None:
    names = {f.name for f in fields(SessionFacts)}
    assert not names & {"new_patient", "established", "patient_status", "is_new"}


def test_same_day_encounters_resolve_deterministically() -> None:
    day = date(2026, 1, 5)
    one = EncounterHistory((PriorEncounter(day, TIN, "99607"), PriorEncounter(day, TIN, "99605")))
    two = EncounterHistory((PriorEncounter(day, TIN, "99605"), PriorEncounter(day, TIN, "99607")))
    assert code_session(TERMS, facts(), one) == code_session(TERMS, facts(), two)


# --- place of service and telehealth ----------------------------------------------------

_IN, _VID, _AUD = Modality.IN_PERSON, Modality.VIDEO, Modality.AUDIO
_PH, _HOME, _ELSE = PatientLocation.PHARMACY, PatientLocation.HOME, PatientLocation.OTHER


@pytest.mark.parametrize(
    ("modality", "location", "pos", "modifiers"),
    [
        (_IN, _PH, "01", ()),
        (_IN, _ELSE, "11", ()),
        (_VID, _HOME, "10", ("95",)),
        (_VID, _PH, "02", ("95",)),
        (_VID, _ELSE, "02", ("95",)),
        (_AUD, _HOME, "10", ("93",)),
        (_AUD, _PH, "02", ("93",)),
        (_AUD, _ELSE, "02", ("93",)),
    ],
)
def test_standard_place_of_service(
    modality: Modality, location: PatientLocation, pos: str, modifiers: tuple[str, ...]
) -> None:
    result = code_session(TERMS, facts(modality=modality, patient_location=location), NO_HISTORY)
    assert result.place_of_service == pos
    assert all(line.modifiers == modifiers for line in result.lines)
    assert result.status is CodingStatus.BILLABLE


def test_modality_the_contract_does_not_allow_is_not_billable() -> None:
    in_person_only = terms(telehealth=TelehealthPolicy(frozenset({Modality.IN_PERSON})))
    result = code_session(in_person_only, facts(modality=_AUD, patient_location=_HOME), NO_HISTORY)
    assert result.status is CodingStatus.NOT_BILLABLE
    assert reason_codes(result) == ["MODALITY_NOT_COVERED"]
    assert result.place_of_service is None
    assert "in person" in result.reasons[0].fix


def test_location_without_a_place_rule_is_not_billable() -> None:
    result = code_session(TERMS, facts(modality=_IN, patient_location=_HOME), NO_HISTORY)
    assert reason_codes(result) == ["LOCATION_NOT_COVERED"]
    assert result.status is CodingStatus.NOT_BILLABLE


def test_contract_specific_place_rule() -> None:
    policy = TelehealthPolicy(frozenset({_IN}), (PlaceOfServiceRule(_IN, _HOME, "12"),))
    result = code_session(
        terms(telehealth=policy), facts(modality=_IN, patient_location=_HOME), NO_HISTORY
    )
    assert result.place_of_service == "12"
    assert result.status is CodingStatus.BILLABLE


def test_place_rules_are_validated() -> None:
    with pytest.raises(CodingTermsError):
        PlaceOfServiceRule(_IN, _PH, "1")
    with pytest.raises(CodingTermsError):
        TelehealthPolicy(
            frozenset({_IN}),
            (PlaceOfServiceRule(_IN, _PH, "01"), PlaceOfServiceRule(_IN, _PH, "11")),
        )


# --- diagnoses --------------------------------------------------------------------------


def test_diagnoses_lose_dots_and_duplicates() -> None:
    result = code_session(TERMS, facts(diagnoses=("e11.9", " I10 ", "E119", "Z79.4")), NO_HISTORY)
    assert result.diagnoses == ("E119", "I10", "Z794")
    assert all(line.diagnosis_pointers == (1, 2, 3) for line in result.lines)


def test_at_most_four_pointers_per_line() -> None:
    codes = ("E11.9", "I10", "E78.5", "J44.9", "N18.3", "F32.9")
    result = code_session(TERMS, facts(diagnoses=codes), NO_HISTORY)
    assert len(result.diagnoses) == 6
    assert all(line.diagnosis_pointers == (1, 2, 3, 4) for line in result.lines)


_TWELVE = (
    "E119",
    "I10",
    "E785",
    "J449",
    "N183",
    "F329",
    "I509",
    "Z794",
    "E669",
    "G4733",
    "K219",
    "M545",
)


def test_twelve_diagnoses_fit_thirteen_hold() -> None:
    assert code_session(TERMS, facts(diagnoses=_TWELVE), NO_HISTORY).status is CodingStatus.BILLABLE
    result = code_session(TERMS, facts(diagnoses=(*_TWELVE, "R69")), NO_HISTORY)
    assert result.status is CodingStatus.HELD
    assert reason_codes(result) == ["TOO_MANY_DIAGNOSES"]


def test_no_diagnosis_holds() -> None:
    result = code_session(TERMS, facts(diagnoses=()), NO_HISTORY)
    assert result.status is CodingStatus.HELD
    assert reason_codes(result) == ["NO_DIAGNOSIS"]
    assert all(line.diagnosis_pointers == () for line in result.lines)


def test_malformed_diagnosis_holds_and_is_named() -> None:
    result = code_session(TERMS, facts(diagnoses=("E11.9", "E1.19", "123")), NO_HISTORY)
    assert result.status is CodingStatus.HELD
    assert reason_codes(result) == ["INVALID_DIAGNOSIS"]
    assert "'E1.19'" in result.reasons[0].message
    assert "'123'" in result.reasons[0].message
    assert result.diagnoses == ("E119",)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("E11.9", "E119"),
        ("u07.1", "U071"),
        ("S52.521A", "S52521A"),
        ("T38.3X6A", "T383X6A"),
        ("I10", "I10"),
        ("E11.", None),
        ("E1", None),
        ("11.9", None),
        ("E11.9.1", None),
        ("E119999A", None),
    ],
)
def test_normalize_diagnosis(raw: str, code: str | None) -> None:
    assert normalize_diagnosis(raw) == code


# --- pricing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dos", "charge", "expected"),
    [
        (date(2026, 6, 30), 9000 + 2 * 4000, 7000 + 2 * 3200),
        (PRICE_CHANGE, 9500 + 2 * 4200, 7400 + 2 * 3400),
    ],
)
def test_price_in_force_on_the_dos(dos: date, charge: int, expected: int) -> None:
    result = code_session(TERMS, facts(date_of_service=dos, face_to_face_minutes=40), NO_HISTORY)
    assert line_units(result) == [("99605", 1), ("99607", 2)]
    assert result.total_charge_cents == charge
    assert result.total_expected_cents == expected


def test_modifier_specific_price_first_then_bare_code() -> None:
    result = code_session(
        TERMS,
        facts(modality=_VID, patient_location=_HOME, face_to_face_minutes=40),
        NO_HISTORY,
    )
    base, addon = result.lines
    assert (base.charge_cents, base.expected_cents) == (9000, 7000)
    assert (addon.charge_cents, addon.expected_cents) == (2 * 4100, 2 * 3300)
    assert "at the 99605 rate without modifier" in result.rationale


def test_missing_fee_schedule_holds_and_names_the_line() -> None:
    result = code_session(
        TERMS, facts(date_of_service=date(2024, 12, 31), face_to_face_minutes=25), NO_HISTORY
    )
    assert result.status is CodingStatus.HELD
    assert reason_codes(result) == ["NO_FEE_SCHEDULE", "NO_FEE_SCHEDULE"]
    assert "99605" in result.reasons[0].message
    assert "2024-12-31" in result.reasons[0].message
    assert result.total_charge_cents == 0


def test_overlapping_fee_entries_are_rejected() -> None:
    overlap = (
        FeeScheduleEntry("99605", None, 9000, 7000, date(2025, 1, 1), date(2025, 12, 31)),
        FeeScheduleEntry("99605", None, 9500, 7400, date(2025, 12, 31)),
    )
    with pytest.raises(CodingTermsError, match="overlapping"):
        terms(fee_schedule=overlap)
    open_ended = (
        FeeScheduleEntry("99605", None, 9000, 7000, date(2025, 1, 1)),
        FeeScheduleEntry("99605", None, 9500, 7400, date(2026, 1, 1)),
    )
    with pytest.raises(CodingTermsError, match="overlapping"):
        terms(fee_schedule=open_ended)


# --- billability ------------------------------------------------------------------------


def test_clean_session_is_billable() -> None:
    result = code_session(TERMS, facts(), NO_HISTORY)
    assert result.status is CodingStatus.BILLABLE
    assert result.reasons == ()
    assert result.rule_version == "contract 12 v3"


def test_no_consent_holds_with_the_fix() -> None:
    result = code_session(TERMS, facts(consent=False), NO_HISTORY)
    assert result.status is CodingStatus.HELD
    (reason,) = result.reasons
    assert reason.code is ReasonCode.NO_CONSENT
    assert reason.fix == "record patient consent"
    assert line_units(result) == [("99605", 1), ("99607", 1)]


def test_missing_documentation_names_each_element() -> None:
    result = code_session(TERMS, facts(documentation_elements=frozenset()), NO_HISTORY)
    assert result.status is CodingStatus.HELD
    (reason,) = result.reasons
    assert reason.code is ReasonCode.MISSING_DOCUMENTATION
    assert "care_plan, med_list" in reason.message
    assert "care_plan, med_list" in reason.fix


@pytest.mark.parametrize(
    "code",
    [
        "FREQUENCY_LIMIT_REACHED",
        "EXCLUDED_POPULATION",
        "NO_COVERAGE_ON_DOS",
        "OPTED_OUT",
        "OUTSIDE_CONTRACT_WINDOW",
    ],
)
def test_eligibility_reasons_are_not_billable(code: str) -> None:
    result = code_session(TERMS, facts(), NO_HISTORY, (code, code))
    assert result.status is CodingStatus.NOT_BILLABLE
    assert reason_codes(result) == [code]
    assert result.reasons[0].fix


def test_unknown_eligibility_reason_is_held_for_review() -> None:
    result = code_session(TERMS, facts(), NO_HISTORY, ("PRIOR_AUTH_PENDING",))
    assert result.status is CodingStatus.HELD
    assert reason_codes(result) == ["UNRECOGNIZED_ELIGIBILITY_REASON"]
    assert "PRIOR_AUTH_PENDING" in result.reasons[0].message


def test_not_billable_outranks_held_and_every_reason_is_kept() -> None:
    result = code_session(TERMS, facts(consent=False, diagnoses=()), NO_HISTORY, ("OPTED_OUT",))
    assert result.status is CodingStatus.NOT_BILLABLE
    assert reason_codes(result) == ["OPTED_OUT", "NO_CONSENT", "NO_DIAGNOSIS"]
    assert "Status: not_billable (OPTED_OUT, NO_CONSENT, NO_DIAGNOSIS)." in result.rationale


def test_worked_example_from_the_brief() -> None:
    result = code_session(
        TERMS,
        facts(face_to_face_minutes=42, modality=_VID, patient_location=_HOME),
        history((date(2026, 3, 2), TIN)),
    )
    assert result.status is CodingStatus.BILLABLE
    assert result.patient_status is PatientStatus.ESTABLISHED
    assert line_units(result) == [("99606", 1), ("99607", 2)]
    assert result.place_of_service == "10"
    assert (
        "99606 x1 for the first 15 min; 27 min remain; midpoint rule: 99607 x2" in result.rationale
    )
    assert "last MTM visit 2026-03-02" in result.rationale
    assert result.rationale.endswith("Rule version: contract 12 v3.")
    assert result.total_charge_cents == 7500 + 2 * 4100


def test_negative_minutes_are_rejected() -> None:
    with pytest.raises(ValueError, match="negative"):
        facts(face_to_face_minutes=-1)
