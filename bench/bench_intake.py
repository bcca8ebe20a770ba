"""Session intake through the real app (uvicorn), PostgreSQL and Redis, then the worker.

    make bench-intake        (or: uv run python bench/bench_intake.py)

Measures: requests/s and p50/p99 latency for POST /v1/sessions at 32 concurrent keep-alive
connections for 20 s (load generator on the same 2 cores); then sessions moved by one worker
process per second; resident memory of API and worker. MTM_BENCH_DATABASE_URL and
MTM_BENCH_REDIS_URL select running services; otherwise embedded ones are started.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import asyncpg

from bench._harness import (
    build_post,
    create_key,
    fresh_database,
    load,
    machine,
    peak_rss_mb,
    rss_mb,
    services,
    spawn,
    wait_http,
)
from shared.db import asyncpg_dsn
from shared.embedded import free_port
from tests.fixtures.sessions import session_payload


async def count_received(url: str) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        n: int = await conn.fetchval(
            "SELECT count(*) FROM billing.sessions WHERE state = 'received'"
        )
        return n
    finally:
        await conn.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--concurrency", type=int, default=32)
    args = ap.parse_args()

    svc = services()
    try:
        db_url = fresh_database(svc.server_url, "mtm_bench_intake")
        key = create_key(db_url, "bench", "intake")
        port = free_port()
        env = {
            "MTM_DATABASE_URL": db_url,
            "MTM_REDIS_URL": svc.redis_url,
            "MTM_PORT": str(port),
            "MTM_LOG_LEVEL": "WARNING",
            "MTM_QUEUE_NAME": "mtm:bench",
        }
        api = spawn(["serve"], env)
        try:
            wait_http(port)
            n_max = int(args.seconds * 4000) + 2000
            reqs = [
                build_post("/v1/sessions", key, session_payload(f"B-{i}")) for i in range(n_max)
            ]
            warm = asyncio.run(load(port, reqs[:1000], concurrency=args.concurrency, seconds=2))
            result = asyncio.run(
                load(port, reqs[1000:], concurrency=args.concurrency, seconds=args.seconds)
            )
            api_rss = rss_mb(api.pid)
            api_peak = peak_rss_mb(api.pid)
        finally:
            api.terminate()
            api.wait(10)

        pending = asyncio.run(count_received(db_url))
        worker = spawn(["worker"], env)
        t0 = time.perf_counter()
        try:
            while True:
                left = asyncio.run(count_received(db_url))
                if left == 0 or time.perf_counter() - t0 > 300:
                    break
                time.sleep(0.25)
            drained = time.perf_counter() - t0
            worker_rss = peak_rss_mb(worker.pid)
        finally:
            worker.terminate()
            worker.wait(10)
        out = {
            "machine": machine(),
            "warmup": warm,
            "intake": result,
            "api_rss_mb": round(api_rss, 1),
            "api_peak_rss_mb": round(api_peak, 1),
            "worker_sessions": pending,
            "worker_seconds": round(drained, 2),
            "worker_sessions_per_s": round(pending / drained, 1) if drained else None,
            "worker_peak_rss_mb": round(worker_rss, 1),
        }
        print(json.dumps(out, indent=2))
    finally:
        svc.close()


if __name__ == "__main__":
    main()
