"""Payers and contracts through the API: setup, validation paths, versions, tenancy."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import Keys
from tests.integration.coverage.helpers import (
    MANAGER,
    make_contract,
    make_patient,
    make_payer,
    payer_body,
    terms_body,
)


async def test_manager_sets_up_payer_and_contract(client: Any, keys: Keys) -> None:
    payer = await make_payer(client, keys)
    assert payer["claim_filing_indicator"] == "MC"
    contract = await make_contract(client, keys, payer["id"])
    assert contract["versions"][0]["version"] == 1
    terms = contract["versions"][0]["terms"]
    assert terms["fee_schedule"][0]["charge"] == "75.00"
    read = await client.get(f"/v1/contracts/{contract['id']}", headers=keys.headers("biller"))
    assert read.status_code == 200
    assert read.json() == contract
    listed = await client.get(
        f"/v1/contracts?payer_id={payer['id']}", headers=keys.headers("auditor")
    )
    assert [c["id"] for c in listed.json()["items"]] == [contract["id"]]
    trail = await client.get(
        f"/v1/audit/contract/{contract['id']}", headers=keys.headers("auditor")
    )
    assert trail.status_code == 200
    assert trail.json()["events"][0]["action"] == "contract.created"


async def test_payer_update_and_duplicate(client: Any, keys: Keys) -> None:
    payer = await make_payer(client, keys)
    resp = await client.patch(
        f"/v1/payers/{payer['id']}", json={"timely_filing_days": 180}, headers=keys.headers(MANAGER)
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["timely_filing_days"] == 180
    assert resp.json()["version"] == 2
    dup = await client.post("/v1/payers", json=payer_body(), headers=keys.headers(MANAGER))
    assert dup.status_code == 409
    bad = await client.patch(
        f"/v1/payers/{payer['id']}",
        json={"roster_columns": {"nonsense": "X"}},
        headers=keys.headers(MANAGER),
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "roster_columns.nonsense"
    trail = await client.get(f"/v1/audit/payer/{payer['id']}", headers=keys.headers("auditor"))
    assert [e["action"] for e in trail.json()["events"]] == ["payer.created", "payer.updated"]


async def test_invalid_terms_are_422_with_field_paths(client: Any, keys: Keys) -> None:
    payer = await make_payer(client, keys)
    terms = terms_body()
    terms["fee_schedule"][1]["charge"] = "-5.00"
    terms["fee_schedule"][2]["code"] = "99999"
    terms["fee_schedule"].append(
        {"code": "99605", "charge": "80.00", "allowed": "60.00", "effective_from": "2025-06-01"}
    )
    resp = await client.post(
        "/v1/contracts",
        json={
            "payer_id": payer["id"],
            "name": "Bad",
            "effective_from": "2025-01-01",
            "terms": terms,
        },
        headers=keys.headers(MANAGER),
    )
    assert resp.status_code == 422, resp.text
    problem = resp.json()
    assert problem["code"] == "invalid_terms"
    by_field = {e["field"]: e["code"] for e in problem["errors"]}
    assert by_field["terms.fee_schedule[1].charge"] == "NEGATIVE_AMOUNT"
    assert by_field["terms.fee_schedule[2].code"] == "UNKNOWN_CODE"
    assert by_field["terms.fee_schedule[3]"] == "OVERLAPPING_FEE_ENTRY"
    malformed = await client.post(
        "/v1/contracts",
        json={
            "payer_id": payer["id"],
            "name": "Bad",
            "effective_from": "2025-01-01",
            "terms": {**terms_body(), "billing_model": "per_visit"},
        },
        headers=keys.headers(MANAGER),
    )
    assert malformed.status_code == 422
    assert malformed.json()["errors"][0]["field"] == "terms.billing_model"


async def test_versions_close_the_open_one_and_reject_overlaps(client: Any, keys: Keys) -> None:
    payer = await make_payer(client, keys)
    contract = await make_contract(client, keys, payer["id"])
    url = f"/v1/contracts/{contract['id']}/versions"
    v2 = await client.post(
        url,
        json={"effective_from": "2026-01-01", "terms": terms_body(time_rule="full_increment")},
        headers=keys.headers(MANAGER),
    )
    assert v2.status_code == 201, v2.text
    versions = v2.json()["versions"]
    assert versions[0]["effective_to"] == "2025-12-31"
    assert versions[1]["version"] == 2
    overlap = await client.post(
        url,
        json={"effective_from": "2025-06-01", "effective_to": "2025-07-01", "terms": terms_body()},
        headers=keys.headers(MANAGER),
    )
    assert overlap.status_code == 422
    assert overlap.json()["errors"][0]["field"] == "effective_from"
    assert overlap.json()["errors"][0]["code"] == "OVERLAPPING_VERSION"


async def test_other_tenant_ids_are_404(client: Any, keys: Keys) -> None:
    payer = await make_payer(client, keys)
    contract = await make_contract(client, keys, payer["id"])
    patient = await make_patient(client, keys)
    other = keys.headers("manager", other=True)
    for url in (
        f"/v1/payers/{payer['id']}",
        f"/v1/contracts/{contract['id']}",
        f"/v1/patients/{patient['id']}",
        f"/v1/patients/{patient['id']}/spans",
        "/v1/payers/not-a-uuid",
    ):
        resp = await client.get(url, headers=other)
        assert resp.status_code == 404, url
    resp = await client.post(
        "/v1/contracts",
        json={
            "payer_id": payer["id"],
            "name": "X",
            "effective_from": "2025-01-01",
            "terms": terms_body(),
        },
        headers=other,
    )
    assert resp.status_code == 404
    resp = await client.post(
        "/v1/eligibility/check",
        json={"patient_ref": "P-1", "date_of_service": "2025-03-01", "service_type": "CMR"},
        headers=keys.headers("intake", other=True),
    )
    assert resp.status_code == 404
    listed = await client.get("/v1/payers", headers=other)
    assert listed.json()["items"] == []


async def test_roles(client: Any, keys: Keys) -> None:
    resp = await client.post("/v1/payers", json={}, headers=keys.headers("biller"))
    assert resp.status_code == 403
    resp = await client.get("/v1/payers", headers=keys.headers("intake"))
    assert resp.status_code == 403
