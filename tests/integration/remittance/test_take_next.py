"""`take_next` / `take_next_fast`: one statement assigns the item and appends its audit event
(hash computed in SQL); they commit together, the chain verifies, filters still apply, and an
event another transaction appends to the item's chain during the take is kept."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.billing import work_queue
from services.billing.work_queue import open_work_item, take_next
from shared import audit
from shared.auth import Principal, Role
from shared.uow import Database, UnitOfWork


async def _items(db: Database, tenant: str, n: int, **kw: Any) -> list[str]:
    ids = []
    async with UnitOfWork(db, None) as uow:
        for i in range(n):
            ids.append(
                await open_work_item(
                    uow.conn,
                    tenant_id=tenant,
                    category=kw.get("category", "coding"),
                    source="999",
                    summary=f"rejected {i}",
                    actor="test",
                    batch_id=f"{kw.get('category', 'coding')}{i}",
                    amount_cents=1000 * (i + 1),
                    reasons=[{"code": "IK5-R", "n": i}],
                )
            )
        await uow.commit()
    return ids


async def _history(db: Database, tenant: str, item_id: str) -> list[audit.AuditEvent]:
    async with db.transaction() as (conn, _t):
        return await audit.history(
            conn, tenant_id=tenant, entity_type="work_item", entity_id=item_id
        )


async def test_next_assigns_audits_and_commits_together(
    committed_db: Database, tenant: str
) -> None:
    ids = await _items(committed_db, tenant, 3)
    p = Principal(1, 'biller-o\'brien "x" \\ é', tenant, Role.BILLER)
    async with UnitOfWork(committed_db, None) as uow:
        item = await take_next(uow.conn, p, request_id="req-1")
        await uow.commit()
    assert item is not None
    assert item.id == ids[-1]  # the largest amount has the highest priority
    assert item.status == "in_progress"
    assert item.assignee == p.actor
    assert item.reasons == [{"code": "IK5-R", "n": 2}]
    assert item.version == 2
    events = await _history(committed_db, tenant, item.id)
    assert [e.action for e in events] == ["work_item.opened", "work_item.assigned"]
    assert events[-1].after == {"status": "in_progress", "assignee": p.actor}
    assert events[-1].request_id == "req-1"
    assert audit.verify_chain(events).valid

    # rolled back: neither the assignment nor its event remains
    async with UnitOfWork(committed_db, None) as uow:
        rolled = await take_next(uow.conn, p)
    assert rolled is not None
    assert rolled.id == ids[1]
    assert [e.action for e in await _history(committed_db, tenant, rolled.id)] == [
        "work_item.opened"
    ]
    async with UnitOfWork(committed_db, None) as uow:
        again = await take_next(uow.conn, p)
        await uow.commit()
    assert again is not None
    assert again.id == ids[1]


async def test_next_filters_by_category(db: Database, tenant: str) -> None:
    await _items(db, tenant, 2, category="coding")
    wanted = await _items(db, tenant, 1, category="authorization")
    p = Principal(1, "biller", tenant, Role.BILLER)
    async with UnitOfWork(db, None) as uow:
        item = await take_next(uow.conn, p, category="authorization")
        none = await take_next(uow.conn, p, category="authorization", route="nobody")
        await uow.commit()
    assert item is not None
    assert item.id == wanted[0]
    assert none is None


async def _blocked_on_lock(db: Database, seconds: float = 10.0) -> None:
    """Wait until some backend waits on a lock (the take's insert on the chain's index)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        async with db.raw() as drv:
            waiting = await drv.fetchval(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        if waiting:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the take never waited on the chain")


@pytest.mark.parametrize("fast", [True, False], ids=["raw", "unit_of_work"])
async def test_an_event_appended_to_the_chain_during_the_take_is_kept(
    committed_db: Database, tenant: str, fast: bool
) -> None:
    """Another transaction appends to the item's chain (seq 2) and commits while the take
    runs: the take's event collides with it, the whole statement is undone and runs again on
    a fresh snapshot, so the chain is opened -> note -> assigned and verifies."""
    (item_id,) = await _items(committed_db, tenant, 1)
    p = Principal(1, "biller", tenant, Role.BILLER)
    async with committed_db.transaction() as (other, trans):
        await audit.append(
            other,
            tenant_id=tenant,
            entity_type="work_item",
            entity_id=item_id,
            action="work_item.note_added",
            actor="other",
            after={"chars": 3},
        )

        async def take() -> Any:
            if fast:
                return await work_queue.take_next_fast(committed_db, p)
            async with UnitOfWork(committed_db, None) as uow:
                got = await take_next(uow.conn, p)
                await uow.commit()
                return got

        task = asyncio.create_task(take())
        await _blocked_on_lock(committed_db)
        await trans.commit()
    item = await asyncio.wait_for(task, 10)
    assert item is not None
    assert item.id == item_id
    assert item.version == 2
    events = await _history(committed_db, tenant, item_id)
    assert [e.action for e in events] == [
        "work_item.opened",
        "work_item.note_added",
        "work_item.assigned",
    ]
    assert [e.seq for e in events] == [1, 2, 3]
    assert audit.verify_chain(events).valid


async def test_the_fast_take_writes_the_same_event_as_the_audit_module(
    committed_db: Database, tenant: str
) -> None:
    """The hash computed in SQL equals `audit.event_hash` over the stored event, for an
    actor and request id that need JSON escaping and non-ASCII bytes."""
    await _items(committed_db, tenant, 2)
    p = Principal(1, 'b\u0001 "q" \\ é \n 漢', tenant, Role.BILLER)
    item = await work_queue.take_next_fast(committed_db, p, request_id='r"1\\')
    assert item is not None
    events = await _history(committed_db, tenant, item.id)
    last = events[-1]
    assert last.actor == p.actor
    assert last.request_id == 'r"1\\'
    assert last.reason == "next"
    assert last.before == {"status": "open", "assignee": None}
    assert last.after == {"status": "in_progress", "assignee": p.actor}
    assert audit.verify_chain(events).valid
