"""The biller's queue over HTTP: upload, list, next, every action end to end (validated
against the claim's state, audited), tenant isolation and bad input."""

from __future__ import annotations

from typing import Any

from devtools.payer_simulator import DenialReason
from shared.uow import Database
from shared.x12.validate import validate_x12
from tests.integration.conftest import Keys
from tests.integration.remittance.helpers import (
    file_837,
    remits,
    rows,
    scalar,
    simulator,
    submitted_claims,
)


async def _denied(
    client: Any, keys: Keys, db: Database, tenant: str, n: int, denial: DenialReason
) -> list[str]:
    ids = await submitted_claims(db, tenant, n)
    sim = simulator(deny_rate=1.0, denials=(denial,))
    for f in remits(sim.adjudicate_file("B.x12", await file_837(db, ids))):
        resp = await client.post(
            "/v1/remittances", content=f.text.encode(), headers=keys.headers("manager")
        )
        assert resp.status_code == 201, resp.text
        assert resp.json()["status"] == "posted"
        again = await client.post(
            "/v1/remittances", content=f.text.encode(), headers=keys.headers("manager")
        )
        assert again.status_code == 200
        assert again.json()["already_received"] is True
    return ids


async def _next(client: Any, keys: Keys) -> dict[str, Any]:
    resp = await client.post("/v1/work-items/next", headers=keys.headers("biller"))
    assert resp.status_code == 200, resp.text
    item: dict[str, Any] = resp.json()
    assert item["status"] == "in_progress"
    assert item["assignee"].startswith("apikey:")
    return item


async def test_queue_correct_and_resubmit_makes_a_valid_replacement(
    client: Any, keys: Keys, db: Database, tenant: str
) -> None:
    await _denied(client, keys, db, tenant, 2, DenialReason("missing", "CO", "16", ("M51",)))
    listed = await client.get("/v1/work-items", headers=keys.headers("biller"))
    assert listed.status_code == 200
    items = listed.json()["items"]
    assert len(items) == 2
    assert items[0]["priority_score"] >= items[1]["priority_score"]
    assert items[0]["category"] == "coding"
    assert items[0]["recommended_action"] == "correct_resubmit"
    assert items[0]["amount"] == "150.00"
    item = await _next(client, keys)
    resp = await client.post(
        f"/v1/work-items/{item['id']}/actions/correct-resubmit",
        json={"reason": "procedure code fixed per M51", "diagnoses": ["E11.9"]},
        headers=keys.headers("biller"),
    )
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["claim_status"] == "replaced"
    assert out["work_item"]["status"] == "resolved"
    assert out["work_item"]["disposition"] == "correct_resubmit"
    new = await rows(
        db,
        "SELECT n.*, o.payer_icn AS original_icn FROM billing.claims n "
        "JOIN billing.claims o ON o.id = n.replaces_claim_id WHERE n.id = :i",
        i=out["new_claim_id"],
    )
    assert new[0].frequency_code == "7"
    assert new[0].status == "ready"
    assert new[0].payer_icn == new[0].original_icn
    assert new[0].payer_icn
    assert new[0].diagnoses == ["E119"]
    assert new[0].claim_version == 2
    text = await file_837(db, [out["new_claim_id"]], isa13=5)
    assert f"REF*F8*{new[0].payer_icn}~" in text
    assert "CLM*" in text
    assert ":7*" in text.split("CLM*", 1)[1].split("~", 1)[0]
    assert validate_x12(text) == []
    hist = await client.get(
        f"/v1/claims/{item['claim_id']}/history", headers=keys.headers("biller")
    )
    if hist.status_code == 200:
        actions = [e["action"] for e in hist.json()["events"]]
        assert "claim.replace" in actions
        assert any(a.startswith("claim.remit_") for a in actions)
    # the original is replaced: no further action on it
    again = await client.post(
        f"/v1/work-items/{item['id']}/actions/void",
        json={"reason": "x"},
        headers=keys.headers("biller"),
    )
    assert again.status_code == 409


