"""Working a billing work item: validated status moves and assignee changes (with their
audit events), the API's update, and notes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.domain.work_items import (
    InvalidWorkItemTransition,
    WorkItemStatus,
    work_item_transition,
)
from services.billing.tables_remittance import work_item_notes, work_items
from services.billing.work_queue_read import ENTITY, get_item, get_row, item_read
from shared import audit
from shared.auth import Principal
from shared.errors import Conflict, FieldProblem, RuleViolation, StaleVersion

__all__ = ["add_note", "set_status", "update_item"]


async def set_status(
    conn: AsyncConnection,
    row: Any,
    *,
    tenant_id: str,
    actor: str,
    target: WorkItemStatus,
    reason: str | None,
    request_id: str | None,
    assignee: str | object | None = ...,
    disposition: str | object | None = ...,
) -> Any:
    """Validated status move (or assignee change) with its audit event; returns the new row."""
    current = WorkItemStatus(row.status)
    if target != current:
        try:
            work_item_transition(current, target)
        except InvalidWorkItemTransition as exc:
            raise Conflict(str(exc), code="invalid_transition") from None
    values: dict[str, Any] = {
        "status": target.value,
        "version": work_items.c.version + 1,
        "updated_at": func.now(),
    }
    if assignee is not ...:
        values["assignee"] = assignee
    elif target is WorkItemStatus.OPEN:
        values["assignee"] = None
    if disposition is not ...:
        values["disposition"] = disposition
    if target is WorkItemStatus.RESOLVED:
        values["resolved_at"] = func.now()
    elif current is WorkItemStatus.RESOLVED:
        values["resolved_at"] = None
        values["disposition"] = None
    new = (
        await conn.execute(
            update(work_items)
            .where(work_items.c.id == row.id, work_items.c.version == row.version)
            .values(**values)
            .returning(*work_items.c)
        )
    ).first()
    if new is None:  # pragma: no cover - callers hold the row lock
        raise StaleVersion("the work item changed", code="stale_version")
    await audit.append(
        conn,
        tenant_id=tenant_id,
        entity_type=ENTITY,
        entity_id=str(row.id),
        action=f"work_item.{target.value}" if target != current else "work_item.updated",
        actor=actor,
        request_id=request_id,
        reason=reason,
        before={"status": current.value, "assignee": row.assignee, "disposition": row.disposition},
        after={"status": new.status, "assignee": new.assignee, "disposition": new.disposition},
    )
    return new


def _stale(current: int, sent: int) -> StaleVersion:
    return StaleVersion(
        f"the work item changed since it was read (version {sent}, now {current})",
        code="stale_version",
        errors=(FieldProblem("version", f"current version is {current}", "stale"),),
        action="read the work item again and reapply the change",
    )


async def update_item(
    conn: AsyncConnection,
    principal: Principal,
    item_id: str,
    cmd: Any,
    *,
    request_id: str | None,
) -> Any:
    row = await get_row(conn, principal.tenant_id, item_id, for_update=True)
    if cmd.version != row.version:
        raise _stale(row.version, cmd.version)
    if cmd.status is None and cmd.assignee is None:
        raise RuleViolation(
            "nothing to change",
            code="empty_update",
            errors=(FieldProblem("", "send status and/or assignee", "empty"),),
        )
    target = WorkItemStatus(cmd.status.value) if cmd.status else WorkItemStatus(row.status)
    if target is WorkItemStatus.RESOLVED:
        raise RuleViolation(
            "a work item is resolved by an action, not by setting its status",
            code="resolve_by_action",
            errors=(FieldProblem("status", "use one of the item's actions", "invalid"),),
        )
    new = await set_status(
        conn,
        row,
        tenant_id=principal.tenant_id,
        actor=principal.actor,
        target=target,
        reason=cmd.reason,
        request_id=request_id,
        assignee=cmd.assignee if cmd.assignee is not None else ...,
    )
    return item_read(new)


async def add_note(
    conn: AsyncConnection,
    principal: Principal,
    item_id: str,
    body: str,
    *,
    request_id: str | None,
) -> Any:
    row = await get_row(conn, principal.tenant_id, item_id, for_update=True)
    await conn.execute(
        work_item_notes.insert().values(
            work_item_id=row.id, tenant_id=principal.tenant_id, author=principal.actor, body=body
        )
    )
    await audit.append(
        conn,
        tenant_id=principal.tenant_id,
        entity_type=ENTITY,
        entity_id=str(row.id),
        action="work_item.note_added",
        actor=principal.actor,
        request_id=request_id,
        after={"chars": len(body)},
    )
    return await get_item(conn, principal, item_id)
