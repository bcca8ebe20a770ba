"""Contract terms round-trip wire -> domain -> storage -> domain -> wire."""

from __future__ import annotations

from datetime import date

import msgspec
import pytest

from services.coverage.domain.contracts import BillingModel
from services.coverage.schemas import FeeEntryIn, Terms
from services.coverage.terms_codec import (
    terms_from_json,
    terms_from_wire,
    terms_to_json,
    terms_to_wire,
)
from shared.errors import RuleViolation

WIRE = {
    "billing_model": "pmpm",
    "frequency_limits": [{"service_type": "CMR", "max_count": 1, "period": "plan_year"}],
    "fee_schedule": [
        {"code": "99605", "charge": "75.5", "allowed": "60.00", "effective_from": "2025-01-01"}
    ],
    "pmpm": {
        "rates": [{"tier": "standard", "rate": "12.50"}],
        "default_tier": "standard",
        "proration": "fifteen_thirty",
        "activity": {"min_minutes": 20},
        "monthly_codes": [
            {"code": "99490", "min_minutes": 20, "addon_code": "99439", "addon_step_minutes": 20}
        ],
        "payment_mode": "monthly_claim",
    },
    "exclusions": ["PART_D_ELIGIBLE"],
}


def test_round_trip_keeps_cents_and_shape() -> None:
    wire = msgspec.convert(WIRE, Terms)
    terms = terms_from_wire(wire)
    assert terms.billing_model is BillingModel.PMPM
    assert terms.fee_schedule[0].charge == 7550
    assert terms.pmpm is not None
    assert terms.pmpm.rates[0].rate == 1250
    stored = msgspec.json.decode(msgspec.json.encode(terms_to_json(terms)))
    assert terms_from_json(stored) == terms
    back = terms_to_wire(terms)
    assert back.fee_schedule[0].charge == "75.50"
    assert back.fee_schedule[0].effective_from == date(2025, 1, 1)
    assert terms_from_wire(back) == terms


def test_bad_amount_is_a_field_problem() -> None:
    # The HTTP edge's pattern rejects this first; the codec still refuses it on its own.
    wire = Terms(
        billing_model=BillingModel.PER_ENCOUNTER,
        fee_schedule=[FeeEntryIn("99605", "1.234", "1.00", date(2025, 1, 1))],
    )
    with pytest.raises(RuleViolation) as err:
        terms_from_wire(wire)
    assert err.value.errors[0].field == "terms.fee_schedule[0].charge"
