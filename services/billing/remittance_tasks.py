"""arq jobs for remittance: the 835 inbox poll and the daily queue upkeep.

`ingest_remittances` reads every inbound transport (the mailbox, http when configured), posts
each 835 in its own transaction and then archives it, or moves it to quarantine with the
reasons (unbalanced, unreadable, no tenant). 999/277CA files are left to the acknowledgment
job. Re-running is harmless: a file posted before its archive step is recognised by its
content hash and changes nothing.

`refresh_work_queue` (daily) re-syncs the CARC/RARC tables and recomputes every unresolved
work item's priority, since urgency grows as deadlines near.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from arq import cron

from services.billing.remittance import ingest_835
from services.billing.remittance_codes import sync_code_tables
from services.billing.submission import SubmissionConfig, Transports
from services.billing.transports import InboundKind
from services.billing.work_queue import refresh_priorities
from shared.clock import utc_today
from shared.logging import get_logger
from shared.uow import Database, UnitOfWork

log = get_logger("billing.remittance_tasks")

WORKER_ACTOR = "worker"


async def ingest_remittances(ctx: dict[str, Any]) -> dict[str, int]:
    db: Database = ctx["db"]
    config: SubmissionConfig = ctx.get("submission_config") or SubmissionConfig.from_settings(
        ctx["settings"]
    )
    transports = Transports(config, ctx.get("transports"))
    counts = {"posted": 0, "quarantined": 0, "duplicate": 0, "already_received": 0}
    try:
        for transport in transports.inbound():
            for f in await transport.fetch_inbound():
                if f.kind is not InboundKind.ERA_835:
                    continue
                try:
                    async with UnitOfWork(db, None) as uow:
                        result = await ingest_835(
                            uow.conn,
                            tenant_id=None,
                            content=f.content,
                            source="inbox",
                            source_name=f.name,
                            actor=WORKER_ACTOR,
                        )
                        await uow.commit()
                except Exception as exc:  # a bug must not block the inbox: keep the file
                    log.error("billing.835.failed", file=f.name, error_type=type(exc).__name__)
                    continue
                if result.already_received:
                    counts["already_received"] += 1
                else:
                    counts[result.status] = counts.get(result.status, 0) + 1
                if result.status == "quarantined":
                    await transport.quarantine(
                        f, [f"{r.get('code')}: {r.get('message')}" for r in result.reasons]
                    )
                else:
                    await transport.mark_processed(f)
    finally:
        await transports.aclose()
    if any(counts.values()):
        log.info("billing.835.ingested", **counts)
    return counts


async def refresh_work_queue(ctx: dict[str, Any]) -> int:
    db: Database = ctx["db"]
    async with UnitOfWork(db, None) as uow:
        await sync_code_tables(uow.conn)
        n = await refresh_priorities(uow.conn, today=utc_today())
        await uow.commit()
    return n


FUNCTIONS: list[Callable[..., Any]] = [ingest_remittances, refresh_work_queue]


def cron_jobs(settings: Any) -> list[Any]:
    every = max(1, min(60, settings.submission_every_minutes))
    return [
        cron(
            ingest_remittances,
            minute=set(range(0, 60, every)),
            second=45,
            run_at_startup=True,
            unique=True,
        ),
        cron(refresh_work_queue, hour={5}, minute={0}, second=0, run_at_startup=True, unique=True),
    ]
