from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from services.coverage.domain.contracts import (
    ContractVersion,
    FrequencyLimit,
    LimitPeriod,
    LimitScope,
    Modality,
    PatientLocation,
    ServiceType,
    TelehealthPolicy,
    TelehealthRule,
)
from services.coverage.domain.eligibility import (
    DateWindow,
    Eligibility,
    PriorService,
    ReasonCode,
    check_eligibility,
    period_for,
)
from services.coverage.domain.spans import PART_D_ELIGIBLE, CoverageSpan, Priority
from tests.unit.coverage.factories import RECORDED, span, terms, version

CONTRACTS: dict[str, list[ContractVersion]] = {"c1": [version()], "c2": [version()]}
CMR = ServiceType.CMR


def check(
    spans: list[CoverageSpan],
    dos: date,
    contracts: dict[str, list[ContractVersion]] | None = None,
    prior: list[PriorService] | None = None,
    service: ServiceType = CMR,
    **kw: Any,
) -> Eligibility:
    return check_eligibility(spans, contracts or CONTRACTS, dos, service, prior or [], **kw)


def codes(result: Eligibility) -> list[ReasonCode]:
    return [reason.code for reason in result.reasons]


def test_span_edges_are_inclusive() -> None:
    s = span(effective_from=date(2026, 1, 1), effective_to=date(2026, 3, 31))
    assert not check([s], date(2025, 12, 31)).eligible
    assert check([s], date(2026, 1, 1)).eligible
    assert check([s], date(2026, 3, 31)).eligible
    after = check([s], date(2026, 4, 1))
    assert not after.eligible
    assert codes(after) == [ReasonCode.NO_COVERAGE_ON_DOS]
    assert after.reasons[0].fix


def test_open_ended_span_and_window() -> None:
    s = span(effective_from=date(2024, 6, 1))
    result = check([s], date(2030, 1, 1))
    assert result.eligible
    assert result.span is s
    assert result.window == DateWindow(date(2024, 6, 1), None)
    assert result.reasons == ()


def test_window_is_span_intersected_with_contract_version() -> None:
    contracts = {
        "c1": [
            version(1, date(2020, 1, 1), date(2025, 12, 31)),
            version(2, date(2026, 1, 1), date(2026, 12, 31)),
        ]
    }
    s = span(effective_from=date(2025, 7, 1), effective_to=date(2027, 6, 30))
    result = check([s], date(2026, 5, 5), contracts)
    assert result.contract_version is contracts["c1"][1]
    assert result.window == DateWindow(date(2026, 1, 1), date(2026, 12, 31))
    assert check([s], date(2025, 12, 31), contracts).contract_version is contracts["c1"][0]


def test_contract_version_gap_is_outside_contract_window() -> None:
    contracts = {
        "c1": [
            version(1, date(2020, 1, 1), date(2025, 12, 31)),
            version(2, date(2026, 2, 1), None),
        ]
    }
    s = span(effective_from=date(2025, 1, 1))
    assert check([s], date(2025, 12, 31), contracts).eligible
    gap = check([s], date(2026, 1, 15), contracts)
    assert codes(gap) == [ReasonCode.OUTSIDE_CONTRACT_WINDOW]
    assert check([s], date(2026, 2, 1), contracts).eligible


def test_unknown_contract() -> None:
    result = check([span(contract_id="nope")], date(2026, 1, 1))
    assert codes(result) == [ReasonCode.UNKNOWN_CONTRACT]


def test_retro_termination_depends_on_what_was_known() -> None:
    original = span(effective_from=date(2026, 1, 1), recorded_at=RECORDED)
    retro = span(
        effective_from=date(2026, 1, 1),
        effective_to=date(2026, 1, 31),
        recorded_at=datetime(2026, 3, 10, tzinfo=UTC),
    )
    history = [retro, original]
    dos = date(2026, 2, 20)
    assert check(history, dos, as_known_at=datetime(2026, 3, 1, tzinfo=UTC)).eligible
    assert not check(history, dos, as_known_at=datetime(2026, 3, 10, tzinfo=UTC)).eligible
    latest = check(history, dos)
    assert codes(latest) == [ReasonCode.NO_COVERAGE_ON_DOS]
    assert check(history, date(2026, 1, 31)).eligible


