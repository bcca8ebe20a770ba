"""Monthly PMPM close and reconciliation (domain.md §2, §10): use cases.

* `create_runs`: a new versioned run for each requested month of one contract: the
  member-month ledger (coverage, via `PmpmCoveragePort`), documented activity, monthly codes
  or expected capitation, payments, and one classification per member, all in one set-based
  SQL statement (`pmpm_sql.RECONCILE_SQL`, with coverage's member-months SELECT embedded).
  Earlier runs are kept. A closed month may be re-run only
  within the contract's retro window; such runs are *adjustment* runs whose lines carry the
  closed run's figures, so later changes show against the original month.
* `close_run`: lock the month on its latest run.
* `open_variance_items`: each line with a variance (or short activity) becomes a
  `pmpm_variance` work item; re-runs find the item the same member-month already has.
* `monthly_close`: what the cron does on the close day (see `pmpm_tasks`).

Rules (classification, proration) are documented in `services/billing/domain/pmpm.py`.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

import asyncpg
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing import pmpm_claims
from services.billing.domain.pmpm import (
    Classification,
    PmpmContractView,
    PmpmTermsView,
    add_months,
    month_end,
    month_start,
    needs_work,
    within_retro_window,
)
from services.billing.pmpm_sql import (
    SET_SUMMARIES_SQL,
    SWEEP_ORPHAN_LINES_SQL,
    reconcile_sql,
)
from services.billing.ports import CoveragePort
from services.billing.tables_pmpm import (
    LINE_BUCKETS,
    line_order,
    pmpm_line_chunks,
    pmpm_line_items,
    pmpm_lines,
    pmpm_month_locks,
    pmpm_runs,
)
from services.billing.work_queue import open_work_item
from shared import audit
from shared.clock import utc_now, utc_today
from shared.db import asyncpg_dsn
from shared.errors import Conflict, NotFound, RuleViolation
from shared.logging import get_logger
from shared.money import format_cents

log = get_logger("billing.pmpm")

#: Day of the month the cron closes the previous month. Setting: MTM_PMPM_CLOSE_DAY
#: (`Settings.pmpm_close_day`, 1-28); this default applies until the setting exists.
PMPM_CLOSE_DAY_DEFAULT = 5
ENTITY = "pmpm_run"
# PostgreSQL work_mem for a reconciliation transaction (per sort/hash node, server side).
WORK_MEM = "256MB"
WORK_SOURCE = "pmpm"


class PmpmCoveragePort(Protocol):
    async def contract(
        self, conn: AsyncConnection, *, tenant_id: str, contract_id: str
    ) -> PmpmContractView | None: ...

    async def pmpm_contracts(self, conn: AsyncConnection) -> list[tuple[str, str]]: ...

    async def member_months_query(
        self,
        conn: AsyncConnection,
        *,
        tenant_id: str,
        contract_id: str,
        version: int,
        periods: Sequence[date],
        known_at: datetime,
    ) -> tuple[str, dict[str, Any]]:
        """Coverage's SELECT of the contract version's member-months for `periods` as known at
        `known_at` (columns: period, patient_id, patient_ref, member_id, tier, rate, span_id,
        enrolled_days, days_in_month, expected, recorded_late) and its parameters (named
        `mm_*`), for the reconciliation statement to embed; coverage owns the SQL."""
        ...


def default_pmpm_coverage() -> PmpmCoveragePort:
    from services.billing.adapters.pmpm_coverage import InProcessPmpmCoverage

    return InProcessPmpmCoverage()


@dataclass(frozen=True, slots=True)
class RunRef:
    run_id: str
    period: date
    run_no: int
    kind: str


def _uuid(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        return None


async def _lock(conn: AsyncConnection, key: str) -> None:
    await conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": key})


async def load_contract(
    conn: AsyncConnection, coverage: PmpmCoveragePort, tenant_id: str, contract_id: str
) -> PmpmContractView:
    cid = _uuid(contract_id)
    view = (
        await coverage.contract(conn, tenant_id=tenant_id, contract_id=cid)
        if cid is not None
        else None
    )
    if view is None:
        raise NotFound("no such contract", code="contract_not_found")
    if not view.versions:
        raise RuleViolation(
            "the contract has no PMPM terms",
            code="not_pmpm",
            action="add a contract version with billing_model pmpm and pmpm terms",
        )
    return view


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


def _empty_summary() -> dict[str, Any]:
    return {
        "lines": 0,
        "members_on_roster": 0,
        "expected_cents": 0,
        "received_cents": 0,
        "variance_cents": 0,
        "variance_lines": 0,
        "expected_adjustment_cents": 0,
        "received_adjustment_cents": 0,
        "changed_lines": 0,
        "by_classification": {},
    }


async def create_runs(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    contract_id: str,
    periods: Sequence[date],
    actor: str,
    coverage: PmpmCoveragePort,
    today: date | None = None,
    as_of: datetime | None = None,
    skip_unchanged: bool = False,
    with_hash: bool = True,
    parallel: int = 1,
    request_id: str | None = None,
) -> list[RunRef]:
    """One new run per month in `periods` (first days), reconciled in set-based SQL.

    `parallel` > 1 spreads the months over that many extra read-only connections that share
    this transaction's snapshot (see `_reconcile`); it applies only when this transaction has
    written nothing yet (the other connections could not see it), else everything runs here.

    `skip_unchanged` (the cron) drops a new run whose lines equal the month's latest run, so
    an unchanged month does not pile up identical versions. `with_hash=False` skips the
    per-line fingerprint (`lines_hash` stays NULL); it costs about a third of a large run."""
    with_hash = with_hash or skip_unchanged
    today = today or utc_today()
    as_of = as_of or utc_now()
    view = await load_contract(conn, coverage, tenant_id, contract_id)
    cid = view.contract_id
    wanted = sorted({month_start(p) for p in periods})
    if not wanted:
        raise RuleViolation("give at least one month", code="no_months")
    if parallel > 1 and len(wanted) > 1:
        # Other connections see neither this transaction's writes nor, inside a savepoint,
        # an exported snapshot (PostgreSQL refuses to export one from a subtransaction).
        wrote = (await conn.execute(text("SELECT pg_current_xact_id_if_assigned()"))).scalar()
        parallel = 1 if wrote is not None or conn.in_nested_transaction() else parallel
    await _lock(conn, f"pmpm:{tenant_id}:{cid}")
    # Sorts and hashes over a whole roster stay in memory (server side, this transaction).
    await conn.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
    # A run is derived data that can be made again: its transaction does not wait at commit
    # for the WAL of 100,000s of lines to reach disk (a crash in that instant loses the run,
    # never consistency; other transactions keep their setting).
    await conn.execute(text("SET LOCAL synchronous_commit = off"))
    # Compiling this statement's expressions costs more than it saves.
    await conn.execute(text("SET LOCAL jit = off"))
    by_version: dict[int, tuple[PmpmTermsView, list[RunRef], list[str | None]]] = {}
    for period in wanted:
        if period > month_start(today):
            raise RuleViolation(
                f"{period:%Y-%m} has not started yet",
                code="future_month",
                action="run a month once it has started (usually after it ends)",
            )
        terms = view.terms_for(period)
        if terms is None:
            raise RuleViolation(
                f"no PMPM contract version is in force in {period:%Y-%m}",
                code="contract_not_in_force",
            )
        lock = (
            await conn.execute(
                select(pmpm_month_locks.c.run_id).where(
                    pmpm_month_locks.c.tenant_id == tenant_id,
                    pmpm_month_locks.c.contract_id == cid,
                    pmpm_month_locks.c.period == period,
                )
            )
        ).scalar_one_or_none()
        if lock is not None and not within_retro_window(period, today, terms.retro_window_months):
            raise Conflict(
                f"{period:%Y-%m} is closed and outside the contract's "
                f"{terms.retro_window_months}-month retro window",
                code="month_closed",
            )
        last_no = (
            await conn.execute(
                select(func.coalesce(func.max(pmpm_runs.c.run_no), 0)).where(
                    pmpm_runs.c.tenant_id == tenant_id,
                    pmpm_runs.c.contract_id == cid,
                    pmpm_runs.c.period == period,
                )
            )
        ).scalar_one()
        ref = RunRef(
            str(uuid.uuid4()), period, int(last_no) + 1, "adjustment" if lock else "regular"
        )
        await conn.execute(
            pmpm_runs.insert().values(
                id=ref.run_id,
                tenant_id=tenant_id,
                contract_id=cid,
                payer_id=view.payer_id,
                contract_version=terms.version,
                period=period,
                run_no=ref.run_no,
                kind=ref.kind,
                base_run_id=str(lock) if lock else None,
                status="open",
                payment_mode=terms.payment_mode,
                proration=terms.proration,
                as_of=as_of,
                summary=_empty_summary(),
                actor=actor,
            )
        )
        entry = by_version.setdefault(terms.version, (terms, [], []))
        entry[1].append(ref)
        entry[2].append(str(lock) if lock else None)
    refs: list[RunRef] = []
    for version, (terms, runs, bases) in sorted(by_version.items()):
        await _reconcile(
            conn,
            coverage,
            tenant_id,
            cid,
            version,
            terms,
            runs,
            bases,
            as_of=as_of,
            with_hash=with_hash,
            parallel=parallel if len(wanted) > 1 else 1,
        )
        refs.extend(runs)
    if skip_unchanged:
        refs = await _drop_unchanged(conn, tenant_id, cid, refs)
    for ref in refs:
        await audit.append(
            conn,
            tenant_id=tenant_id,
            entity_type=ENTITY,
            entity_id=ref.run_id,
            action="pmpm.run_created",
            actor=actor,
            request_id=request_id,
            after={
                "contract_id": cid,
                "month": f"{ref.period:%Y-%m}",
                "run_no": ref.run_no,
                "kind": ref.kind,
            },
            new_entity=True,
        )
    log.info("pmpm.runs_created", contract_id=cid, runs=len(refs), months=len(wanted))
    return refs


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


async def _reconcile(
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


async def _drop_unchanged(
    conn: AsyncConnection, tenant_id: str, contract_id: str, refs: list[RunRef]
) -> list[RunRef]:
    kept: list[RunRef] = []
    for ref in refs:
        rows = (
            await conn.execute(
                select(pmpm_runs.c.id, pmpm_runs.c.lines_hash, pmpm_runs.c.summary)
                .where(
                    pmpm_runs.c.tenant_id == tenant_id,
                    pmpm_runs.c.contract_id == contract_id,
                    pmpm_runs.c.period == ref.period,
                    pmpm_runs.c.run_no >= ref.run_no - 1,
                )
                .order_by(pmpm_runs.c.run_no)
            )
        ).all()
        # Same lines (hash) and same totals: a run without lines has no hash, nor has one made
        # without hashes, so the summaries must match too.
        if (
            len(rows) == 2
            and rows[0].lines_hash == rows[1].lines_hash
            and rows[0].summary == rows[1].summary
        ):
            await conn.execute(
                pmpm_line_chunks.delete().where(pmpm_line_chunks.c.run_id == ref.run_id)
            )
            await conn.execute(
                pmpm_line_items.delete().where(pmpm_line_items.c.run_id == ref.run_id)
            )
            await conn.execute(pmpm_runs.delete().where(pmpm_runs.c.id == ref.run_id))
        else:
            kept.append(ref)
    return kept


async def get_run_row(conn: AsyncConnection, tenant_id: str, run_id: str) -> Any:
    rid = _uuid(run_id)
    row = (
        (
            await conn.execute(
                select(pmpm_runs).where(pmpm_runs.c.tenant_id == tenant_id, pmpm_runs.c.id == rid)
            )
        ).first()
        if rid
        else None
    )
    if row is None:
        raise NotFound("no such PMPM run", code="pmpm_run_not_found")
    return row


async def close_run(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    run_id: str,
    actor: str,
    request_id: str | None = None,
    coverage: CoveragePort | None = None,
    pmpm_coverage: PmpmCoveragePort | None = None,
    today: date | None = None,
) -> None:
    """Lock the run's month on this run. Only the month's latest regular run may close it.

    Where the contract bills by claim (monthly_claim), the close also bills the run's
    member-months, in this transaction (`pmpm_claims.create_claims`; `coverage`,
    `pmpm_coverage` and `today` default to the in-process ports and the clock)."""
    row = await get_run_row(conn, tenant_id, run_id)
    await _lock(conn, f"pmpm:{tenant_id}:{row.contract_id}")
    locked = (
        await conn.execute(
            select(pmpm_month_locks.c.run_id).where(
                pmpm_month_locks.c.tenant_id == tenant_id,
                pmpm_month_locks.c.contract_id == row.contract_id,
                pmpm_month_locks.c.period == row.period,
            )
        )
    ).scalar_one_or_none()
    if locked is not None:
        raise Conflict(f"{row.period:%Y-%m} is already closed", code="month_closed")
    latest = (
        await conn.execute(
            select(func.max(pmpm_runs.c.run_no)).where(
                pmpm_runs.c.tenant_id == tenant_id,
                pmpm_runs.c.contract_id == row.contract_id,
                pmpm_runs.c.period == row.period,
            )
        )
    ).scalar_one()
    if latest != row.run_no:
        raise Conflict(
            f"run {row.run_no} is not the month's latest run ({latest})",
            code="stale_run",
            action="close the latest run, or re-run the month first",
        )
    now = utc_now()
    await conn.execute(
        update(pmpm_runs)
        .where(pmpm_runs.c.id == row.id)
        .values(status="closed", closed_at=now, closed_by=actor)
    )
    await conn.execute(
        pmpm_month_locks.insert().values(
            tenant_id=tenant_id,
            contract_id=row.contract_id,
            period=row.period,
            run_id=row.id,
            closed_at=now,
            closed_by=actor,
        )
    )
    await audit.append(
        conn,
        tenant_id=tenant_id,
        entity_type=ENTITY,
        entity_id=str(row.id),
        action="pmpm.month_closed",
        actor=actor,
        request_id=request_id,
        after={"contract_id": str(row.contract_id), "month": f"{row.period:%Y-%m}"},
    )
    await pmpm_claims.create_claims(
        conn,
        tenant_id=tenant_id,
        run=row,
        actor=actor,
        coverage=coverage,
        pmpm_coverage=pmpm_coverage,
        today=today,
        request_id=request_id,
    )


async def bill_late_member_months(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    refs: Sequence[RunRef],
    actor: str,
    today: date | None = None,
    request_id: str | None = None,
) -> None:
    """After adjustment runs of closed months (contracts that bill by claim): bill the
    member-months that became billable since the close (a session documented late, a retro
    add). Member-months already billed are left alone; a changed amount on one of them is a
    variance for a biller (correct and resubmit), not a second claim."""
    for ref in refs:
        if ref.kind != "adjustment":
            continue
        await pmpm_claims.create_claims(
            conn,
            tenant_id=tenant_id,
            run=await get_run_row(conn, tenant_id, ref.run_id),
            actor=actor,
            today=today,
            request_id=request_id,
            occasion="after a re-run inside the retro window",
        )


# ----------------------------------------------------------------------------- work items

_COPY_ITEMS_SQL = """
INSERT INTO billing.pmpm_line_items (run_id, member_id, patient_key, work_item_id)
SELECT l.run_id, l.member_id, COALESCE(CAST(l.patient_id AS text), ''), prev.work_item_id
FROM billing.pmpm_lines l
JOIN (
    SELECT DISTINCT ON (pl.member_id, pl.classification) pl.member_id, pl.classification,
           pl.work_item_id
    FROM billing.pmpm_runs pr JOIN billing.pmpm_lines pl ON pl.run_id = pr.id
    WHERE pr.tenant_id = :tenant AND pr.contract_id = :contract AND pr.period = :period
      AND pr.id <> :run AND pl.work_item_id IS NOT NULL
    ORDER BY pl.member_id, pl.classification, pr.run_no DESC
) prev ON prev.member_id = l.member_id AND prev.classification = l.classification
WHERE l.run_id = :run AND l.work_item_id IS NULL
ON CONFLICT DO NOTHING
"""


def variance_key(contract_id: str, period: date, member_id: str) -> str:
    """The work item's batch id: one item per contract, month, member and classification."""
    digest = hashlib.sha256(f"{contract_id}|{period:%Y-%m}|{member_id}".encode()).hexdigest()
    return f"pmpm:{period:%Y%m}:{digest[:40]}"


