"""POST /v1/coding/preview: the worker's decision for a session payload, with no writes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from tests.integration.claims.helpers import (
    clean_session,
    covered_patient,
    post_session,
    run_worker,
)
from tests.integration.conftest import Keys

_TABLES = (
    "billing.sessions",
    "billing.claims",
    "billing.claim_lines",
    "audit.events",
    "core.outbox",
)


async def _counts(db: Any) -> dict[str, int]:
    out = {}
    async with db.transaction() as (conn, _t):
        for table in _TABLES:
            out[table] = (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()  # noqa: S608
    return out


async def test_preview_codes_prices_and_explains_without_side_effects(
    client: Any, keys: Keys, db: Any, redis: Any, settings: Any
) -> None:
    cov = await covered_patient(client, keys)
    before = await _counts(db)
    queued = await redis.zcard(settings.queue_name)
    body = clean_session("PV-1", modality="video", patient_location="home", documented_minutes=38)
    resp = await client.post("/v1/coding/preview", json=body, headers=keys.headers("intake"))
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["billable"] is True
    assert out["claim_status"] == "ready"
    assert out["coding_status"] == "billable"
    assert [(x["procedure_code"], x["modifiers"], x["units"]) for x in out["lines"]] == [
        ("99605", ["95"], 1),
        ("99607", ["95"], 2),
    ]
    assert out["place_of_service"] == "10"
    assert out["modifiers"] == ["95"]
    assert (out["total_charge"], out["expected"]) == ("125.00", "100.00")
    assert out["lines"][1]["charge"] == "50.00"
    assert out["minutes"] == 38
    assert out["patient_status"] == "new"
    assert out["rule_version"] == f"{cov['contract']['id']}@v1"
    assert "midpoint rule" in out["rationale"]
    assert out["eligibility"]["eligible"] is True
    assert out["eligibility"]["payer_id"] == cov["payer"]["id"]
    assert out["reasons"] == []

    biller = await client.post("/v1/coding/preview", json=body, headers=keys.headers("biller"))
    assert biller.status_code == 200
    assert await _counts(db) == before
    assert await redis.zcard(settings.queue_name) == queued


async def test_preview_names_the_reasons_a_session_would_not_bill(
    client: Any, keys: Keys, worker_ctx: dict[str, Any]
) -> None:
    await covered_patient(client, keys)
    await post_session(client, keys, clean_session("PV-2", date_of_service="2026-02-01"))
    await run_worker(worker_ctx)
    body = clean_session("PV-3", documented_minutes=6, consent=False, service_type="TMR")
    out = (
        await client.post("/v1/coding/preview", json=body, headers=keys.headers("intake"))
    ).json()
    assert out["billable"] is False
    assert out["claim_status"] == "not_billable"
    assert {r["code"] for r in out["reasons"]} == {"BELOW_MINIMUM_TIME", "NO_CONSENT"}
    assert all(r["fix"] for r in out["reasons"])
    assert out["patient_status"] == "established"  # the 2026-02-01 claim, same TIN

    second_cmr = clean_session("PV-3b")
    out = (
        await client.post("/v1/coding/preview", json=second_cmr, headers=keys.headers("intake"))
    ).json()
    assert out["claim_status"] == "not_billable"
    assert "FREQUENCY_LIMIT_REACHED" in {r["code"] for r in out["reasons"]}

    nobody = clean_session("PV-4", patient_ref="P-404")
    out = (
        await client.post("/v1/coding/preview", json=nobody, headers=keys.headers("biller"))
    ).json()
    assert out["claim_status"] == "not_billable"
    assert {r["code"] for r in out["reasons"]} == {"NO_COVERAGE_ON_DOS"}
    assert out["rule_version"] is None
    assert out["lines"] == []


async def test_preview_rejects_bad_payloads_with_field_paths(client: Any, keys: Keys) -> None:
    bad = clean_session("PV-5", documented_minutes="forty")
    resp = await client.post("/v1/coding/preview", json=bad, headers=keys.headers("intake"))
    assert resp.status_code in (400, 422)
    future = clean_session("PV-6", date_of_service="2999-01-01")
    resp = await client.post("/v1/coding/preview", json=future, headers=keys.headers("intake"))
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "date_of_service"
    forbidden = await client.post(
        "/v1/coding/preview", json=clean_session("PV-7"), headers=keys.headers("auditor")
    )
    assert forbidden.status_code == 403
