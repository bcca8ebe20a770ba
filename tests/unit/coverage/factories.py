"""Builders for coverage tests: sensible defaults, override what the test is about."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from services.coverage.domain.contracts import (
    BillingModel,
    ContractTerms,
    ContractVersion,
    PmpmTerms,
    TierRate,
)
from services.coverage.domain.spans import CoverageSpan

RECORDED = datetime(2025, 1, 1, 9, 0, tzinfo=UTC)


def span(**overrides: Any) -> CoverageSpan:
    values: dict[str, Any] = {
        "span_id": "s1",
        "patient_id": "p1",
        "payer_id": "payer-a",
        "contract_id": "c1",
        "member_id": "M1",
        "effective_from": date(2025, 1, 1),
        "recorded_at": RECORDED,
    }
    values.update(overrides)
    return CoverageSpan(**values)


def terms(**overrides: Any) -> ContractTerms:
    values: dict[str, Any] = {"billing_model": BillingModel.PER_ENCOUNTER}
    values.update(overrides)
    return ContractTerms(**values)


def version(
    number: int = 1,
    start: date = date(2020, 1, 1),
    end: date | None = None,
    contract_terms: ContractTerms | None = None,
) -> ContractVersion:
    return ContractVersion(number, start, end, contract_terms or terms())


def pmpm(**overrides: Any) -> PmpmTerms:
    values: dict[str, Any] = {
        "rates": (TierRate("standard", 1000), TierRate("complex", 2550)),
        "default_tier": "standard",
    }
    values.update(overrides)
    return PmpmTerms(**values)
