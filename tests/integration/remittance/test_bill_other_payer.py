"""Bill another payer from the work queue, end to end: a session priced under payer A is
denied CO-22 (another payer is primary); coverage is updated so payer B is primary; the
action closes A's claim and creates B's original claim, coded and priced under B's contract,
scrubbed, linked, audited and valid as an 837P (pyx12). Refusals change nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from devtools.payer_simulator import DenialReason
from shared import audit
from shared.uow import Database
from shared.x12.validate import validate_x12
from tests.integration.claims.helpers import (
    claim_of_session,
    clean_session,
    post_session,
    run_worker,
)
from tests.integration.conftest import Keys
from tests.integration.coverage.helpers import add_span, make_contract, make_patient, make_payer
from tests.integration.remittance.helpers import file_837, remits, rows, scalar, simulator

DOS = "2026-11-20"
# Payer B's fee schedule differs from payer A's (the helpers' default: 75 / 50 / 25 charge).
B_FEES = [
    {"code": "99605", "charge": "90.00", "allowed": "80.00", "effective_from": "2025-01-01"},
    {"code": "99606", "charge": "60.00", "allowed": "55.00", "effective_from": "2025-01-01"},
    {"code": "99607", "charge": "30.00", "allowed": "27.50", "effective_from": "2025-01-01"},
]


async def _setup(
    client: Any, keys: Keys, db: Database, worker_ctx: dict[str, Any], tenant: str
) -> dict[str, Any]:
    """Payers A (primary, denies) and B (secondary), a session priced under A, submitted and
    denied CO-22; returns the ids and the open work item."""
    a = await make_payer(
        client,
        keys,
        name="Acme Health Plan",
        x12_payer_id="ACME01",
        claim_filing_indicator="CI",
        timely_filing_days=365,
    )
    b = await make_payer(
        client,
        keys,
        name="State Medicaid MTM",
        x12_payer_id="SKMD0",
        receiver_id="RCVMCD",
        trading_partner_id="TPMCD",
        claim_filing_indicator="MC",
        timely_filing_days=365,
    )
    contract_a = await make_contract(client, keys, a["id"], name="A MTM")
    contract_b = await make_contract(client, keys, b["id"], name="B MTM", fee_schedule=B_FEES)
    patient = await make_patient(client, keys, "P-1")
    span_a = await add_span(
        client,
        keys,
        patient["id"],
        contract_id=contract_a["id"],
        member_id="A-0001",
        effective_from="2025-01-01",
    )
    span_b = await add_span(
        client,
        keys,
        patient["id"],
        contract_id=contract_b["id"],
        member_id="B-0002",
        effective_from="2025-01-01",
        priority="secondary",
    )
    sid = await post_session(client, keys, clean_session("S-1", date_of_service=DOS))
    assert await run_worker(worker_ctx) == 1
    claim = await claim_of_session(client, keys, sid)
    assert (claim["status"], claim["payer_id"]) == ("ready", a["id"])
    item = await _submit_and_deny(client, keys, db, tenant, claim["id"], "22")
    assert item["recommended_action"] == "bill_other_payer"
    return {
        "a": a,
        "b": b,
        "contract_b": contract_b,
        "patient": patient,
        "span_a": span_a,
        "span_b": span_b,
        "session_id": sid,
        "claim": claim,
        "item": item,
    }


async def _submit_and_deny(
    client: Any,
    keys: Keys,
    db: Database,
    tenant: str,
    claim_id: str,
    carc: str,
    *,
    denial: DenialReason | None = None,
    category: str = "eligibility_cob",
) -> dict[str, Any]:
    """Submit the ready claim (as the cron would), post its payer's CO-<carc> denial (835);
    returns the claim's open work item."""
    async with db.transaction() as (conn, trans):
        await conn.execute(
            text(
                "UPDATE billing.claims SET status = 'submitted', version = version + 1 "
                "WHERE id = :i AND status = 'ready'"
            ),
            {"i": claim_id},
        )
        await audit.append(
            conn,
            tenant_id=tenant,
            entity_type="claim",
            entity_id=claim_id,
            action="claim.submit",
            actor="worker",
            reason="sent in a test batch",
            before={"status": "ready"},
            after={"status": "submitted"},
        )
        await trans.commit()
    sim = simulator(deny_rate=1.0, denials=(denial or DenialReason("cob", "CO", carc),))
    for f in remits(sim.adjudicate_file(f"{carc}.x12", await file_837(db, [claim_id]))):
        resp = await client.post(
            "/v1/remittances", content=f.text.encode(), headers=keys.headers("manager")
        )
        assert resp.status_code == 201, resp.text
    resp = await client.get(f"/v1/work-items?claim={claim_id}", headers=keys.headers("biller"))
    items = resp.json()["items"]
    assert len(items) == 1, items
    assert items[0]["category"] == category
    item: dict[str, Any] = items[0]
    return item


