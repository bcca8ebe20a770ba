"""The arq worker: every bounded context's jobs in one WorkerSettings."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from services.billing import pmpm_tasks, remittance_tasks, submission_tasks
from services.billing import tasks as billing_tasks
from shared.config import Settings
from shared.jobs import worker_settings


def build_worker_settings(settings: Settings) -> dict[str, Any]:
    return worker_settings(
        settings,
        [
            *billing_tasks.FUNCTIONS,
            *submission_tasks.FUNCTIONS,
            *remittance_tasks.FUNCTIONS,
            *pmpm_tasks.FUNCTIONS,
        ],
        [
            *submission_tasks.cron_jobs(settings),
            *remittance_tasks.cron_jobs(settings),
            *pmpm_tasks.cron_jobs(settings),
        ],
    )


def make_worker_settings_class(settings: Settings) -> type:
    return type("WorkerSettings", (), build_worker_settings(settings))


def __getattr__(name: str) -> Any:
    # `arq services.worker.WorkerSettings` works too; settings are read from MTM_* only when
    # arq asks for the class, never at import time.
    if name == "WorkerSettings":
        return make_worker_settings_class(Settings.from_env())
    raise AttributeError(name)


# How long a stopping worker waits for the jobs in flight.
JOB_DRAIN_SECONDS = 60.0


async def stop_worker(
    worker: Any, worker_task: asyncio.Task[Any], drain_seconds: float = JOB_DRAIN_SECONDS
) -> None:
    """Stop an arq worker run as `worker_task` (`Worker.async_run()`): stop taking jobs, let
    the ones in flight finish (arq's close() would cancel them, and they would be retried),
    then close it. If a job outlives the wait, close() cancels it before disposing of the
    database and Redis: close again without the jobs. Only a cancellation of the caller
    itself goes on."""
    worker_task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await worker_task
    running = [t for t in worker.tasks.values() if not t.done()]
    if running:
        await asyncio.wait(running, timeout=drain_seconds)
    try:
        await worker.close()
    except (asyncio.CancelledError, Exception):
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
        worker.tasks.clear()
        with contextlib.suppress(Exception):
            await worker.close()