def test_nothing_known_yet_means_no_coverage() -> None:
    result = check([span()], date(2025, 6, 1), as_known_at=RECORDED - timedelta(seconds=1))
    assert codes(result) == [ReasonCode.NO_COVERAGE_ON_DOS]


def test_opt_out_on_and_after_date() -> None:
    s = span(effective_from=date(2026, 1, 1), opt_out_date=date(2026, 4, 10))
    before = check([s], date(2026, 4, 9))
    assert before.eligible
    assert before.window == DateWindow(date(2026, 1, 1), date(2026, 4, 9))
    on = check([s], date(2026, 4, 10))
    assert codes(on) == [ReasonCode.OPTED_OUT]
    assert codes(check([s], date(2026, 9, 1))) == [ReasonCode.OPTED_OUT]


def test_opt_out_on_sibling_span_of_same_contract_applies_but_not_to_reenrollment() -> None:
    from_csv = span(span_id="a", effective_from=date(2026, 1, 1))
    from_834 = span(span_id="b", effective_from=date(2026, 1, 1), opt_out_date=date(2026, 3, 1))
    assert codes(check([from_csv, from_834], date(2026, 3, 5)))[0] is ReasonCode.OPTED_OUT
    reenrolled = span(span_id="c", effective_from=date(2026, 6, 1))
    assert check([from_834, reenrolled], date(2026, 6, 1)).span is reenrolled


def test_primary_failure_falls_through_to_secondary_keeping_reasons() -> None:
    contracts = {"c1": [version(contract_terms=terms(exclusions=frozenset({PART_D_ELIGIBLE})))]}
    contracts["c2"] = [version()]
    primary = span(span_id="p", contract_id="c1", population_flags=frozenset({PART_D_ELIGIBLE}))
    secondary = span(span_id="s", contract_id="c2", priority=Priority.SECONDARY)
    result = check([secondary, primary], date(2026, 2, 2), contracts)
    assert result.eligible
    assert result.span is secondary
    assert [r.span.span_id for r in result.rejected] == ["p"]
    assert result.rejected[0].reasons[0].code is ReasonCode.EXCLUDED_POPULATION
    assert result.rejected[0].reasons[0].span_id == "p"


def test_primary_preferred_when_both_eligible() -> None:
    primary = span(span_id="p", contract_id="c1")
    secondary = span(span_id="s", contract_id="c2", priority=Priority.SECONDARY)
    tertiary = span(span_id="t", contract_id="c2", priority=Priority.TERTIARY)
    result = check([tertiary, secondary, primary], date(2026, 2, 2))
    assert result.span is primary
    assert result.rejected == ()


def test_all_spans_failing_collects_every_reason() -> None:
    primary = span(span_id="p", opt_out_date=date(2026, 1, 1))
    secondary = span(span_id="s", contract_id="zz", priority=Priority.SECONDARY)
    result = check([primary, secondary], date(2026, 2, 2))
    assert not result.eligible
    assert result.span is None
    assert codes(result) == [ReasonCode.OPTED_OUT, ReasonCode.UNKNOWN_CONTRACT]
    assert len(result.rejected) == 2


def _limited(
    limit: FrequencyLimit, plan_year_start_month: int = 1
) -> dict[str, list[ContractVersion]]:
    contract_terms = terms(frequency_limits=(limit,), plan_year_start_month=plan_year_start_month)
    return {"c1": [version(contract_terms=contract_terms)]}


def prior(dos: date, service: ServiceType = CMR, contract_id: str = "c1") -> PriorService:
    return PriorService(dos, service, "123456789", contract_id=contract_id)


