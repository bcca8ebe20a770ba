"""Priority uses the payer's historical overturn rate for the item's primary reason code:
0.25 + 0.75 x (appeals won / appeals decided in the last year), once at least 5 are decided;
unknown below that (factor 1). New items and the daily refresh apply the same factor."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from sqlalchemy import insert, select

from services.billing.domain.work_items import WorkItemCategory, priority
from services.billing.tables_remittance import appeals, work_items
from services.billing.work_queue import WorkItemSpec, create_work_item, refresh_priorities
from shared.uow import Database

TODAY = date(2026, 11, 26)
DEADLINE = date(2026, 12, 20)


def _spec(payer: str, code: str, batch: str) -> WorkItemSpec:
    return WorkItemSpec(
        category=WorkItemCategory.OTHER,
        source="835",
        summary=f"denied {code}",
        batch_id=batch,
        payer_id=payer,
        amount_cents=20_000,
        reasons=({"code": code, "group": "CO"},),
        timely_filing_deadline=DEADLINE,
    )


async def _history(conn: object, tenant: str, payer: str, code: str, won: int, lost: int) -> None:
    """Decided appeals of earlier items with this payer and primary reason."""
    for i in range(won + lost):
        item_id, _ = await create_work_item(
            conn,  # type: ignore[arg-type]
            tenant_id=tenant,
            spec=_spec(payer, code, f"old-{code}-{i}"),
            actor="test",
            today=TODAY,
        )
        await conn.execute(  # type: ignore[attr-defined]
            insert(appeals).values(
                id=str(uuid.uuid4()),
                tenant_id=tenant,
                claim_id=str(uuid.uuid4()),
                work_item_id=item_id,
                payer_id=payer,
                amount_cents=20_000,
                letter="x",
                status="won" if i < won else "lost",
                filed_on=TODAY - timedelta(days=90),
                decided_on=TODAY - timedelta(days=30),
                created_by="test",
            )
        )


async def test_overturn_rate_scales_new_and_refreshed_items(db: Database, tenant: str) -> None:
    payer = str(uuid.uuid4())
    base = priority(20_000, [DEADLINE], TODAY).score
    async with db.transaction() as (conn, _trans):
        await _history(conn, tenant, payer, "CO-197", won=5, lost=0)  # always overturned
        await _history(conn, tenant, payer, "CO-50", won=1, lost=4)  # rarely
        await _history(conn, tenant, payer, "CO-16", won=0, lost=4)  # too few decided
        ids = {}
        for code in ("CO-197", "CO-50", "CO-16"):
            ids[code], _ = await create_work_item(
                conn,
                tenant_id=tenant,
                spec=_spec(payer, code, f"new-{code}"),
                actor="t",
                today=TODAY,
            )
        scores = {
            code: (
                await conn.execute(select(work_items.c.priority_score).where(work_items.c.id == i))
            ).scalar_one()
            for code, i in ids.items()
        }
        assert abs(scores["CO-197"] - base * 1.0) < 1e-5
        assert abs(scores["CO-50"] - base * (0.25 + 0.75 * 0.2)) < 1e-5
        assert abs(scores["CO-16"] - base) < 1e-5
        assert scores["CO-50"] < scores["CO-16"]  # rarely overturned: worked later
        # The daily refresh computes the same scores set-based.
        await refresh_priorities(conn, today=TODAY, tenant_id=tenant)
        for code, i in ids.items():
            refreshed = (
                await conn.execute(select(work_items.c.priority_score).where(work_items.c.id == i))
            ).scalar_one()
            assert abs(refreshed - scores[code]) < 1e-5


def test_bulk_items_get_the_same_factor() -> None:
    """835 ingest builds item rows in bulk, then rescores them with the tenant's rates."""
    from services.billing.work_queue import apply_overturn_rates

    payer = str(uuid.uuid4())
    row = {
        "payer_id": payer,
        "primary_reason": "CO-50",
        "amount_cents": 20_000,
        "timely_filing_deadline": DEADLINE.isoformat(),
        "appeal_deadline": None,
        "priority_score": priority(20_000, [DEADLINE], TODAY).score,
    }
    other = {**row, "primary_reason": "CO-16"}
    apply_overturn_rates([row, other], {(payer, "CO-50"): 0.2}, TODAY)
    assert row["priority_score"] == round(priority(20_000, [DEADLINE], TODAY, 0.2).score, 6)
    assert other["priority_score"] == priority(20_000, [DEADLINE], TODAY).score
