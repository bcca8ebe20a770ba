"""Builders for coverage integration tests: a payer, a contract and a patient via the API."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import Keys

MANAGER = "manager"


def payer_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "State Medicaid MTM",
        "x12_payer_id": "SKMD0",
        "receiver_id": "RCV123",
        "receiver_name": "Clearinghouse",
        "claim_filing_indicator": "MC",
        "timely_filing_days": 95,
        "appeal_window_days": 60,
        "trading_partner_id": "TP0001",
    }
    body.update(overrides)
    return body


def terms_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "billing_model": "per_encounter",
        "time_rule": "midpoint",
        "max_addon_units": 3,
        "frequency_limits": [{"service_type": "CMR", "max_count": 1, "period": "plan_year"}],
        "telehealth": {
            "allowed_modalities": ["in_person", "video"],
            "rules": [
                {"modality": "in_person", "location": "pharmacy", "place_of_service": "01"},
                {"modality": "in_person", "location": "other", "place_of_service": "11"},
                {
                    "modality": "video",
                    "location": "home",
                    "place_of_service": "10",
                    "modifier": "95",
                },
            ],
        },
        "fee_schedule": [
            {
                "code": "99605",
                "charge": "75.00",
                "allowed": "60.00",
                "effective_from": "2025-01-01",
            },
            {
                "code": "99606",
                "charge": "50.00",
                "allowed": "40.00",
                "effective_from": "2025-01-01",
            },
            {
                "code": "99607",
                "charge": "25.00",
                "allowed": "20.00",
                "effective_from": "2025-01-01",
            },
        ],
        "exclusions": ["PART_D_ELIGIBLE"],
        "required_documentation": ["care_plan"],
    }
    body.update(overrides)
    return body


async def make_payer(client: Any, keys: Keys, **overrides: Any) -> dict[str, Any]:
    resp = await client.post(
        "/v1/payers", json=payer_body(**overrides), headers=keys.headers(MANAGER)
    )
    assert resp.status_code == 201, resp.text
    result: dict[str, Any] = resp.json()
    return result


async def make_contract(
    client: Any, keys: Keys, payer_id: str, *, name: str = "MTM 2025", **terms: Any
) -> dict[str, Any]:
    resp = await client.post(
        "/v1/contracts",
        json={
            "payer_id": payer_id,
            "name": name,
            "effective_from": "2025-01-01",
            "terms": terms_body(**terms),
        },
        headers=keys.headers(MANAGER),
    )
    assert resp.status_code == 201, resp.text
    result: dict[str, Any] = resp.json()
    return result


async def make_patient(
    client: Any, keys: Keys, ref: str = "P-1", **overrides: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "patient_ref": ref,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "birth_date": "1950-02-03",
        "sex": "F",
        "address": {"line1": "1 Main St", "city": "Springfield", "state": "IL", "zip": "62701"},
    }
    body.update(overrides)
    resp = await client.post("/v1/patients", json=body, headers=keys.headers(MANAGER))
    assert resp.status_code == 201, resp.text
    result: dict[str, Any] = resp.json()
    return result


async def add_span(client: Any, keys: Keys, patient_id: str, **body: Any) -> dict[str, Any]:
    resp = await client.post(
        f"/v1/patients/{patient_id}/spans", json=body, headers=keys.headers(MANAGER)
    )
    assert resp.status_code == 201, resp.text
    result: dict[str, Any] = resp.json()
    return result


async def check(client: Any, keys: Keys, role: str = "intake", **body: Any) -> dict[str, Any]:
    body.setdefault("service_type", "CMR")
    resp = await client.post("/v1/eligibility/check", json=body, headers=keys.headers(role))
    assert resp.status_code == 200, resp.text
    result: dict[str, Any] = resp.json()
    return result
