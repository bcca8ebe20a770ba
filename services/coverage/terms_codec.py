"""Contract terms between the wire (`schemas.Terms`, decimal strings), the domain
(`ContractTerms`, integer cents) and storage (JSONB of the domain dataclass)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import msgspec

from services.coverage.domain.contracts import (
    ActivityRequirement,
    ContractTerms,
    FeeScheduleEntry,
    FrequencyLimit,
    MonthlyCode,
    PmpmTerms,
    TelehealthPolicy,
    TelehealthRule,
    TierRate,
)
from services.coverage.schemas import (
    ActivityIn,
    FeeEntryIn,
    FrequencyLimitIn,
    MonthlyCodeIn,
    PmpmIn,
    TelehealthIn,
    TelehealthRuleIn,
    Terms,
    TierRateIn,
)
from shared.errors import FieldProblem, RuleViolation
from shared.money import AmountError, format_cents, parse_amount


def _amount(text: str, path: str, problems: list[FieldProblem]) -> int:
    try:
        return parse_amount(text)
    except AmountError as exc:
        problems.append(FieldProblem(path, str(exc), "invalid_amount"))
        return 0


def terms_from_wire(terms: Terms, path: str = "terms") -> ContractTerms:
    """Wire terms as domain terms; amounts that are not amounts raise a 422 with paths."""
    problems: list[FieldProblem] = []
    fees = tuple(
        FeeScheduleEntry(
            code=e.code,
            modifier=e.modifier,
            charge=_amount(e.charge, f"{path}.fee_schedule[{i}].charge", problems),
            allowed=_amount(e.allowed, f"{path}.fee_schedule[{i}].allowed", problems),
            effective_from=e.effective_from,
            effective_to=e.effective_to,
        )
        for i, e in enumerate(terms.fee_schedule)
    )
    pmpm: PmpmTerms | None = None
    if terms.pmpm is not None:
        p = terms.pmpm
        pmpm = PmpmTerms(
            rates=tuple(
                TierRate(r.tier, _amount(r.rate, f"{path}.pmpm.rates[{i}].rate", problems))
                for i, r in enumerate(p.rates)
            ),
            default_tier=p.default_tier,
            proration=p.proration,
            activity=(
                ActivityRequirement(p.activity.min_minutes, p.activity.min_interventions)
                if p.activity is not None
                else None
            ),
            monthly_codes=tuple(
                MonthlyCode(
                    m.code, m.min_minutes, m.addon_code, m.addon_step_minutes, m.max_addon_units
                )
                for m in p.monthly_codes
            ),
            retro_window_months=p.retro_window_months,
            payment_mode=p.payment_mode,
        )
    if problems:
        raise RuleViolation(
            "the contract terms contain invalid amounts",
            code="invalid_terms",
            errors=tuple(problems),
            action="send amounts as decimal strings with at most two places, e.g. 75.00",
        )
    telehealth = (
        TelehealthPolicy(
            allowed_modalities=frozenset(terms.telehealth.allowed_modalities),
            rules=tuple(
                TelehealthRule(r.modality, r.location, r.place_of_service, r.modifier)
                for r in terms.telehealth.rules
            ),
        )
        if terms.telehealth is not None
        else TelehealthPolicy()
    )
    return ContractTerms(
        billing_model=terms.billing_model,
        time_rule=terms.time_rule,
        new_patient_lookback_years=terms.new_patient_lookback_years,
        min_base_minutes=terms.min_base_minutes,
        max_addon_units=terms.max_addon_units,
        frequency_limits=tuple(
            FrequencyLimit(f.service_type, f.max_count, f.period) for f in terms.frequency_limits
        ),
        plan_year_start_month=terms.plan_year_start_month,
        telehealth=telehealth,
        fee_schedule=fees,
        pmpm=pmpm,
        exclusions=frozenset(terms.exclusions),
        required_documentation=frozenset(terms.required_documentation),
    )


def terms_to_wire(terms: ContractTerms) -> Terms:
    pmpm = terms.pmpm
    return Terms(
        billing_model=terms.billing_model,
        time_rule=terms.time_rule,
        new_patient_lookback_years=terms.new_patient_lookback_years,
        min_base_minutes=terms.min_base_minutes,
        max_addon_units=terms.max_addon_units,
        frequency_limits=[
            FrequencyLimitIn(f.service_type, f.max_count, f.period) for f in terms.frequency_limits
        ],
        plan_year_start_month=terms.plan_year_start_month,
        telehealth=TelehealthIn(
            allowed_modalities=sorted(terms.telehealth.allowed_modalities),
            rules=[
                TelehealthRuleIn(r.modality, r.location, r.place_of_service, r.modifier)
                for r in terms.telehealth.rules
            ],
        ),
        fee_schedule=[
            FeeEntryIn(
                code=e.code,
                charge=format_cents(e.charge),
                allowed=format_cents(e.allowed),
                effective_from=e.effective_from,
                effective_to=e.effective_to,
                modifier=e.modifier,
            )
            for e in terms.fee_schedule
        ],
        pmpm=(
            PmpmIn(
                rates=[TierRateIn(r.tier, format_cents(r.rate)) for r in pmpm.rates],
                default_tier=pmpm.default_tier,
                proration=pmpm.proration,
                activity=(
                    ActivityIn(pmpm.activity.min_minutes, pmpm.activity.min_interventions)
                    if pmpm.activity is not None
                    else None
                ),
                monthly_codes=[
                    MonthlyCodeIn(
                        m.code, m.min_minutes, m.addon_code, m.addon_step_minutes, m.max_addon_units
                    )
                    for m in pmpm.monthly_codes
                ],
                retro_window_months=pmpm.retro_window_months,
                payment_mode=pmpm.payment_mode,
            )
            if pmpm is not None
            else None
        ),
        exclusions=sorted(terms.exclusions),
        required_documentation=sorted(terms.required_documentation),
    )


def terms_to_json(terms: ContractTerms) -> Any:
    """What is stored in `contract_versions.terms`."""
    return msgspec.to_builtins(terms)


class TermsCache:
    """Decoded terms by (contract id, version). A stored version's terms never change, so
    entries never go stale; the bound only caps memory."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._entries: OrderedDict[tuple[str, int], ContractTerms] = OrderedDict()

    def get(self, contract_id: str, version: int) -> ContractTerms | None:
        return self._entries.get((contract_id, version))

    def put(self, contract_id: str, version: int, terms: ContractTerms) -> None:
        self._entries[(contract_id, version)] = terms
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)


def terms_from_json(data: Any) -> ContractTerms:
    return msgspec.convert(data, ContractTerms)


TERMS_CACHE = TermsCache()
