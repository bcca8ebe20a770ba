"""Pipelining for the 835 posting (`remittance_post`): the posting's Python work runs in
slices of `SLICE` items while a statement is in flight on its connection (`_overlap`), with the
cyclic GC paused while the rows are built (`gc_paused`)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

#: Claims built between two yields to the event loop while a statement is in flight: small
#: enough that the statement's next round trip is not held up for long (about a millisecond).
SLICE = 50


_T = TypeVar("_T")


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC (restored afterwards) while tens of thousands of small acyclic
    dicts and tuples are built: collections would rescan the whole parsed file each time and
    find nothing. It spans awaits (the statements the rows overlap), so other tasks of the
    process run without cyclic collection meanwhile: that only delays their collection."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


async def _overlap(statement: Awaitable[_T], work: Iterable[object]) -> _T:
    """Await `statement` (database work on the posting's connection) while running `work`,
    a generator of synchronous slices of row building that must not touch the connection.

    PostgreSQL executes the statement on its own core meanwhile; between two slices the event
    loop runs, so the statement's I/O (COPY data, the next statement of a sequence) goes on.
    A failed statement stops the work and raises its error. When the work fails, the statement
    is waited for (cancelled first if this task is being cancelled) before the error goes on,
    so the caller's rollback finds the connection idle."""
    task = asyncio.ensure_future(statement)
    try:
        for _ in work:
            await asyncio.sleep(0)
            if task.done() and not task.cancelled() and task.exception() is not None:
                break
    except BaseException as exc:
        if isinstance(exc, asyncio.CancelledError):
            task.cancel()
        await asyncio.wait([task])
        if not task.cancelled():
            task.exception()  # retrieved: the work's error is the one that goes on
        raise
    return await task
