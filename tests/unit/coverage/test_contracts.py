from __future__ import annotations

from datetime import date
from typing import Any

from services.coverage.domain.contract_validation import validate_terms, validate_versions
from services.coverage.domain.contracts import (
    ActivityRequirement,
    BillingModel,
    FeeScheduleEntry,
    FieldError,
    FrequencyLimit,
    LimitPeriod,
    LimitScope,
    Modality,
    MonthlyCode,
    PatientLocation,
    PaymentMode,
    ServiceType,
    TelehealthPolicy,
    TelehealthRule,
    TierRate,
    version_in_force,
)
from tests.unit.coverage.factories import pmpm, terms, version


def _codes(errors: list[FieldError]) -> set[tuple[str, str]]:
    return {(e.path, e.code) for e in errors}


def fee(code: str = "99605", charge: int = 7500, **kw: Any) -> FeeScheduleEntry:
    values: dict[str, Any] = {
        "code": code,
        "modifier": None,
        "charge": charge,
        "allowed": 6000,
        "effective_from": date(2026, 1, 1),
        "effective_to": None,
    }
    values.update(kw)
    return FeeScheduleEntry(**values)


def test_default_terms_are_valid() -> None:
    assert validate_terms(terms()) == []


def test_negative_charge_is_reported_at_its_field_path() -> None:
    schedule = (fee("99605"), fee("99606"), fee("99607", charge=-1))
    errors = validate_terms(terms(fee_schedule=schedule))
    assert _codes(errors) == {("terms.fee_schedule[2].charge", "NEGATIVE_AMOUNT")}


def test_allowed_above_charge_is_not_an_error() -> None:
    assert validate_terms(terms(fee_schedule=(fee(charge=5000, allowed=9000),))) == []


def test_unknown_code_and_bad_modifier() -> None:
    schedule = (fee("99999"), fee("99605", modifier="9"))
    assert _codes(validate_terms(terms(fee_schedule=schedule))) == {
        ("terms.fee_schedule[0].code", "UNKNOWN_CODE"),
        ("terms.fee_schedule[1].modifier", "INVALID_MODIFIER"),
    }


def test_overlapping_fee_entries_for_same_code_and_modifier() -> None:
    schedule = (
        fee(effective_from=date(2026, 1, 1), effective_to=date(2026, 6, 30)),
        fee(modifier="95", effective_from=date(2026, 3, 1)),  # other modifier: fine
        fee(effective_from=date(2026, 6, 30)),  # shares 30 June with [0]
        fee(effective_from=date(2025, 1, 1), effective_to=date(2025, 12, 31)),  # adjacent
    )
    errors = validate_terms(terms(fee_schedule=schedule))
    assert _codes(errors) == {("terms.fee_schedule[2]", "OVERLAPPING_FEE_ENTRY")}
    assert "terms.fee_schedule[0]" in errors[0].message


def test_open_ended_fee_entry_overlaps_every_later_entry() -> None:
    schedule = (fee(effective_from=date(2025, 1, 1)), fee(effective_from=date(2027, 1, 1)))
    assert _codes(validate_terms(terms(fee_schedule=schedule))) == {
        ("terms.fee_schedule[1]", "OVERLAPPING_FEE_ENTRY")
    }


def test_fee_entry_with_reversed_dates() -> None:
    entry = fee(effective_from=date(2026, 2, 1), effective_to=date(2026, 1, 1))
    assert _codes(validate_terms(terms(fee_schedule=(entry,)))) == {
        ("terms.fee_schedule[0].effective_to", "INVALID_DATE_RANGE")
    }


def test_pmpm_model_needs_pmpm_terms_and_encounter_model_must_not_have_them() -> None:
    assert _codes(validate_terms(terms(billing_model=BillingModel.PMPM))) == {
        ("terms.pmpm", "MISSING")
    }
    assert _codes(validate_terms(terms(pmpm=pmpm()))) == {("terms.pmpm", "INCONSISTENT")}
    assert validate_terms(terms(billing_model=BillingModel.PMPM, pmpm=pmpm())) == []


