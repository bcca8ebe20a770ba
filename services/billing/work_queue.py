"""The billing work queue: opening items (from 835 denials, 999/277CA rejections, failed
submissions, unmatched remittances), priority, and the biller's take-next.

`open_work_item` is the one way to create an item; it is idempotent on (tenant, source,
claim or batch, primary reason code), so re-processing an acknowledgment or a remittance never
makes a second item. Priority uses the documented formula in
services/billing/domain/work_items.py (dollars on a log scale + deadline urgency, times the
payer/CARC overturn likelihood) and is refreshed daily by the worker, since urgency grows as
the deadline nears.

This module opens items and re-exports the rest of the queue, which lives in
`work_queue_priority` (overturn rates, priority refresh), `work_queue_read` (reads, lists),
`work_queue_take` (take-next) and `work_queue_status` (status changes, notes).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.domain.work_items import (
    Recommendation,
    Route,
    WorkItemCategory,
    priority,
    recommend,
)
from services.billing.tables import claims
from services.billing.tables_remittance import work_items
from services.billing.work_queue_priority import (
    OVERTURN_MIN_DECIDED,
    OVERTURN_WINDOW_DAYS,
    apply_overturn_rates,
    overturn_rate,
    overturn_rates,
    refresh_priorities,
)
from services.billing.work_queue_read import (
    ENTITY,
    ItemFilter,
    get_item,
    get_row,
    item_read,
    list_items,
)
from services.billing.work_queue_status import add_note, set_status, update_item
from services.billing.work_queue_take import take_next, take_next_fast
from shared import audit
from shared.clock import utc_today
from shared.codes import DefaultAction

__all__ = [
    "ENTITY",
    "OVERTURN_MIN_DECIDED",
    "OVERTURN_WINDOW_DAYS",
    "REJECTION_SOURCES",
    "ItemFilter",
    "WorkItemSpec",
    "add_note",
    "apply_overturn_rates",
    "create_work_item",
    "dedupe_key",
    "get_item",
    "get_row",
    "item_read",
    "list_items",
    "open_work_item",
    "overturn_rate",
    "overturn_rates",
    "refresh_priorities",
    "set_status",
    "take_next",
    "take_next_fast",
    "update_item",
]

# Sources whose items are rejections (never filed): the fix is a new claim, not an appeal.
REJECTION_SOURCES = frozenset({"999", "277ca", "submission", "ta1"})


@dataclass(frozen=True, slots=True)
class WorkItemSpec:
    """Everything a work item records beyond what `open_work_item` callers pass."""

    category: WorkItemCategory
    source: str
    summary: str
    claim_id: str | None = None
    batch_id: str | None = None
    claim_payment_id: str | None = None
    payer_id: str | None = None
    amount_cents: int = 0
    reasons: tuple[dict[str, Any], ...] = ()
    recommended_action: str = DefaultAction.CORRECT_RESUBMIT.value
    recommendation: str = ""
    route: str = Route.BILLING_STAFF.value
    timely_filing_deadline: date | None = None
    appeal_deadline: date | None = None
    no_appeal: bool = False


def dedupe_key(
    source: str, claim_id: str | None, batch_id: str | None, reasons: tuple[dict[str, Any], ...]
) -> str:
    code = str(reasons[0].get("code", "")) if reasons else ""
    return f"{source}|{claim_id or ''}|{batch_id or ''}|{code}"[:300]


def _category(value: str) -> WorkItemCategory:
    try:
        return WorkItemCategory(value)
    except ValueError:
        return WorkItemCategory.OTHER


async def open_work_item(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    category: str,
    source: str,
    summary: str,
    actor: str,
    claim_id: str | None = None,
    batch_id: str | None = None,
    amount_cents: int = 0,
    reasons: list[dict[str, Any]] | None = None,
    deadline: date | None = None,
) -> str:
    """Open (or find) the work item for this problem; returns its id.

    For rejection sources (999, 277CA, submission) the claim was never filed: the
    recommended action is a new claim and `deadline` defaults to the claim's timely-filing
    deadline, which keeps running. Runs in the caller's transaction.
    """
    cat = _category(category)
    reasons_t = tuple(reasons or ())
    tf_deadline = deadline
    payer_id = None
    if claim_id is not None:
        row = (
            await conn.execute(
                select(claims.c.timely_filing_deadline, claims.c.payer_id).where(
                    claims.c.tenant_id == tenant_id, claims.c.id == claim_id
                )
            )
        ).first()
        if row is not None:
            payer_id = row.payer_id
            if tf_deadline is None:
                tf_deadline = row.timely_filing_deadline
    if source in REJECTION_SOURCES:
        rec = Recommendation(
            action=DefaultAction.CORRECT_RESUBMIT,
            route=Route.BILLING_STAFF,
            text=recommend(
                WorkItemCategory.SUBMISSION_FAILURE, DefaultAction.CORRECT_RESUBMIT
            ).text,
        )
        action = "new_claim"
    else:
        rec = recommend(cat, DefaultAction.CORRECT_RESUBMIT)
        action = rec.action.value
    spec = WorkItemSpec(
        category=cat,
        source=source,
        summary=summary,
        claim_id=claim_id,
        batch_id=batch_id,
        payer_id=payer_id,
        amount_cents=amount_cents,
        reasons=reasons_t,
        recommended_action=action,
        recommendation=rec.text,
        route=rec.route.value,
        timely_filing_deadline=tf_deadline,
        no_appeal=source in REJECTION_SOURCES,
    )
    item_id, _ = await create_work_item(conn, tenant_id=tenant_id, spec=spec, actor=actor)
    return item_id


async def create_work_item(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    spec: WorkItemSpec,
    actor: str,
    today: date | None = None,
) -> tuple[str, bool]:
    """Insert the item unless its dedupe key exists; returns (id, created)."""
    today = today or utc_today()
    primary_reason = str(spec.reasons[0].get("code", ""))[:20] if spec.reasons else ""
    rate = (
        await overturn_rate(
            conn,
            tenant_id=tenant_id,
            payer_id=spec.payer_id,
            primary_reason=primary_reason,
            today=today,
        )
        if spec.payer_id
        else None
    )
    pr = priority(
        spec.amount_cents, [spec.timely_filing_deadline, spec.appeal_deadline], today, rate
    )
    key = dedupe_key(spec.source, spec.claim_id, spec.batch_id, spec.reasons)
    item_id = str(uuid.uuid4())
    values = {
        "id": item_id,
        "tenant_id": tenant_id,
        "dedupe_key": key,
        "source": spec.source,
        "category": spec.category.value,
        "claim_id": spec.claim_id,
        "batch_id": spec.batch_id,
        "claim_payment_id": spec.claim_payment_id,
        "payer_id": spec.payer_id,
        "summary": spec.summary,
        "reasons": list(spec.reasons),
        "primary_reason": primary_reason,
        "recommended_action": spec.recommended_action,
        "recommendation": spec.recommendation,
        "route": spec.route,
        "amount_cents": spec.amount_cents,
        "timely_filing_deadline": spec.timely_filing_deadline,
        "appeal_deadline": spec.appeal_deadline,
        "no_appeal": spec.no_appeal,
        "priority_score": round(pr.score, 6),
        "past_due": pr.past_due,
        "status": "open",
    }
    inserted = (
        await conn.execute(
            pg_insert(work_items)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["tenant_id", "dedupe_key"])
            .returning(work_items.c.id)
        )
    ).scalar_one_or_none()
    if inserted is None:
        existing = (
            await conn.execute(
                select(work_items.c.id).where(
                    work_items.c.tenant_id == tenant_id, work_items.c.dedupe_key == key
                )
            )
        ).scalar_one()
        return str(existing), False
    await audit.append(
        conn,
        tenant_id=tenant_id,
        entity_type=ENTITY,
        entity_id=item_id,
        action="work_item.opened",
        actor=actor,
        after=_audit_view(values),
        new_entity=True,
    )
    if spec.claim_id is not None:
        await audit.append(
            conn,
            tenant_id=tenant_id,
            entity_type="claim",
            entity_id=spec.claim_id,
            action="claim.work_item_opened",
            actor=actor,
            after={"work_item_id": item_id, "category": spec.category.value, "source": spec.source},
        )
    return item_id, True


def _audit_view(values: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "source",
        "category",
        "claim_id",
        "batch_id",
        "amount_cents",
        "recommended_action",
        "primary_reason",
        "status",
    )
    out = {k: values[k] for k in keep}
    for k in ("timely_filing_deadline", "appeal_deadline"):
        out[k] = values[k].isoformat() if values[k] else None
    return out
