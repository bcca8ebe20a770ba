"""Exactly once under crashes and concurrency (real commits, separate connections, a real
process killed between the steps) and through the HTTP clearinghouse."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from services.billing.submission import Transports, run_submission
from services.billing.transports import (
    DirectoryTransport,
    InboundFile,
    OutgoingFile,
    SendReceipt,
)
from shared.config import Settings
from shared.uow import Database
from shared.x12.validate import validate_x12
from tests.integration.submission.crash_runner import CRASH_EXIT
from tests.integration.submission.helpers import (
    PAYER,
    FlakyTransport,
    add_ready_claims,
    config,
    fetch,
    run,
    statuses,
)
from tests.integration.test_http_transport import TOKEN, Clearinghouse, clearinghouse

__all__ = ["clearinghouse"]

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[3]


class CountingDirectory:
    """The real mailbox, counting what it is asked to send and what it actually writes."""

    name = "directory"

    def __init__(self, root: Path) -> None:
        self.inner = DirectoryTransport(root)
        self.sends: list[SendReceipt] = []

    async def send(self, batch: OutgoingFile) -> SendReceipt:
        receipt = await self.inner.send(batch)
        self.sends.append(receipt)
        return receipt

    async def fetch_inbound(self) -> list[InboundFile]:
        return await self.inner.fetch_inbound()

    async def mark_processed(self, f: InboundFile) -> None:
        await self.inner.mark_processed(f)

    async def quarantine(self, f: InboundFile, reasons: Sequence[str]) -> None:
        await self.inner.quarantine(f, reasons)


@pytest.mark.parametrize("step", ["after_record", "after_send"])
async def test_a_process_killed_between_the_steps_is_recovered_without_a_second_send(
    committed_db: Database, settings: Settings, tenant: str, tmp_path: Path, step: str
) -> None:
    ids = await add_ready_claims(committed_db, tenant, 3)
    mailbox = tmp_path / "mailbox"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.integration.submission.crash_runner",
        settings.database_url, tenant, str(mailbox), step,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == CRASH_EXIT, err.decode()[-2000:]
    (recorded,) = await fetch(
        committed_db, "SELECT * FROM billing.batches WHERE tenant_id = :t", t=tenant
    )
    assert recorded.status == "recorded"
    assert set((await statuses(committed_db, ids)).values()) == {"ready"}
    outbox = mailbox / "outbox"
    written = sorted(p.name for p in outbox.iterdir()) if outbox.exists() else []
    assert written == ([] if step == "after_record" else [recorded.file_name])

    counting = CountingDirectory(mailbox)
    result = await run(committed_db, config(tmp_path), tenant, transports={"directory": counting})
    assert [r.status for r in result.recovered] == ["sent"]
    assert result.batches == []  # no new batch for claims a batch already holds
    assert len(counting.sends) == 1
    assert counting.sends[0].already_present is (step == "after_send")
    assert [p.name for p in outbox.iterdir()] == [recorded.file_name]
    assert (outbox / recorded.file_name).read_bytes() == bytes(recorded.content)
    assert set((await statuses(committed_db, ids)).values()) == {"submitted"}
    rows = await fetch(
        committed_db, "SELECT status FROM billing.batches WHERE tenant_id = :t", t=tenant
    )
    assert [r.status for r in rows] == ["sent"]
    # Nothing left to do: a further run sends nothing.
    again = await run(committed_db, config(tmp_path), tenant, transports={"directory": counting})
    assert (again.recovered, again.batches, len(counting.sends)) == ([], [], 1)


async def test_concurrent_runs_never_batch_a_claim_twice(
    committed_db: Database, tenant: str, tmp_path: Path
) -> None:
    other = {**PAYER, "trading_partner_id": "TPX", "x12_payer_id": "PX1", "name": "X Plan"}
    ids = await add_ready_claims(committed_db, tenant, 60)
    ids += await add_ready_claims(committed_db, tenant, 30, payer=other)
    cfg = config(tmp_path, max_claims_per_run=25, max_claims_per_file=10)
    transport = FlakyTransport()

    async def worker() -> None:
        for _ in range(6):
            ts = Transports(cfg, {"directory": transport})
            await run_submission(committed_db, ts, cfg, actor="w", tenant_id=tenant)

    await asyncio.gather(*(worker() for _ in range(4)))
    dupes = await fetch(
        committed_db,
        "SELECT claim_id FROM billing.batch_claims WHERE tenant_id = :t "
        "GROUP BY claim_id HAVING count(*) > 1",
        t=tenant,
    )
    assert dupes == []
    assert set((await statuses(committed_db, ids)).values()) == {"submitted"}
    sent_pcns = [
        line.split("*")[1]
        for f in transport.sent
        for line in f.content.decode().split("~")
        if line.startswith("CLM*")
    ]
    assert len(sent_pcns) == len(set(sent_pcns)) == 90
    batches = await fetch(
        committed_db,
        "SELECT trading_partner_id, isa13 FROM billing.batches WHERE tenant_id = :t",
        t=tenant,
    )
    pairs = [(b.trading_partner_id, b.isa13) for b in batches]
    assert len(pairs) == len(set(pairs)) == len(transport.sent)


async def test_http_clearinghouse_with_retries_and_an_idempotent_resend(
    db: Any, tenant: str, tmp_path: Path, clearinghouse: tuple[str, Clearinghouse]
) -> None:
    url, state = clearinghouse
    http_payer = {**PAYER, "transport": "http"}
    ids = await add_ready_claims(db, tenant, 2, payer=http_payer)
    cfg = config(tmp_path, http_url=url, http_auth_header=f"Authorization: {TOKEN}")
    state.fail_next.extend([503, 502])
    result = await run(db, cfg, tenant)
    (sent,) = result.batches
    assert (sent.status, sent.attempts) == ("sent", 3)
    ((name, body),) = state.received.values()
    assert name == sent.file_name
    assert validate_x12(body.decode()) == []
    posts = [h for m, _p, h in state.requests if m == "POST"]
    assert len({h["Idempotency-Key"] for h in posts}) == 1
    assert set((await statuses(db, ids)).values()) == {"submitted"}
    # A re-send of the same batch (as after a crash) is answered as a duplicate.
    from services.billing.transports import HttpTransport

    async with HttpTransport(url, f"Authorization: {TOKEN}") as t:
        receipt = await t.send(OutgoingFile(name, body, sent.batch_id))
    assert receipt.already_present
    assert len(state.received) == 1


async def test_http_not_configured_fails_the_batch_into_a_work_item(
    db: Any, tenant: str, tmp_path: Path
) -> None:
    await add_ready_claims(db, tenant, 1, payer={**PAYER, "transport": "http"})
    result = await run(db, config(tmp_path), tenant)
    assert result.batches[0].status == "failed"
    assert "not configured" in (result.batches[0].error or "")
    items = await fetch(db, "SELECT category FROM billing.work_items WHERE tenant_id = :t",
                        t=tenant)  # fmt: skip
    assert [i.category for i in items] == ["submission_failure"]
