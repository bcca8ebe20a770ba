"""Ready claims -> valid 837P batches through the directory mailbox, exactly once; control
numbers; per payer batching; unsendable claims held; retries and the work item; the API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.app import create_app
from services.billing.submission import confirm_batch, record_batches, retry_batch
from shared.config import Settings
from shared.uow import SharedConnectionDatabase, UnitOfWork
from shared.web import RUNTIME_KEY
from shared.x12.tokenizer import parse_interchanges, tokenize
from shared.x12.validate import validate_x12
from tests.asgi import asgi_client
from tests.integration.conftest import make_keys
from tests.integration.submission.helpers import (
    PAYER,
    FlakyTransport,
    add_ready_claims,
    config,
    fetch,
    mount,
    run,
    statuses,
)


async def test_ready_claims_leave_as_one_valid_837p_and_become_submitted(
    db: SharedConnectionDatabase, tenant: str, tmp_path: Path
) -> None:
    ids = await add_ready_claims(db, tenant, 3)
    cfg = config(tmp_path)
    result = await run(db, cfg, tenant)
    assert [b.status for b in result.batches] == ["sent"]
    assert result.batches[0].claim_count == 3
    files = sorted((tmp_path / "mailbox" / "outbox").iterdir())
    assert [f.name for f in files] == [result.batches[0].file_name]
    text = files[0].read_text()
    assert validate_x12(text) == []
    assert text.count("CLM*") == 3
    assert set((await statuses(db, ids)).values()) == {"submitted"}
    (batch,) = await fetch(db, "SELECT * FROM billing.batches WHERE tenant_id = :t", t=tenant)
    assert batch.status == "sent"
    assert batch.sent_at is not None
    assert bytes(batch.content) == files[0].read_bytes()
    assert batch.attempts == 1
    links = await fetch(
        db, "SELECT active, st02 FROM billing.batch_claims WHERE batch_id = :b", b=batch.id
    )
    assert [(r.active, r.st02) for r in links] == [(False, f"{batch.st02_first:04d}")] * 3
    events = await fetch(
        db,
        "SELECT action, before, after, reason FROM audit.events WHERE entity_type = 'claim' "
        "AND entity_id = :c ORDER BY seq",
        c=ids[0],
    )
    assert [e.action for e in events] == ["claim.submitted"]
    assert events[0].before["status"] == "ready"
    assert events[0].after["status"] == "submitted"
    assert batch.file_name in events[0].reason
    versions = await fetch(db, "SELECT version FROM billing.claims WHERE id = :c", c=ids[0])
    assert versions[0].version == 2
    again = await run(db, cfg, tenant)
    assert again.batches == []
    assert again.recovered == []
    assert len(list((tmp_path / "mailbox" / "outbox").iterdir())) == 1


async def test_batches_per_payer_and_control_numbers_increase_per_partner(
    db: SharedConnectionDatabase, tenant: str, tmp_path: Path
) -> None:
    other = {**PAYER, "name": "Other Plan", "x12_payer_id": "OTH01", "trading_partner_id": "TP9"}
    await add_ready_claims(db, tenant, 2)
    await add_ready_claims(db, tenant, 2, payer=other)
    cfg = config(tmp_path)
    first = await run(db, cfg, tenant)
    assert len(first.batches) == 2
    await add_ready_claims(db, tenant, 1)
    await add_ready_claims(db, tenant, 1)  # a second run for the same partner
    await run(db, cfg, tenant)
    await add_ready_claims(db, tenant, 1)
    await run(db, cfg, tenant)
    rows = await fetch(
        db,
        "SELECT trading_partner_id, isa13, gs06, st02_first, content FROM billing.batches "
        "WHERE tenant_id = :t ORDER BY created_at, isa13",
        t=tenant,
    )
    by_partner: dict[str, list[Any]] = {}
    for r in rows:
        by_partner.setdefault(r.trading_partner_id, []).append(r)
        text = bytes(r.content).decode()
        assert validate_x12(text) == []
        (ic,) = parse_interchanges(tokenize(text)[1])
        assert int(ic.control_number) == r.isa13
        assert ic.receiver[1] == r.trading_partner_id
        assert int(ic.groups[0].control_number) == r.gs06
    assert len(by_partner["TP0001"]) == 3
    assert len(by_partner["TP9"]) == 1
    tp = by_partner["TP0001"]
    for key in ("isa13", "gs06", "st02_first"):
        values = [getattr(r, key) for r in tp]
        assert values == sorted(values), key
        assert len(set(values)) == len(values), key


async def test_a_claim_that_cannot_make_a_valid_837p_is_held_with_the_reason(
    db: SharedConnectionDatabase, tenant: str, tmp_path: Path
) -> None:
    good = await add_ready_claims(db, tenant, 2)
    bad = await add_ready_claims(db, tenant, 1, subscriber=None)
    worse = await add_ready_claims(db, tenant, 1, diagnoses=["E11.9X9999"])
    result = await run(db, config(tmp_path), tenant)
    assert sorted(result.held_claims) == sorted(bad + worse)
    assert [b.claim_count for b in result.batches] == [2]
    st = await statuses(db, good + bad + worse)
    assert [st[i] for i in good] == ["submitted", "submitted"]
    assert st[bad[0]] == st[worse[0]] == "on_hold"
    (row,) = await fetch(
        db, "SELECT hold_reasons, status_reason FROM billing.claims WHERE id = :c", c=bad[0]
    )
    assert row.hold_reasons[-1]["code"] == "X12_INVALID"
    assert "subscriber" in row.status_reason


async def test_transient_failures_are_retried_then_the_batch_is_sent(
    db: SharedConnectionDatabase, tenant: str, tmp_path: Path
) -> None:
    ids = await add_ready_claims(db, tenant, 2)
    flaky = FlakyTransport(failures=2)
    result = await run(db, config(tmp_path), tenant, transports={"directory": flaky})
    assert result.batches[0].status == "sent"
    assert flaky.calls == 3
    assert len(flaky.sent) == 1
    assert set((await statuses(db, ids)).values()) == {"submitted"}
    (b,) = await fetch(db, "SELECT attempts FROM billing.batches WHERE tenant_id = :t", t=tenant)
    assert b.attempts == 3


async def test_after_n_tries_the_batch_is_a_work_item_and_keeps_its_claims(
    db: SharedConnectionDatabase, tenant: str, tmp_path: Path
) -> None:
    ids = await add_ready_claims(db, tenant, 2)
    cfg = config(tmp_path)
    down = FlakyTransport(failures=100)
    result = await run(db, cfg, tenant, transports={"directory": down})
    (failed,) = result.batches
    assert failed.status == "failed"
    assert down.calls == 3
    assert "connection refused" in (failed.error or "")
    assert set((await statuses(db, ids)).values()) == {"ready"}
    (item,) = await fetch(
        db,
        "SELECT category, source, batch_id::text AS batch_id, amount_cents, status "
        "FROM billing.work_items WHERE tenant_id = :t",
        t=tenant,
    )
    assert (item.category, item.source, item.batch_id) == (
        "submission_failure",
        "submission",
        failed.batch_id,
    )
    assert item.amount_cents == 30000
    # The failed batch holds its claims: a later run makes no second batch for them.
    again = await run(db, cfg, tenant, transports={"directory": down})
    assert again.batches == []
    assert again.recovered == []
    # A manager retries once the line is back: same file name and bytes.
    async with UnitOfWork(db, None) as uow:
        assert await retry_batch(uow.conn, tenant, failed.batch_id, actor="m", reason="fixed")
        await uow.commit()
    up = FlakyTransport()
    final = await run(db, cfg, tenant, transports={"directory": up})
    assert [r.status for r in final.recovered] == ["sent"]
    assert up.sent[0].name == failed.file_name
    assert set((await statuses(db, ids)).values()) == {"submitted"}


async def test_confirm_is_idempotent(
    db: SharedConnectionDatabase, tenant: str, tmp_path: Path
) -> None:
    await add_ready_claims(db, tenant, 1)
    async with UnitOfWork(db, None) as uow:
        recorded, _ = await record_batches(uow.conn, config(tmp_path), actor="t", tenant_id=tenant)
        assert await confirm_batch(uow.conn, recorded[0].batch_id, actor="t", receipt=None)
        assert not await confirm_batch(uow.conn, recorded[0].batch_id, actor="t", receipt=None)
        await uow.commit()


@pytest.fixture
async def api(settings: Settings, db: SharedConnectionDatabase, tmp_path: Path) -> Any:
    app = mount(create_app(settings, database=db, configure_logs=False))
    async with asgi_client(app) as c:
        app.state[RUNTIME_KEY].extras["submission_config"] = config(tmp_path)
        yield c


async def test_api_runs_submission_and_lists_batches_per_tenant(
    api: Any, db: SharedConnectionDatabase, tenant: str
) -> None:
    keys = await make_keys(db, tenant, tenant + "-other")
    ids = await add_ready_claims(db, tenant, 3)
    denied = await api.post("/v1/submissions/run", headers=keys.headers("biller"))
    assert denied.status_code == 403
    resp = await api.post("/v1/submissions/run", headers=keys.headers("manager"))
    assert resp.status_code == 200, resp.text
    (sent,) = resp.json()["batches"]
    assert sent["status"] == "sent"
    assert sent["claim_count"] == 3
    await add_ready_claims(db, tenant, 1)
    await api.post("/v1/submissions/run", headers=keys.headers("manager"))

    page = await api.get("/v1/batches?limit=1", headers=keys.headers("biller"))
    assert page.status_code == 200, page.text
    body = page.json()
    assert len(body["items"]) == 1
    assert body["next_cursor"]
    rest = await api.get(
        f"/v1/batches?limit=5&after={body['next_cursor']}", headers=keys.headers("auditor")
    )
    (older,) = rest.json()["items"]
    assert older["batch"]["id"] == sent["batch_id"]
    assert {c["claim_id"] for c in older["claims"]} == set(ids)
    assert {c["claim_status"] for c in older["claims"]} == {"submitted"}
    one = await api.get(f"/v1/batches/{sent['batch_id']}", headers=keys.headers("biller"))
    assert one.status_code == 200
    assert one.json()["batch"]["isa13"].isdigit()
    assert one.json()["acknowledgments"] == []
    raw = await api.get(f"/v1/batches/{sent['batch_id']}/file", headers=keys.headers("biller"))
    assert raw.status_code == 200
    assert raw.content.startswith(b"ISA*")
    other = await api.get(
        f"/v1/batches/{sent['batch_id']}", headers=keys.headers("biller", other=True)
    )
    assert other.status_code == 404
    listed = await api.get("/v1/batches", headers=keys.headers("biller", other=True))
    assert listed.json()["items"] == []
    bad_cursor = await api.get("/v1/batches?after=nope", headers=keys.headers("biller"))
    assert bad_cursor.status_code == 422