def test_pmpm_terms_field_paths() -> None:
    bad = pmpm(
        rates=(TierRate("standard", -5), TierRate("standard", 100)),
        default_tier="gold",
        activity=ActivityRequirement(),
        monthly_codes=(
            MonthlyCode("99490", 20, "99437", 20),  # wrong add-on for 99490
            MonthlyCode("99439", 20),  # an add-on as a base code
            MonthlyCode("G0556", 0, None),
            MonthlyCode("99491", 30, "99437", 0),  # add-on without a step
            MonthlyCode("12345", 10),
        ),
        retro_window_months=-1,
    )
    errors = validate_terms(terms(billing_model=BillingModel.PMPM, pmpm=bad))
    assert _codes(errors) == {
        ("terms.pmpm.rates[0].rate", "NEGATIVE_AMOUNT"),
        ("terms.pmpm.rates[1].tier", "DUPLICATE"),
        ("terms.pmpm.default_tier", "INCONSISTENT"),
        ("terms.pmpm.activity", "MISSING"),
        ("terms.pmpm.monthly_codes[0].addon_code", "INCONSISTENT"),
        ("terms.pmpm.monthly_codes[1].code", "INCONSISTENT"),
        ("terms.pmpm.monthly_codes[3].addon_step_minutes", "OUT_OF_RANGE"),
        ("terms.pmpm.monthly_codes[4].code", "UNKNOWN_CODE"),
        ("terms.pmpm.retro_window_months", "OUT_OF_RANGE"),
    }


def test_monthly_claim_mode_needs_codes() -> None:
    contract = terms(
        billing_model=BillingModel.PMPM, pmpm=pmpm(payment_mode=PaymentMode.MONTHLY_CLAIM)
    )
    assert _codes(validate_terms(contract)) == {("terms.pmpm.monthly_codes", "MISSING")}


def test_telehealth_rules_are_checked() -> None:
    policy = TelehealthPolicy(
        allowed_modalities=frozenset({Modality.IN_PERSON, Modality.VIDEO, Modality.AUDIO}),
        rules=(
            TelehealthRule(Modality.IN_PERSON, PatientLocation.PHARMACY, "01"),
            TelehealthRule(Modality.VIDEO, PatientLocation.HOME, "02", "95"),  # home is 10
            TelehealthRule(Modality.VIDEO, PatientLocation.OTHER, "10", "95"),  # 10 is home
            TelehealthRule(Modality.AUDIO, PatientLocation.HOME, "10", "95"),  # audio is 93
            TelehealthRule(Modality.IN_PERSON, PatientLocation.OTHER, "11", "95"),
            TelehealthRule(Modality.AUDIO, PatientLocation.OTHER, "99", "GT"),
            TelehealthRule(Modality.IN_PERSON, PatientLocation.PHARMACY, "01"),
        ),
    )
    assert _codes(validate_terms(terms(telehealth=policy))) == {
        ("terms.telehealth.rules[1].place_of_service", "INVALID_POS"),
        ("terms.telehealth.rules[2].place_of_service", "INVALID_POS"),
        ("terms.telehealth.rules[3].modifier", "INVALID_MODIFIER"),
        ("terms.telehealth.rules[4].modifier", "INVALID_MODIFIER"),
        ("terms.telehealth.rules[5].place_of_service", "INVALID_POS"),
        ("terms.telehealth.rules[5].modifier", "INVALID_MODIFIER"),
        ("terms.telehealth.rules[6]", "DUPLICATE"),
    }


def test_allowed_modality_without_rule_and_rule_for_disallowed_modality() -> None:
    policy = TelehealthPolicy(
        allowed_modalities=frozenset({Modality.IN_PERSON, Modality.AUDIO}),
        rules=(
            TelehealthRule(Modality.IN_PERSON, PatientLocation.PHARMACY, "01"),
            TelehealthRule(Modality.VIDEO, PatientLocation.HOME, "10", "95"),
        ),
    )
    assert _codes(validate_terms(terms(telehealth=policy))) == {
        ("terms.telehealth.rules[1].modality", "INCONSISTENT"),
        ("terms.telehealth.allowed_modalities", "MISSING"),
    }


