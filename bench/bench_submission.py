"""Submission bench: 837P for 10,000 ready claims from the database, and 999/277CA
ingestion, each compared in the same run with pyx12 validating the same file.

.venv/bin/python bench/bench_submission.py [claims]

Reports:
* pure builder: ``claim_837`` mapping + ``build_837p_batch`` on rows already in memory;
* record (DB path): lock the ready claims, read them and their lines, map, take control
  numbers, build and store the batch (one transaction) -> the file bytes;
* end to end: ``run_submission`` = record + send through the directory mailbox + confirm
  (every claim moved to submitted with its audit event);
* 999 and 277CA parse (shared.x12.ack) and full ingestion (link, apply, store) vs pyx12.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text

from bench._harness import fresh_database, machine, services
from services.billing.acknowledgments import ingest_file
from services.billing.submission import (
    SubmissionConfig,
    Transports,
    record_batches,
    run_submission,
)
from services.billing.submission_build import SnapshotCache, claim_837
from services.billing.transports import RetryPolicy
from shared.db import create_engine
from shared.uow import Database, UnitOfWork
from shared.x12.ack import (
    build_277ca,
    build_999,
    parse_277ca,
    parse_999,
    status_inputs_from_837,
)
from shared.x12.envelope import ControlNumbers
from shared.x12.validate import validate_x12
from shared.x12.x837p import Receiver, build_837p_batch
from tests.integration.submission.helpers import add_ready_claims

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def _rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f} claims/s ({seconds * 1000:,.0f} ms)"


async def _rows(db: Database, tenant: str) -> tuple[list[Any], dict[str, list[Any]]]:
    async with db.transaction() as (conn, _t):
        rows = list(
            await conn.execute(
                text("SELECT * FROM billing.claims WHERE tenant_id = :t ORDER BY created_at, id"),
                {"t": tenant},
            )
        )
        lines: dict[str, list[Any]] = {}
        for ln in await conn.execute(
            text(
                "SELECT l.* FROM billing.claim_lines l JOIN billing.claims c ON c.id = l.claim_id "
                "WHERE c.tenant_id = :t ORDER BY l.claim_id, l.line_no"
            ),
            {"t": tenant},
        ):
            lines.setdefault(str(ln.claim_id), []).append(ln._mapping)
    return rows, lines


async def bench(url: str, n: int) -> list[str]:
    if True:
        db = Database(create_engine(url, pool_size=4, max_overflow=0))
        tmp = Path(tempfile.mkdtemp(prefix="mtm-bench-submission-"))
        cfg = SubmissionConfig(
            mailbox_dir=tmp / "mailbox",
            retry=RetryPolicy(1, 0.0, 0.0),
            max_claims_per_file=n,
            max_claims_per_run=n,
        )
        out: list[str] = [f"machine: {machine()}", f"claims: {n:,}"]

        # Pure builder on rows read from the database (mapping + bytes).
        t1 = f"bench-{uuid.uuid4().hex[:8]}"
        for start in range(0, n, 2000):
            await add_ready_claims(db, t1, min(2000, n - start), pcn_prefix=f"A{start // 2000:03d}")
        rows, lines = await _rows(db, t1)
        best_map = best_build = float("inf")
        claims: list[Any] = []
        for _ in range(3):
            t = time.perf_counter()
            cache = SnapshotCache()
            claims = [claim_837(r._mapping, lines[str(r.id)], cache) for r in rows]
            t_map = time.perf_counter() - t
            t = time.perf_counter()
            build_837p_batch(
                cfg.submitter, Receiver("CH", "RCV123"),
                claims, ControlNumbers(1, 1, 1), NOW, batch_reference="BENCH",
            )  # fmt: skip
            best_build = min(best_build, time.perf_counter() - t)
            best_map = min(best_map, t_map)
        best = best_build
        out.append(f"pure builder (837P bytes from Claim837s): {_rate(n, best_build)}")
        out.append(f"row -> Claim837 mapping: {_rate(n, best_map)}")

        # Record step: DB read + map + control numbers + build + store.
        t = time.perf_counter()
        async with UnitOfWork(db, None) as uow:
            recorded, held = await record_batches(uow.conn, cfg, actor="bench", tenant_id=t1)
            await uow.commit()
        t_record = time.perf_counter() - t
        assert not held
        assert sum(r.claim_count for r in recorded) == n
        out.append(f"record (DB read -> stored file bytes, one transaction): {_rate(n, t_record)}")

        # End to end on a second tenant: record + send + confirm (claims -> submitted).
        t2 = f"bench-{uuid.uuid4().hex[:8]}"
        for start in range(0, n, 2000):
            await add_ready_claims(db, t2, min(2000, n - start), pcn_prefix=f"B{start // 2000:03d}")
        t = time.perf_counter()
        result = await run_submission(db, Transports(cfg), cfg, actor="bench", tenant_id=t2)
        t_e2e = time.perf_counter() - t
        assert [b.status for b in result.batches] == ["sent"]
        out.append(f"end to end (record + send + confirm {n:,} claims): {_rate(n, t_e2e)}")
        sent = next((tmp / "mailbox" / "outbox").iterdir()).read_text()

        t = time.perf_counter()
        errors = validate_x12(sent)
        t_pyx = time.perf_counter() - t
        assert errors == [], errors[:3]
        out.append(f"pyx12 validating the same 837P: {_rate(n, t_pyx)}")
        out.append(
            f"ratio builder/pyx12: {t_pyx / best:,.0f}x; record/pyx12: {t_pyx / t_record:,.0f}x"
        )

        # 999 and 277CA answering the sent file.
        # A 999 answers per ST: acknowledge the same claims sent one per set (n AK2/IK5).
        per_set = build_837p_batch(
            cfg.submitter, Receiver("CH", "RCV123"), claims, ControlNumbers(1, 1, 1), NOW,
            batch_reference="BENCH", max_claims_per_set=1,
        ).text  # fmt: skip
        ack999 = build_999(per_set, ControlNumbers(11, 11, 1), NOW)
        inputs = status_inputs_from_837(sent)
        ack277 = build_277ca(
            inputs, ControlNumbers(12, 12, 1), NOW, payer_name="PAYER", payer_id="SKMD0",
            receiver_name="MTM BILLING", receiver_id="MTMBILLING", receiver_trace="BENCH",
            receipt_date=date(2026, 11, 21), process_date=date(2026, 11, 21), reference="R1",
        )  # fmt: skip
        for label, data, parse in (("999", ack999, parse_999), ("277CA", ack277, parse_277ca)):
            best_p = float("inf")
            for _ in range(3):
                t = time.perf_counter()
                parse(data)
                best_p = min(best_p, time.perf_counter() - t)
            t = time.perf_counter()
            errs = validate_x12(data)
            t_v = time.perf_counter() - t
            assert errs == [], errs[:3]
            ingest = ""
            if label == "277CA":
                t = time.perf_counter()
                res = await ingest_file(
                    db, file_name="bench.277", content=data.encode(), source="bench", actor="b"
                )
                t_i = time.perf_counter() - t
                assert res.status == "applied", res
                ingest = f"; ingest (link + apply {n:,} claims -> accepted) {_rate(n, t_i)}"
            out.append(
                f"{label}: parse {_rate(n, best_p)}; pyx12 {_rate(n, t_v)}; "
                f"parse/pyx12 ratio {t_v / best_p:,.0f}x{ingest}"
            )
        await db.dispose()
        return out


def main(n: int) -> None:
    svc = services()
    try:
        url = fresh_database(svc.server_url, "mtm_bench_submission")
        print("\n".join(asyncio.run(bench(url, n))))
    finally:
        svc.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