def test_cmr_once_per_plan_year_with_july_start() -> None:
    contracts = _limited(FrequencyLimit(LimitScope.CMR, 1, LimitPeriod.PLAN_YEAR), 7)
    s = span(effective_from=date(2024, 1, 1))
    first = check([s], date(2026, 3, 1), contracts, [])
    assert first.eligible
    usage = first.usage[0]
    assert (usage.period_start, usage.period_end) == (date(2025, 7, 1), date(2026, 6, 30))
    assert usage.text == "CMR 1 of 1 used in plan year 2025-07-01 to 2026-06-30"
    history = [prior(date(2025, 7, 1))]
    blocked = check([s], date(2026, 6, 30), contracts, history)
    assert codes(blocked) == [ReasonCode.FREQUENCY_LIMIT_REACHED]
    assert blocked.rejected[0].usage[0].text == (
        "CMR 2 of 1 used in plan year 2025-07-01 to 2026-06-30"
    )
    assert "limit of 1" in blocked.reasons[0].message
    # The plan year rolls over on 1 July, not 1 January.
    assert check([s], date(2026, 7, 1), contracts, history).eligible
    assert check([s], date(2025, 6, 30), contracts, history).eligible


def test_january_plan_year_text_and_other_service_types_not_counted() -> None:
    contracts = _limited(FrequencyLimit(LimitScope.CMR, 1, LimitPeriod.PLAN_YEAR))
    history = [prior(date(2026, 1, 5), ServiceType.TMR), prior(date(2025, 12, 31))]
    result = check([span()], date(2026, 2, 1), contracts, history)
    assert result.eligible
    assert result.usage[0].text == "CMR 1 of 1 used in plan year 2026"
    tmr = check([span()], date(2026, 2, 1), contracts, history, ServiceType.TMR)
    assert tmr.usage == ()


def test_prior_services_of_other_contracts_or_payers_do_not_count() -> None:
    contracts = _limited(FrequencyLimit(LimitScope.ANY, 1, LimitPeriod.CALENDAR_MONTH))
    history = [
        prior(date(2026, 2, 3), contract_id="c2"),
        PriorService(date(2026, 2, 3), CMR, "999999999", payer_id="payer-b"),
    ]
    result = check([span()], date(2026, 2, 20), contracts, history)
    assert result.eligible
    assert result.usage[0].text == "ANY 1 of 1 used in month 2026-02"
    same_payer = [PriorService(date(2026, 2, 3), ServiceType.TMR, "999999999", payer_id="payer-a")]
    assert not check([span()], date(2026, 2, 20), contracts, same_payer).eligible


def test_rolling_365_days() -> None:
    contracts = _limited(FrequencyLimit(LimitScope.CMR, 1, LimitPeriod.ROLLING_365))
    history = [prior(date(2025, 3, 1))]
    s = span(effective_from=date(2024, 1, 1))
    # 2026-02-28 is day 365 counting 2025-03-01 as day 1.
    blocked = check([s], date(2026, 2, 28), contracts, history)
    assert codes(blocked) == [ReasonCode.FREQUENCY_LIMIT_REACHED]
    allowed = check([s], date(2026, 3, 1), contracts, history)
    assert allowed.eligible
    assert allowed.usage[0].text == "CMR 1 of 1 used in the 365 days 2025-03-02 to 2026-03-01"


def test_quarter_limit_follows_plan_year() -> None:
    contracts = _limited(FrequencyLimit(LimitScope.TMR, 1, LimitPeriod.QUARTER), 2)
    history = [prior(date(2026, 2, 1), ServiceType.TMR)]
    s = span(effective_from=date(2024, 1, 1))
    # February plan year: quarters are Feb-Apr, May-Jul, ...
    assert not check([s], date(2026, 4, 30), contracts, history, ServiceType.TMR).eligible
    result = check([s], date(2026, 5, 1), contracts, history, ServiceType.TMR)
    assert result.eligible
    assert result.usage[0].period_label == "plan quarter 2026-05-01 to 2026-07-31"


def test_usage_counts_the_current_service_for_several_limits() -> None:
    limits = (
        FrequencyLimit(LimitScope.ANY, 3, LimitPeriod.PLAN_YEAR),
        FrequencyLimit(LimitScope.TMR, 4, LimitPeriod.PLAN_YEAR),
    )
    contracts = {"c1": [version(contract_terms=terms(frequency_limits=limits))]}
    history = [prior(date(2026, 1, 2)), prior(date(2026, 11, 2), ServiceType.TMR)]
    result = check([span()], date(2026, 6, 1), contracts, history, ServiceType.TMR)
    assert [(u.used, u.max_count, u.exceeded) for u in result.usage] == [
        (3, 3, False),
        (2, 4, False),
    ]
    assert result.usage[0].text == "ANY 3 of 3 used in plan year 2026"


