"""Validation of contract terms and versions.

`validate_terms` and `validate_versions` report every problem at once, each with a field path
such as 'terms.fee_schedule[2].charge', so a manager fixing a contract sees the whole list
rather than one error per round trip. Amounts allowed above the charge are not an error: the
payer's allowed amount is theirs to set, and a low charge is only lost revenue.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date

from services.coverage.domain.contracts import (
    KNOWN_CODES,
    MONTHLY_BASE_TO_ADDON,
    PLACES_OF_SERVICE,
    TELEHEALTH_MODIFIERS,
    BillingModel,
    ContractTerms,
    ContractVersion,
    FeeScheduleEntry,
    FieldError,
    LimitPeriod,
    LimitScope,
    Modality,
    MonthlyCode,
    PatientLocation,
    PaymentMode,
    PmpmTerms,
    TelehealthPolicy,
)

_MODIFIER = re.compile(r"^[A-Z0-9]{2}$")
_FLAG = re.compile(r"^[A-Z][A-Z0-9_]*$")
# A modality's own telehealth modifier; the other one would misstate how the visit happened.
_MODALITY_MODIFIER = {Modality.VIDEO: "95", Modality.AUDIO: "93"}

_Window = tuple[int, date, date | None]


def _overlapping(windows: list[_Window]) -> list[tuple[int, int]]:
    """Pairs (earlier, later) of indexes whose inclusive date windows overlap."""
    pairs: list[tuple[int, int]] = []
    ordered = sorted(windows, key=lambda w: (w[1], w[0]))
    reach: _Window | None = None  # the window extending furthest so far
    for window in ordered:
        if reach is not None and (reach[2] is None or window[1] <= reach[2]):
            pairs.append((reach[0], window[0]))
        if reach is None or (reach[2] is not None and (window[2] is None or window[2] > reach[2])):
            reach = window
    return pairs


def _validate_fee_schedule(
    entries: Sequence[FeeScheduleEntry], path: str, errors: list[FieldError]
) -> None:
    by_key: dict[tuple[str, str | None], list[_Window]] = {}
    for i, entry in enumerate(entries):
        at = f"{path}[{i}]"
        if entry.code not in KNOWN_CODES:
            errors.append(FieldError(f"{at}.code", "UNKNOWN_CODE", f"unknown code {entry.code!r}"))
        if entry.modifier is not None and not _MODIFIER.match(entry.modifier):
            errors.append(
                FieldError(
                    f"{at}.modifier",
                    "INVALID_MODIFIER",
                    f"modifier must be two letters or digits, got {entry.modifier!r}",
                )
            )
        for name, amount in (("charge", entry.charge), ("allowed", entry.allowed)):
            if amount < 0:
                errors.append(
                    FieldError(f"{at}.{name}", "NEGATIVE_AMOUNT", f"{name} must not be negative")
                )
        if entry.effective_to is not None and entry.effective_to < entry.effective_from:
            errors.append(
                FieldError(
                    f"{at}.effective_to",
                    "INVALID_DATE_RANGE",
                    "effective_to is before effective_from",
                )
            )
            continue
        by_key.setdefault((entry.code, entry.modifier), []).append(
            (i, entry.effective_from, entry.effective_to)
        )
    for (code, modifier), windows in by_key.items():
        for first, second in _overlapping(windows):
            label = code if modifier is None else f"{code}:{modifier}"
            errors.append(
                FieldError(
                    f"{path}[{second}]",
                    "OVERLAPPING_FEE_ENTRY",
                    f"{label} overlaps {path}[{first}]; a DOS must price to one entry",
                )
            )


def _validate_telehealth(policy: TelehealthPolicy, path: str, errors: list[FieldError]) -> None:
    seen: dict[tuple[Modality, PatientLocation], int] = {}
    routed: set[Modality] = set()
    for i, rule in enumerate(policy.rules):
        at = f"{path}.rules[{i}]"
        key = (rule.modality, rule.location)
        if key in seen:
            errors.append(
                FieldError(
                    at, "DUPLICATE", f"same modality and location as {path}.rules[{seen[key]}]"
                )
            )
        seen.setdefault(key, i)
        routed.add(rule.modality)
        if rule.modality not in policy.allowed_modalities:
            errors.append(
                FieldError(
                    f"{at}.modality",
                    "INCONSISTENT",
                    f"rule for {rule.modality} but that modality is not allowed",
                )
            )
        pos = rule.place_of_service
        if pos not in PLACES_OF_SERVICE:
            errors.append(
                FieldError(
                    f"{at}.place_of_service",
                    "INVALID_POS",
                    f"place of service must be one of {sorted(PLACES_OF_SERVICE)}, got {pos!r}",
                )
            )
        elif rule.modality is Modality.IN_PERSON and pos in {"02", "10"}:
            errors.append(
                FieldError(f"{at}.place_of_service", "INVALID_POS", "POS 02/10 are telehealth only")
            )
        elif pos == "10" and rule.location is not PatientLocation.HOME:
            errors.append(
                FieldError(
                    f"{at}.place_of_service", "INVALID_POS", "POS 10 means the patient is at home"
                )
            )
        elif pos == "02" and rule.location is PatientLocation.HOME:
            errors.append(
                FieldError(
                    f"{at}.place_of_service",
                    "INVALID_POS",
                    "POS 02 means the patient is not at home; use 10",
                )
            )
        modifier = rule.modifier
        if modifier is None:
            continue
        if modifier not in TELEHEALTH_MODIFIERS:
            errors.append(
                FieldError(
                    f"{at}.modifier",
                    "INVALID_MODIFIER",
                    f"modifier must be 95, 93 or none, got {modifier!r}",
                )
            )
        elif rule.modality is Modality.IN_PERSON:
            errors.append(
                FieldError(
                    f"{at}.modifier",
                    "INVALID_MODIFIER",
                    "in-person visits take no telehealth modifier",
                )
            )
        elif modifier != _MODALITY_MODIFIER[rule.modality]:
            errors.append(
                FieldError(
                    f"{at}.modifier",
                    "INVALID_MODIFIER",
                    f"{rule.modality} visits use modifier {_MODALITY_MODIFIER[rule.modality]}",
                )
            )
    for modality in sorted(policy.allowed_modalities - routed):
        errors.append(
            FieldError(
                f"{path}.allowed_modalities",
                "MISSING",
                f"{modality} is allowed but has no rule giving its place of service",
            )
        )


def _validate_pmpm(pmpm: PmpmTerms, path: str, errors: list[FieldError]) -> None:
    if not pmpm.rates:
        errors.append(FieldError(f"{path}.rates", "MISSING", "PMPM terms need at least one rate"))
    tiers: dict[str, int] = {}
    for i, tier_rate in enumerate(pmpm.rates):
        at = f"{path}.rates[{i}]"
        if tier_rate.rate < 0:
            errors.append(FieldError(f"{at}.rate", "NEGATIVE_AMOUNT", "rate must not be negative"))
        if not tier_rate.tier:
            errors.append(FieldError(f"{at}.tier", "MISSING", "tier name is empty"))
        if tier_rate.tier in tiers:
            errors.append(
                FieldError(
                    f"{at}.tier", "DUPLICATE", f"tier also at {path}.rates[{tiers[tier_rate.tier]}]"
                )
            )
        tiers.setdefault(tier_rate.tier, i)
    if pmpm.default_tier is not None and pmpm.default_tier not in tiers:
        errors.append(
            FieldError(f"{path}.default_tier", "INCONSISTENT", "default tier has no rate")
        )
    if pmpm.activity is not None:
        activity = pmpm.activity
        if activity.min_minutes is None and activity.min_interventions is None:
            errors.append(
                FieldError(
                    f"{path}.activity", "MISSING", "set min_minutes, min_interventions or both"
                )
            )
        for name, value in (
            ("min_minutes", activity.min_minutes),
            ("min_interventions", activity.min_interventions),
        ):
            if value is not None and value < 0:
                errors.append(FieldError(f"{path}.activity.{name}", "OUT_OF_RANGE", "must be >= 0"))
    codes: dict[str, int] = {}
    for i, monthly in enumerate(pmpm.monthly_codes):
        _validate_monthly_code(monthly, f"{path}.monthly_codes[{i}]", errors)
        if monthly.code in codes:
            errors.append(
                FieldError(
                    f"{path}.monthly_codes[{i}].code",
                    "DUPLICATE",
                    f"code also at {path}.monthly_codes[{codes[monthly.code]}]",
                )
            )
        codes.setdefault(monthly.code, i)
    if pmpm.retro_window_months < 0:
        errors.append(FieldError(f"{path}.retro_window_months", "OUT_OF_RANGE", "must be >= 0"))
    if pmpm.payment_mode is PaymentMode.MONTHLY_CLAIM and not pmpm.monthly_codes:
        errors.append(
            FieldError(
                f"{path}.monthly_codes", "MISSING", "monthly_claim payment needs the codes to bill"
            )
        )


def _validate_monthly_code(monthly: MonthlyCode, at: str, errors: list[FieldError]) -> None:
    if monthly.code not in MONTHLY_BASE_TO_ADDON:
        code = "UNKNOWN_CODE" if monthly.code not in KNOWN_CODES else "INCONSISTENT"
        errors.append(
            FieldError(f"{at}.code", code, f"{monthly.code!r} is not a monthly base code")
        )
    if monthly.min_minutes < 0:
        errors.append(FieldError(f"{at}.min_minutes", "OUT_OF_RANGE", "must be >= 0"))
    if monthly.addon_code is None:
        return
    expected = MONTHLY_BASE_TO_ADDON.get(monthly.code)
    if monthly.addon_code not in KNOWN_CODES:
        errors.append(
            FieldError(f"{at}.addon_code", "UNKNOWN_CODE", f"unknown code {monthly.addon_code!r}")
        )
    elif monthly.addon_code != expected:
        errors.append(
            FieldError(
                f"{at}.addon_code",
                "INCONSISTENT",
                f"{monthly.addon_code} is not the add-on of {monthly.code} (expected {expected})",
            )
        )
    if monthly.addon_step_minutes is None or monthly.addon_step_minutes <= 0:
        errors.append(
            FieldError(f"{at}.addon_step_minutes", "OUT_OF_RANGE", "an add-on needs a step > 0")
        )
    if monthly.max_addon_units is not None and monthly.max_addon_units < 0:
        errors.append(FieldError(f"{at}.max_addon_units", "OUT_OF_RANGE", "must be >= 0"))


def validate_terms(terms: ContractTerms, path: str = "terms") -> list[FieldError]:
    """Every problem in `terms`, in field order. An empty list means the terms are usable."""
    errors: list[FieldError] = []
    if terms.new_patient_lookback_years < 1:
        errors.append(
            FieldError(f"{path}.new_patient_lookback_years", "OUT_OF_RANGE", "must be >= 1 year")
        )
    # 99605/99606 describe an initial 15 minutes, so a higher minimum could never be met.
    if terms.min_base_minutes is not None and not 0 <= terms.min_base_minutes <= 15:
        errors.append(FieldError(f"{path}.min_base_minutes", "OUT_OF_RANGE", "must be 0-15"))
    if terms.max_addon_units is not None and terms.max_addon_units < 0:
        errors.append(FieldError(f"{path}.max_addon_units", "OUT_OF_RANGE", "must be >= 0"))
    seen_limits: dict[tuple[LimitScope, LimitPeriod], int] = {}
    for i, limit in enumerate(terms.frequency_limits):
        at = f"{path}.frequency_limits[{i}]"
        if limit.max_count < 0:
            errors.append(FieldError(f"{at}.max_count", "OUT_OF_RANGE", "must be >= 0"))
        key = (limit.service_type, limit.period)
        if key in seen_limits:
            errors.append(
                FieldError(
                    at,
                    "DUPLICATE",
                    f"same service and period as {path}.frequency_limits[{seen_limits[key]}]",
                )
            )
        seen_limits.setdefault(key, i)
    if not 1 <= terms.plan_year_start_month <= 12:
        errors.append(FieldError(f"{path}.plan_year_start_month", "OUT_OF_RANGE", "must be 1-12"))
    _validate_telehealth(terms.telehealth, f"{path}.telehealth", errors)
    _validate_fee_schedule(terms.fee_schedule, f"{path}.fee_schedule", errors)
    if terms.billing_model is BillingModel.PMPM and terms.pmpm is None:
        errors.append(FieldError(f"{path}.pmpm", "MISSING", "a PMPM contract needs PMPM terms"))
    if terms.billing_model is BillingModel.PER_ENCOUNTER and terms.pmpm is not None:
        errors.append(
            FieldError(
                f"{path}.pmpm",
                "INCONSISTENT",
                "PMPM terms on a per_encounter contract would be ignored",
            )
        )
    if terms.pmpm is not None:
        _validate_pmpm(terms.pmpm, f"{path}.pmpm", errors)
    for flag in sorted(terms.exclusions):
        if not _FLAG.match(flag):
            errors.append(
                FieldError(
                    f"{path}.exclusions",
                    "INVALID_FLAG",
                    f"population flag {flag!r} must be UPPER_SNAKE",
                )
            )
    if any(not element.strip() for element in terms.required_documentation):
        errors.append(
            FieldError(
                f"{path}.required_documentation", "MISSING", "documentation element is blank"
            )
        )
    return errors


def validate_versions(
    versions: Sequence[ContractVersion], path: str = "versions"
) -> list[FieldError]:
    """Problems with each version's terms plus version numbering and window overlaps.
    Gaps between versions are allowed: a contract may lapse and be renewed."""
    errors: list[FieldError] = []
    numbers: dict[int, int] = {}
    windows: list[_Window] = []
    for i, version in enumerate(versions):
        at = f"{path}[{i}]"
        if version.version < 1:
            errors.append(FieldError(f"{at}.version", "OUT_OF_RANGE", "version numbers start at 1"))
        if version.version in numbers:
            errors.append(
                FieldError(
                    f"{at}.version",
                    "DUPLICATE",
                    f"version also at {path}[{numbers[version.version]}]",
                )
            )
        numbers.setdefault(version.version, i)
        if version.effective_to is not None and version.effective_to < version.effective_from:
            errors.append(
                FieldError(
                    f"{at}.effective_to",
                    "INVALID_DATE_RANGE",
                    "effective_to is before effective_from",
                )
            )
        else:
            windows.append((i, version.effective_from, version.effective_to))
        errors.extend(validate_terms(version.terms, f"{at}.terms"))
    for first, second in _overlapping(windows):
        errors.append(
            FieldError(
                f"{path}[{second}].effective_from",
                "OVERLAPPING_VERSION",
                f"overlaps {path}[{first}]; a DOS must fall in one version",
            )
        )
    return errors