async def _set_spans(
    client: Any, keys: Keys, s: dict[str, Any], a: dict[str, Any], b: dict[str, Any]
) -> None:
    """New versions of the patient's spans with payer A and B (`a` / `b`: the fields that
    change, e.g. priority or effective_to)."""
    for span, contract_id, member_id, change in (
        (s["span_a"], s["span_a"]["contract_id"], "A-0001", a),
        (s["span_b"], s["contract_b"]["id"], "B-0002", b),
    ):
        await add_span(
            client,
            keys,
            s["patient"]["id"],
            span_id=span["span_id"],
            contract_id=contract_id,
            member_id=member_id,
            effective_from="2025-01-01",
            **change,
        )


async def _make_b_primary(client: Any, keys: Keys, s: dict[str, Any]) -> None:
    """The biller's COB fix in coverage: A's span becomes secondary, B's primary."""
    await _set_spans(client, keys, s, {"priority": "secondary"}, {"priority": "primary"})


async def _bill(client: Any, keys: Keys, item_id: str, **body: Any) -> Any:
    body.setdefault("reason", "CO-22: Medicaid is primary per the 271")
    return await client.post(
        f"/v1/work-items/{item_id}/actions/bill-other-payer",
        json=body,
        headers=keys.headers("biller"),
    )


async def _state(db: Database, tenant: str, claim_id: str, item_id: str) -> tuple[Any, ...]:
    """Everything a refused action must leave as it was."""
    claim = await rows(db, "SELECT status, version FROM billing.claims WHERE id = :i", i=claim_id)
    item = await rows(db, "SELECT status, version FROM billing.work_items WHERE id = :i", i=item_id)
    return (
        tuple(claim[0]),
        tuple(item[0]),
        await scalar(db, "SELECT count(*) FROM billing.claims WHERE tenant_id = :t", t=tenant),
        await scalar(db, "SELECT count(*) FROM audit.events WHERE tenant_id = :t", t=tenant),
    )


