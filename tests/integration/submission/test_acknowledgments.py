"""End to end with the payer simulator: 837P out through the mailbox, 999/277CA back in,
claims accepted or rejected with reasons and work items; 999 rejections with IK3/IK4;
idempotent re-ingestion; unusable files quarantined with nothing applied; the upload API."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from devtools.payer_simulator import SimulatorRules, run_mailbox
from services.app import create_app
from services.billing import submission_read
from services.billing.acknowledgments import ingest_file, ingest_inbound
from services.billing.submission import Transports
from shared.config import Settings
from shared.uow import SharedConnectionDatabase
from shared.web import RUNTIME_KEY
from shared.x12.ack import ElementError, SegmentError, build_999, parse_277ca
from shared.x12.envelope import ControlNumbers
from tests.asgi import asgi_client
from tests.integration.conftest import make_keys
from tests.integration.submission.helpers import (
    add_ready_claims,
    config,
    fetch,
    mount,
    run,
    statuses,
)

NOW = datetime(2026, 11, 21, 9, 0)


async def _sent_batch(db: SharedConnectionDatabase, tenant: str, tmp_path: Path, n: int) -> Any:
    ids = await add_ready_claims(db, tenant, n)
    result = await run(db, config(tmp_path), tenant)
    assert [b.status for b in result.batches] == ["sent"]
    (batch,) = await fetch(db, "SELECT * FROM billing.batches WHERE tenant_id = :t", t=tenant)
    return ids, batch


async def test_payer_simulator_round_trip(
    db: SharedConnectionDatabase, tenant: str, tmp_path: Path
) -> None:
    ids, batch = await _sent_batch(db, tenant, tmp_path, 20)
    mailbox = tmp_path / "mailbox"
    rules = SimulatorRules(seed=7, reject_999_rate=0.0, reject_277_rate=0.5, a1_rate=0.2)
    sim = run_mailbox(mailbox, rules)
    assert sim.files_read == 1
    inbox = {p.name: p.read_bytes() for p in (mailbox / "inbox").iterdir()}
    (ca_name,) = [n for n in inbox if "277" in n]
    (ack277,) = parse_277ca(inbox[ca_name])
    expected = {}
    for c in ack277.claims:
        cat = c.codes[0].category
        expected[c.patient_control_number] = (
            "rejected" if c.is_rejection else "accepted" if cat == "A2" else "submitted"
        )
    assert "rejected" in expected.values()
    assert "accepted" in expected.values()

    cfg = config(tmp_path)
    summary = await ingest_inbound(db, Transports(cfg), actor="worker")
    assert (summary.applied, summary.quarantined, summary.skipped) == (2, 0, 1)  # 835 left
    left = sorted(p.name for p in (mailbox / "inbox").iterdir())
    assert len(left) == 1
    assert "835" in left[0]

    rows = await fetch(
        db,
        "SELECT id::text AS id, patient_control_number AS pcn, status, status_reason "
        "FROM billing.claims WHERE id::text = ANY(:ids)",
        ids=ids,
    )
    assert {r.pcn: r.status for r in rows} == expected
    rejected = [r for r in rows if r.status == "rejected"]
    assert all(r.status_reason.startswith("277CA rejected the claim: A7") for r in rejected)

    acks = await fetch(
        db,
        "SELECT kind, batch_id::text AS batch_id, content FROM billing.acknowledgments "
        "WHERE tenant_id = :t ORDER BY kind",
        t=tenant,
    )
    assert [a.kind for a in acks] == ["277CA", "999"]
    assert {a.batch_id for a in acks} == {str(batch.id)}
    assert bytes(acks[0].content) == inbox[ca_name]  # stored verbatim
    outcomes = await fetch(
        db,
        "SELECT a.kind, ac.outcome, ac.applied_status, ac.reasons, ac.received_at "
        "FROM billing.ack_claims ac JOIN billing.acknowledgments a ON a.id = ac.ack_id "
        "WHERE ac.tenant_id = :t",
        t=tenant,
    )
    by_kind: dict[str, list[Any]] = {}
    for o in outcomes:
        by_kind.setdefault(o.kind, []).append(o)
    assert len(by_kind["999"]) == 20
    assert {o.outcome for o in by_kind["999"]} == {"received"}
    proofs = [o for o in by_kind["277CA"] if o.outcome in ("accepted", "received")]
    assert proofs
    assert all(o.received_at is not None for o in proofs)
    rej = [o for o in by_kind["277CA"] if o.outcome == "rejected"]
    assert rej
    assert all(o.reasons and o.reasons[0]["message"] for o in rej)
    items = await fetch(
        db,
        "SELECT source, claim_id::text AS claim_id, timely_filing_deadline FROM "
        "billing.work_items WHERE tenant_id = :t",
        t=tenant,
    )
    assert len(items) == len(rejected)
    assert {i.source for i in items} == {"277ca"}
    assert all(str(i.timely_filing_deadline) == "2027-02-13" for i in items)

    # The same 277CA again (as a re-delivery): nothing changes.
    before = await statuses(db, ids)
    again = await ingest_file(
        db, file_name="again.x12", content=inbox[ca_name], source="directory", actor="worker"
    )
    assert again.status == "duplicate"
    assert await statuses(db, ids) == before
    count = await fetch(db, "SELECT count(*) AS n FROM billing.work_items WHERE tenant_id = :t",
                        t=tenant)  # fmt: skip
    assert count[0].n == len(rejected)

    read = await submission_read.get_batch(db.conn, tenant, str(batch.id))
    assert sorted(a.kind for a in read.acknowledgments) == ["277CA", "999"]
    assert sum(len(a.claims) for a in read.acknowledgments) == 40


async def test_999_set_rejection_rejects_its_claims_with_segment_and_element_reasons(
    db: SharedConnectionDatabase, tenant: str, tmp_path: Path
) -> None:
    ids, batch = await _sent_batch(db, tenant, tmp_path, 2)
    pcn = (await fetch(db, "SELECT patient_control_number AS p FROM billing.claims "
                       "WHERE id = :c", c=ids[0]))[0].p  # fmt: skip
    error = SegmentError(
        "CLM", 20, "8", "2300",
        (ElementError(2, "7", element_ref="782", bad_value="150.00"),),
        business_unit=("CLM01", pcn),
    )  # fmt: skip
    text = build_999(bytes(batch.content), ControlNumbers(5, 5, 1), NOW, rejected={"0001": [error]})
    result = await ingest_file(db, file_name="r.999", content=text.encode(), source="t", actor="w")
    assert (result.status, result.rejected) == ("applied", 2)
    assert set((await statuses(db, ids)).values()) == {"rejected"}
    (row,) = await fetch(
        db,
        "SELECT reasons, codes FROM billing.ack_claims WHERE claim_id = :c",
        c=ids[0],
    )
    (reason,) = row.reasons
    assert reason["segment"] == "CLM"
    assert reason["loop"] == "2300"
    assert reason["elements"][0]["message"] == "invalid code value"
    assert "IK5:R" in row.codes
    history = await fetch(
        db,
        "SELECT action FROM audit.events WHERE entity_type = 'claim' AND entity_id = :c "
        "ORDER BY seq",
        c=ids[0],
    )
    assert [h.action for h in history][:2] == ["claim.submitted", "claim.ack_rejected"]


async def test_unusable_files_are_quarantined_and_apply_nothing(
    db: SharedConnectionDatabase, tenant: str, tmp_path: Path
) -> None:
    ids, batch = await _sent_batch(db, tenant, tmp_path, 1)
    inbox = tmp_path / "mailbox" / "inbox"
    inbox.mkdir(parents=True)
    (inbox / "garbage.x12").write_bytes(b"hello, not x12")
    foreign = build_999(bytes(batch.content), ControlNumbers(9, 9, 1), NOW).replace(
        f"AK1*HC*{batch.gs06}*", "AK1*HC*987654321*"
    )
    (inbox / "foreign.999").write_text(foreign)
    summary = await ingest_inbound(db, Transports(config(tmp_path)), actor="worker")
    assert summary.quarantined == 2
    assert summary.applied == 0
    quarantine = tmp_path / "mailbox" / "quarantine"
    reasons = (quarantine / "foreign.999.reason.txt").read_text()
    assert "no batch of ours has GS06 987654321" in reasons
    assert (quarantine / "garbage.x12.reason.txt").exists()
    assert await statuses(db, ids) == {ids[0]: "submitted"}
    none = await fetch(db, "SELECT count(*) AS n FROM billing.acknowledgments WHERE tenant_id = :t",
                       t=tenant)  # fmt: skip
    assert none[0].n == 0


@pytest.fixture
async def api(settings: Settings, db: SharedConnectionDatabase, tmp_path: Path) -> Any:
    app = mount(create_app(settings, database=db, configure_logs=False))
    async with asgi_client(app) as c:
        app.state[RUNTIME_KEY].extras["submission_config"] = config(tmp_path)
        yield c


async def test_upload_endpoint_is_tenant_scoped_and_idempotent(
    api: Any, db: SharedConnectionDatabase, tenant: str, tmp_path: Path
) -> None:
    keys = await make_keys(db, tenant, tenant + "-other")
    ids, batch = await _sent_batch(db, tenant, tmp_path, 2)
    ack = build_999(bytes(batch.content), ControlNumbers(7, 7, 1), NOW).encode()
    other = await api.post(
        "/v1/acknowledgments", content=ack, headers=keys.headers("manager", other=True)
    )
    assert other.status_code == 404
    first = await api.post("/v1/acknowledgments?name=a.999", content=ack,
                           headers=keys.headers("manager"))  # fmt: skip
    assert first.status_code == 200, first.text
    assert (first.json()["status"], first.json()["received"]) == ("applied", 2)
    second = await api.post("/v1/acknowledgments", content=ack, headers=keys.headers("admin"))
    assert second.json()["status"] == "duplicate"
    bad = await api.post("/v1/acknowledgments", content=b"ISA*bad", headers=keys.headers("admin"))
    assert bad.status_code == 422
    assert (await api.post("/v1/acknowledgments", content=ack,
                           headers=keys.headers("biller"))).status_code == 403  # fmt: skip
    assert set((await statuses(db, ids)).values()) == {"submitted"}
