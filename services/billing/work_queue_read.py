"""Reading the billing work queue: one item (with notes and claim status), the filtered,
keyset-paginated list, and the row -> `WorkItemRead` mapping the other work_queue modules share.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.domain.work_items import WorkItemCategory
from services.billing.tables import claims
from services.billing.tables_remittance import work_item_notes, work_items
from shared.auth import Principal
from shared.errors import FieldProblem, NotFound, RuleViolation
from shared.money import format_cents

__all__ = ["ENTITY", "ItemFilter", "get_item", "get_row", "item_read", "list_items"]

# The audit entity type of work items (every work_queue module writes events under it).
ENTITY = "work_item"


def _uuid(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        return None


def item_read(r: Any, *, notes: list[Any] | None = None, claim_status: str | None = None) -> Any:
    from services.billing.remittance_schemas import NoteRead, WorkItemRead

    return WorkItemRead(
        id=str(r.id),
        status=r.status,
        category=r.category,
        source=r.source,
        summary=r.summary,
        claim_id=str(r.claim_id) if r.claim_id else None,
        batch_id=r.batch_id,
        payer_id=str(r.payer_id) if r.payer_id else None,
        recommended_action=r.recommended_action,
        recommendation=r.recommendation,
        route=r.route,
        amount=format_cents(r.amount_cents),
        timely_filing_deadline=r.timely_filing_deadline,
        appeal_deadline=r.appeal_deadline,
        no_appeal=r.no_appeal,
        priority_score=r.priority_score,
        past_due=r.past_due,
        assignee=r.assignee,
        disposition=r.disposition,
        reasons=list(r.reasons or []),
        version=r.version,
        created_at=r.created_at,
        updated_at=r.updated_at,
        claim_status=claim_status,
        notes=(
            [NoteRead(author=n.author, body=n.body, created_at=n.created_at) for n in notes]
            if notes is not None
            else None
        ),
    )


def _not_found(item_id: str) -> NotFound:
    return NotFound(f"work item {item_id} not found", code="work_item_not_found")


async def get_row(
    conn: AsyncConnection, tenant_id: str, item_id: str, *, for_update: bool = False
) -> Any:
    iid = _uuid(item_id)
    if iid is None:
        raise _not_found(item_id)
    stmt = select(work_items).where(work_items.c.id == iid, work_items.c.tenant_id == tenant_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = (await conn.execute(stmt)).first()
    if row is None:
        raise _not_found(item_id)
    return row


async def get_item(conn: AsyncConnection, principal: Principal, item_id: str) -> Any:
    row = await get_row(conn, principal.tenant_id, item_id)
    notes = list(
        await conn.execute(
            select(work_item_notes)
            .where(work_item_notes.c.work_item_id == row.id)
            .order_by(work_item_notes.c.id)
        )
    )
    status = None
    if row.claim_id is not None:
        status = (
            await conn.execute(
                select(claims.c.status).where(
                    claims.c.id == row.claim_id, claims.c.tenant_id == principal.tenant_id
                )
            )
        ).scalar_one_or_none()
    return item_read(row, notes=notes, claim_status=status)


@dataclass(frozen=True, slots=True)
class ItemFilter:
    status: tuple[str, ...] = ("open", "in_progress", "blocked")
    category: tuple[str, ...] = ()
    assignee: str | None = None
    payer_id: str | None = None
    claim_id: str | None = None
    route: str | None = None


def _encode_cursor(score: float, item_id: str) -> str:
    return base64.urlsafe_b64encode(f"{score!r}|{item_id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        score, item_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return float(score), str(uuid.UUID(item_id))
    except (ValueError, UnicodeDecodeError) as exc:
        raise RuleViolation(
            "the cursor is not valid",
            code="invalid_cursor",
            errors=(FieldProblem("after", "use next_cursor from the previous page"),),
        ) from exc


async def list_items(
    conn: AsyncConnection, principal: Principal, f: ItemFilter, *, after: str | None, limit: int
) -> Any:
    """Highest priority first (ties: newest id last), keyset-paginated."""
    from services.billing.remittance_schemas import WorkItemPage

    problems = [
        FieldProblem("status", f"unknown status {s!r}")
        for s in f.status
        if s not in {"open", "in_progress", "blocked", "resolved"}
    ]
    problems += [
        FieldProblem("category", f"unknown category {c!r}")
        for c in f.category
        if c not in {x.value for x in WorkItemCategory}
    ]
    for name, value in (("payer", f.payer_id), ("claim", f.claim_id)):
        if value is not None and _uuid(value) is None:
            problems.append(FieldProblem(name, "not a uuid"))
    if problems:
        raise RuleViolation("invalid filter", code="invalid_query", errors=tuple(problems))
    w = work_items.c
    stmt = select(work_items).where(w.tenant_id == principal.tenant_id, w.status.in_(f.status))
    if f.category:
        stmt = stmt.where(w.category.in_(f.category))
    if f.assignee:
        stmt = stmt.where(w.assignee == f.assignee)
    if f.payer_id:
        stmt = stmt.where(w.payer_id == f.payer_id)
    if f.claim_id:
        stmt = stmt.where(w.claim_id == f.claim_id)
    if f.route:
        stmt = stmt.where(w.route == f.route)
    if after:
        score, last = _decode_cursor(after)
        stmt = stmt.where(
            (w.priority_score < score) | ((w.priority_score == score) & (w.id < last))
        )
    rows = list(
        await conn.execute(stmt.order_by(w.priority_score.desc(), w.id.desc()).limit(limit + 1))
    )
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = _encode_cursor(rows[-1].priority_score, str(rows[-1].id)) if more and rows else None
    return WorkItemPage(items=[item_read(r) for r in rows], next_cursor=cursor)