async def test_bill_other_payer_creates_the_other_payers_priced_claim(
    client: Any, keys: Keys, db: Database, worker_ctx: dict[str, Any], tenant: str
) -> None:
    s = await _setup(client, keys, db, worker_ctx, tenant)
    original, item = s["claim"], s["item"]
    await _make_b_primary(client, keys, s)

    resp = await _bill(client, keys, item["id"], payer_id=s["b"]["id"], payer_name="Medicaid")
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["claim_id"] == original["id"]
    assert out["claim_status"] == "closed"
    assert out["new_claim_status"] == "ready"
    assert out["work_item"]["status"] == "resolved"
    assert out["work_item"]["disposition"] == "bill_other_payer"
    new_id = out["new_claim_id"]
    assert new_id
    assert new_id != original["id"]

    h = keys.headers("biller")
    new = (await client.get(f"/v1/claims/{new_id}", headers=h)).json()
    assert new["status"] == "ready"
    assert new["hold_reasons"] == []
    assert (new["frequency_code"], new["claim_version"], new["payer_icn"]) == ("1", 2, None)
    assert new["session_id"] == s["session_id"]
    assert new["patient_control_number"] != original["patient_control_number"]
    assert new["payer_id"] == s["b"]["id"]
    assert new["contract_id"] == s["contract_b"]["id"]
    assert new["payer"]["x12_payer_id"] == "SKMD0"
    assert new["payer"]["claim_filing_indicator"] == "MC"
    assert new["subscriber"]["member_id"] == "B-0002"
    # coded and priced under B's fee schedule (A's claim was 75.00 + 2 x 25.00)
    assert [
        (x["procedure_code"], x["units"], x["charge"], x["expected"]) for x in new["lines"]
    ] == [
        ("99605", 1, "90.00", "80.00"),
        ("99607", 2, "60.00", "55.00"),
    ]
    assert (new["total_charge"], new["expected"]) == ("150.00", "135.00")
    assert (original["total_charge"], original["payer_id"]) == ("125.00", s["a"]["id"])
    assert new["coding"]["rule_version"].startswith(s["contract_b"]["id"])
    assert new["eligibility"]["payer"]["payer_id"] == s["b"]["id"]
    linked = await rows(
        db,
        "SELECT rebilled_from_claim_id::text AS r, replaces_claim_id FROM billing.claims "
        "WHERE id = :i",
        i=new_id,
    )
    assert (linked[0].r, linked[0].replaces_claim_id) == (original["id"], None)

    # the original: closed, its history shows the move and the new claim
    old = (await client.get(f"/v1/claims/{original['id']}", headers=h)).json()
    assert old["status"] == "closed"
    hist = (await client.get(f"/v1/claims/{original['id']}/history", headers=h)).json()
    assert hist["chain_valid"] is True
    last = hist["events"][-1]
    assert last["action"] == "claim.bill_other_payer"
    assert (last["before"]["status"], last["after"]["status"]) == ("denied", "closed")
    assert last["after"]["new_claim_id"] == new_id
    assert last["after"]["other_payer_id"] == s["b"]["id"]
    assert last["after"]["work_item_id"] == item["id"]

    # the new claim: created for bill_other_payer with a link to the original, then scrubbed
    hist = (await client.get(f"/v1/claims/{new_id}/history", headers=h)).json()
    assert hist["chain_valid"] is True
    assert [e["action"] for e in hist["events"]] == ["claim.created", "claim.scrub_passed"]
    created = hist["events"][0]
    assert created["reason"].startswith("bill_other_payer")
    assert created["after"]["rebilled_from_claim_id"] == original["id"]
    assert created["after"]["payer_id"] == s["b"]["id"]
    assert hist["events"][1]["after"]["status"] == "ready"

    trail = await client.get(f"/v1/audit/work_item/{item['id']}", headers=keys.headers("auditor"))
    assert trail.status_code == 200, trail.text
    assert trail.json()["chain_valid"] is True
    assert trail.json()["events"][-1]["after"]["status"] == "resolved"

    # B's 837P: an original (frequency 1) to B as primary, B's member id, valid per pyx12
    text = await file_837(db, [new_id], isa13=7)
    assert validate_x12(text) == []
    clm = text.split("CLM*", 1)[1].split("~", 1)[0]
    assert clm.startswith(f"{new['patient_control_number']}*150*")
    assert ":B:1*" in clm
    assert "REF*F8" not in text
    assert "SBR*P*18*" in text
    assert "*MI*B-0002~" in text
    assert "NM1*PR*2*STATE MEDICAID MTM*****PI*SKMD0~" in text

    # the item is resolved and the original closed: a second try is refused
    again = await _bill(client, keys, item["id"], payer_id=s["b"]["id"])
    assert again.status_code == 409


async def test_refusals_change_nothing(
    client: Any, keys: Keys, db: Database, worker_ctx: dict[str, Any], tenant: str
) -> None:
    s = await _setup(client, keys, db, worker_ctx, tenant)
    iid, cid = s["item"]["id"], s["claim"]["id"]
    before = await _state(db, tenant, cid, iid)

    # same payer as the denied claim
    resp = await _bill(client, keys, iid, payer_id=s["a"]["id"])
    assert resp.status_code == 422, resp.text
    assert resp.json()["code"] == "same_payer"
    assert resp.json()["errors"][0]["field"] == "payer_id"
    assert resp.json()["action"]

    # B is eligible but secondary: coverage still chooses A (COB not updated yet)
    resp = await _bill(client, keys, iid, payer_id=s["b"]["id"])
    assert resp.status_code == 422, resp.text
    problem = resp.json()
    assert problem["code"] == "payer_not_responsible"
    assert "denied claim's payer" in problem["detail"]
    assert "coverage" in problem["action"]

    # a payer coverage does not know
    resp = await _bill(client, keys, iid, payer_id="00000000-0000-4000-8000-00000000abcd")
    assert resp.status_code == 422, resp.text
    assert resp.json()["code"] == "payer_not_responsible"

    # malformed or missing payer id (the old body had only payer_name)
    for body in ({"payer_id": "not-a-uuid"}, {"payer_name": "Medicare Part B"}):
        resp = await _bill(client, keys, iid, **body)
        assert resp.status_code in (400, 422), resp.text
    assert await _state(db, tenant, cid, iid) == before

    # not eligible with anyone on the DOS: A ends before it, B never covered it
    await _set_spans(
        client,
        keys,
        s,
        {"effective_to": "2026-10-31"},
        {"effective_to": "2026-06-30", "priority": "secondary"},
    )
    after_cov = await _state(db, tenant, cid, iid)  # coverage writes audit events of its own
    resp = await _bill(client, keys, iid, payer_id=s["b"]["id"])
    assert resp.status_code == 422, resp.text
    problem = resp.json()
    assert problem["code"] == "not_eligible_with_payer"
    assert any(e["code"] == "NO_COVERAGE_ON_DOS" for e in problem["errors"])

    assert await _state(db, tenant, cid, iid) == after_cov
    assert after_cov[:3] == before[:3]  # coverage wrote only its own audit events
    claim = (await client.get(f"/v1/claims/{cid}", headers=keys.headers("biller"))).json()
    assert claim["status"] == "denied"
    item = (await client.get(f"/v1/work-items/{iid}", headers=keys.headers("biller"))).json()
    assert item["status"] == "open"
    assert item["disposition"] is None

    # once the first payer paid (part of) the claim, the other payer would be secondary
    async with db.transaction() as (conn, trans):
        await conn.execute(
            text("UPDATE billing.claims SET status = 'partially_paid' WHERE id = :i"), {"i": cid}
        )
        await trans.commit()
    resp = await _bill(client, keys, iid, payer_id=s["b"]["id"])
    assert resp.status_code == 409, resp.text
    assert resp.json()["code"] == "secondary_claim_not_supported"


