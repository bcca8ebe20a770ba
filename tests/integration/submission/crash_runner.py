"""Test-only: run one submission in a fresh process and die (os._exit) at a given step.

python -m tests.integration.submission.crash_runner DATABASE_URL TENANT MAILBOX after_record|after_send
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from services.billing.submission import (
    RunHooks,
    SubmissionConfig,
    Transports,
    run_submission,
)
from services.billing.transports import RetryPolicy
from shared.db import create_engine
from shared.uow import Database

CRASH_EXIT = 137


def _die(*_args: object) -> None:
    os._exit(CRASH_EXIT)


async def main(url: str, tenant: str, mailbox: str, step: str) -> None:
    db = Database(create_engine(url, pool_size=2, max_overflow=0))
    cfg = SubmissionConfig(mailbox_dir=Path(mailbox), retry=RetryPolicy(1, 0.0, 0.0))
    hooks = RunHooks(**{step: _die})
    await run_submission(db, Transports(cfg), cfg, actor="crash", tenant_id=tenant, hooks=hooks)
    raise SystemExit("the hook did not fire")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
