"""Stopping Redis or killing the worker between intake and processing delays work but
loses nothing: PostgreSQL's outbox is the source of truth and the sweeper re-sends."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from typing import Any

import msgspec
import pytest
from arq.worker import Worker
from sqlalchemy import text

from services.app import create_app
from services.worker import build_worker_settings, stop_worker
from shared.config import Settings
from shared.jobs import ArqQueue, sweep_outbox
from shared.uow import Database
from tests.asgi import asgi_client
from tests.fixtures.sessions import session_payload
from tests.integration.conftest import make_keys

pytestmark = pytest.mark.slow


async def _post_sessions(settings: Settings, database: Database, tenant: str, n: int) -> list[str]:
    keys = await make_keys(database, tenant, tenant + "-x")
    app = create_app(settings, configure_logs=False)
    ids = []
    async with asgi_client(app) as client:
        for i in range(n):
            resp = await client.post(
                "/v1/sessions", json=session_payload(f"D-{i}"), headers=keys.headers("intake")
            )
            assert resp.status_code == 201, resp.text
            ids.append(resp.json()["id"])
    return ids


async def _states(database: Database, ids: list[str]) -> dict[str, str]:
    async with database.transaction() as (conn, _t):
        rows = await conn.execute(
            text("SELECT id::text AS id, state FROM billing.sessions WHERE id::text = ANY(:ids)"),
            {"ids": ids},
        )
        return {r.id: r.state for r in rows}


async def _claimed_events(database: Database, ids: list[str]) -> int:
    async with database.transaction() as (conn, _t):
        n: int = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM audit.events WHERE entity_type = 'session' "
                    "AND action = 'session.not_billable' AND entity_id = ANY(:ids)"
                ),
                {"ids": ids},
            )
        ).scalar_one()
        return n


async def _drain(settings: Settings) -> None:
    kwargs = build_worker_settings(settings)
    kwargs.update(burst=True, handle_signals=False, cron_jobs=[])
    worker = Worker(**kwargs)
    await worker.async_run()
    await worker.close()


async def _work_until_done(
    settings: Settings, database: Database, ids: list[str], seconds: float = 60.0
) -> None:
    """Run a worker, as in production (not burst), until every session has left `received`.
    A burst worker would also wait for the killed worker's in-flight wake-up job, whose arq
    lock only lapses after the job timeout; that job is a no-op by then."""
    kwargs = build_worker_settings(settings)
    kwargs.update(handle_signals=False, cron_jobs=[])
    worker = Worker(**kwargs)
    task = asyncio.create_task(worker.async_run())
    try:
        async with asyncio.timeout(seconds):
            # The database is what is awaited (no event to wait on): poll it.
            while "received" in set((await _states(database, ids)).values()):  # noqa: ASYNC110
                await asyncio.sleep(0.1)
    finally:
        await stop_worker(worker, task, drain_seconds=10)


async def _sweep(settings: Settings, database: Database, redis: Any) -> int:
    return await sweep_outbox(
        {"settings": settings, "db": database, "queue": ArqQueue(redis, settings.queue_name)}
    )


async def _resent(database: Database, tenant: str) -> int:
    """How many of this tenant's outbox rows the sweeper has re-sent (other tests' rows in the
    same database are none of this test's business)."""
    async with database.transaction() as (conn, _t):
        n: int = (
            await conn.execute(
                text("SELECT count(*) FROM core.outbox WHERE tenant_id = :t AND attempts > 0"),
                {"t": tenant},
            )
        ).scalar_one()
        return n


async def _age_outbox(database: Database, tenant: str, seconds: int) -> None:
    """Let `seconds` pass for the tenant's outbox rows (the sweeper compares with now())."""
    async with database.transaction() as (conn, trans):
        await conn.execute(
            text(
                "UPDATE core.outbox SET created_at = created_at - make_interval(secs => :s), "
                "enqueued_at = enqueued_at - make_interval(secs => :s) WHERE tenant_id = :t"
            ),
            {"s": seconds, "t": tenant},
        )
        await trans.commit()


async def test_redis_losing_its_queue_loses_no_session(
    settings: Settings, committed_db: Database, redis: Any, tenant: str
) -> None:
    ids = await _post_sessions(settings, committed_db, tenant, 5)
    assert await redis.zcard(settings.queue_name) >= 1  # one wake-up per time window
    await redis.flushdb()  # Redis restarted without persistence: every queued job is gone

    await _drain(settings)
    assert set((await _states(committed_db, ids)).values()) == {"received"}

    # Within a minute nothing is re-sent (the job may simply be slow)...
    await _age_outbox(committed_db, tenant, 50)
    await _sweep(settings, committed_db, redis)
    assert await _resent(committed_db, tenant) == 0
    # ...after it, the sweeper re-sends every unprocessed outbox row.
    await _age_outbox(committed_db, tenant, 11)
    await _sweep(settings, committed_db, redis)
    assert await _resent(committed_db, tenant) == 5
    await _drain(settings)
    assert set((await _states(committed_db, ids)).values()) == {
        "not_billable"
    }  # no coverage on file: each has its claim
    assert await _claimed_events(committed_db, ids) == 5


async def test_redis_down_at_intake_still_accepts_and_catches_up(
    settings: Settings, committed_db: Database, redis: Any, tenant: str
) -> None:
    down = msgspec.structs.replace(settings, redis_url="redis://127.0.0.1:1/0")
    ids = await _post_sessions(down, committed_db, tenant, 3)  # 201s although Redis is unreachable
    assert await redis.zcard(settings.queue_name) == 0
    await _age_outbox(committed_db, tenant, 61)
    await _sweep(settings, committed_db, redis)
    await _drain(settings)
    assert set((await _states(committed_db, ids)).values()) == {
        "not_billable"
    }  # no coverage on file: each has its claim


async def test_killed_worker_process_loses_nothing_and_repeats_nothing(
    settings: Settings, committed_db: Database, redis: Any, tenant: str
) -> None:
    ids = await _post_sessions(settings, committed_db, tenant, 40)
    env = {
        **os.environ,
        "MTM_DATABASE_URL": settings.database_url,
        "MTM_REDIS_URL": settings.redis_url,
        "MTM_QUEUE_NAME": settings.queue_name,
        "MTM_WORKER_BATCH_SIZE": "1",
        "MTM_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(  # noqa: ASYNC220 - a real process, to kill it with SIGKILL
        [sys.executable, "-m", "services.cli", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    await asyncio.sleep(1.5)
    proc.send_signal(signal.SIGKILL)  # no graceful shutdown: in-flight jobs die with it
    proc.wait(10)

    await _age_outbox(committed_db, tenant, 61)
    await _sweep(settings, committed_db, redis)
    await _work_until_done(settings, committed_db, ids)
    assert set((await _states(committed_db, ids)).values()) == {
        "not_billable"
    }  # no coverage on file: each has its claim
    assert await _claimed_events(committed_db, ids) == 40  # each session moved exactly once


async def test_one_wakeup_per_window_processes_every_session(
    settings: Settings, committed_db: Database, redis: Any, tenant: str
) -> None:
    ids = await _post_sessions(settings, committed_db, tenant, 12)
    queued = await redis.zrange(settings.queue_name, 0, -1)
    assert all(j.decode().startswith("price_sessions_batch:batch:") for j in queued)
    assert len(queued) <= 3  # a handful of windows, not one job per session
    await _drain(settings)
    assert set((await _states(committed_db, ids)).values()) == {
        "not_billable"
    }  # no coverage on file: each has its claim