def test_period_for_plan_year_and_quarter_bounds() -> None:
    assert period_for(LimitPeriod.PLAN_YEAR, date(2026, 3, 31), 4) == (
        date(2025, 4, 1),
        date(2026, 3, 31),
    )
    assert period_for(LimitPeriod.QUARTER, date(2026, 12, 31), 1) == (
        date(2026, 10, 1),
        date(2026, 12, 31),
    )
    assert period_for(LimitPeriod.CALENDAR_MONTH, date(2028, 2, 10), 1) == (
        date(2028, 2, 1),
        date(2028, 2, 29),
    )


def _telehealth_contracts() -> dict[str, list[ContractVersion]]:
    policy = TelehealthPolicy(
        allowed_modalities=frozenset({Modality.IN_PERSON, Modality.VIDEO}),
        rules=(
            TelehealthRule(Modality.IN_PERSON, PatientLocation.PHARMACY, "01"),
            TelehealthRule(Modality.VIDEO, PatientLocation.HOME, "10", "95"),
        ),
    )
    return {"c1": [version(contract_terms=terms(telehealth=policy))]}


def test_modality_not_covered_and_routing() -> None:
    contracts = _telehealth_contracts()
    dos = date(2026, 2, 2)
    audio = check([span()], dos, contracts, modality=Modality.AUDIO)
    assert codes(audio) == [ReasonCode.MODALITY_NOT_COVERED]
    video = check(
        [span()], dos, contracts, modality=Modality.VIDEO, patient_location=PatientLocation.HOME
    )
    assert video.eligible
    assert video.routing is not None
    assert (video.routing.place_of_service, video.routing.modifier) == ("10", "95")
    no_rule = check(
        [span()], dos, contracts, modality=Modality.VIDEO, patient_location=PatientLocation.OTHER
    )
    assert codes(no_rule) == [ReasonCode.MODALITY_NOT_COVERED]
    assert check([span()], dos, contracts).routing is None


def test_default_contract_is_in_person_only() -> None:
    result = check([span()], date(2026, 2, 2), modality=Modality.VIDEO)
    assert codes(result) == [ReasonCode.MODALITY_NOT_COVERED]


DAY = st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31))


@given(start=DAY, length=st.none() | st.integers(min_value=-3, max_value=800), dos=DAY)
def test_single_span_without_limits_is_eligible_exactly_when_it_covers(
    start: date, length: int | None, dos: date
) -> None:
    end = None if length is None else start + timedelta(days=length)
    s = span(effective_from=start, effective_to=end)
    result = check([s], dos)
    assert result.eligible == s.covers(dos)
    if result.eligible:
        assert result.window is not None
        assert result.window.contains(dos)


@given(
    history=st.lists(st.tuples(DAY, st.sampled_from(list(ServiceType))), max_size=6),
    dos=DAY,
    service=st.sampled_from(list(ServiceType)),
    max_count=st.integers(min_value=0, max_value=4),
    period=st.sampled_from(list(LimitPeriod)),
    start_month=st.integers(min_value=1, max_value=12),
)
def test_limit_usage_matches_a_brute_force_count(
    history: list[tuple[date, ServiceType]],
    dos: date,
    service: ServiceType,
    max_count: int,
    period: LimitPeriod,
    start_month: int,
) -> None:
    contracts = _limited(FrequencyLimit(LimitScope.ANY, max_count, period), start_month)
    services = [prior(d, kind) for d, kind in history]
    s = span(effective_from=date(2019, 1, 1))
    result = check([s], dos, contracts, services, service)
    start, end = period_for(period, dos, start_month)
    assert start <= dos <= end
    expected_used = 1 + sum(1 for d, _ in history if start <= d <= end)
    assert result.eligible == (expected_used <= max_count)
    usage = result.usage if result.eligible else result.rejected[0].usage
    assert usage[0].used == expected_used
    assert usage[0].exceeded != result.eligible
