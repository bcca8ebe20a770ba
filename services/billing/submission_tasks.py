"""arq jobs for submission: the cron that sends ready claims (recovering unconfirmed
batches first, also at worker start) and the one that reads acknowledgments from the inbox.

Both are idempotent and safe to run in several workers at once: claims are taken with
SKIP LOCKED, a batch is sent under an advisory lock, an acknowledgment applies once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from arq import cron

from services.billing import acknowledgments, submission
from services.billing.submission import SubmissionConfig, Transports
from shared.config import Settings
from shared.logging import get_logger
from shared.uow import Database

log = get_logger("billing.submission_tasks")

WORKER_ACTOR = "worker"


def _setup(ctx: dict[str, Any]) -> tuple[SubmissionConfig, Transports]:
    """Tests put ``submission_config`` / ``transports`` (name -> Transport) in the ctx."""
    config: SubmissionConfig = ctx.get("submission_config") or SubmissionConfig.from_settings(
        ctx["settings"]
    )
    return config, Transports(config, ctx.get("transports"))


async def submit_ready_claims(ctx: dict[str, Any]) -> dict[str, int]:
    db: Database = ctx["db"]
    config, transports = _setup(ctx)
    try:
        result = await submission.run_submission(db, transports, config, actor=WORKER_ACTOR)
    finally:
        await transports.aclose()
    counts = {
        "recovered": len(result.recovered),
        "batches": len(result.batches),
        "sent": sum(1 for r in (*result.recovered, *result.batches) if r.status == "sent"),
        "failed": sum(1 for r in (*result.recovered, *result.batches) if r.status == "failed"),
        "held": len(result.held_claims),
    }
    if counts["batches"] or counts["recovered"] or counts["held"]:
        log.info("billing.submission.run", **counts)
    return counts


async def ingest_acknowledgments(ctx: dict[str, Any]) -> dict[str, int]:
    db: Database = ctx["db"]
    _config, transports = _setup(ctx)
    try:
        summary = await acknowledgments.ingest_inbound(db, transports, actor=WORKER_ACTOR)
    finally:
        await transports.aclose()
    return {
        "applied": summary.applied,
        "duplicates": summary.duplicates,
        "quarantined": summary.quarantined,
    }


FUNCTIONS: list[Callable[..., Any]] = [submit_ready_claims, ingest_acknowledgments]


def cron_jobs(settings: Settings) -> list[Any]:
    """Every ``submission_every_minutes`` (1-60); the submit job also runs at worker start,
    which is when batches left unconfirmed by a crash are re-sent."""
    every = max(1, min(60, settings.submission_every_minutes))
    minutes = set(range(0, 60, every))
    return [
        cron(submit_ready_claims, minute=minutes, second=0, run_at_startup=True, unique=True),
        cron(ingest_acknowledgments, minute=minutes, second=30, run_at_startup=True, unique=True),
    ]
