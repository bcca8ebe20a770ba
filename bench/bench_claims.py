"""Sessions to claims end to end: intake over HTTP (uvicorn), the arq worker, eligibility on
the date of service (coverage in process), coding, pricing, scrubbing, claim written.

    uv run python bench/bench_claims.py [--sessions 20000] [--patients 5000]

Setup (not timed): a payer, a per-encounter contract and `--patients` covered patients, all
through the API. Then two measurements:
1. end to end: API and worker run together; sessions are posted at 32 keep-alive
   connections and the clock stops when the last one has its claim;
2. worker only: sessions posted with the worker stopped, then one worker drains them.
Reports sessions->claims per second, the outcome mix (every session must end `ready`) and
the worker's peak resident memory. Target (issue 5): >= 500 sessions/s, worker < 300 MB.
MTM_BENCH_DATABASE_URL / MTM_BENCH_REDIS_URL select running services; else embedded ones.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import date, timedelta
from typing import Any

import asyncpg
import httpx

from bench._harness import (
    build_post,
    create_key,
    fresh_database,
    load,
    machine,
    peak_rss_mb,
    services,
    spawn,
    wait_http,
)
from shared.db import asyncpg_dsn
from shared.embedded import free_port
from tests.fixtures.sessions import session_payload

PHARMACY = {
    "npi": "1234567893",
    "tin": "12-3456789",
    "name": "Acme Pharmacy",
    "address": {"line1": "1 Main St", "city": "Town", "state": "NY", "zip": "12345-6789"},
}
TERMS: dict[str, Any] = {
    "billing_model": "per_encounter",
    "time_rule": "midpoint",
    "max_addon_units": 3,
    "telehealth": {
        "allowed_modalities": ["in_person", "video"],
        "rules": [
            {"modality": "in_person", "location": "pharmacy", "place_of_service": "01"},
            {"modality": "video", "location": "home", "place_of_service": "10", "modifier": "95"},
        ],
    },
    "fee_schedule": [
        {"code": c, "charge": ch, "allowed": al, "effective_from": "2025-01-01"}
        for c, ch, al in (
            ("99605", "75.00", "60.00"),
            ("99606", "50.00", "40.00"),
            ("99607", "25.00", "20.00"),
        )
    ],
}


async def setup_coverage(port: int, key: str, patients: int) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as c:
        payer = (
            await c.post(
                "/v1/payers",
                json={
                    "name": "Bench Medicaid",
                    "x12_payer_id": "BENCH1",
                    "receiver_id": "RCV1",
                    "receiver_name": "Clearinghouse",
                    "claim_filing_indicator": "MC",
                    "timely_filing_days": 365,
                    "appeal_window_days": 60,
                    "trading_partner_id": "TP0001",
                },
            )
        ).json()
        contract = (
            await c.post(
                "/v1/contracts",
                json={
                    "payer_id": payer["id"],
                    "name": "MTM",
                    "effective_from": "2025-01-01",
                    "terms": TERMS,
                },
            )
        ).json()
        sem = asyncio.Semaphore(16)

        async def one(i: int) -> None:
            async with sem:
                p = await c.post(
                    "/v1/patients",
                    json={
                        "patient_ref": f"BP-{i}",
                        "first_name": "Ada",
                        "last_name": "Lovelace",
                        "birth_date": "1950-02-03",
                        "sex": "F",
                    },
                )
                p.raise_for_status()
                s = await c.post(
                    f"/v1/patients/{p.json()['id']}/spans",
                    json={
                        "contract_id": contract["id"],
                        "member_id": f"M{i}",
                        "effective_from": "2025-01-01",
                    },
                )
                s.raise_for_status()

        await asyncio.gather(*(one(i) for i in range(patients)))


def sessions(prefix: str, n: int, patients: int, offset: int) -> list[dict[str, Any]]:
    """Distinct (patient, DOS) pairs: follow-up visits, so no frequency limit or duplicate."""
    first = date(2026, 1, 5)
    out = []
    for i in range(n):
        k = i + offset
        out.append(
            session_payload(
                f"{prefix}-{k}",
                patient_ref=f"BP-{k % patients}",
                date_of_service=first + timedelta(days=k // patients),
                service_type="follow_up",
                pharmacy=PHARMACY,
                documented_minutes=20 + k % 40,
            )
        )
    return out


async def counts(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await conn.fetch("SELECT state, count(*) AS n FROM billing.sessions GROUP BY state")
        out = {r["state"]: r["n"] for r in rows}
        claims = await conn.fetch(
            "SELECT status, count(*) AS n FROM billing.claims GROUP BY status"
        )
        out.update({f"claims_{r['status']}": r["n"] for r in claims})
        return out
    finally:
        await conn.close()


def wait_drained(url: str, limit: float = 600) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        if asyncio.run(counts(url)).get("received", 0) == 0:
            break
        time.sleep(0.1)
    return time.perf_counter()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=20000)
    ap.add_argument("--patients", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=32)
    args = ap.parse_args()
    half = args.sessions // 2

    svc = services()
    try:
        db_url = fresh_database(svc.server_url, "mtm_bench_claims")
        intake_key = create_key(db_url, "bench", "intake")
        manager_key = create_key(db_url, "bench", "manager")
        port = free_port()
        env = {
            "MTM_DATABASE_URL": db_url,
            "MTM_REDIS_URL": svc.redis_url,
            "MTM_PORT": str(port),
            "MTM_LOG_LEVEL": "WARNING",
            "MTM_QUEUE_NAME": "mtm:bench-claims",
        }
        api = spawn(["serve"], env)
        worker = None
        try:
            wait_http(port)
            t_setup = time.perf_counter()
            asyncio.run(setup_coverage(port, manager_key, args.patients))
            setup_s = time.perf_counter() - t_setup

            # 1. End to end: intake and worker together.
            worker = spawn(["worker"], env)
            time.sleep(2)
            reqs = [
                build_post("/v1/sessions", intake_key, body)
                for body in sessions("E", half, args.patients, 0)
            ]
            t0 = time.perf_counter()
            posted = asyncio.run(load(port, reqs, concurrency=args.concurrency, seconds=600))
            t_end = wait_drained(db_url)
            e2e_s = t_end - t0
            worker_peak_e2e = peak_rss_mb(worker.pid)
            worker.terminate()
            worker.wait(10)
            worker = None

            # 2. Worker only: a backlog, then one worker drains it.
            reqs = [
                build_post("/v1/sessions", intake_key, body)
                for body in sessions("W", half, args.patients, half)
            ]
            asyncio.run(load(port, reqs, concurrency=args.concurrency, seconds=600))
            worker = spawn(["worker"], env)
            t1 = time.perf_counter()
            t_done = wait_drained(db_url)
            drain_s = t_done - t1  # includes the worker's start-up (~1 s)
            worker_peak = peak_rss_mb(worker.pid)
        finally:
            if worker is not None:
                worker.terminate()
                worker.wait(10)
            api.terminate()
            api.wait(10)

        out = {
            "machine": machine(),
            "setup_patients": args.patients,
            "setup_seconds": round(setup_s, 1),
            "end_to_end": {
                "sessions": half,
                "intake": posted,
                "seconds_until_last_claim": round(e2e_s, 2),
                "sessions_to_claims_per_s": round(half / e2e_s, 1),
                "worker_peak_rss_mb": round(worker_peak_e2e, 1),
            },
            "worker_only": {
                "sessions": half,
                "seconds": round(drain_s, 2),
                "sessions_to_claims_per_s": round(half / drain_s, 1),
                "worker_peak_rss_mb": round(worker_peak, 1),
            },
            "outcomes": asyncio.run(counts(db_url)),
        }
        print(json.dumps(out, indent=2))
    finally:
        svc.close()


if __name__ == "__main__":
    main()
