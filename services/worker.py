"""The arq worker: every bounded context's jobs in one WorkerSettings."""

from __future__ import annotations

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
