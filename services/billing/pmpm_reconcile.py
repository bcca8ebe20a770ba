"""PMPM reconciliation: writing a batch of runs' lines and summaries (see `pmpm.create_runs`).

One set-based statement (`pmpm_sql.RECONCILE_SQL`, with coverage's member-months SELECT
embedded) computes, classifies, writes and sums every line of the runs in a batch. A batch of
several months can be dealt out to parallel connections that share the run's snapshot
(`reconcile`); their line chunks carry the run's transaction id, and chunks whose run never
committed are removed by `sweep_orphan_lines`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.domain.pmpm import PmpmTermsView, add_months, month_end
from services.billing.pmpm_sql import SET_SUMMARIES_SQL, SWEEP_ORPHAN_LINES_SQL, reconcile_sql
from services.billing.tables_pmpm import LINE_BUCKETS
from shared.db import asyncpg_dsn
from shared.logging import get_logger

if TYPE_CHECKING:
    from services.billing.pmpm import PmpmCoveragePort, RunRef

log = get_logger("billing.pmpm")

# PostgreSQL work_mem for a reconciliation transaction (per sort/hash node, server side).
WORK_MEM = "256MB"


def _code_arrays(terms: PmpmTermsView, periods: Sequence[date]) -> dict[str, list[Any]]:
    """Monthly codes with their fees in force on each month's last day, as SQL arrays.
    Thresholds of 0 minutes count as 1 (the coding engine codes nothing below 1 minute)."""
    cols: dict[str, list[Any]] = {
        k: []
        for k in (
            "c_period",
            "c_code",
            "c_min",
            "c_addon",
            "c_step",
            "c_cap",
            "c_allowed",
            "c_charge",
            "c_addon_allowed",
            "c_addon_charge",
        )
    }
    if terms.payment_mode != "monthly_claim":
        return cols
    for period in periods:
        last = month_end(period)
        for code in terms.monthly_codes:
            fee = terms.fee(code.code, last)
            has_addon = code.addon_code is not None and bool(code.addon_step_minutes)
            addon_fee = terms.fee(code.addon_code, last) if has_addon and code.addon_code else None
            cols["c_period"].append(period)
            cols["c_code"].append(code.code)
            cols["c_min"].append(max(code.min_minutes, 1))
            cols["c_addon"].append(code.addon_code if has_addon else None)
            cols["c_step"].append(code.addon_step_minutes if has_addon else None)
            cols["c_cap"].append(code.max_addon_units)
            cols["c_allowed"].append(fee.allowed if fee else None)
            cols["c_charge"].append(fee.charge if fee else None)
            cols["c_addon_allowed"].append(addon_fee.allowed if addon_fee else None)
            cols["c_addon_charge"].append(addon_fee.charge if addon_fee else None)
    return cols


async def _statement(
    conn: AsyncConnection,
    coverage: PmpmCoveragePort,
    tenant_id: str,
    contract_id: str,
    version: int,
    terms: PmpmTermsView,
    runs: Sequence[RunRef],
    bases: Sequence[str | None],
    *,
    as_of: datetime,
    with_hash: bool,
    owner_xid: int,
) -> tuple[str, dict[str, Any]]:
    """The statement writing `runs`' line chunks (`pmpm_sql.CHUNK_COLUMNS`, stamped with the
    run's transaction id `owner_xid`) and returning their summaries, with its parameters."""
    periods = [r.period for r in runs]
    mm_sql, mm_params = await coverage.member_months_query(
        conn,
        tenant_id=tenant_id,
        contract_id=contract_id,
        version=version,
        periods=periods,
        known_at=as_of,
    )
    if not all(k.startswith("mm_") for k in mm_params):
        raise ValueError("member-months parameters must be named mm_*")
    params: dict[str, Any] = {
        "tenant": tenant_id,
        "contract": contract_id,
        "as_of": as_of,
        "periods": periods,
        "run_ids": [r.run_id for r in runs],
        "base_ids": list(bases),
        "first_day": min(periods),
        "after_day": add_months(max(periods), 1),
        "tiers": [t for t, _ in terms.rates],
        "rates": [r for _, r in terms.rates],
        "mode": terms.payment_mode,
        "min_minutes": terms.min_minutes,
        "min_interventions": terms.min_interventions,
        "has_requirement": terms.has_activity_requirement,
        "with_hash": with_hash,
        "buckets": LINE_BUCKETS,
        "owner_xid": owner_xid,
        **_code_arrays(terms, periods),
        **mm_params,
    }
    statement = reconcile_sql(
        mm_sql,
        monthly_claim=terms.payment_mode == "monthly_claim",
        with_base=any(b is not None for b in bases),
    )
    return statement, params


_SNAPSHOT_ID = re.compile(r"^[0-9A-F]+-[0-9A-F]+(-[0-9]+)?$")


