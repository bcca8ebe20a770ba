"""The demo flow at a small size, through the real API, worker and files, with the mission's
invariants: valid 837Ps, one claim (or a named reason) per session, a work item for every
denial and rejection, money that balances against the 835s, and verifiable audit chains."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import text

from services.cli import _create_key, run_api_and_worker
from services.demo.runner import DemoKeys, DemoSize, run_demo, summary_text
from shared import audit
from shared.clock import utc_today
from shared.config import Settings
from shared.embedded import free_port
from shared.uow import Database
from shared.x12.validate import validate_x12

pytestmark = pytest.mark.slow


async def _scalar(db: Database, sql: str, **params: Any) -> Any:
    async with db.transaction() as (conn, _t):
        return (await conn.execute(text(sql), params)).scalar_one()


async def _rows(db: Database, sql: str, **params: Any) -> list[Any]:
    async with db.transaction() as (conn, _t):
        return list(await conn.execute(text(sql), params))


async def test_demo_flow_keeps_every_invariant(
    settings: Settings, committed_db: Database, tmp_path: Path, tenant: str
) -> None:
    mailbox = tmp_path / "mailbox"
    port = free_port()
    s = msgspec.structs.replace(
        settings,
        port=port,
        var_dir=str(tmp_path),
        clearinghouse_dir=str(mailbox),
        log_level="WARNING",
    )
    keys = DemoKeys(
        **{
            r: await _create_key(s.database_url, tenant, r, "e2e")
            for r in ("admin", "manager", "biller", "intake", "auditor")
        }
    )
    report: dict[str, Any] = {}

    async def flow() -> bool:
        report.update(
            await run_demo(
                f"http://127.0.0.1:{port}",
                keys,
                DemoSize(patients=30, sessions=60, seed=7),
                utc_today(),
                mailbox=mailbox,
                redis_url=s.redis_url,
                queue_name=s.queue_name,
                tenant=tenant,
            )
        )
        return True

    await asyncio.wait_for(run_api_and_worker(s, on_ready=flow, handle_signals=False), 300)
    assert summary_text(report)  # the summary renders from the report

    # Every generated 837P passes the pyx12 validator.
    files = sorted((mailbox / "outbox").glob("*.x12"))
    assert files, "no 837P was generated"
    for f in files:
        assert validate_x12(f.read_text()) == [], f.name

    # Every session has exactly one claim; a claim that is not billable names its reasons.
    sessions = await _scalar(
        committed_db, "SELECT count(*) FROM billing.sessions WHERE tenant_id = :t", t=tenant
    )
    assert sessions == 60
    per_session = await _rows(
        committed_db,
        "SELECT s.id, count(c.id) AS n, max(c.status) AS status, max(c.status_reason) AS reason "
        "FROM billing.sessions s LEFT JOIN billing.claims c ON c.session_id = s.id AND c.claim_version = 1 "
        "WHERE s.tenant_id = :t GROUP BY s.id",
        t=tenant,
    )
    for row in per_session:
        assert row.n == 1, f"session {row.id} has {row.n} claims"
        if row.status in ("not_billable", "on_hold"):
            assert row.reason, f"session {row.id}: {row.status} without a reason"

    # Every denial and every rejection has a work item.
    orphans = await _rows(
        committed_db,
        "SELECT c.id, c.status FROM billing.claims c WHERE c.tenant_id = :t "
        "AND c.status IN ('denied', 'rejected', 'partially_paid') AND NOT EXISTS "
        "(SELECT 1 FROM billing.work_items w WHERE w.tenant_id = c.tenant_id AND w.claim_id = c.id)",
        t=tenant,
    )
    assert orphans == []
    assert report["claim_status"].get("paid", 0) > 0

    # Posted claim payments minus provider-level adjustments equal the 835s' BPR02 amounts.
    paid = await _scalar(
        committed_db,
        "SELECT coalesce(sum(p.paid_cents), 0) FROM billing.claim_payments p "
        "JOIN billing.remittance_files f ON f.id = p.remittance_file_id "
        "WHERE f.tenant_id = :t AND f.status = 'posted'",
        t=tenant,
    )
    plb = await _scalar(
        committed_db,
        "SELECT coalesce(sum(a.amount_cents), 0) FROM billing.provider_adjustments a "
        "JOIN billing.remittance_files f ON f.id = a.remittance_file_id "
        "WHERE f.tenant_id = :t AND f.status = 'posted'",
        t=tenant,
    )
    bpr = await _scalar(
        committed_db,
        "SELECT coalesce(sum(payment_cents), 0) FROM billing.remittance_files "
        "WHERE tenant_id = :t AND status = 'posted'",
        t=tenant,
    )
    assert report["remittance_status"].get("posted", 0) >= 1
    assert paid - plb == bpr

    # Every claim's audit chain verifies.
    claim_ids = [
        r.id
        for r in await _rows(
            committed_db, "SELECT id::text AS id FROM billing.claims WHERE tenant_id = :t", t=tenant
        )
    ]
    assert claim_ids
    async with committed_db.transaction() as (conn, _t):
        for cid in claim_ids:
            events = await audit.history(conn, tenant_id=tenant, entity_type="claim", entity_id=cid)
            check = audit.verify_chain(events)
            assert events, cid
            assert check.valid, (cid, check.problem)

    # PMPM reconciliation ran for every month of the period.
    assert len(report["pmpm"]) >= 3
