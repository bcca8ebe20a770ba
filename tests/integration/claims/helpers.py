"""Builders for claims tests: coverage set up through its API, sessions posted through
billing's, the worker's job run in process."""

from __future__ import annotations

from typing import Any

from services.billing.tasks import price_sessions_batch
from tests.fixtures.sessions import session_payload
from tests.integration.conftest import Keys
from tests.integration.coverage.helpers import add_span, make_contract, make_patient, make_payer

# A billing address with ZIP+4, as 2010AA requires (the scrubber holds a 5-digit ZIP).
PHARMACY = {
    "npi": "1234567893",
    "tin": "12-3456789",
    "name": "Acme Pharmacy",
    "address": {"line1": "1 Main St", "city": "Town", "state": "NY", "zip": "12345-6789"},
}


def clean_session(external_id: str, **changes: Any) -> dict[str, Any]:
    changes.setdefault("pharmacy", PHARMACY)
    changes.setdefault("date_of_service", "2026-11-20")
    return session_payload(external_id, **changes)


async def covered_patient(
    client: Any, keys: Keys, ref: str = "P-1", *, timely_filing_days: int = 365, **terms: Any
) -> dict[str, Any]:
    """A payer, a contract and a patient covered from 2025-01-01 (member id M-<ref>)."""
    payer_code = "PY" + "".join(c for c in ref if c.isalnum())
    payer = await make_payer(
        client, keys, timely_filing_days=timely_filing_days, x12_payer_id=payer_code
    )
    contract = await make_contract(client, keys, payer["id"], **terms)
    patient = await make_patient(client, keys, ref)
    await add_span(
        client,
        keys,
        patient["id"],
        contract_id=contract["id"],
        member_id=f"M-{ref}",
        effective_from="2025-01-01",
    )
    return {"payer": payer, "contract": contract, "patient": patient}


async def post_session(client: Any, keys: Keys, body: dict[str, Any]) -> str:
    resp = await client.post("/v1/sessions", json=body, headers=keys.headers("intake"))
    assert resp.status_code == 201, resp.text
    sid: str = resp.json()["id"]
    return sid


async def run_worker(worker_ctx: dict[str, Any]) -> int:
    return await price_sessions_batch(worker_ctx, 0)


async def claim_of_session(client: Any, keys: Keys, session_id: str) -> dict[str, Any]:
    session = (
        await client.get(f"/v1/sessions/{session_id}", headers=keys.headers("biller"))
    ).json()
    claim_id = session["history"][-1]["after"]["claim_id"]
    resp = await client.get(f"/v1/claims/{claim_id}", headers=keys.headers("biller"))
    assert resp.status_code == 200, resp.text
    claim: dict[str, Any] = resp.json()
    return claim
