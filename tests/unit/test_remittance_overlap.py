"""`remittance_post._overlap`: the posting's Python work runs in slices while a statement is in
flight; the statement's result or error, and the work's error, come out as if they had run one
after the other, and the statement is never left running behind the caller's back."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from services.billing.remittance_post import _overlap


async def _statement(log: list[str], steps: int, *, fail_at: int | None = None) -> str:
    for i in range(steps):
        if i == fail_at:
            raise LookupError("statement failed")
        log.append(f"db{i}")
        await asyncio.sleep(0)
    return "done"


def _work(log: list[str], slices: int, *, fail_at: int | None = None) -> Iterator[None]:
    for i in range(slices):
        if i == fail_at:
            raise ValueError("work failed")
        log.append(f"py{i}")
        yield


async def test_the_statement_progresses_between_slices_and_its_result_comes_back() -> None:
    log: list[str] = []
    assert await _overlap(_statement(log, 3), _work(log, 3)) == "done"
    assert sorted(log) == ["db0", "db1", "db2", "py0", "py1", "py2"]
    # interleaved: the statement did not wait for the work to end
    assert log.index("db1") < log.index("py2")


async def test_the_result_waits_for_a_statement_longer_than_the_work() -> None:
    log: list[str] = []
    assert await _overlap(_statement(log, 10), _work(log, 2)) == "done"
    assert log.count("py0") == 1
    assert "db9" in log


async def test_a_failed_statement_stops_the_work_and_raises() -> None:
    log: list[str] = []
    with pytest.raises(LookupError, match="statement failed"):
        await _overlap(_statement(log, 5, fail_at=1), _work(log, 100))
    assert len([e for e in log if e.startswith("py")]) < 10


async def test_failed_work_lets_the_statement_finish_then_raises_its_own_error() -> None:
    log: list[str] = []
    with pytest.raises(ValueError, match="work failed"):
        await _overlap(_statement(log, 6), _work(log, 10, fail_at=1))
    assert "db5" in log  # the connection is idle again when the error reaches the caller


async def test_failed_work_wins_over_a_failed_statement() -> None:
    log: list[str] = []
    with pytest.raises(ValueError, match="work failed"):
        await _overlap(_statement(log, 6, fail_at=3), _work(log, 10, fail_at=1))


async def test_cancelling_the_caller_cancels_the_statement() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def statement() -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    def work() -> Iterator[None]:
        while True:
            yield

    task = asyncio.ensure_future(_overlap(statement(), work()))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled.is_set()
