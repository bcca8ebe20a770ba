"""The PMPM close day (what the cron does, see `pmpm_tasks`): per contract, run and close last
month, and re-run the closed months still inside the retro window (adjustment runs, kept only
when something changed, billing member-months that became billable since)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.domain.pmpm import add_months, month_start, within_retro_window
from services.billing.pmpm import (
    PmpmCoveragePort,
    RunRef,
    bill_late_member_months,
    close_run,
    create_runs,
    load_contract,
)
from services.billing.tables_pmpm import pmpm_month_locks


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