async def test_a_second_payer_denial_can_be_billed_to_a_third(
    client: Any, keys: Keys, db: Database, worker_ctx: dict[str, Any], tenant: str
) -> None:
    """A -> B -> C: C's claim is scrubbed clean, the two closed claims before it are not
    counted as the same service already billed (their payers denied it)."""
    s = await _setup(client, keys, db, worker_ctx, tenant)
    await _make_b_primary(client, keys, s)
    resp = await _bill(client, keys, s["item"]["id"], payer_id=s["b"]["id"])
    assert resp.status_code == 200, resp.text
    b_claim = resp.json()["new_claim_id"]
    item = await _submit_and_deny(client, keys, db, tenant, b_claim, "109")

    c = await make_payer(client, keys, name="Medicare Advantage", x12_payer_id="MAPD01")
    contract_c = await make_contract(client, keys, c["id"], name="C MTM")
    # B's span is retro-terminated; C covers the DOS
    await add_span(
        client,
        keys,
        s["patient"]["id"],
        span_id=s["span_b"]["span_id"],
        contract_id=s["contract_b"]["id"],
        member_id="B-0002",
        effective_from="2025-01-01",
        effective_to="2026-10-31",
    )
    await add_span(
        client,
        keys,
        s["patient"]["id"],
        contract_id=contract_c["id"],
        member_id="C-0003",
        effective_from="2026-01-01",
    )
    # A (still covering, now secondary) stays behind C
    resp = await _bill(client, keys, item["id"], payer_id=c["id"], reason="109: send to MA plan")
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert (out["claim_id"], out["claim_status"]) == (b_claim, "closed")
    assert out["new_claim_status"] == "ready"
    new = (
        await client.get(f"/v1/claims/{out['new_claim_id']}", headers=keys.headers("biller"))
    ).json()
    assert (new["payer_id"], new["claim_version"], new["frequency_code"]) == (c["id"], 3, "1")
    assert new["subscriber"]["member_id"] == "C-0003"
    assert not any(f["code"] == "duplicate_service" for f in new["scrub_findings"])
    chain = await rows(
        db,
        "SELECT id::text AS id, status, rebilled_from_claim_id::text AS prev "
        "FROM billing.claims WHERE session_id = :s ORDER BY claim_version",
        s=s["session_id"],
    )
    assert [(r.status, r.prev) for r in chain] == [
        ("closed", None),
        ("closed", s["claim"]["id"]),
        ("ready", b_claim),
    ]
    text = await file_837(db, [out["new_claim_id"]], isa13=9)
    assert validate_x12(text) == []


async def test_the_new_claim_can_be_held_and_released(
    client: Any, keys: Keys, db: Database, worker_ctx: dict[str, Any], tenant: str
) -> None:
    s = await _setup(client, keys, db, worker_ctx, tenant)
    await _make_b_primary(client, keys, s)
    new_id = (await _bill(client, keys, s["item"]["id"], payer_id=s["b"]["id"])).json()[
        "new_claim_id"
    ]
    h = keys.headers("biller")
    held = await client.post(f"/v1/claims/{new_id}/hold", json={"reason": "check"}, headers=h)
    assert held.status_code == 200, held.text
    released = await client.post(f"/v1/claims/{new_id}/release", json={"reason": "ok"}, headers=h)
    assert released.status_code == 200, released.text
    new = (await client.get(f"/v1/claims/{new_id}", headers=h)).json()
    assert new["status"] == "ready"
    assert not any(f["code"] == "duplicate_service" for f in new["scrub_findings"])


