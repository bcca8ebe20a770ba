"""Monthly PMPM close and reconciliation (domain.md §2, §10): use cases.

* `create_runs`: a new versioned run for each requested month of one contract: the
  member-month ledger (coverage, via `PmpmCoveragePort`), documented activity, monthly codes
  or expected capitation, payments, and one classification per member, all in one set-based
  SQL statement (`pmpm_sql.RECONCILE_SQL`, with coverage's member-months SELECT embedded).
  Earlier runs are kept. A closed month may be re-run only
  within the contract's retro window; such runs are *adjustment* runs whose lines carry the
  closed run's figures, so later changes show against the original month.
  The statement and its parallel form are in `pmpm_reconcile`.
* `close_run`: lock the month on its latest run (and bill it where the contract bills by
  claim, `pmpm_claims`).

Elsewhere: variance work items (`pmpm_items`), the close day (`pmpm_close`), payments
(`pmpm_payments`), the cron and jobs (`pmpm_tasks`).

Rules (classification, proration) are documented in `services/billing/domain/pmpm.py`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing import pmpm_claims
from services.billing.domain.pmpm import (
    PmpmContractView,
    PmpmTermsView,
    month_start,
    within_retro_window,
)
from services.billing.pmpm_reconcile import WORK_MEM, reconcile
from services.billing.ports import CoveragePort
from services.billing.tables_pmpm import (
    pmpm_line_chunks,
    pmpm_line_items,
    pmpm_month_locks,
    pmpm_runs,
)
from shared import audit
from shared.clock import utc_now, utc_today
from shared.errors import Conflict, NotFound, RuleViolation
from shared.logging import get_logger

log = get_logger("billing.pmpm")

ENTITY = "pmpm_run"


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
        await reconcile(
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
