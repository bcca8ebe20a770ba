"""Properties of the coding engine that must hold for every input, not just the examples."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.billing.domain.coding import (
    CodingStatus,
    EncounterHistory,
    Modality,
    PatientLocation,
    PriorEncounter,
    ServiceType,
    SessionFacts,
    TimeRule,
    code_member_month,
    code_session,
    session_units,
)
from tests.unit.billing.test_coding_support import OTHER_TIN, TIN, terms

_RULES = st.sampled_from(list(TimeRule))
_MINUTES = st.integers(min_value=0, max_value=400)
_CAPS = st.none() | st.integers(min_value=0, max_value=6)
_DAYS = st.dates(min_value=date(2025, 1, 1), max_value=date(2028, 12, 31))
_DIAGNOSES = st.lists(
    st.sampled_from(["E11.9", "I10", "E78.5", "J44.9", "N18.3", "F32.9", "Z79.4", "bad"]),
    max_size=14,
)

_facts = st.builds(
    SessionFacts,
    date_of_service=_DAYS,
    face_to_face_minutes=_MINUTES,
    modality=st.sampled_from(list(Modality)),
    patient_location=st.sampled_from(list(PatientLocation)),
    service_type=st.sampled_from(list(ServiceType)),
    diagnoses=_DIAGNOSES.map(tuple),
    interventions=st.integers(min_value=0, max_value=5),
    consent=st.booleans(),
    documentation_elements=st.frozensets(st.sampled_from(["care_plan", "med_list", "x"])),
    billing_tin=st.sampled_from([TIN, OTHER_TIN]),
)
_encounters = st.lists(
    st.builds(
        PriorEncounter,
        dos=st.dates(min_value=date(2020, 1, 1), max_value=date(2028, 12, 31)),
        tin=st.sampled_from([TIN, OTHER_TIN, "12-3456789"]),
        code=st.sampled_from(["99605", "99606"]),
    ),
    max_size=12,
)
_eligibility = st.lists(
    st.sampled_from(["FREQUENCY_LIMIT_REACHED", "OPTED_OUT", "SOMETHING_NEW"]), max_size=2
)


def _total_units(rule: TimeRule, minutes: int, cap: int | None) -> int:
    result = code_session(
        terms(time_rule=rule, max_addon_units=cap),
        SessionFacts(
            date_of_service=date(2026, 5, 10),
            face_to_face_minutes=minutes,
            modality=Modality.IN_PERSON,
            patient_location=PatientLocation.PHARMACY,
            service_type=ServiceType.TMR,
            diagnoses=("I10",),
            interventions=1,
            consent=True,
            documentation_elements=frozenset({"care_plan", "med_list"}),
            billing_tin=TIN,
        ),
        EncounterHistory(),
    )
    return sum(line.units for line in result.lines)


@given(rule=_RULES, minutes=_MINUTES, more=st.integers(min_value=0, max_value=120), cap=_CAPS)
def test_units_never_decrease_as_minutes_grow(
    rule: TimeRule, minutes: int, more: int, cap: int | None
) -> None:
    assert _total_units(rule, minutes, cap) <= _total_units(rule, minutes + more, cap)
    assert session_units(rule, minutes) <= session_units(rule, minutes + more)


@given(rule=_RULES, minutes=_MINUTES)
def test_each_unit_stands_for_at_most_its_time(rule: TimeRule, minutes: int) -> None:
    # No rule may bill more 15-min units than started 15-min blocks.
    base, addon = session_units(rule, minutes)
    assert base + addon <= -(-minutes // 15)


@settings(max_examples=300)
@given(
    rule=_RULES,
    cap=_CAPS,
    facts=_facts,
    encounters=_encounters,
    eligibility=_eligibility,
)
def test_addon_never_alone_and_cap_holds(
    rule: TimeRule,
    cap: int | None,
    facts: SessionFacts,
    encounters: list[PriorEncounter],
    eligibility: list[str],
) -> None:
    contract = terms(time_rule=rule, max_addon_units=cap)
    result = code_session(contract, facts, EncounterHistory(tuple(encounters)), eligibility)
    codes = [line.code for line in result.lines]
    if "99607" in codes:
        assert codes == [result.lines[0].code, "99607"]
        assert result.lines[0].code in {"99605", "99606"}
        assert result.lines[0].units == 1
        assert result.lines[1].units >= 1
    if cap is not None:
        assert sum(line.units for line in result.lines if line.code == "99607") <= cap
    assert result.minutes == facts.face_to_face_minutes
    assert len({line.diagnosis_pointers for line in result.lines}) <= 1
    for line in result.lines:
        assert len(line.diagnosis_pointers) <= 4
        assert all(1 <= p <= len(result.diagnoses) for p in line.diagnosis_pointers)
    assert all("." not in code for code in result.diagnoses)
    assert result.rule_version in result.rationale
    assert (result.status is CodingStatus.BILLABLE) == (not result.reasons)


@settings(max_examples=200)
@given(facts=_facts, encounters=_encounters, eligibility=_eligibility, rule=_RULES)
def test_same_input_same_output(
    facts: SessionFacts,
    encounters: list[PriorEncounter],
    eligibility: list[str],
    rule: TimeRule,
) -> None:
    contract = terms(time_rule=rule)
    first = code_session(contract, facts, EncounterHistory(tuple(encounters)), eligibility)
    # Fresh, equal objects and a reversed history must not change anything.
    again = code_session(
        replace(contract),
        replace(facts),
        EncounterHistory(tuple(reversed(encounters))),
        list(eligibility),
    )
    assert first == again
    assert first.rationale == again.rationale


@given(facts=_facts, encounters=_encounters)
def test_established_iff_same_tin_visit_inside_lookback(
    facts: SessionFacts, encounters: list[PriorEncounter]
) -> None:
    result = code_session(terms(), facts, EncounterHistory(tuple(encounters)))
    dos = facts.date_of_service
    tin = facts.billing_tin.replace("-", "")
    start = dos.replace(year=dos.year - 3) if (dos.month, dos.day) != (2, 29) else None
    if start is None:
        start = date(dos.year - 3, 2, 28)
    inside = [e for e in encounters if e.tin.replace("-", "") == tin and start <= e.dos < dos]
    assert (result.patient_status.value == "established") == bool(inside)
    if inside:
        assert result.last_visit == max(e.dos for e in inside)


@given(
    minutes=st.lists(st.integers(min_value=0, max_value=90), max_size=6),
    extra=st.integers(min_value=0, max_value=60),
    interventions=st.lists(st.integers(min_value=0, max_value=3), max_size=4),
)
def test_monthly_units_monotone_capped_and_never_addon_alone(
    minutes: list[int], extra: int, interventions: list[int]
) -> None:
    contract = terms()
    less = code_member_month(contract, minutes, interventions, 2026, 3)
    more = code_member_month(contract, [*minutes, extra], interventions, 2026, 3)
    assert less.total_minutes == sum(minutes)
    for result in (less, more):
        codes = [line.code for line in result.lines]
        assert codes in ([], ["99490"], ["99490", "99439"])
        assert sum(line.units for line in result.lines if line.code == "99439") <= 2
    assert sum(line.units for line in less.lines) <= sum(line.units for line in more.lines)


def test_history_index_handles_large_histories() -> None:
    start = date(2000, 1, 1)
    encounters = tuple(
        PriorEncounter(start + timedelta(days=i), TIN if i % 2 else OTHER_TIN, "99606")
        for i in range(20_000)
    )
    history = EncounterHistory(encounters)
    last = history.last_before(TIN, date(2060, 1, 1))
    assert last is not None
    assert last.dos == start + timedelta(days=19_999)
    middle = history.last_before(TIN, start + timedelta(days=101))
    assert middle is not None
    assert middle.dos == start + timedelta(days=99)
    assert history.last_before(TIN, start + timedelta(days=1)) is None
