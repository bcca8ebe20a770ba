"""The arq jobs and their cron schedule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from devtools.payer_simulator import SimulatorRules, run_mailbox
from services.billing.submission_tasks import ingest_acknowledgments, submit_ready_claims
from services.worker import build_worker_settings
from shared.config import Settings
from tests.integration.submission.helpers import add_ready_claims, config, statuses


def test_worker_registers_the_jobs_and_a_cron_every_n_minutes(settings: Settings) -> None:
    ws = build_worker_settings(msgspec.structs.replace(settings, submission_every_minutes=10))
    names = {getattr(f, "__name__", "") for f in ws["functions"]}
    assert {"submit_ready_claims", "ingest_acknowledgments"} <= names
    crons = {c.name.split(".")[-1]: c for c in ws["cron_jobs"]}
    submit = next(c for n, c in crons.items() if "submit_ready_claims" in n)
    assert submit.minute == {0, 10, 20, 30, 40, 50}
    assert submit.run_at_startup
    assert submit.unique


async def test_jobs_submit_and_ingest(
    worker_ctx: dict[str, Any], tenant: str, tmp_path: Path
) -> None:
    db = worker_ctx["db"]
    ids = await add_ready_claims(db, tenant, 4)
    ctx = {**worker_ctx, "submission_config": config(tmp_path)}
    counts = await submit_ready_claims(ctx)
    assert counts["sent"] >= 1
    assert set((await statuses(db, ids)).values()) == {"submitted"}
    run_mailbox(tmp_path / "mailbox", SimulatorRules(reject_999_rate=0, reject_277_rate=0,
                                                     a1_rate=0))  # fmt: skip
    got = await ingest_acknowledgments(ctx)
    assert got["applied"] >= 2
    assert got["quarantined"] == 0
    assert set((await statuses(db, ids)).values()) == {"accepted"}
