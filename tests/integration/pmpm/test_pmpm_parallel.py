"""PMPM runs spread over parallel connections (committed data, real connections): the same
lines and summaries as one connection; a transaction that already wrote stays on its own
connection (the others could not see its writes); a failing share leaves neither runs nor
lines behind; lines whose run never committed are swept."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select, text

from services.billing import pmpm, pmpm_reconcile
from services.billing.tables_pmpm import line_order, pmpm_line_chunks, pmpm_lines, pmpm_runs
from services.coverage.domain.contracts import ActivityRequirement, ProrationRule
from shared.uow import Database
from tests.integration.pmpm.helpers import COVERAGE, World, pmpm_terms

MONTHS = [date(2026, m, 1) for m in range(1, 6)]
TODAY = date(2026, 12, 15)


async def _world(db: Database, tenant: str) -> World:
    async with db.transaction() as (conn, trans):
        w = await World(conn, tenant).setup(
            pmpm_terms(
                proration=ProrationRule.DAILY,
                activity=ActivityRequirement(min_interventions=1),
            )
        )
        await w.span("A", date(2025, 6, 1))
        await w.span("B", date(2026, 2, 10), tier="high")
        await w.span("C", date(2025, 6, 1), date(2026, 3, 20))
        await w.span("D", date(2026, 1, 1), date(2026, 1, 31))
        await w.span("D", date(2026, 2, 1), tier="high")  # a second span: tier change
        for m in MONTHS:
            await w.session("A", m.replace(day=12), 20, 1)
        await w.session("B", date(2026, 3, 3), 30, 2)
        await w.pay_csv(
            "member_id,month,amount\n"
            + "".join(f"A,{m:%Y-%m},25.00\n" for m in MONTHS)
            + "B,2026-03,40.00\nB,2026-04,25.00\nC,2026-03,25.00\nC,2026-04,25.00\n"
            + "X,2026-02,25.00\nD,2026-01,25.00\nD,2026-02,40.00\nD,2026-02,40.00\n"
        )
        await trans.commit()
    w.conn = None  # type: ignore[assignment]
    return w


async def _runs(db: Database, w: World, parallel: int) -> list[pmpm.RunRef]:
    async with db.transaction() as (conn, trans):
        refs = await pmpm.create_runs(
            conn,
            tenant_id=w.tenant,
            contract_id=w.contract_id,
            periods=MONTHS,
            actor="test",
            coverage=COVERAGE,
            today=TODAY,
            parallel=parallel,
        )
        await trans.commit()
    return refs


async def _result(db: Database, run_id: str) -> tuple[Any, list[Any]]:
    async with db.transaction() as (conn, _t):
        run = (await conn.execute(select(pmpm_runs).where(pmpm_runs.c.id == run_id))).one()
        lines = (
            await conn.execute(
                select(pmpm_lines).where(pmpm_lines.c.run_id == run_id).order_by(*line_order())
            )
        ).all()
    return run, [tuple(v for k, v in r._mapping.items() if k != "run_id") for r in lines]


async def test_parallel_runs_equal_one_connection(committed_db: Database, tenant: str) -> None:
    w = await _world(committed_db, tenant)
    one = await _runs(committed_db, w, parallel=1)
    two = await _runs(committed_db, w, parallel=2)
    three = await _runs(committed_db, w, parallel=3)
    assert [r.period for r in one] == [r.period for r in two] == MONTHS
    for a, b, c in zip(one, two, three, strict=True):
        run_a, lines_a = await _result(committed_db, a.run_id)
        for other in (b, c):
            run_b, lines_b = await _result(committed_db, other.run_id)
            assert lines_b == lines_a
            assert run_b.summary == run_a.summary
            assert run_b.lines_hash == run_a.lines_hash is not None
    march, march_lines = await _result(committed_db, one[2].run_id)
    assert march.summary["lines"] == len(march_lines) == 4
    assert {ln[0]: ln[21] for ln in march_lines} == {
        "A": "paid_as_expected",
        "B": "paid_as_expected",  # high tier, 2 interventions
        "C": "activity_not_met",
        "D": "activity_not_met",
    }


async def test_a_transaction_that_wrote_stays_on_its_connection(
    committed_db: Database, tenant: str
) -> None:
    """Its own uncommitted payment counts: the months are not handed to other connections."""
    w = await _world(committed_db, tenant)
    async with committed_db.transaction() as (conn, _t):
        w.conn = conn
        await w.pay_csv("member_id,month,amount\nC,2026-02,25.00\n")
        refs = await pmpm.create_runs(
            conn,
            tenant_id=w.tenant,
            contract_id=w.contract_id,
            periods=MONTHS[:3],
            actor="test",
            coverage=COVERAGE,
            today=TODAY,
            parallel=2,
        )
        feb = (await w.lines(refs[1].run_id))["C"]
        assert feb.received_cents == 2500


async def test_a_failing_share_leaves_nothing(
    committed_db: Database, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first share commits its lines, then the second fails: the run is rolled back and
    the committed lines are deleted."""
    w = await _world(committed_db, tenant)
    real = pmpm_reconcile._write_share
    calls: list[int] = []
    first_done = asyncio.Event()

    async def flaky(*args: Any, **kw: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            await first_done.wait()
            raise RuntimeError("share failed")
        out = await real(*args, **kw)
        first_done.set()
        return out

    monkeypatch.setattr(pmpm_reconcile, "_write_share", flaky)
    with pytest.raises(RuntimeError, match="share failed"):
        await _runs(committed_db, w, parallel=2)
    async with committed_db.transaction() as (conn, _t):
        runs = (
            await conn.execute(
                select(pmpm_runs.c.id).where(pmpm_runs.c.contract_id == w.contract_id)
            )
        ).all()
        orphans = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM billing.pmpm_line_chunks c WHERE NOT EXISTS "
                    "(SELECT 1 FROM billing.pmpm_runs r WHERE r.id = c.run_id)"
                )
            )
        ).scalar_one()
    assert runs == []
    assert orphans == 0


