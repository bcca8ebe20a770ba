"""Remittance and work queue (issue 7).

    uv run python bench/bench_remittance.py [--claims 10000] [--pyx12-claims 1000]
        [--queue 100000] [--billers 16] [--takes 150]

Setup (not timed): `--claims` submitted claims for one tenant, their 837P, and the payer
simulator's 835 for them (one ST, 15% denials with the default CARC/RARC mix, PR copays).
Then:
1. ingest: `ingest_835` in a fresh process (parse, balance, post, work items, commit);
   claims/s and the process's peak resident memory. Target >= 5,000 claims/s, < 300 MB.
2. parse + balance alone vs pyx12 validation (per claim, pyx12 on a `--pyx12-claims` file
   from the same simulator) and their ratio. Target >= 20,000 claims/s.
3. `next`: `--queue` open work items for one tenant, `--billers` concurrent billers each on its
   own connection taking `--takes` items (SELECT ... FOR UPDATE SKIP LOCKED + assign + audit,
   one transaction each); p50/p99 latency. Target p99 < 20 ms.
MTM_BENCH_DATABASE_URL selects a running PostgreSQL; else an embedded one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import fresh_database, machine, services
from devtools.payer_simulator import PayerSimulator, SimulatorRules
from services.billing.submission_build import claim_837
from shared.db import create_engine
from shared.x12.envelope import ControlNumbers
from shared.x12.x835 import check_balance, parse_835
from shared.x12.x837p import Receiver, Submitter, build_837p

TENANT = "bench-remit"
QUEUE_TENANT = "bench-queue"
PAYER = {
    "payer_id": "00000000-0000-4000-8000-000000000001",
    "name": "Bench Medicaid",
    "x12_payer_id": "BENCH1",
    "receiver_id": "RCV1",
    "receiver_name": "Clearinghouse",
    "claim_filing_indicator": "MC",
    "timely_filing_days": 365,
    "appeal_window_days": 60,
    "transport": "directory",
    "trading_partner_id": "TP1",
}
BILLING = {
    "npi": "1234567893",
    "entity_type": "2",
    "tin": "123456789",
    "name": "Acme Pharmacy",
    "taxonomy": "3336C0003X",
    "address": {"line1": "1 Main St", "line2": "", "city": "Town", "state": "NY",
                "zip": "123456789"},
}  # fmt: skip
RENDERING = {
    "npi": "1245319599",
    "entity_type": "1",
    "first_name": "Pat",
    "last_name": "Pharmacist",
    "taxonomy": "183500000X",
}
DOS = date(2026, 11, 10)
NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def _claims(n: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows, lines = [], []
    for i in range(n):
        cid = str(uuid.uuid4())
        rows.append(
            {
                "id": cid,
                "tenant_id": TENANT,
                "session_id": str(uuid.uuid4()),
                "claim_version": 1,
                "frequency_code": "1",
                "patient_control_number": f"BENCH-{i:08d}",
                "status": "submitted",
                "status_reason": "sent",
                "patient_ref": f"P-{i}",
                "service_type": "CMR",
                "date_of_service": DOS,
                "place_of_service": "01",
                "billing_tin": "123456789",
                "total_charge_cents": 15000,
                "expected_cents": 12000,
                "timely_filing_deadline": date(2027, 11, 10),
                "billing_provider": BILLING,
                "rendering_provider": RENDERING,
                "subscriber": {
                    "member_id": f"M{i:07d}",
                    "relationship": "18",
                    "first_name": "Jane",
                    "last_name": "Doe",
                    "birth_date": "1950-03-04",
                    "sex": "F",
                    "address1": "2 Oak St",
                    "city": "Town",
                    "state": "NY",
                    "zip": "12345",
                },
                "payer": PAYER,
                "diagnoses": ["E119", "I10"],
                "coding": {},
                "eligibility": {"payer": PAYER},
            }
        )
        for no, (code, units, cents) in enumerate((("99605", 1, 10000), ("99607", 2, 5000)), 1):
            lines.append(
                {
                    "claim_id": cid,
                    "line_no": no,
                    "procedure_code": code,
                    "modifiers": [],
                    "units": units,
                    "unit_charge_cents": cents // units,
                    "unit_expected_cents": cents // units,
                    "charge_cents": cents,
                    "expected_cents": cents,
                    "date_of_service": DOS,
                    "diagnosis_pointers": [1, 2],
                }
            )
    return rows, lines


def _835(rows: list[dict[str, Any]], lines: list[dict[str, Any]], seed: int) -> str:
    by_claim: dict[str, list[dict[str, Any]]] = {}
    for ln in lines:
        by_claim.setdefault(ln["claim_id"], []).append(ln)
    built = [claim_837(r, by_claim[r["id"]]) for r in rows]
    text = build_837p(
        Submitter("ACME PHARMACY BILLING", "SUBMIT001", "JANE DOE", "5555551234"),
        Receiver("BENCH MEDICAID", "RECEIVE01"),
        built,
        ControlNumbers(seed, seed, 1),
        datetime(2026, 11, 20, 12),
        batch_reference=f"B{seed}",
        max_claims_per_set=len(built),
    )
    sim = PayerSimulator(
        SimulatorRules(seed=seed, reject_999_rate=0, reject_277_rate=0, reversal_rate=0),
        now=lambda: NOW,
    )
    files = [f for f in sim.adjudicate_file(f"bench{seed}.x12", text) if f.kind == "835"]
    assert len(files) == 1
    return files[0].text


async def _setup_claims(url: str, n: int) -> None:
    from services.billing.tables import claim_lines, claims

    rows, lines = _claims(n)
    engine = create_engine(url, pool_size=1, max_overflow=0)
    async with engine.begin() as conn:
        for i in range(0, len(rows), 2000):
            await conn.execute(claims.insert(), rows[i : i + 2000])
        for i in range(0, len(lines), 4000):
            await conn.execute(claim_lines.insert(), lines[i : i + 4000])
    await engine.dispose()


async def _ingest_child(url: str, path: str) -> dict[str, Any]:
    from services.billing.remittance import ingest_835
    from shared.uow import Database, UnitOfWork

    content = await asyncio.to_thread(Path(path).read_bytes)
    engine = create_engine(url, pool_size=1, max_overflow=0)
    db = Database(engine)
    async with db.transaction() as (conn, _t):  # warm the connection and code tables
        from services.billing.remittance_codes import db_code_tables

        await db_code_tables(conn)
    rss_before = _peak_rss_mb()
    start = time.perf_counter()
    async with UnitOfWork(db, None) as uow:
        result = await ingest_835(
            uow.conn, tenant_id=TENANT, content=content, source="upload", actor="bench"
        )
        await uow.commit()
    elapsed = time.perf_counter() - start
    await engine.dispose()
    return {
        "status": result.status,
        "claims": result.claims,
        "matched": result.matched,
        "work_items": result.work_items,
        "seconds": round(elapsed, 3),
        "claims_per_s": round(result.claims / elapsed),
        "peak_rss_mb": _peak_rss_mb(),
        "rss_before_mb": rss_before,
        "inherited_ru_maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def _peak_rss_mb() -> float:
    """This process's own peak resident memory (VmHWM). `ru_maxrss` is not it: the child is
    started with vfork+exec, and Linux carries the parent's high-water mark across exec into
    ru_maxrss, so it reported the bench parent's memory (claim rows, 837, simulator)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return float("nan")  # pragma: no cover - not Linux


