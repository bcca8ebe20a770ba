"""Coverage through the real stack: a 100,000-row CSV roster import and eligibility checks
over HTTP (uvicorn in a child process, concurrent httpx clients in this one).

Targets (issue 3): roster import <= 10 s; >= 1,000 eligibility checks/s through the API.

Uses MTM_DATABASE_URL's server when set (a scratch database `mtm_bench_coverage` is created
on it), else an embedded PostgreSQL under the temp folder. Redis is not needed.

Run: .venv/bin/python bench/bench_coverage.py [--rows 100000] [--checks 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
import httpx
import msgspec

from shared.db import asyncpg_dsn

DB_NAME = "mtm_bench_coverage"


def _server_url() -> str:
    """MTM_BENCH_DATABASE_URL (a server where the bench may create a database), else an
    embedded PostgreSQL in the temp folder. Called before the event loop starts."""
    url = os.environ.get("MTM_BENCH_DATABASE_URL") or os.environ.get("MTM_DATABASE_URL")
    if url:
        return url
    from shared.embedded import start_postgres

    url, _server = start_postgres(Path(tempfile.gettempdir()) / "mtm-bench-pg", database="postgres")
    return url


def _with_db(url: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def _recreate(server: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(server))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    finally:
        await conn.close()


async def _keys(url: str, tenant: str) -> dict[str, str]:
    from shared.auth import create_api_key
    from shared.db import create_engine

    engine = create_engine(url, pool_size=1, max_overflow=0)
    out = {}
    async with engine.begin() as conn:
        for role in ("manager", "intake"):
            out[role] = (await create_api_key(conn, tenant_id=tenant, role=role)).key
    await engine.dispose()
    return out


def _serve(url: str, port: int) -> None:
    import uvicorn

    os.environ.update(
        MTM_DATABASE_URL=url, MTM_REDIS_URL="", MTM_LOG_LEVEL="WARNING", MTM_DB_POOL_SIZE="20"
    )
    workers = int(os.environ.get("MTM_WEB_WORKERS", "1"))
    uvicorn.run(
        "services.app:app_from_env",
        factory=True,
        workers=workers,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        lifespan="on",
    )


def _roster(rows: int, seed: int = 7) -> str:
    rnd = random.Random(seed)
    lines = [
        "member_id,last_name,first_name,birth_date,sex,address1,city,state,zip,"
        "effective_from,effective_to,rate_tier,opt_out_date,part_d_eligible"
    ]
    starts = [date(2025, m, 1).isoformat() for m in range(1, 13)]
    for i in range(rows):
        start = rnd.choice(starts)
        end = "2026-06-30" if i % 7 == 0 else ""
        opt = "2026-03-01" if i % 23 == 0 else ""
        lines.append(
            f"M{i:07d},Last{i},First{i},19{40 + i % 50}-0{1 + i % 9}-1{i % 10},"
            f"{'MF'[i % 2]},{i} Main St,Springfield,IL,62701,{start},{end},"
            f"{'standard' if i % 3 else 'complex'},{opt},{'Y' if i % 11 == 0 else 'N'}"
        )
    return "\n".join(lines) + "\n"


def _terms() -> dict[str, Any]:
    return {
        "billing_model": "per_encounter",
        "frequency_limits": [
            {"service_type": "CMR", "max_count": 1, "period": "plan_year"},
            {"service_type": "ANY", "max_count": 8, "period": "plan_year"},
        ],
        "fee_schedule": [
            {"code": "99605", "charge": "75.00", "allowed": "60.00", "effective_from": "2025-01-01"}
        ],
        "exclusions": ["PART_D_ELIGIBLE"],
    }


async def _wait_up(base: str) -> None:
    async with httpx.AsyncClient(base_url=base) as c:
        for _ in range(1200):  # up to a minute: several workers start slowly on a busy machine
            try:
                if (await c.get("/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("server did not start")


async def run(server: str, rows: int, checks: int, concurrency: int) -> None:
    await _recreate(server)
    url = _with_db(server, DB_NAME)
    from shared import migrate

    migrate.upgrade(url)
    keys = await _keys(url, "bench")
    manager = {"Authorization": f"Bearer {keys['manager']}"}
    {"Authorization": f"Bearer {keys['intake']}"}
    from shared.embedded import free_port

    port = free_port()
    proc = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(url, port), daemon=False
    )
    proc.start()
    base = f"http://127.0.0.1:{port}"
    try:
        await _wait_up(base)
        async with httpx.AsyncClient(base_url=base, timeout=120) as c:
            payer = (
                await c.post(
                    "/v1/payers",
                    headers=manager,
                    json={
                        "name": "Bench Medicaid",
                        "x12_payer_id": "BENCH1",
                        "receiver_id": "RCV1",
                        "receiver_name": "Clearinghouse",
                        "claim_filing_indicator": "MC",
                        "timely_filing_days": 95,
                        "appeal_window_days": 60,
                        "trading_partner_id": "TP1",
                    },
                )
            ).json()
            contract = (
                await c.post(
                    "/v1/contracts",
                    headers=manager,
                    json={
                        "payer_id": payer["id"],
                        "name": "MTM",
                        "effective_from": "2025-01-01",
                        "terms": _terms(),
                    },
                )
            ).json()
            roster = _roster(rows).encode()
            params = {"payer_id": payer["id"], "contract_id": contract["id"]}
            t0 = time.perf_counter()
            resp = await c.post("/v1/rosters/csv", params=params, content=roster, headers=manager)
            import_s = time.perf_counter() - t0
            assert resp.status_code == 201, resp.text[:500]
            summary = resp.json()
            # A second roster a third of the members also appear on (1-3 spans per patient),
            # with retro-terminations: new versions of existing spans.
            second = _roster(rows // 3, seed=8)
            t0 = time.perf_counter()
            resp2 = await c.post(
                "/v1/rosters/csv", params=params, content=second.encode(), headers=manager
            )
            second_s = time.perf_counter() - t0
            assert resp2.status_code == 201, resp2.text[:500]
            t0 = time.perf_counter()
            replay = await c.post("/v1/rosters/csv", params=params, content=roster, headers=manager)
            replay_s = time.perf_counter() - t0
            assert replay.json()["replayed"] is True

        rnd = random.Random(11)
        bodies = [
            {
                "patient_ref": f"M{rnd.randrange(rows):07d}",
                "date_of_service": (
                    date(2025, 1, 1) + timedelta(days=rnd.randrange(540))
                ).isoformat(),
                "service_type": rnd.choice(["CMR", "TMR", "FOLLOW_UP"]),
            }
            for _ in range(checks)
        ]
        # A minimal keep-alive HTTP/1.1 client: httpx costs more CPU per request than the
        # server does, and on a small machine it would measure itself, not the API.
        payloads = [msgspec.json.encode(b) for b in bodies]
        auth = f"Bearer {keys['intake']}"
        eligible = 0
        queue = iter(payloads)

        async def worker() -> None:
            nonlocal eligible
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                for payload in queue:
                    writer.write(
                        (
                            "POST /v1/eligibility/check HTTP/1.1\r\nHost: bench\r\n"
                            f"Authorization: {auth}\r\nContent-Type: application/json\r\n"
                            f"Content-Length: {len(payload)}\r\n\r\n"
                        ).encode()
                        + payload
                    )
                    head = await reader.readuntil(b"\r\n\r\n")
                    if not head.startswith(b"HTTP/1.1 200"):
                        raise RuntimeError(head.decode()[:200])
                    length = 0
                    for line in head.split(b"\r\n"):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":", 1)[1])
                    body = await reader.readexactly(length)
                    eligible += body.startswith(b'{"eligible":true')
            finally:
                writer.close()

        warm = iter(payloads[:200])
        queue, saved = warm, queue
        await worker()
        queue = saved
        eligible = 0
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        check_s = time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.join(5)

    print(
        f"roster import, {rows:,} CSV rows over HTTP: {import_s:.2f} s "
        f"({rows / import_s:,.0f} rows/s; target <= 10 s) "
        f"[{summary['patients_created']:,} patients, {summary['span_versions_added']:,} spans]"
    )
    print(f"second roster, {rows // 3:,} rows (existing members, new versions): {second_s:.2f} s")
    print(f"re-import of the same file (replayed, no changes): {replay_s * 1000:.0f} ms")
    print(
        f"eligibility checks over HTTP: {checks:,} in {check_s:.2f} s = "
        f"{checks / check_s:,.0f}/s (target >= 1,000/s; {concurrency} concurrent clients, "
        f"1 uvicorn process, {os.cpu_count()} CPUs; {eligible / checks:.0%} eligible)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--checks", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    asyncio.run(run(_server_url(), args.rows, args.checks, args.concurrency))


if __name__ == "__main__":
    main()
