"""KPIs on a hand-worked example (domain.md §9), read through GET /v1/reports/kpis.

Period 2026-11-01..2026-11-30 (30 days). Claims (series):

    A $100 submitted 11-02: paid 80.00, CO-45 20.00                       clean, first pass
    B $100 submitted 11-05: denied CO-50 100.00; appeal filed 11-20, won  clean
    C $200 submitted 11-10: paid 100.00, CO-45 50.00, CO-97 50.00 denied;
         the 50.00 written off (no authorization) 11-25                    clean
    D $100 submitted 08-01: nothing posted (old A/R, not in the cohort)
    E $50  submitted 11-15: held first and touched by a biller, no answer yet

    cohort A B C E: 4 claims, charges 450.00
    clean claim rate      3/4                      = 75.00%
    first-pass yield      A / (A B C adjudicated)  = 1/3 = 33.33%
    denial rate (count)   B C / 4                  = 50.00%
    denial rate ($)       (100 + 50) / 450         = 33.33%
    A/R                   A 0 + B 100 + C 0 + D 100 + E 50 = 250.00
    A/R > 90 days         D 100 / 250              = 40.00%
    days in A/R           250 / (450 / 30)         = 16.6667
    net collection        (80 + 100) / (450 - 20 - 50) = 180/380 = 47.37%
                          (the no-authorization write-off stays in the denominator)
    overturn rate         1 won / 1 filed          = 100.00%
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import insert, text

from services.billing.tables_remittance import appeals, claim_payments, remittance_files, write_offs
from shared.audit import GENESIS, build_event
from shared.tables import audit_events
from shared.uow import Database
from tests.integration.conftest import Keys
from tests.integration.submission.helpers import add_ready_claims


def _at(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, 12, tzinfo=UTC)


async def test_kpis_match_the_hand_worked_example(
    client: Any, keys: Keys, db: Database, tenant: str
) -> None:
    ids = await add_ready_claims(db, tenant, 5, status="submitted")
    a, b, c, d, e = ids
    spec = {
        a: (10000, date(2026, 11, 2), []),
        b: (10000, date(2026, 11, 5), []),
        c: (20000, date(2026, 11, 10), []),
        d: (10000, date(2026, 8, 1), []),
        e: (5000, date(2026, 11, 15), ["on_hold"]),
    }
    file_id = str(uuid.uuid4())
    async with db.transaction() as (conn, trans):
        for cid, (charge, sent, before) in spec.items():
            await conn.execute(
                text("UPDATE billing.claims SET total_charge_cents = :c WHERE id = :i"),
                {"c": charge, "i": cid},
            )
            chain = [("claim.created", "worker", "ready" if not before else "on_hold")]
            if before:
                chain.append(("claim.released", "apikey:someone", "ready"))
            chain.append(("claim.submit", "worker", "submitted"))
            prev = GENESIS
            for seq, (action, actor, status) in enumerate(chain, start=1):
                row = build_event(
                    tenant_id=tenant,
                    entity_type="claim",
                    entity_id=cid,
                    seq=seq,
                    prev_hash=prev,
                    action=action,
                    actor=actor,
                    after={"status": status},
                    occurred_at=_at(sent),
                )
                prev = row["hash"]
                await conn.execute(insert(audit_events), row)
        await conn.execute(
            insert(remittance_files),
            {
                "id": file_id,
                "tenant_id": tenant,
                "trace_number": "T1",
                "payer_code": "P",
                "content_hash": "x" * 64,
                "content": "",
                "source": "upload",
                "status": "posted",
                "received_by": "test",
            },
        )
        pays = [
            (a, 10000, 8000, 2000, 0, "paid", date(2026, 11, 12)),
            (b, 10000, 0, 0, 10000, "denied", date(2026, 11, 14)),
            (c, 20000, 10000, 5000, 5000, "partially_paid", date(2026, 11, 20)),
        ]
        for seq, (cid, charge, paid, co, denied, outcome, on) in enumerate(pays):
            await conn.execute(
                insert(claim_payments),
                {
                    "id": str(uuid.uuid4()),
                    "tenant_id": tenant,
                    "remittance_file_id": file_id,
                    "seq": seq,
                    "claim_id": cid,
                    "patient_control_number": f"X{seq}",
                    "status_code": "1",
                    "charge_cents": charge,
                    "paid_cents": paid,
                    "patient_resp_cents": 0,
                    "allowed_cents": paid,
                    "contractual_cents": co,
                    "denied_cents": denied,
                    "outcome": outcome,
                    "remit_date": on,
                },
            )
        await conn.execute(
            insert(appeals),
            {
                "id": str(uuid.uuid4()),
                "tenant_id": tenant,
                "claim_id": b,
                "amount_cents": 10000,
                "letter": "...",
                "status": "won",
                "filed_on": date(2026, 11, 20),
                "created_by": "test",
            },
        )
        await conn.execute(
            insert(write_offs),
            {
                "id": str(uuid.uuid4()),
                "tenant_id": tenant,
                "claim_id": c,
                "reason": "no_authorization",
                "amount_cents": 5000,
                "written_off_on": date(2026, 11, 25),
                "created_by": "test",
            },
        )
        await trans.commit()
    resp = await client.get(
        "/v1/reports/kpis?from=2026-11-01&to=2026-11-30", headers=keys.headers("manager")
    )
    assert resp.status_code == 200, resp.text
    k = resp.json()
    assert k["claims_submitted"] == 4
    assert k["charges"] == "450.00"
    assert k["ar"] == "250.00"
    assert k["ar_over_90"] == "100.00"
    assert k["clean_claim_rate"]["percent"] == "75.00%"
    assert k["first_pass_yield"]["percent"] == "33.33%"
    assert k["denial_rate_count"]["percent"] == "50.00%"
    assert k["denial_rate_dollars"]["percent"] == "33.33%"
    assert k["ar_over_90_share"]["percent"] == "40.00%"
    assert k["days_in_ar"]["value"] == "16.6667"
    assert k["net_collection_rate"]["percent"] == "47.37%"
    assert (k["net_collection_rate"]["numerator"], k["net_collection_rate"]["denominator"]) == (
        "18000",
        "38000",
    )
    assert k["overturn_rate"]["percent"] == "100.00%"
    assert k["write_offs"]["no_authorization"] == "50.00"
    assert k["write_offs"]["contractual"] == "0.00"
    assert k["contractual_adjustments"] == "70.00"
    # a biller may not read reports; another tenant sees an empty report
    assert (
        await client.get(
            "/v1/reports/kpis?from=2026-11-01&to=2026-11-30", headers=keys.headers("biller")
        )
    ).status_code == 403
    other = await client.get(
        "/v1/reports/kpis?from=2026-11-01&to=2026-11-30",
        headers=keys.headers("manager", other=True),
    )
    assert other.json()["claims_submitted"] == 0
