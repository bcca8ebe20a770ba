"""The steps every work-queue action shares (`remittance_actions` and its sibling modules):
lock the work item and its claim, move the claim through its state machine with an audit
event, resolve the item, and number the next claim of a claim series."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing import claim_repository as repo
from services.billing import claims_manage
from services.billing.domain.claim_state import ClaimEvent, ClaimStatus
from services.billing.domain.work_items import WorkItemStatus
from services.billing.tables import claims
from services.billing.work_queue import get_row, set_status
from shared import audit
from shared.auth import Principal
from shared.clock import utc_now
from shared.errors import Conflict


async def _begin(conn: AsyncConnection, principal: Principal, item_id: str) -> tuple[Any, Any]:
    item = await get_row(conn, principal.tenant_id, item_id, for_update=True)
    if item.status == WorkItemStatus.RESOLVED.value:
        raise Conflict(
            "the work item is already resolved",
            code="invalid_transition",
            action="reopen it first (POST .../actions/reopen)",
        )
    if item.claim_id is None:
        raise Conflict(
            "this work item has no claim of ours (unmatched remittance or batch failure)",
            code="no_claim",
            action="find the claim, add a note and resolve it through the claim",
        )
    claim = await repo.get_claim(conn, principal.tenant_id, str(item.claim_id), for_update=True)
    if claim is None:  # pragma: no cover - claims are never deleted
        raise Conflict("the claim of this work item is gone", code="no_claim")
    return item, claim


async def _move(
    conn: AsyncConnection,
    principal: Principal,
    row: Any,
    target: ClaimStatus,
    event: ClaimEvent,
    reason: str,
    request_id: str | None,
    *,
    values: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> str:
    move = claims_manage._transition(row.status, target, reason, event)
    ok = await repo.update_claim(
        conn,
        principal.tenant_id,
        str(row.id),
        row.version,
        {
            "status": move.target.value,
            "status_reason": move.reason[:500],
            "updated_at": utc_now(),
            **(values or {}),
        },
    )
    if not ok:  # pragma: no cover - the row is locked
        raise Conflict("the claim changed", code="stale_version")
    await audit.append(
        conn,
        tenant_id=principal.tenant_id,
        entity_type="claim",
        entity_id=str(row.id),
        action=f"claim.{move.event.value}",
        actor=principal.actor,
        request_id=request_id,
        reason=move.reason,
        before={"status": move.source.value},
        after={"status": move.target.value, **(after or {})},
    )
    return move.target.value


async def _resolve(
    conn: AsyncConnection,
    principal: Principal,
    item: Any,
    disposition: str,
    reason: str,
    request_id: str | None,
) -> Any:
    row = item
    if row.status == WorkItemStatus.OPEN.value:
        row = await set_status(
            conn,
            row,
            tenant_id=principal.tenant_id,
            actor=principal.actor,
            target=WorkItemStatus.IN_PROGRESS,
            reason=reason,
            request_id=request_id,
            assignee=principal.actor,
        )
    return await set_status(
        conn,
        row,
        tenant_id=principal.tenant_id,
        actor=principal.actor,
        target=WorkItemStatus.RESOLVED,
        reason=reason,
        request_id=request_id,
        disposition=disposition,
    )


async def _next_claim_version(conn: AsyncConnection, tenant_id: str, claim: Any) -> int:
    """The claim series' next claim_version: a session's claims (UNIQUE (tenant, session,
    claim_version) keeps one row per number, so every further claim of a session, 7, 8 or
    another payer's, takes the next), or a PMPM claim's member-month (contract, patient,
    month)."""
    if claim.session_id is not None:
        same = claims.c.session_id == claim.session_id
    else:
        same = and_(
            claims.c.session_id.is_(None),
            claims.c.contract_id == claim.contract_id,
            claims.c.patient_id == claim.patient_id,
            claims.c.pmpm_period == claim.pmpm_period,
        )
    series = (
        await conn.execute(
            select(func.max(claims.c.claim_version)).where(claims.c.tenant_id == tenant_id, same)
        )
    ).scalar_one()
    return int(series or 1) + 1
