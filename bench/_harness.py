"""Shared benchmark plumbing: services (machine or embedded), a fresh database, subprocesses,
a light asyncio HTTP/1.1 load generator (cheap enough to share 2 cores with the server)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared.db import asyncpg_dsn  # noqa: E402
from shared.embedded import start_postgres, start_redis  # noqa: E402


def machine() -> str:
    cpus = os.cpu_count()
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            mem = f"{int(f.readline().split()[1]) // 1024 // 1024} GiB"
    except OSError:
        pass
    return f"{platform.machine()}, {cpus} cores, {mem}, Python {platform.python_version()}"


@dataclass
class Services:
    server_url: str
    redis_url: str
    cleanup: list[Any] = field(default_factory=list)

    def close(self) -> None:
        for fn in reversed(self.cleanup):
            with contextlib.suppress(Exception):  # best effort at exit
                fn()


def services() -> Services:
    """MTM_BENCH_DATABASE_URL / MTM_BENCH_REDIS_URL, else the embedded ones under a temp dir."""
    db = os.environ.get("MTM_BENCH_DATABASE_URL", "")
    redis = os.environ.get("MTM_BENCH_REDIS_URL", "")
    svc = Services(db, redis)
    if not db:
        url, server = start_postgres(
            Path(tempfile.gettempdir()) / "mtm-billing-bench-pg", database="postgres"
        )
        svc.server_url = url
        svc.cleanup.append(server.cleanup)
    if not redis:
        folder = Path(tempfile.mkdtemp(prefix="mtm-bench-redis-"))
        url, proc = start_redis(folder)
        svc.redis_url = url
        svc.cleanup.append(proc.kill)
    return svc


def fresh_database(server_url: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    async def go() -> None:
        conn = await asyncpg.connect(asyncpg_dsn(server_url))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(go())
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    from shared import migrate

    migrate.upgrade(url)
    return url


def create_key(database_url: str, tenant: str, role: str) -> str:
    from services.cli import _create_key

    return asyncio.run(_create_key(database_url, tenant, role, "bench"))


def spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    full = {**os.environ, **env}
    return subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "services.cli", *args],
        cwd=ROOT,
        env=full,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def peak_rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def wait_http(port: int, path: str = "/ready", timeout: float = 30) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server on {port} not ready")


async def _one_connection(
    port: int,
    requests: list[bytes],
    stop_at: float,
    latencies: list[float],
    statuses: dict[int, int],
    start_index: int,
    step: int,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = start_index
    try:
        while time.perf_counter() < stop_at and i < len(requests):
            t0 = time.perf_counter()
            writer.write(requests[i])
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - t0)
            code = int(status_line.split()[1])
            statuses[code] = statuses.get(code, 0) + 1
            i += step
    finally:
        writer.close()


def build_post(path: str, key: str, body: dict[str, Any]) -> bytes:
    payload = json.dumps(body, separators=(",", ":")).encode()
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload


def build_get(path: str, key: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n\r\n".encode()


async def load(
    port: int, requests: list[bytes], *, concurrency: int, seconds: float
) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    t0 = time.perf_counter()
    stop_at = t0 + seconds
    await asyncio.gather(
        *[
            _one_connection(port, requests, stop_at, latencies, statuses, c, concurrency)
            for c in range(concurrency)
        ]
    )
    elapsed = time.perf_counter() - t0
    latencies.sort()
    n = len(latencies)

    def pct(p: float) -> float:
        return latencies[min(n - 1, int(p * n))] * 1000 if n else float("nan")

    return {
        "requests": n,
        "seconds": round(elapsed, 2),
        "rps": round(n / elapsed, 1),
        "p50_ms": round(pct(0.50), 2),
        "p99_ms": round(pct(0.99), 2),
        "statuses": statuses,
    }