def test_scalar_ranges_limits_and_flags() -> None:
    contract = terms(
        new_patient_lookback_years=0,
        min_base_minutes=16,
        max_addon_units=-1,
        plan_year_start_month=13,
        frequency_limits=(
            FrequencyLimit(LimitScope.CMR, -1, LimitPeriod.PLAN_YEAR),
            FrequencyLimit(LimitScope.CMR, 2, LimitPeriod.PLAN_YEAR),
        ),
        exclusions=frozenset({"part d"}),
        required_documentation=frozenset({" "}),
    )
    assert _codes(validate_terms(contract, "contract")) == {
        ("contract.new_patient_lookback_years", "OUT_OF_RANGE"),
        ("contract.min_base_minutes", "OUT_OF_RANGE"),
        ("contract.max_addon_units", "OUT_OF_RANGE"),
        ("contract.plan_year_start_month", "OUT_OF_RANGE"),
        ("contract.frequency_limits[0].max_count", "OUT_OF_RANGE"),
        ("contract.frequency_limits[1]", "DUPLICATE"),
        ("contract.exclusions", "INVALID_FLAG"),
        ("contract.required_documentation", "MISSING"),
    }


def test_validate_versions_overlap_duplicates_and_nested_paths() -> None:
    versions = [
        version(1, date(2024, 1, 1), date(2024, 12, 31)),
        version(2, date(2024, 12, 31), date(2025, 12, 31)),
        version(2, date(2026, 2, 1), None, terms(plan_year_start_month=0)),
    ]
    assert _codes(validate_versions(versions)) == {
        ("versions[1].effective_from", "OVERLAPPING_VERSION"),
        ("versions[2].version", "DUPLICATE"),
        ("versions[2].terms.plan_year_start_month", "OUT_OF_RANGE"),
    }


def test_gap_between_versions_is_allowed() -> None:
    versions = [
        version(1, date(2024, 1, 1), date(2024, 12, 31)),
        version(2, date(2025, 3, 1), None),
    ]
    assert validate_versions(versions) == []


def test_version_in_force_at_boundaries() -> None:
    v1 = version(1, date(2024, 1, 1), date(2024, 12, 31))
    v2 = version(2, date(2025, 1, 1), None)
    versions = [v2, v1]
    assert version_in_force(versions, date(2023, 12, 31)) is None
    assert version_in_force(versions, date(2024, 1, 1)) is v1
    assert version_in_force(versions, date(2024, 12, 31)) is v1
    assert version_in_force(versions, date(2025, 1, 1)) is v2
    assert version_in_force(versions, date(2099, 1, 1)) is v2


def test_fee_lookup_by_code_modifier_and_date() -> None:
    old = fee(effective_from=date(2025, 1, 1), effective_to=date(2025, 12, 31), charge=7000)
    new = fee(effective_from=date(2026, 1, 1), charge=7500)
    video = fee(modifier="95", charge=7100)
    contract = terms(fee_schedule=(old, new, video))
    assert contract.fee_for("99605", None, date(2025, 12, 31)) is old
    assert contract.fee_for("99605", None, date(2026, 1, 1)) is new
    assert contract.fee_for("99605", "95", date(2026, 5, 1)) is video
    assert contract.fee_for("99606", None, date(2026, 5, 1)) is None


def test_limit_scope_matching_and_activity_requirement() -> None:
    assert LimitScope.ANY.matches(ServiceType.TMR)
    assert LimitScope.CMR.matches(ServiceType.CMR)
    assert not LimitScope.CMR.matches(ServiceType.TMR)
    both = ActivityRequirement(min_minutes=30, min_interventions=1)
    assert both.met(30, 1)
    assert not both.met(29, 5)
    assert not both.met(60, 0)


def test_pmpm_rate_for_uses_default_tier() -> None:
    terms_ = pmpm()
    assert terms_.rate_for(None) == 1000
    assert terms_.rate_for("complex") == 2550
    assert terms_.rate_for("gold") is None