def _parse_rate(text: str, repeat: int = 3) -> float:
    best = 1e9
    n = 0
    for _ in range(repeat):
        start = time.perf_counter()
        remits = parse_835(text)
        for r in remits:
            assert check_balance(r) == []
        best = min(best, time.perf_counter() - start)
        n = sum(len(r.claims) for r in remits)
    return n / best


def _pyx12_rate(text: str) -> float:
    from shared.x12.validate import validate_x12

    n = sum(len(r.claims) for r in parse_835(text))
    start = time.perf_counter()
    errors = validate_x12(text)
    elapsed = time.perf_counter() - start
    assert errors == [], errors[:3]
    return n / elapsed


async def _queue(url: str, n: int, billers: int, takes: int) -> dict[str, Any]:
    from services.billing.work_queue import take_next_fast
    from shared.auth import Principal, Role
    from shared.uow import Database

    engine = create_engine(url, pool_size=billers + 2, max_overflow=0)
    async with engine.begin() as conn:
        from sqlalchemy import text

        await conn.execute(
            text(
                """
                INSERT INTO billing.work_items (id, tenant_id, dedupe_key, source, category,
                    summary, recommended_action, recommendation, route, amount_cents,
                    priority_score, status)
                SELECT gen_random_uuid(), :t, 'bench|' || g, '835', 'coding', 'bench item',
                       'correct_resubmit', 'fix it', 'coder', (g % 50000),
                       round(CAST(random() * 60 AS numeric), 6), 'open'
                FROM generate_series(1, :n) g
                """
            ),
            {"t": QUEUE_TENANT, "n": n},
        )
        await conn.execute(text("ANALYZE billing.work_items"))
    db = Database(engine, raw_pool_size=billers + 2)
    latencies: list[float] = []
    seen: set[str] = set()
    dupes = 0

    async def biller(i: int) -> None:
        nonlocal dupes
        p = Principal(i, f"bench{i:02d}", QUEUE_TENANT, Role.BILLER)
        for _ in range(takes):
            start = time.perf_counter()
            item = await take_next_fast(db, p)
            latencies.append(time.perf_counter() - start)
            if item is not None:
                if item.id in seen:
                    dupes += 1
                seen.add(item.id)

    await take_next_fast(db, Principal(99, "warm", QUEUE_TENANT, Role.BILLER))  # warm-up
    start = time.perf_counter()
    await asyncio.gather(*(biller(i) for i in range(billers)))
    wall = time.perf_counter() - start
    await engine.dispose()
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 2)

    return {
        "open_items": n,
        "billers": billers,
        "takes": len(latencies),
        "distinct_items": len(seen),
        "same_item_twice": dupes,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": round(latencies[-1] * 1000, 2),
        "takes_per_s": round(len(latencies) / wall),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--claims", type=int, default=10_000)
    ap.add_argument("--pyx12-claims", type=int, default=1_000)
    ap.add_argument("--queue", type=int, default=100_000)
    ap.add_argument("--billers", type=int, default=16)
    ap.add_argument("--takes", type=int, default=150)
    ap.add_argument("--child", nargs=2, metavar=("URL", "FILE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        if os.environ.get("BENCH_PROFILE"):
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.enable()
            out = asyncio.run(_ingest_child(*args.child))
            prof.disable()
            pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(40)
        else:
            out = asyncio.run(_ingest_child(*args.child))
        print(json.dumps(out))
        return
    svc = services()
    try:
        url = fresh_database(svc.server_url or svc.database_url, "mtm_bench_remittance")
        asyncio.run(_setup_claims(url, args.claims))
        rows, _lines = _claims(args.claims)
        # the 835 must name the claims in the database: rebuild from the stored PCNs
        text = _835(_stored(url, rows), lines_for(url), seed=7)
        path = Path(tempfile.gettempdir()) / f"bench_835_{os.getpid()}.x12"
        path.write_text(text)
        proc = subprocess.run(  # noqa: S603
            [sys.executable, __file__, "--child", url, str(path)],
            capture_output=True,
            text=True,
            check=True,
        )
        sys.stderr.write(proc.stderr[-12000:])
        ingest = json.loads(proc.stdout.strip().splitlines()[-1])
        parse = _parse_rate(text)
        small = _835(_stored(url, rows)[: args.pyx12_claims], lines_for(url), seed=8)
        pyx12 = _pyx12_rate(small)
        queue = asyncio.run(_queue(url, args.queue, args.billers, args.takes))
        path.unlink(missing_ok=True)
        out = {
            "machine": machine(),
            "ingest_835": ingest,
            "parse_balance_claims_per_s": round(parse),
            "pyx12_claims_per_s": round(pyx12, 1),
            "parse_vs_pyx12": round(parse / pyx12, 1),
            "next": queue,
        }
        print(json.dumps(out, indent=2))
    finally:
        for fn in svc.cleanup:
            fn()


_CACHE: dict[str, Any] = {}


def _stored(url: str, _rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if "rows" not in _CACHE:
        _CACHE["rows"], _CACHE["lines"] = asyncio.run(_load(url))
    return list(_CACHE["rows"])


def lines_for(url: str) -> list[dict[str, Any]]:
    _stored(url, [])
    return list(_CACHE["lines"])


async def _load(url: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from sqlalchemy import select

    from services.billing.tables import claim_lines, claims

    engine = create_engine(url, pool_size=1, max_overflow=0)
    async with engine.connect() as conn:
        rows = [
            dict(r._mapping)
            for r in await conn.execute(
                select(claims).where(claims.c.tenant_id == TENANT).order_by(claims.c.id)
            )
        ]
        lines = [
            dict(r._mapping)
            for r in await conn.execute(
                select(claim_lines).order_by(claim_lines.c.claim_id, claim_lines.c.line_no)
            )
        ]
    await engine.dispose()
    return rows, lines


if __name__ == "__main__":
    main()
