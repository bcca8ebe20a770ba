"""835 posting through real PostgreSQL: every claim to its true state, money to the cent,
quarantine of unbalanced files, idempotency, reversals with corrections, unmatched claims,
denial work items and PLB records."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from devtools.payer_simulator import CapitationPayment
from services.billing.remittance import ingest_835
from shared.uow import Database
from shared.x12.x835 import parse_835
from tests.integration.remittance.helpers import (
    file_837,
    remits,
    rows,
    scalar,
    simulator,
    submitted_claims,
)

TODAY = date(2026, 11, 26)


async def ingest(db: Database, tenant: str, text: str | bytes, **kw: Any) -> Any:
    data = text.encode() if isinstance(text, str) else text
    async with db.transaction() as (conn, trans):
        result = await ingest_835(
            conn, tenant_id=tenant, content=data, source="upload", actor="test", today=TODAY, **kw
        )
        await trans.commit()
    return result


async def test_simulated_835_posts_every_claim_to_its_true_state(db: Database, tenant: str) -> None:
    ids = await submitted_claims(db, tenant, 40)
    sim = simulator(seed=3, deny_rate=0.35, patient_responsibility_rate=0.3)
    out = remits(sim.adjudicate_file("B1.x12", await file_837(db, ids)))
    assert out
    expected: dict[str, Any] = {}
    for f in out:
        for remit in parse_835(f.text):
            for cp in remit.claims:
                expected[cp.patient_control_number] = cp
        result = await ingest(db, tenant, f.text)
        assert result.status == "posted", result.reasons
        assert result.unmatched == 0
    claims = {
        r.pcn: r
        for r in await rows(
            db,
            "SELECT patient_control_number AS pcn, id::text AS id, status, payer_icn, version "
            "FROM billing.claims WHERE tenant_id = :t",
            t=tenant,
        )
    }
    paid = {
        r.pcn: r
        for r in await rows(
            db,
            "SELECT patient_control_number AS pcn, sum(paid_cents) AS paid, "
            "sum(patient_resp_cents) AS pr, sum(charge_cents) AS charge "
            "FROM billing.claim_payments WHERE tenant_id = :t GROUP BY 1",
            t=tenant,
        )
    }
    denied = 0
    for pcn, cp in expected.items():
        row = claims[pcn]
        denial = any(a.group != "PR" and a.carc != "45" for ln in cp.lines for a in ln.adjustments)
        want = "denied" if denial and cp.paid == 0 else ("partially_paid" if denial else "paid")
        assert row.status == want, (pcn, row.status, want)
        assert row.payer_icn == cp.payer_icn
        assert row.version == 2
        assert paid[pcn].paid == cp.paid
        assert paid[pcn].pr == cp.patient_responsibility
        assert paid[pcn].charge == cp.charge
        denied += denial
    assert denied > 0
    # every denial is a work item with category, action, deadlines and priority
    items = await rows(
        db,
        "SELECT w.*, c.patient_control_number AS pcn FROM billing.work_items w "
        "JOIN billing.claims c ON c.id = w.claim_id WHERE w.tenant_id = :t",
        t=tenant,
    )
    assert len(items) == denied
    for it in items:
        assert it.source == "835"
        assert it.status == "open"
        assert it.category
        assert it.recommended_action
        assert it.recommendation
        assert it.amount_cents == 15000
        assert it.timely_filing_deadline == date(2027, 2, 13)
        assert it.appeal_deadline == date(2026, 11, 25).replace(year=2027, month=1, day=24)
        assert it.priority_score > 0
    by_carc = {it.primary_reason: it for it in items}
    if "CO-18" in by_carc:
        assert by_carc["CO-18"].category == "duplicate"
        assert by_carc["CO-18"].recommended_action == "check_status"
    if "CO-29" in by_carc:
        assert by_carc["CO-29"].category == "timely_filing"
    # each claim's history has the posting event and the chain verifies
    hist = await rows(
        db,
        "SELECT action FROM audit.events WHERE tenant_id = :t AND entity_type = 'claim' "
        "AND entity_id = :c ORDER BY seq",
        t=tenant,
        c=claims[next(iter(expected))].id,
    )
    assert [h.action for h in hist][-1].startswith("claim.remit_")


async def test_resent_file_changes_nothing(db: Database, tenant: str) -> None:
    ids = await submitted_claims(db, tenant, 5)
    f = remits(simulator(deny_rate=0.5).adjudicate_file("B.x12", await file_837(db, ids)))[0]
    first = await ingest(db, tenant, f.text)
    counts = await rows(
        db,
        "SELECT (SELECT count(*) FROM billing.claim_payments WHERE tenant_id = :t) AS p, "
        "(SELECT count(*) FROM billing.work_items WHERE tenant_id = :t) AS w, "
        "(SELECT sum(version) FROM billing.claims WHERE tenant_id = :t) AS v",
        t=tenant,
    )
    again = await ingest(db, tenant, f.text)
    assert again.already_received
    assert again.file_id == first.file_id
    assert again.status == "posted"
    # a re-issued copy (new envelope numbers, same TRN) is recorded as a duplicate only
    dup = await ingest(db, tenant, _reissue(f.text).encode())
    assert dup.status == "duplicate"
    assert not dup.already_received
    after = await rows(
        db,
        "SELECT (SELECT count(*) FROM billing.claim_payments WHERE tenant_id = :t) AS p, "
        "(SELECT count(*) FROM billing.work_items WHERE tenant_id = :t) AS w, "
        "(SELECT sum(version) FROM billing.claims WHERE tenant_id = :t) AS v",
        t=tenant,
    )
    assert after == counts


def _reissue(text: str) -> str:
    """The same 835 in a new envelope (ISA13/IEA02 changed)."""
    isa = text[:106]
    el = isa[3]
    parts = isa.split(el)
    old = parts[13]
    parts[13] = "000000777"
    body = text[106:]
    iea = f"IEA{el}1{el}{old}"
    assert iea in body
    return el.join(parts) + body.replace(iea, f"IEA{el}1{el}000000777")


def _mutate(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


async def test_unbalanced_files_are_quarantined_and_apply_nothing(
    db: Database, tenant: str
) -> None:
    ids = await submitted_claims(db, tenant, 3)
    text = remits(
        simulator(deny_rate=0.0, patient_responsibility_rate=0.0).adjudicate_file(
            "B.x12", await file_837(db, ids)
        )
    )[0].text
    remit = parse_835(text)[0]
    cp = remit.claims[0]
    from shared.money import format_x12_amount as amt

    svc = f"SVC*HC:99605*100*{amt(cp.lines[0].paid)}"
    assert svc in text
    line_bad = _mutate(text, svc, f"SVC*HC:99605*100*{amt(cp.lines[0].paid + 1)}")
    clp = f"CLP*{cp.patient_control_number}*{cp.status}*150*{amt(cp.paid)}"
    assert clp in text
    claim_bad = _mutate(
        text, clp, f"CLP*{cp.patient_control_number}*{cp.status}*151*{amt(cp.paid)}"
    )
    bpr = f"BPR*{remit.handling_code}*{amt(remit.paid_amount)}*"
    file_bad = _mutate(text, bpr, f"BPR*{remit.handling_code}*{amt(remit.paid_amount + 100)}*")
    for bad, level in ((line_bad, "line"), (claim_bad, "claim"), (file_bad, "file")):
        result = await ingest(db, tenant, bad)
        assert result.status == "quarantined"
        levels = {r["level"] for r in result.reasons}
        assert level in levels, result.reasons
        if level == "line":
            r = next(r for r in result.reasons if r["level"] == "line")
            assert r["pcn"] == cp.patient_control_number
            assert r["line"] == 1
            assert r["field"] == "transactions[0].claims[0].lines[0]"
    assert (
        await scalar(
            db, "SELECT count(*) FROM billing.claim_payments WHERE tenant_id = :t", t=tenant
        )
        == 0
    )
    assert (
        await scalar(
            db,
            "SELECT count(*) FROM billing.claims WHERE tenant_id = :t AND status <> 'submitted'",
            t=tenant,
        )
        == 0
    )
    assert (
        await scalar(
            db,
            "SELECT count(*) FROM billing.remittance_files WHERE tenant_id = :t AND status = 'quarantined'",
            t=tenant,
        )
        == 3
    )
    garbage = await ingest(db, tenant, b"ISA*garbage~")
    assert garbage.status == "quarantined"
    assert garbage.reasons[0]["level"] == "syntax"


async def test_reversal_and_correction_post_without_double_counting(
    db: Database, tenant: str
) -> None:
    ids = await submitted_claims(db, tenant, 6)
    sim = simulator(deny_rate=0.0, patient_responsibility_rate=0.0)
    for f in remits(sim.adjudicate_file("B1.x12", await file_837(db, ids[:3]))):
        assert (await ingest(db, tenant, f.text)).status == "posted"
    sim.rules = type(sim.rules)(**{**sim.rules.__dict__} if hasattr(sim.rules, "__dict__") else {})
    from dataclasses import replace

    sim.rules = replace(sim.rules, reversal_rate=1.0)
    second = remits(sim.adjudicate_file("B2.x12", await file_837(db, ids[3:], isa13=2)))
    reversals = [
        cp for f in second for r in parse_835(f.text) for cp in r.claims if cp.status == "22"
    ]
    assert reversals, "the simulator reversed an earlier payment"
    corrections = {
        cp.patient_control_number: cp
        for f in second
        for r in parse_835(f.text)
        for cp in r.claims
        if cp.status != "22" and cp.patient_control_number == reversals[0].patient_control_number
    }
    for f in second:
        assert (await ingest(db, tenant, f.text)).status == "posted"
    pcn = reversals[0].patient_control_number
    net = await rows(
        db,
        "SELECT sum(cp.paid_cents) AS paid, count(*) AS n, "
        "count(*) FILTER (WHERE cp.reverses_payment_id IS NOT NULL) AS rev, "
        "sum(cp.contractual_cents) AS co FROM billing.claim_payments cp "
        "JOIN billing.claims c ON c.id = cp.claim_id "
        "WHERE c.tenant_id = :t AND c.patient_control_number = :p",
        t=tenant,
        p=pcn,
    )
    assert net[0].n == 3
    assert net[0].rev == 1
    assert net[0].paid == corrections[pcn].paid  # original + (-original) + correction
    status = await scalar(
        db,
        "SELECT status FROM billing.claims WHERE tenant_id = :t AND patient_control_number = :p",
        t=tenant,
        p=pcn,
    )
    assert status == "paid"
    # no work item for a corrected reversal
    assert (
        await scalar(
            db,
            "SELECT count(*) FROM billing.work_items WHERE tenant_id = :t AND source = '835_reversal'",
            t=tenant,
        )
        == 0
    )


async def test_unmatched_claims_become_work_items_and_plb_is_recorded(
    db: Database, tenant: str
) -> None:
    ids = await submitted_claims(db, tenant, 2)
    sim = simulator(
        deny_rate=0.0,
        capitation=(CapitationPayment("MEMBER123", date(2026, 11, 1), 2500),),
    )
    files = remits(sim.adjudicate_file("B.x12", await file_837(db, ids)))
    text = files[0].text
    pcn = parse_835(text)[0].claims[0].patient_control_number
    text = text.replace(f"CLP*{pcn}*", "CLP*NOSUCHCLAIM01*", 1)
    result = await ingest(db, tenant, text)
    assert result.status == "posted"
    assert result.unmatched == 1
    assert result.matched == 1
    item = await rows(
        db,
        "SELECT * FROM billing.work_items WHERE tenant_id = :t AND source = '835_unmatched'",
        t=tenant,
    )
    assert len(item) == 1
    assert item[0].claim_id is None
    assert item[0].reasons[0]["pcn"] == "NOSUCHCLAIM01"
    cap = remits(sim.pay_capitation())
    assert cap
    assert (await ingest(db, tenant, cap[0].text)).status == "posted"
    plb = await rows(
        db,
        "SELECT reason_code, amount_cents, reference FROM billing.provider_adjustments WHERE tenant_id = :t",
        t=tenant,
    )
    assert [(p.reason_code, p.amount_cents) for p in plb] == [("CT", -2500)]
    totals: dict[str, int] = defaultdict(int)
    for p in plb:
        totals[p.reason_code] += p.amount_cents
    assert totals["CT"] == -2500
