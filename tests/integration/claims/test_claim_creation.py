"""Sessions become claims with no human step: ready, on_hold or not_billable, each with its
named reasons, through the real API, the worker's job, PostgreSQL and Redis."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from services.billing.tasks import price_session
from tests.integration.claims.helpers import (
    claim_of_session,
    clean_session,
    covered_patient,
    post_session,
    run_worker,
)
from tests.integration.conftest import Keys


def _codes(claim: dict[str, Any]) -> set[str]:
    return {r["code"] for r in claim["hold_reasons"]}


async def test_clean_session_becomes_a_ready_priced_claim(
    client: Any, keys: Keys, worker_ctx: dict[str, Any]
) -> None:
    cov = await covered_patient(client, keys, timely_filing_days=95)
    sid = await post_session(client, keys, clean_session("S-1"))
    assert await run_worker(worker_ctx) == 1

    claim = await claim_of_session(client, keys, sid)
    assert claim["status"] == "ready"
    assert claim["session_id"] == sid
    assert re.fullmatch(r"[A-Z0-9]{1,6}-[0-9]{8,13}", claim["patient_control_number"])
    assert len(claim["patient_control_number"]) <= 20
    assert (claim["claim_version"], claim["frequency_code"], claim["payer_icn"]) == (1, "1", None)
    assert claim["payer_id"] == cov["payer"]["id"]
    assert claim["contract_id"] == cov["contract"]["id"]
    assert claim["contract_version"] == 1
    assert claim["place_of_service"] == "01"
    assert claim["diagnoses"] == ["E119", "I10"]
    assert [
        (x["procedure_code"], x["units"], x["charge"], x["expected"]) for x in claim["lines"]
    ] == [
        ("99605", 1, "75.00", "60.00"),
        ("99607", 2, "50.00", "40.00"),
    ]
    assert all(x["diagnosis_pointers"] == [1, 2] for x in claim["lines"])
    assert (claim["total_charge"], claim["expected"]) == ("125.00", "100.00")
    assert claim["timely_filing_deadline"] == str(date(2026, 11, 20) + timedelta(days=95))
    assert claim["billing_provider"]["npi"] == "1234567893"
    assert claim["billing_provider"]["entity_type"] == "2"
    assert claim["billing_provider"]["tin"] == "123456789"
    assert claim["rendering_provider"]["entity_type"] == "1"
    assert claim["subscriber"]["member_id"] == "M-P-1"
    assert claim["hold_reasons"] == []
    assert "99607 x2" in claim["coding"]["rationale"]
    assert claim["coding"]["minutes"] == 42
    assert claim["coding"]["patient_status"] == "new"
    assert claim["eligibility"]["eligible"] is True
    assert claim["eligibility"]["coverage"]["member_id"] == "M-P-1"
    assert "submit" in claim["allowed_actions"]

    session = (await client.get(f"/v1/sessions/{sid}", headers=keys.headers("biller"))).json()
    assert session["state"] == "priced"
    assert [h["action"] for h in session["history"]] == ["session.received", "session.priced"]
    assert session["history"][-1]["after"]["claim_status"] == "ready"


async def test_fixable_problems_hold_the_claim_with_named_reasons(
    client: Any, keys: Keys, worker_ctx: dict[str, Any]
) -> None:
    await covered_patient(client, keys)
    body = clean_session("S-2", consent=False)
    body["pharmacy"] = {
        **body["pharmacy"],
        "address": {**body["pharmacy"]["address"], "zip": "12345"},
    }
    sid = await post_session(client, keys, body)
    await run_worker(worker_ctx)

    claim = await claim_of_session(client, keys, sid)
    assert claim["status"] == "on_hold"
    by_code = {r["code"]: r for r in claim["hold_reasons"]}
    assert by_code["NO_CONSENT"]["source"] == "coding"
    assert by_code["NO_CONSENT"]["fix"]
    assert by_code["billing_zip_invalid"]["source"] == "scrub"
    assert by_code["billing_zip_invalid"]["field"] == "billing_address.postal_code"
    assert by_code["billing_zip_invalid"]["fix"] == "fix_provider_data"
    assert {f["code"] for f in claim["scrub_findings"]} >= {"billing_zip_invalid"}
    assert claim["lines"]  # still coded and priced, so the biller sees what it would bill
    session = (await client.get(f"/v1/sessions/{sid}", headers=keys.headers("biller"))).json()
    assert session["state"] == "priced"


async def test_unbillable_sessions_get_a_not_billable_claim_with_reasons(
    client: Any, keys: Keys, worker_ctx: dict[str, Any]
) -> None:
    await covered_patient(client, keys, "P-1")
    short = await post_session(client, keys, clean_session("S-3", documented_minutes=5))
    stranger = await post_session(client, keys, clean_session("S-4", patient_ref="P-UNKNOWN"))
    await run_worker(worker_ctx)

    short_claim = await claim_of_session(client, keys, short)
    assert short_claim["status"] == "not_billable"
    assert "BELOW_MINIMUM_TIME" in _codes(short_claim)
    assert short_claim["lines"] == []

    unknown = await claim_of_session(client, keys, stranger)
    assert unknown["status"] == "not_billable"
    assert _codes(unknown) == {"NO_COVERAGE_ON_DOS"}
    assert unknown["payer_id"] is None
    assert unknown["subscriber"] is None
    assert "reopen" in unknown["allowed_actions"]
    session = (await client.get(f"/v1/sessions/{stranger}", headers=keys.headers("biller"))).json()
    assert session["state"] == "not_billable"


async def test_history_makes_later_visits_established_limited_and_duplicates_held(
    client: Any, keys: Keys, worker_ctx: dict[str, Any]
) -> None:
    await covered_patient(client, keys)
    first = await post_session(client, keys, clean_session("S-5", date_of_service="2026-03-02"))
    await run_worker(worker_ctx)
    # Posted together, so one batch: each later session must still see the earlier claims.
    follow = await post_session(
        client, keys, clean_session("S-6", date_of_service="2026-06-01", service_type="TMR")
    )
    twin = await post_session(
        client, keys, clean_session("S-7", date_of_service="2026-06-01", service_type="TMR")
    )
    second_cmr = await post_session(
        client, keys, clean_session("S-8", date_of_service="2026-09-01")
    )
    assert await run_worker(worker_ctx) == 3

    assert (await claim_of_session(client, keys, first))["lines"][0]["procedure_code"] == "99605"
    established = await claim_of_session(client, keys, follow)
    assert established["status"] == "ready"
    assert established["lines"][0]["procedure_code"] == "99606"
    assert "last MTM visit 2026-03-02" in established["coding"]["rationale"]

    duplicate = await claim_of_session(client, keys, twin)
    assert duplicate["status"] == "on_hold"
    assert "duplicate_service" in _codes(duplicate)

    limited = await claim_of_session(client, keys, second_cmr)
    assert limited["status"] == "not_billable"
    assert "FREQUENCY_LIMIT_REACHED" in _codes(limited)


async def test_the_job_running_again_creates_no_second_claim(
    client: Any, keys: Keys, worker_ctx: dict[str, Any], db: Any
) -> None:
    from sqlalchemy import text

    await covered_patient(client, keys)
    sid = await post_session(client, keys, clean_session("S-9"))
    assert await price_session(worker_ctx, sid, "unused") == 1
    assert await price_session(worker_ctx, sid, "unused") == 0
    assert await run_worker(worker_ctx) == 0
    async with db.transaction() as (conn, _t):
        n = (
            await conn.execute(
                text("SELECT count(*) FROM billing.claims WHERE session_id = :s"), {"s": sid}
            )
        ).scalar_one()
    assert n == 1


async def test_a_session_under_a_pmpm_contract_is_activity_not_an_encounter(
    client: Any, keys: Keys, worker_ctx: dict[str, Any]
) -> None:
    """The contract pays per member per month (even with a fee schedule on file): the session
    gets a not_billable claim naming PMPM_CONTRACT, and the month's PMPM run counts it."""
    await covered_patient(
        client,
        keys,
        billing_model="pmpm",
        pmpm={
            "rates": [{"tier": "std", "rate": "20.00"}],
            "default_tier": "std",
            "proration": "first_of_month",
            "payment_mode": "capitation",
        },
    )
    sid = await post_session(client, keys, clean_session("S-PMPM"))
    assert await run_worker(worker_ctx) == 1
    claim = await claim_of_session(client, keys, sid)
    assert claim["status"] == "not_billable"
    assert _codes(claim) == {"PMPM_CONTRACT"}
    assert claim["lines"] == []
    assert "per member per month" in claim["coding"]["rationale"]