_ORPHAN = (
    "INSERT INTO billing.pmpm_line_chunks (run_id, bucket, lines, days_in_month, hash_sum, "
    "owner_xid, member_id, patient_id, patient_ref, on_roster, tier, rate_cents, "
    "enrolled_days, expected_cents, recorded_late, minutes, interventions, activity_met, "
    "monthly_code, addon_code, addon_units, charge_cents, received_cents, payment_count, "
    "recouped_cents, paid_tier, classification, prior_classification, prior_expected_cents, "
    "prior_received_cents, change) SELECT CAST(:run AS uuid), 0, 0, 31, NULL, "
    "CAST(:owner AS bigint)" + ", '{}'" * 25
)


async def _chunk_runs(db: Database, run_ids: list[str]) -> set[str]:
    async with db.transaction() as (conn, _t):
        return {
            str(r.run_id)
            for r in await conn.execute(
                select(pmpm_line_chunks.c.run_id).where(pmpm_line_chunks.c.run_id.in_(run_ids))
            )
        }


async def test_orphan_lines_are_swept_once_their_transaction_has_ended(
    committed_db: Database, tenant: str
) -> None:
    """Chunks with no run are swept when the transaction that made them has ended (rolled
    back, or unknown); chunks of a run whose transaction is still in progress are kept, and so
    are the chunks of committed runs."""
    w = await _world(committed_db, tenant)
    (kept,) = [r for r in await _runs(committed_db, w, parallel=1) if r.period == MONTHS[0]]
    ended, running = str(uuid.uuid4()), str(uuid.uuid4())
    async with committed_db.transaction() as (other, other_trans):
        # A run being made in another transaction: its chunks are already committed (as a
        # parallel share's are) while its own transaction is still open.
        xid = (
            await other.execute(text("SELECT CAST(CAST(pg_current_xact_id() AS text) AS bigint)"))
        ).scalar_one()
        async with committed_db.transaction() as (conn, trans):
            await conn.execute(text(_ORPHAN), {"run": ended, "owner": None})
            await conn.execute(text(_ORPHAN), {"run": running, "owner": xid})
            await trans.commit()
        async with committed_db.transaction() as (conn, trans):
            assert await pmpm_reconcile.sweep_orphan_lines(conn) == 1
            await trans.commit()
        assert await _chunk_runs(committed_db, [ended, running, kept.run_id]) == {
            running,
            kept.run_id,
        }
        await other_trans.rollback()  # that run never commits
    async with committed_db.transaction() as (conn, trans):
        assert await pmpm_reconcile.sweep_orphan_lines(conn) == 1
        await trans.commit()
    assert await _chunk_runs(committed_db, [ended, running, kept.run_id]) == {kept.run_id}


async def test_inside_a_savepoint_the_months_stay_on_one_connection(
    committed_db: Database, tenant: str
) -> None:
    """PostgreSQL exports no snapshot from a subtransaction: a run made inside a savepoint
    (nothing written before it) falls back to one connection instead of failing."""
    w = await _world(committed_db, tenant)
    async with committed_db.transaction() as (conn, _trans), conn.begin_nested():
        refs = await pmpm.create_runs(
            conn,
            tenant_id=w.tenant,
            contract_id=w.contract_id,
            periods=MONTHS[:2],
            actor="test",
            coverage=COVERAGE,
            today=TODAY,
            parallel=2,
        )
        assert len(refs) == 2
