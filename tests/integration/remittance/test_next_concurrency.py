"""`POST /v1/work-items/next` under contention: two billers on separate connections (real
commits) take items at the same time and never get the same one."""

from __future__ import annotations

import asyncio
import uuid

from services.billing.work_queue import open_work_item, take_next
from shared.auth import Principal, Role
from shared.uow import Database, UnitOfWork


async def test_two_billers_never_get_the_same_item(committed_db: Database, tenant: str) -> None:
    n = 40
    async with UnitOfWork(committed_db, None) as uow:
        for i in range(n):
            await open_work_item(
                uow.conn,
                tenant_id=tenant,
                category="coding",
                source="999",
                summary=f"rejected {i}",
                actor="test",
                batch_id=f"B{i}",
                amount_cents=1000 * (i % 7),
                reasons=[{"code": "IK5-R"}],
            )
        # idempotent: the same problem again is the same item
        again = await open_work_item(
            uow.conn,
            tenant_id=tenant,
            category="coding",
            source="999",
            summary="rejected 0",
            actor="test",
            batch_id="B0",
            reasons=[{"code": "IK5-R"}],
        )
        assert again
        await uow.commit()

    billers = [Principal(i, f"biller{i}", tenant, Role.BILLER) for i in (1, 2)]
    taken: dict[str, list[str]] = {b.prefix: [] for b in billers}
    start = asyncio.Event()

    async def work(p: Principal) -> None:
        await start.wait()
        while True:
            async with UnitOfWork(committed_db, None) as uow:
                item = await take_next(uow.conn, p)
                if item is None:
                    return
                await asyncio.sleep(0.002)  # hold the row lock while "working"
                await uow.commit()
            taken[p.prefix].append(item.id)

    tasks = [asyncio.create_task(work(p)) for p in billers]
    start.set()
    await asyncio.gather(*tasks)
    a, b = taken["biller1"], taken["biller2"]
    assert len(a) + len(b) == n
    assert not set(a) & set(b)
    assert a, "biller 1 got work"
    assert b, "biller 2 got work"
    assert len(set(a) | set(b)) == n
    uuid.UUID(a[0])


async def test_daily_refresh_matches_the_documented_formula(db: Database, tenant: str) -> None:
    from datetime import date

    from sqlalchemy import select

    from services.billing.domain.work_items import priority
    from services.billing.tables_remittance import work_items
    from services.billing.work_queue import refresh_priorities

    today = date(2026, 11, 26)
    async with db.transaction() as (conn, trans):
        for i, deadline in enumerate(
            [date(2026, 11, 30), date(2027, 6, 1), date(2026, 1, 1), None]
        ):
            await open_work_item(
                conn,
                tenant_id=tenant,
                category="other",
                source="submission",
                summary="x",
                actor="test",
                batch_id=f"R{i}",
                amount_cents=12345 * (i + 1),
                deadline=deadline,
            )
        assert await refresh_priorities(conn, today=today, tenant_id=tenant) == 4
        for r in await conn.execute(select(work_items).where(work_items.c.tenant_id == tenant)):
            want = priority(r.amount_cents, [r.timely_filing_deadline, r.appeal_deadline], today)
            assert abs(r.priority_score - want.score) < 1e-5
            assert r.past_due == want.past_due
        await trans.commit()
