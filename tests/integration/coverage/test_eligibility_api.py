"""Eligibility through the API: versions in force, retro-terminations known at a time,
opt-outs, exclusions, frequency limits from billing's sessions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.fixtures.sessions import session_payload
from tests.integration.conftest import Keys
from tests.integration.coverage.helpers import (
    MANAGER,
    add_span,
    check,
    make_contract,
    make_patient,
    make_payer,
    terms_body,
)


async def _setup(client: Any, keys: Keys) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    payer = await make_payer(client, keys)
    contract = await make_contract(client, keys, payer["id"])
    patient = await make_patient(client, keys, "P-1")
    return payer, contract, patient


async def test_eligible_with_span_version_window_and_usage(client: Any, keys: Keys) -> None:
    payer, contract, patient = await _setup(client, keys)
    await client.post(
        f"/v1/contracts/{contract['id']}/versions",
        json={"effective_from": "2026-01-01", "terms": terms_body(time_rule="up_to")},
        headers=keys.headers(MANAGER),
    )
    await add_span(
        client,
        keys,
        patient["id"],
        contract_id=contract["id"],
        member_id="M1",
        effective_from="2025-03-01",
    )
    before = await check(client, keys, patient_ref="P-1", date_of_service="2025-02-28")
    assert before["eligible"] is False
    assert [r["code"] for r in before["reasons"]] == ["NO_COVERAGE_ON_DOS"]
    in_2025 = await check(
        client,
        keys,
        patient_ref="P-1",
        date_of_service="2025-06-10",
        modality="video",
        patient_location="home",
    )
    assert in_2025["eligible"] is True
    assert in_2025["coverage"]["contract_version"] == 1
    assert in_2025["coverage"]["payer_id"] == payer["id"]
    assert in_2025["window"] == {"start": "2025-03-01", "end": "2025-12-31"}
    assert in_2025["usage_text"] == ["CMR 1 of 1 used in plan year 2025"]
    assert in_2025["routing"] == {"place_of_service": "10", "modifier": "95"}
    in_2026 = await check(client, keys, patient_ref="P-1", date_of_service="2026-02-01")
    assert in_2026["coverage"]["contract_version"] == 2
    assert in_2026["window"] == {"start": "2026-01-01", "end": None}
    audio = await check(
        client, keys, patient_ref="P-1", date_of_service="2025-06-10", modality="audio"
    )
    assert audio["eligible"] is False
    assert audio["reasons"][0]["code"] == "MODALITY_NOT_COVERED"


async def test_retro_termination_depends_on_as_known_at(client: Any, keys: Keys) -> None:
    _, contract, patient = await _setup(client, keys)
    span = await add_span(
        client,
        keys,
        patient["id"],
        contract_id=contract["id"],
        member_id="M1",
        effective_from="2025-01-01",
    )
    between = datetime.now(UTC).isoformat()
    await add_span(
        client,
        keys,
        patient["id"],
        contract_id=contract["id"],
        member_id="M1",
        effective_from="2025-01-01",
        effective_to="2025-04-30",
        span_id=span["span_id"],
    )
    now = await check(client, keys, patient_ref="P-1", date_of_service="2025-05-15")
    assert now["eligible"] is False
    assert now["reasons"][0]["code"] == "NO_COVERAGE_ON_DOS"
    then = await check(
        client, keys, patient_ref="P-1", date_of_service="2025-05-15", as_known_at=between
    )
    assert then["eligible"] is True
    assert then["coverage"]["span_version"] == 1
    still = await check(client, keys, patient_ref="P-1", date_of_service="2025-04-30")
    assert still["eligible"] is True
    assert still["coverage"]["span_version"] == 2
    spans = await client.get(f"/v1/patients/{patient['id']}/spans", headers=keys.headers("biller"))
    body = spans.json()
    assert len(body["history"]) == 2
    assert body["spans"][0]["effective_to"] == "2025-04-30"
    old = await client.get(
        f"/v1/patients/{patient['id']}/spans",
        params={"as_known_at": between},
        headers=keys.headers("biller"),
    )
    assert old.json()["spans"][0]["effective_to"] is None
    assert len(old.json()["history"]) == 1
    trail = await client.get(f"/v1/audit/patient/{patient['id']}", headers=keys.headers("auditor"))
    assert [e["action"] for e in trail.json()["events"]] == [
        "patient.created",
        "coverage.span_added",
        "coverage.span_versioned",
    ]


async def test_opt_out_exclusion_and_secondary_fallthrough(client: Any, keys: Keys) -> None:
    _payer, contract, patient = await _setup(client, keys)
    other_payer = await make_payer(client, keys, x12_payer_id="COMM1", name="Commercial")
    commercial = await make_contract(
        client, keys, other_payer["id"], name="Commercial MTM", exclusions=[]
    )
    await add_span(
        client,
        keys,
        patient["id"],
        contract_id=contract["id"],
        member_id="M1",
        effective_from="2025-01-01",
        opt_out_date="2025-07-01",
    )
    assert (await check(client, keys, patient_ref="P-1", date_of_service="2025-06-30"))["eligible"]
    opted = await check(client, keys, patient_ref="P-1", date_of_service="2025-07-01")
    assert opted["eligible"] is False
    assert opted["reasons"][0]["code"] == "OPTED_OUT"
    # A Part D eligible member on a second patient: excluded from the Medicaid program, so
    # the secondary commercial coverage is chosen.
    p2 = await make_patient(client, keys, "P-2")
    await add_span(
        client,
        keys,
        p2["id"],
        contract_id=contract["id"],
        member_id="M2",
        effective_from="2025-01-01",
        population_flags=["PART_D_ELIGIBLE"],
    )
    excluded = await check(client, keys, patient_ref="P-2", date_of_service="2025-03-01")
    assert excluded["reasons"][0]["code"] == "EXCLUDED_POPULATION"
    await add_span(
        client,
        keys,
        p2["id"],
        contract_id=commercial["id"],
        member_id="C2",
        effective_from="2025-01-01",
        priority="secondary",
    )
    fallback = await check(client, keys, patient_ref="P-2", date_of_service="2025-03-01")
    assert fallback["eligible"] is True
    assert fallback["coverage"]["contract_id"] == commercial["id"]
    assert fallback["rejected"][0]["reasons"][0]["code"] == "EXCLUDED_POPULATION"


async def test_frequency_limit_counts_billing_sessions(client: Any, keys: Keys) -> None:
    _, contract, patient = await _setup(client, keys)
    await add_span(
        client,
        keys,
        patient["id"],
        contract_id=contract["id"],
        member_id="M1",
        effective_from="2025-01-01",
    )
    body = session_payload("S-CMR-1", date_of_service=datetime(2025, 2, 1, tzinfo=UTC).date())
    body["patient_ref"] = "P-1"
    body["service_type"] = "CMR"
    resp = await client.post("/v1/sessions", json=body, headers=keys.headers("intake"))
    assert resp.status_code == 201, resp.text
    second = await check(client, keys, patient_ref="P-1", date_of_service="2025-09-01")
    assert second["eligible"] is False
    assert second["reasons"][0]["code"] == "FREQUENCY_LIMIT_REACHED"
    assert second["rejected"][0]["usage"][0]["text"] == "CMR 2 of 1 used in plan year 2025"
    tmr = await check(
        client, keys, patient_ref="P-1", date_of_service="2025-09-01", service_type="TMR"
    )
    assert tmr["eligible"] is True
    next_year = await check(client, keys, patient_ref="P-1", date_of_service="2026-01-05")
    assert next_year["eligible"] is True


async def test_unknown_patient_and_naive_as_known_at(client: Any, keys: Keys) -> None:
    resp = await client.post(
        "/v1/eligibility/check",
        json={"patient_ref": "nobody", "date_of_service": "2025-01-01", "service_type": "CMR"},
        headers=keys.headers("biller"),
    )
    assert resp.status_code == 404
    assert resp.json()["code"] == "patient_not_found"