async def open_variance_items(
    conn: AsyncConnection, *, tenant_id: str, run_id: str, actor: str
) -> int:
    """Open a `pmpm_variance` work item for each line that needs one; returns how many lines
    got an item (existing items of earlier runs of the month are reused)."""
    run = await get_run_row(conn, tenant_id, run_id)
    await conn.execute(
        text(_COPY_ITEMS_SQL),
        {"tenant": tenant_id, "contract": run.contract_id, "period": run.period, "run": run.id},
    )
    rows = (
        await conn.execute(
            select(
                pmpm_lines.c.member_id,
                pmpm_lines.c.patient_id,
                pmpm_lines.c.classification,
                pmpm_lines.c.expected_cents,
                pmpm_lines.c.received_cents,
                pmpm_lines.c.variance_cents,
            )
            .where(
                pmpm_lines.c.run_id == run.id,
                pmpm_lines.c.work_item_id.is_(None),
                (pmpm_lines.c.variance_cents != 0)
                | pmpm_lines.c.classification.in_(
                    [c.value for c in (Classification.ACTIVITY_NOT_MET,)]
                ),
            )
            .order_by(*line_order())
        )
    ).all()
    members: list[str] = []
    patients: list[str] = []
    item_ids: list[str] = []
    month = f"{run.period:%Y-%m}"
    for r in rows:
        if not needs_work(r.classification, r.variance_cents):
            continue
        item_id = await open_work_item(
            conn,
            tenant_id=tenant_id,
            category="pmpm_variance",
            source=WORK_SOURCE,
            summary=(
                f"PMPM {month} member {r.member_id}: {r.classification.replace('_', ' ')}; "
                f"expected {format_cents(r.expected_cents)}, received "
                f"{format_cents(r.received_cents)}, variance {format_cents(r.variance_cents)}"
            ),
            actor=actor,
            batch_id=variance_key(str(run.contract_id), run.period, r.member_id),
            amount_cents=abs(r.variance_cents),
            reasons=[
                {
                    "code": r.classification,
                    "contract_id": str(run.contract_id),
                    "month": month,
                    "member_id": r.member_id,
                    "run_id": str(run.id),
                    "expected": format_cents(r.expected_cents),
                    "received": format_cents(r.received_cents),
                    "variance": format_cents(r.variance_cents),
                }
            ],
        )
        members.append(r.member_id)
        patients.append(str(r.patient_id) if r.patient_id else "")
        item_ids.append(item_id)
    if members:
        await conn.execute(
            text(
                "INSERT INTO billing.pmpm_line_items (run_id, member_id, patient_key, "
                "work_item_id) SELECT :run, u.member, u.patient, u.item "
                "FROM unnest(CAST(:members AS text[]), CAST(:patients AS text[]), "
                "CAST(:items AS uuid[])) AS u(member, patient, item) "
                "ON CONFLICT DO NOTHING"
            ),
            {"members": members, "patients": patients, "items": item_ids, "run": run.id},
        )
    total = (
        await conn.execute(
            select(func.count())
            .select_from(pmpm_line_items)
            .where(pmpm_line_items.c.run_id == run.id)
        )
    ).scalar_one()
    return int(total)


