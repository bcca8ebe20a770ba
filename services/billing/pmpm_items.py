"""PMPM variance work items: each run line with a variance (or short activity) becomes a
`pmpm_variance` item in the billing work queue; re-runs of the month reuse the item the same
member-month already has (`open_variance_items`)."""

from __future__ import annotations

import hashlib
from datetime import date

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.domain.pmpm import Classification, needs_work
from services.billing.pmpm import get_run_row
from services.billing.tables_pmpm import line_order, pmpm_line_items, pmpm_lines
from services.billing.work_queue import open_work_item
from shared.money import format_cents

WORK_SOURCE = "pmpm"

_COPY_ITEMS_SQL = """
INSERT INTO billing.pmpm_line_items (run_id, member_id, patient_key, work_item_id)
SELECT l.run_id, l.member_id, COALESCE(CAST(l.patient_id AS text), ''), prev.work_item_id
FROM billing.pmpm_lines l
JOIN (
    SELECT DISTINCT ON (pl.member_id, pl.classification) pl.member_id, pl.classification,
           pl.work_item_id
    FROM billing.pmpm_runs pr JOIN billing.pmpm_lines pl ON pl.run_id = pr.id
    WHERE pr.tenant_id = :tenant AND pr.contract_id = :contract AND pr.period = :period
      AND pr.id <> :run AND pl.work_item_id IS NOT NULL
    ORDER BY pl.member_id, pl.classification, pr.run_no DESC
) prev ON prev.member_id = l.member_id AND prev.classification = l.classification
WHERE l.run_id = :run AND l.work_item_id IS NULL
ON CONFLICT DO NOTHING
"""


def variance_key(contract_id: str, period: date, member_id: str) -> str:
    """The work item's batch id: one item per contract, month, member and classification."""
    digest = hashlib.sha256(f"{contract_id}|{period:%Y-%m}|{member_id}".encode()).hexdigest()
    return f"pmpm:{period:%Y%m}:{digest[:40]}"


async def open_variance_items(
    conn: AsyncConnection, *, tenant_id: str, run_id: str, actor: str
) -> int:
    """Open a `pmpm_variance` work item for each line that needs one; returns how many lines
    got an item (existing items of earlier runs of the month are reused)."""
    run = await get_run_row(conn, tenant_id, run_id)
    await conn.execute(
        text(_COPY_ITEMS_SQL),
        {"tenant": tenant_id, "contract": run.contract_id, "period": run.period, "run": run.id},
    )
    rows = (
        await conn.execute(
            select(
                pmpm_lines.c.member_id,
                pmpm_lines.c.patient_id,
                pmpm_lines.c.classification,
                pmpm_lines.c.expected_cents,
                pmpm_lines.c.received_cents,
                pmpm_lines.c.variance_cents,
            )
            .where(
                pmpm_lines.c.run_id == run.id,
                pmpm_lines.c.work_item_id.is_(None),
                (pmpm_lines.c.variance_cents != 0)
                | pmpm_lines.c.classification.in_(
                    [c.value for c in (Classification.ACTIVITY_NOT_MET,)]
                ),
            )
            .order_by(*line_order())
        )
    ).all()
    members: list[str] = []
    patients: list[str] = []
    item_ids: list[str] = []
    month = f"{run.period:%Y-%m}"
    for r in rows:
        if not needs_work(r.classification, r.variance_cents):
            continue
        item_id = await open_work_item(
            conn,
            tenant_id=tenant_id,
            category="pmpm_variance",
            source=WORK_SOURCE,
            summary=(
                f"PMPM {month} member {r.member_id}: {r.classification.replace('_', ' ')}; "
                f"expected {format_cents(r.expected_cents)}, received "
                f"{format_cents(r.received_cents)}, variance {format_cents(r.variance_cents)}"
            ),
            actor=actor,
            batch_id=variance_key(str(run.contract_id), run.period, r.member_id),
            amount_cents=abs(r.variance_cents),
            reasons=[
                {
                    "code": r.classification,
                    "contract_id": str(run.contract_id),
                    "month": month,
                    "member_id": r.member_id,
                    "run_id": str(run.id),
                    "expected": format_cents(r.expected_cents),
                    "received": format_cents(r.received_cents),
                    "variance": format_cents(r.variance_cents),
                }
            ],
        )
        members.append(r.member_id)
        patients.append(str(r.patient_id) if r.patient_id else "")
        item_ids.append(item_id)
    if members:
        await conn.execute(
            text(
                "INSERT INTO billing.pmpm_line_items (run_id, member_id, patient_key, "
                "work_item_id) SELECT :run, u.member, u.patient, u.item "
                "FROM unnest(CAST(:members AS text[]), CAST(:patients AS text[]), "
                "CAST(:items AS uuid[])) AS u(member, patient, item) "
                "ON CONFLICT DO NOTHING"
            ),
            {"members": members, "patients": patients, "items": item_ids, "run": run.id},
        )
    total = (
        await conn.execute(
            select(func.count())
            .select_from(pmpm_line_items)
            .where(pmpm_line_items.c.run_id == run.id)
        )
    ).scalar_one()
    return int(total)