async def test_appeal_write_off_void_bill_and_reopen(
    client: Any, keys: Keys, db: Database, tenant: str
) -> None:
    await _denied(client, keys, db, tenant, 5, DenialReason("medical", "CO", "50"))
    h = keys.headers("biller")
    # appeal with a letter
    item = await _next(client, keys)
    resp = await client.post(
        f"/v1/work-items/{item['id']}/actions/appeal",
        json={"reason": "records support it"},
        headers=h,
    )
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["claim_status"] == "appealed"
    assert "Re: Request for reconsideration" in out["appeal_letter"]
    assert "CO-50" in out["appeal_letter"]
    appeal = await rows(db, "SELECT * FROM billing.appeals WHERE id = :i", i=out["appeal_id"])
    assert (
        appeal[0].deadline == item["appeal_deadline"]
        or str(appeal[0].deadline) == item["appeal_deadline"]
    )
    # write off, reason-coded
    item = await _next(client, keys)
    bad = await client.post(
        f"/v1/work-items/{item['id']}/actions/write-off",
        json={"reason_code": "because", "reason": "x"},
        headers=h,
    )
    assert bad.status_code in (400, 422)
    resp = await client.post(
        f"/v1/work-items/{item['id']}/actions/write-off",
        json={"reason_code": "no_authorization", "reason": "no auth on file"},
        headers=h,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["claim_status"] == "written_off"
    wo = await rows(
        db, "SELECT reason, amount_cents FROM billing.write_offs WHERE tenant_id = :t", t=tenant
    )
    assert [(w.reason, w.amount_cents) for w in wo] == [("no_authorization", 15000)]
    # void
    item = await _next(client, keys)
    resp = await client.post(
        f"/v1/work-items/{item['id']}/actions/void", json={"reason": "sent in error"}, headers=h
    )
    assert resp.status_code == 200, resp.text
    void = await rows(
        db,
        "SELECT frequency_code, payer_icn, status FROM billing.claims WHERE id = :i",
        i=resp.json()["new_claim_id"],
    )
    assert void[0].frequency_code == "8"
    assert void[0].payer_icn
    assert void[0].status == "ready"
    assert resp.json()["claim_status"] == "voided"
    # bill the patient is refused on a CO denial; bill another payer names the payer by its
    # coverage id (the action itself: test_bill_other_payer.py)
    item = await _next(client, keys)
    refused = await client.post(
        f"/v1/work-items/{item['id']}/actions/bill-patient", json={"reason": "x"}, headers=h
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "contractual_obligation"
    refused = await client.post(
        f"/v1/work-items/{item['id']}/actions/bill-other-payer",
        json={"reason": "Medicare primary", "payer_name": "Medicare Part B"},
        headers=h,
    )
    assert refused.status_code in (400, 422)
    resp = await client.post(
        f"/v1/work-items/{item['id']}/actions/appeal", json={"reason": "records"}, headers=h
    )
    assert resp.status_code == 200
    assert resp.json()["claim_status"] == "appealed"
    # reopen a resolved item
    resp = await client.post(
        f"/v1/work-items/{item['id']}/actions/reopen", json={"reason": "wrong payer"}, headers=h
    )
    assert resp.status_code == 200
    assert resp.json()["work_item"]["status"] == "open"
    # block / note / read
    item = await _next(client, keys)
    resp = await client.patch(
        f"/v1/work-items/{item['id']}",
        json={"version": item["version"], "status": "blocked"},
        headers=h,
    )
    assert resp.status_code == 200
    assert resp.json()["status"] == "blocked"
    stale = await client.patch(
        f"/v1/work-items/{item['id']}",
        json={"version": item["version"], "status": "open"},
        headers=h,
    )
    assert stale.status_code == 409
    resp = await client.post(
        f"/v1/work-items/{item['id']}/notes", json={"body": "called payer"}, headers=h
    )
    assert resp.status_code == 201
    assert resp.json()["notes"][0]["body"] == "called payer"
    events = await scalar(
        db,
        "SELECT count(*) FROM audit.events WHERE tenant_id = :t AND entity_type = 'work_item' AND entity_id = :i",
        t=tenant,
        i=item["id"],
    )
    assert events >= 4


async def test_tenant_isolation_and_bad_input(
    client: Any, keys: Keys, db: Database, tenant: str
) -> None:
    await _denied(client, keys, db, tenant, 1, DenialReason("medical", "CO", "50"))
    items = (await client.get("/v1/work-items", headers=keys.headers("biller"))).json()["items"]
    iid = items[0]["id"]
    other = keys.headers("biller", other=True)
    assert (await client.get(f"/v1/work-items/{iid}", headers=other)).status_code == 404
    resp = await client.post(
        f"/v1/work-items/{iid}/actions/appeal", json={"reason": "x"}, headers=other
    )
    assert resp.status_code == 404
    assert (await client.post("/v1/work-items/next", headers=other)).status_code == 204
    assert (await client.get("/v1/work-items", headers=other)).json()["items"] == []
    bad = await client.post(
        f"/v1/work-items/{iid}/actions/write-off",
        json={"reason_code": "other", "reason": "x", "amount": "12.345"},
        headers=keys.headers("biller"),
    )
    assert bad.status_code in (400, 422)
    assert any("amount" in e.get("field", "") for e in bad.json().get("errors", [])), bad.json()
    bad = await client.get("/v1/work-items?category=nonsense", headers=keys.headers("biller"))
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "category"
    bad = await client.get(
        "/v1/reports/kpis?from=2026-12-01&to=2026-11-01", headers=keys.headers("manager")
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "to"
    empty = await client.post("/v1/remittances", content=b"", headers=keys.headers("manager"))
    assert empty.status_code == 400
    forbidden = await client.post("/v1/remittances", content=b"ISA", headers=keys.headers("biller"))
    assert forbidden.status_code == 403
    assert (await client.get("/v1/remittances", headers=keys.headers("biller"))).status_code == 200
