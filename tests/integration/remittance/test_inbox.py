"""The worker's 835 inbox poll: posts, archives, quarantines with reasons, and leaves
999/277CA files to the acknowledgment job."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from services.billing.remittance_tasks import ingest_remittances
from services.billing.transports import DirectoryTransport
from shared.uow import Database
from tests.integration.remittance.helpers import (
    file_837,
    remits,
    scalar,
    simulator,
    submitted_claims,
)
from tests.integration.submission.helpers import config


async def test_inbox_posts_archives_and_quarantines(
    worker_ctx: dict[str, Any], db: Database, tenant: str, tmp_path: Path
) -> None:
    ids = await submitted_claims(db, tenant, 3)
    files = simulator(deny_rate=0.0).adjudicate_file("B.x12", await file_837(db, ids))
    mailbox = DirectoryTransport(tmp_path / "mailbox")
    mailbox.ensure_dirs()
    ok = remits(files)[0]
    (mailbox.inbox / "good.835").write_text(ok.text)
    (mailbox.inbox / "bad.835").write_text(ok.text.replace("BPR*C*", "BPR*C*1", 1))
    ack = next(f for f in files if f.kind == "999")
    (mailbox.inbox / "ack.999").write_text(ack.text)
    ctx = {**worker_ctx, "submission_config": config(tmp_path)}
    counts = await ingest_remittances(ctx)
    assert counts["posted"] == 1
    assert counts["quarantined"] == 1
    assert sorted(p.name for p in mailbox.inbox.iterdir()) == ["ack.999"]
    quarantined = sorted(p.name for p in mailbox.quarantine_dir.iterdir())
    assert quarantined == ["bad.835", "bad.835.reason.txt"]
    assert "UNBALANCED" in (mailbox.quarantine_dir / "bad.835.reason.txt").read_text()
    assert (
        await scalar(
            db,
            "SELECT count(*) FROM billing.claims WHERE tenant_id = :t AND status = 'paid'",
            t=tenant,
        )
        == 3
    )
    # the same file delivered again changes nothing
    (mailbox.inbox / "good-again.835").write_text(ok.text)
    again = await ingest_remittances(ctx)
    assert again["already_received"] == 1
    assert (
        await scalar(
            db, "SELECT count(*) FROM billing.claim_payments WHERE tenant_id = :t", t=tenant
        )
        == 3
    )
