"""arq jobs for PMPM: the monthly close (cron, on the configured day) and opening the work
items of a run's variances (queued by every run)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from arq import cron

from services.billing import pmpm, pmpm_close, pmpm_items, pmpm_reconcile
from shared.clock import utc_today
from shared.config import Settings
from shared.jobs import mark_processed
from shared.logging import get_logger
from shared.uow import Database, UnitOfWork

log = get_logger("billing.pmpm_tasks")

WORKER_ACTOR = "worker"
OPEN_ITEMS_JOB = "pmpm_open_work_items"


def close_day(settings: Settings) -> int:
    """MTM_PMPM_CLOSE_DAY (1-28; default 5)."""
    day = settings.pmpm_close_day
    return min(max(day, 1), 28)


def _coverage(ctx: dict[str, Any]) -> pmpm.PmpmCoveragePort:
    port: pmpm.PmpmCoveragePort | None = ctx.get("pmpm_coverage_port")
    if port is None:
        port = ctx["pmpm_coverage_port"] = pmpm.default_pmpm_coverage()
    return port


def open_items_job_id(run_id: str) -> str:
    """The job (and outbox row) id that opens a run's variance work items."""
    return f"{OPEN_ITEMS_JOB}:{run_id}"


async def pmpm_open_work_items(ctx: dict[str, Any], run_id: str, tenant_id: str) -> int:
    """Idempotent: lines that already have an item keep it. Marks its outbox row processed
    in the same transaction, so the sweeper does not send it again."""
    db: Database = ctx["db"]
    async with UnitOfWork(db, None) as uow:
        n = await pmpm_items.open_variance_items(
            uow.conn, tenant_id=tenant_id, run_id=run_id, actor=WORKER_ACTOR
        )
        await mark_processed(uow.conn, [open_items_job_id(run_id)])
        await uow.commit()
    return n


async def pmpm_monthly_close(ctx: dict[str, Any]) -> int:
    """For every PMPM contract: run and close last month, re-run closed months inside the
    retro window (kept only when something changed), then open the variances' work items.
    One transaction per contract, so one bad contract does not stop the others."""
    db: Database = ctx["db"]
    settings: Settings = ctx["settings"]
    coverage = _coverage(ctx)
    today = utc_today()
    async with db.transaction() as (conn, trans):
        contracts = await coverage.pmpm_contracts(conn)
        # Lines a failed parallel run left behind (never reachable: their run never committed).
        swept = await pmpm_reconcile.sweep_orphan_lines(conn)
        await trans.commit()
    if swept:
        log.info("pmpm.orphan_lines_swept", chunks=swept)
    runs = 0
    for tenant_id, contract_id in contracts:
        try:
            async with UnitOfWork(db, ctx.get("queue")) as uow:
                refs = await pmpm_close.close_contract_month(
                    uow.conn,
                    tenant_id=tenant_id,
                    contract_id=contract_id,
                    today=today,
                    actor=WORKER_ACTOR,
                    coverage=coverage,
                    parallel=settings.pmpm_parallel,
                )
                for ref in refs:
                    await uow.add_job(
                        tenant_id,
                        OPEN_ITEMS_JOB,
                        open_items_job_id(ref.run_id),
                        {"run_id": ref.run_id, "tenant_id": tenant_id},
                    )
                await uow.commit()
            runs += len(refs)
        except Exception as exc:
            log.warning("pmpm.close_failed", contract_id=contract_id, error_type=type(exc).__name__)
    log.info("pmpm.monthly_close", contracts=len(contracts), runs=runs)
    return runs


FUNCTIONS: list[Callable[..., Any]] = [pmpm_open_work_items, pmpm_monthly_close]


def cron_jobs(settings: Settings) -> list[Any]:
    return [
        cron(
            pmpm_monthly_close,
            day={close_day(settings)},
            hour={2},
            minute={30},
            second={0},
            unique=True,
            run_at_startup=False,
        )
    ]
