"""`take_next` as two statements on the unit of work's asyncpg connection: the item and its
assignment event commit together, the chain verifies, filters still apply, and an event
appended to the item's chain between the take's two statements is not overwritten."""

from __future__ import annotations

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


async def test_an_event_appended_between_the_two_statements_is_kept(
    committed_db: Database, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    (item_id,) = await _items(committed_db, tenant, 1)
    real_driver = work_queue.driver
    raced = []

    class Racing:
        """Appends a note event to the chain just before the take's event is inserted,
        as a concurrent transaction committing in between would."""

        def __init__(self, drv: Any, conn: Any) -> None:
            self._drv, self._conn = drv, conn

        async def fetchval(self, sql: str, *args: Any) -> Any:
            if not raced:
                raced.append(True)
                await audit.append(
                    self._conn,
                    tenant_id=tenant,
                    entity_type="work_item",
                    entity_id=item_id,
                    action="work_item.note_added",
                    actor="other",
                    after={"chars": 3},
                )
            return await self._drv.fetchval(sql, *args)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._drv, name)

    async def racing_driver(conn: Any) -> Any:
        return Racing(await real_driver(conn), conn)

    monkeypatch.setattr(work_queue, "driver", racing_driver)
    async with UnitOfWork(committed_db, None) as uow:
        item = await take_next(uow.conn, Principal(1, "biller", tenant, Role.BILLER))
        await uow.commit()
    assert item is not None
    assert raced
    events = await _history(committed_db, tenant, item_id)
    assert [e.action for e in events] == [
        "work_item.opened",
        "work_item.note_added",
        "work_item.assigned",
    ]
    assert audit.verify_chain(events).valid