async def test_a_denied_rebilled_claim_can_be_corrected_and_resubmitted(
    client: Any, keys: Keys, db: Database, worker_ctx: dict[str, Any], tenant: str
) -> None:
    """B (billed to the other payer) is denied for missing information: its replacement
    (frequency 7) is scrubbed without counting A, the closed claim B was rebilled from."""
    s = await _setup(client, keys, db, worker_ctx, tenant)
    await _make_b_primary(client, keys, s)
    resp = await _bill(client, keys, s["item"]["id"], payer_id=s["b"]["id"])
    assert resp.status_code == 200, resp.text
    b_claim = resp.json()["new_claim_id"]
    item = await _submit_and_deny(
        client,
        keys,
        db,
        tenant,
        b_claim,
        "16",
        denial=DenialReason("missing", "CO", "16", ("M51",)),
        category="coding",
    )
    assert item["recommended_action"] == "correct_resubmit"

    resp = await client.post(
        f"/v1/work-items/{item['id']}/actions/correct-resubmit",
        json={"reason": "diagnosis fixed per M51", "diagnoses": ["E11.9"]},
        headers=keys.headers("biller"),
    )
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert (out["claim_id"], out["claim_status"]) == (b_claim, "replaced")
    assert out["work_item"]["disposition"] == "correct_resubmit"
    chain = await rows(
        db,
        "SELECT id::text AS id, status, frequency_code, replaces_claim_id::text AS replaces, "
        "scrub FROM billing.claims WHERE session_id = :s ORDER BY claim_version",
        s=s["session_id"],
    )
    assert [(r.status, r.frequency_code, r.replaces) for r in chain] == [
        ("closed", "1", None),
        ("replaced", "1", None),
        ("ready", "7", b_claim),
    ]
    assert chain[2].id == out["new_claim_id"]
    assert not any(f["code"] == "duplicate_service" for f in chain[2].scrub)
    text = await file_837(db, [out["new_claim_id"]], isa13=11)
    assert validate_x12(text) == []
    assert ":7*" in text.split("CLM*", 1)[1].split("~", 1)[0]


async def test_a_genuine_second_claim_for_the_service_is_still_a_duplicate(
    client: Any, keys: Keys, db: Database, worker_ctx: dict[str, Any], tenant: str
) -> None:
    """Only the closed claim B was rebilled from stops standing: a second session for the same
    service is held as a duplicate of B, and releasing B is refused while that claim exists."""
    s = await _setup(client, keys, db, worker_ctx, tenant)
    await _make_b_primary(client, keys, s)
    resp = await _bill(client, keys, s["item"]["id"], payer_id=s["b"]["id"])
    assert resp.status_code == 200, resp.text
    b_id = resp.json()["new_claim_id"]
    h = keys.headers("biller")
    b = (await client.get(f"/v1/claims/{b_id}", headers=h)).json()
    a_pcn = s["claim"]["patient_control_number"]

    twin_sid = await post_session(client, keys, clean_session("S-2", date_of_service=DOS))
    assert await run_worker(worker_ctx) == 1
    twin = await claim_of_session(client, keys, twin_sid)
    assert twin["status"] == "on_hold"
    dupes = [r for r in twin["hold_reasons"] if r["code"] == "duplicate_service"]
    assert dupes, twin["hold_reasons"]
    assert all(b["patient_control_number"] in r["message"] for r in dupes)
    assert not any(a_pcn in r["message"] for r in dupes)

    # the same rule on release: B is now a duplicate of the twin (a real second claim)
    held = await client.post(f"/v1/claims/{b_id}/hold", json={"reason": "check"}, headers=h)
    assert held.status_code == 200, held.text
    released = await client.post(f"/v1/claims/{b_id}/release", json={"reason": "ok"}, headers=h)
    assert released.status_code == 422, released.text
    problem = released.json()
    assert problem["code"] == "scrub_failed"
    assert {e["code"] for e in problem["errors"]} == {"duplicate_service"}
    assert all(twin["patient_control_number"] in e["message"] for e in problem["errors"])
    assert not any(a_pcn in e["message"] for e in problem["errors"])