# ----------------------------------------------------------------------------- monthly close


@dataclass(frozen=True, slots=True)
class CloseResult:
    contracts: int
    runs: list[tuple[str, RunRef]]  # (tenant, run)
    failed: int


async def locked_periods(
    conn: AsyncConnection, tenant_id: str, contract_id: str, since: date
) -> list[date]:
    rows = await conn.execute(
        select(pmpm_month_locks.c.period).where(
            pmpm_month_locks.c.tenant_id == tenant_id,
            pmpm_month_locks.c.contract_id == contract_id,
            pmpm_month_locks.c.period >= since,
        )
    )
    return sorted(r.period for r in rows)


async def close_contract_month(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    contract_id: str,
    today: date,
    actor: str,
    coverage: PmpmCoveragePort,
    parallel: int = 1,
) -> list[RunRef]:
    """The close-day work for one contract: run and close last month if still open, and
    re-run (as adjustments, only when something changed) the closed months still inside the
    retro window (those on `parallel` connections)."""
    view = await load_contract(conn, coverage, tenant_id, contract_id)
    target = add_months(month_start(today), -1)
    out: list[RunRef] = []
    terms = view.terms_for(target)
    window = max((v.retro_window_months for v in view.versions), default=6)
    closed = await locked_periods(conn, tenant_id, view.contract_id, add_months(target, -window))
    retro = [
        p
        for p in closed
        if p != target
        and (t := view.terms_for(p)) is not None
        and within_retro_window(p, today, t.retro_window_months)
    ]
    if retro:
        adjusted = await create_runs(
            conn,
            tenant_id=tenant_id,
            contract_id=view.contract_id,
            periods=retro,
            actor=actor,
            coverage=coverage,
            today=today,
            skip_unchanged=True,
            parallel=parallel,
        )
        await bill_late_member_months(
            conn, tenant_id=tenant_id, refs=adjusted, actor=actor, today=today
        )
        out += adjusted
    if terms is not None and target not in closed:
        (ref,) = await create_runs(
            conn,
            tenant_id=tenant_id,
            contract_id=view.contract_id,
            periods=[target],
            actor=actor,
            coverage=coverage,
            today=today,
        )
        await close_run(conn, tenant_id=tenant_id, run_id=ref.run_id, actor=actor)
        out.append(ref)
    return out
