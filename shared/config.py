"""Settings: one msgspec Struct, built once from MTM_* environment variables and passed in.

Nothing here runs at import time; `Settings.from_env()` is called by the CLI (or a test) and
the resulting object is handed to `create_app(settings)` and to the worker.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Literal

import msgspec

Component = Literal["billing", "coverage", "all"]


class SettingsError(ValueError):
    """An MTM_* variable that cannot be parsed."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    #: PostgreSQL URL (postgresql+asyncpg://...). Empty means "start the embedded one" (dev only).
    database_url: str = ""
    #: Redis URL (redis://host:port/db). Empty means "start the embedded one" (dev only).
    redis_url: str = ""
    #: Which bounded contexts the HTTP app mounts.
    components: Component = "all"
    host: str = "127.0.0.1"
    port: int = 8000
    #: HTTP worker processes for `serve` (the API is stateless: one per core).
    web_workers: Annotated[int, msgspec.Meta(ge=1, le=64)] = 1
    log_level: str = "INFO"
    #: JSON logs (production) or key=value console lines.
    log_json: bool = True
    db_pool_size: int = 10
    db_max_overflow: int = 10
    #: Seconds an API key lookup is cached in process (revocation takes effect within this).
    api_key_cache_seconds: float = 30.0
    #: Outbox rows not processed within this many seconds are re-enqueued by the sweeper.
    outbox_redeliver_after_seconds: int = 60
    #: How often the sweeper runs (seconds); arq cron granularity is one second.
    outbox_sweep_every_seconds: int = 20
    #: arq worker: concurrent jobs per worker process.
    worker_max_jobs: int = 50
    #: Sessions processed per batch job.
    worker_batch_size: int = 200
    #: Where embedded services and mailbox files live when not configured.
    var_dir: str = "var"
    #: Minutes between automatic submission runs (and acknowledgment/remittance inbox reads).
    submission_every_minutes: int = 5
    #: The directory mailbox (outbox/, inbox/, archive/, quarantine/); empty: <var_dir>/mailbox.
    clearinghouse_dir: str = ""
    #: HTTP clearinghouse (the `http` transport): URL and the auth header ("Name: value").
    clearinghouse_url: str = ""
    clearinghouse_auth_header: str = ""
    clearinghouse_timeout_seconds: float = 30.0
    #: Transient send failures are retried with exponential backoff and jitter, then the
    #: batch becomes a work item.
    submission_retry_attempts: int = 5
    submission_retry_base_seconds: float = 2.0
    submission_retry_max_seconds: float = 60.0
    #: 837P 1000A submitter and the ISA15 usage indicator (T test, P production).
    submitter_id: str = "MTMBILLING"
    submitter_name: str = "MTM BILLING"
    submitter_contact: str = "BILLING OFFICE"
    submitter_phone: str = "5555550100"
    x12_usage: Literal["T", "P"] = "T"
    #: Day of the month (1-28) on which the PMPM month close runs for the previous month.
    pmpm_close_day: Annotated[int, msgspec.Meta(ge=1, le=28)] = 5
    #: Connections a multi-month PMPM reconciliation spreads its months over (1 = one).
    pmpm_parallel: Annotated[int, msgspec.Meta(ge=1, le=8)] = 2
    submission_max_claims_per_file: int = 5000
    submission_max_claims_per_run: int = 50_000
    #: Name of the arq queue.
    queue_name: str = "mtm:queue"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field in msgspec.structs.fields(cls):
            key = "MTM_" + field.name.upper()
            if key in env:
                values[field.name] = env[key]
        try:
            return msgspec.convert(values, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise SettingsError(f"invalid MTM_* setting: {exc}") from exc

    def with_services(self, *, database_url: str, redis_url: str) -> Settings:
        return msgspec.structs.replace(self, database_url=database_url, redis_url=redis_url)
