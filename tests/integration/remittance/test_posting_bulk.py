"""The bulk posting path (issue 7 performance work): chunked COPY gives the same ledger as
one chunk, memoised decisions equal fresh `decide_remit` calls, and the audit events hashed
straight from their JSON-native content verify once read back from PostgreSQL."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import text

from services.billing import remittance_items, remittance_post
from services.billing.domain.adjustments import decide_remit
from services.billing.remittance_codes import db_code_tables
from services.billing.remittance_post import _Decider, _remit_claim
from services.billing.work_queue import open_work_item
from shared import audit
from shared.uow import Database
from shared.x12.x835 import parse_835
from tests.integration.remittance.helpers import (
    file_837,
    remits,
    rows,
    simulator,
    submitted_claims,
)
from tests.integration.remittance.test_posting import ingest

TODAY = date(2026, 11, 26)


async def _chains_verify(db: Database, tenant: str, entity_type: str) -> int:
    async with db.transaction() as (conn, _t):
        ids = [
            r[0]
            for r in await conn.execute(
                text(
                    "SELECT DISTINCT entity_id FROM audit.events "
                    "WHERE tenant_id = :t AND entity_type = :e"
                ),
                {"t": tenant, "e": entity_type},
            )
        ]
        for entity_id in ids:
            events = await audit.history(
                conn, tenant_id=tenant, entity_type=entity_type, entity_id=entity_id
            )
            check = audit.verify_chain(events)
            assert check.valid, (entity_type, entity_id, check)
    return len(ids)


async def _ledger(db: Database, tenant: str) -> list[Any]:
    return await rows(
        db,
        "SELECT cp.seq, cp.patient_control_number, cp.status_code, cp.paid_cents, "
        "cp.allowed_cents, cp.contractual_cents, cp.denied_cents, cp.outcome, cp.remarks, "
        "(SELECT count(*) FROM billing.line_payments l WHERE l.claim_payment_id = cp.id) AS nl, "
        "(SELECT coalesce(sum(amount_cents), 0) FROM billing.remit_adjustments a "
        " WHERE a.claim_payment_id = cp.id) AS adj "
        "FROM billing.claim_payments cp WHERE cp.tenant_id = :t ORDER BY cp.seq",
        t=tenant,
    )


@pytest.mark.parametrize("chunk", [3, 2000])
async def test_chunked_posting_is_complete_and_its_audit_chains_verify(
    db: Database, tenant: str, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    for module in (remittance_post, remittance_items):  # every module that looks CHUNK up
        monkeypatch.setattr(module, "CHUNK", chunk)
    ids = await submitted_claims(db, tenant, 20)
    sim = simulator(seed=5, deny_rate=0.4, patient_responsibility_rate=0.3)
    expected: dict[str, Any] = {}
    for f in remits(sim.adjudicate_file("B1.x12", await file_837(db, ids))):
        for remit in parse_835(f.text):
            for cp in remit.claims:
                expected[cp.patient_control_number] = cp
        result = await ingest(db, tenant, f.text)
        assert result.status == "posted", result.reasons
        assert result.matched == len(expected)
    ledger = await _ledger(db, tenant)
    assert len(ledger) == len(expected) == 20
    assert [r.seq for r in ledger] == list(range(20))
    for r in ledger:
        cp = expected[r.patient_control_number]
        assert r.paid_cents == cp.paid
        assert r.nl == len(cp.lines)
        assert r.adj == sum(a.amount for a in cp.adjustments) + sum(
            a.amount for ln in cp.lines for a in ln.adjustments
        )
        assert isinstance(r.remarks, list)
    # every claim moved with its event; every chain (claims, work items, file) verifies
    assert await _chains_verify(db, tenant, "claim") == 20
    n_items = await _chains_verify(db, tenant, "work_item")
    opened = await rows(
        db,
        "SELECT count(*) AS n FROM audit.events WHERE tenant_id = :t "
        "AND entity_type = 'work_item' AND action = 'work_item.opened'",
        t=tenant,
    )
    assert opened[0].n == n_items > 0
    assert await _chains_verify(db, tenant, "remittance_file") == 1


async def test_paid_claims_resolve_their_items_with_a_verified_event(
    db: Database, tenant: str
) -> None:
    ids = await submitted_claims(db, tenant, 4)
    async with db.transaction() as (conn, trans):
        for cid in ids:  # an item already open on each claim (e.g. a payer query)
            await open_work_item(
                conn,
                tenant_id=tenant,
                category="other",
                source="835",
                summary="pending",
                actor="test",
                claim_id=cid,
                reasons=[{"code": "X"}],
            )
        await trans.commit()
    paying = simulator(seed=2, deny_rate=0.0, patient_responsibility_rate=0.0)
    for f in remits(paying.adjudicate_file("B1.x12", await file_837(db, ids))):
        assert (await ingest(db, tenant, f.text)).status == "posted"
    resolved = await rows(
        db,
        "SELECT count(*) AS n FROM audit.events WHERE tenant_id = :t "
        "AND action = 'work_item.resolved'",
        t=tenant,
    )
    assert resolved[0].n == 4
    assert await _chains_verify(db, tenant, "work_item") == 4
    await _chains_verify(db, tenant, "claim")


async def test_memoised_decisions_equal_fresh_ones(db: Database, tenant: str) -> None:
    ids = await submitted_claims(db, tenant, 30)
    sim = simulator(seed=9, deny_rate=0.5, patient_responsibility_rate=0.5)
    text_ = remits(sim.adjudicate_file("B1.x12", await file_837(db, ids)))[0].text
    async with db.transaction() as (conn, _t):
        carcs, rarcs = await db_code_tables(conn)
    decide = _Decider(carcs, rarcs)
    claims = [cp for r in parse_835(text_) for cp in r.claims]
    for on in (TODAY, date(2020, 1, 1)):
        for cp in claims + claims:  # second pass: every call is a memo hit
            got, adjustments = decide(cp, on)
            want = decide_remit(_remit_claim(cp), on=on, carc_table=carcs, rarc_table=rarcs)
            assert got == want
            assert [a[-1] for a in adjustments] == [c.kind.value for c in want.adjustments]
    assert decide.hits >= len(claims) * 2