async def reconcile(
    conn: AsyncConnection,
    coverage: PmpmCoveragePort,
    tenant_id: str,
    contract_id: str,
    version: int,
    terms: PmpmTermsView,
    runs: list[RunRef],
    bases: list[str | None],
    *,
    as_of: datetime,
    with_hash: bool,
    parallel: int = 1,
) -> None:
    """Write the runs' lines and their summaries.

    With `parallel` > 1 (and several runs) the months are dealt out to that many extra
    connections. Each imports this transaction's snapshot (`pg_export_snapshot`) in a
    REPEATABLE READ transaction, so it reads exactly what this transaction reads, writes its
    months' line chunks, computes their summaries, and commits; this transaction then records
    the summaries and commits the runs. Lines are only ever reached through their run, so
    a run and its lines appear together, when the run commits. Every chunk carries this
    transaction's id: if it ends without committing the runs (here or later in the caller's
    unit of work), the chunks belong to no run; they are deleted here when the shares fail,
    and otherwise by `sweep_orphan_lines` (the monthly close), which keeps the chunks of a
    transaction still in progress."""
    args = (conn, coverage, tenant_id, contract_id, version, terms)
    # The runs' transaction: its chunks are orphans only once it has ended without them.
    owner_xid = int(
        (
            await conn.execute(text("SELECT CAST(CAST(pg_current_xact_id() AS text) AS bigint)"))
        ).scalar_one()
    )
    if parallel <= 1 or len(runs) < 2:
        statement, params = await _statement(
            *args, runs, bases, as_of=as_of, with_hash=with_hash, owner_xid=owner_xid
        )
        rows = (await conn.execute(text(statement), params)).all()
        summaries = [(r.run_id, r.summary, r.lines_hash) for r in rows]
    else:
        n = min(parallel, len(runs))
        # Months dealt round-robin: each share has early and late months alike.
        shares = [
            await _statement(
                *args,
                runs[k::n],
                bases[k::n],
                as_of=as_of,
                with_hash=with_hash,
                owner_xid=owner_xid,
            )
            for k in range(n)
        ]
        snapshot = str((await conn.execute(text("SELECT pg_export_snapshot()"))).scalar_one())
        if not _SNAPSHOT_ID.match(snapshot):  # pragma: no cover - PostgreSQL's own format
            raise RuntimeError("unexpected snapshot id")
        dsn = asyncpg_dsn(conn.engine.url.render_as_string(hide_password=False))
        jobs = [
            asyncio.ensure_future(_write_share(conn, dsn, snapshot, sql, params))
            for sql, params in shares
        ]
        try:
            results = await asyncio.gather(*jobs)
        except BaseException:
            for job in jobs:
                job.cancel()
            await asyncio.gather(*jobs, return_exceptions=True)
            await _discard_lines(dsn, [r.run_id for r in runs])
            raise
        summaries = [row for share in results for row in share]
    await conn.execute(
        text(SET_SUMMARIES_SQL),
        {
            "ids": [s[0] for s in summaries],
            "summaries": [s[1] for s in summaries],
            "hashes": [s[2] for s in summaries],
        },
    )


async def _write_share(
    conn: AsyncConnection,
    dsn: str,
    snapshot: str,
    sql: str,
    params: dict[str, Any],
) -> list[tuple[str, str, str | None]]:
    """On a new connection inside `snapshot`: write one share of the runs' line chunks and
    return their summaries (run id, summary JSON, lines hash)."""
    statement = _compile(conn, sql, params)
    worker = await asyncpg.connect(dsn)
    try:
        async with worker.transaction(isolation="repeatable_read"):
            await worker.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            await worker.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
            await worker.execute("SET LOCAL synchronous_commit = off")
            await worker.execute("SET LOCAL jit = off")
            rows = await worker.fetch(*statement)
    finally:
        await worker.close()
    return [(r["run_id"], r["summary"], r["lines_hash"]) for r in rows]


def _compile(conn: AsyncConnection, sql: str, params: dict[str, Any]) -> tuple[Any, ...]:
    """A named-parameter statement as asyncpg's ($n statement, *arguments)."""
    compiled = text(sql).bindparams(**params).compile(dialect=conn.dialect)
    return (compiled.string, *(compiled.params[k] for k in compiled.positiontup or ()))


async def _discard_lines(dsn: str, run_ids: list[str]) -> None:
    """Delete line chunks a failed parallel run's connections may have committed."""
    try:
        other = await asyncpg.connect(dsn)
        try:
            await other.execute(
                "DELETE FROM billing.pmpm_line_chunks c WHERE c.run_id = ANY($1::uuid[]) "
                "AND NOT EXISTS (SELECT 1 FROM billing.pmpm_runs r WHERE r.id = c.run_id)",
                run_ids,
            )
        finally:
            await other.close()
    except (OSError, asyncpg.PostgresError) as exc:  # swept later
        log.warning("pmpm.discard_lines_failed", error=type(exc).__name__, runs=len(run_ids))


async def sweep_orphan_lines(conn: AsyncConnection) -> int:
    """Delete line chunks whose run never committed: no run row, and the transaction that
    wrote the run has ended (a run still being made keeps its chunks)."""
    result = await conn.execute(text(SWEEP_ORPHAN_LINES_SQL))
    return int(result.rowcount or 0)
