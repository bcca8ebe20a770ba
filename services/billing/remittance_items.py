"""Work items and audit events of an 835 posting (`remittance_post`): the locked claim's
posting state, work-item rows (inserted with ON CONFLICT), the hash-chained audit event rows
(COPY) of claims and work items, and resolving a paid claim's open items."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.claim_repository import audit_heads
from services.billing.domain.work_items import Route, WorkItemCategory, priority
from services.billing.remittance_pipeline import SLICE
from services.billing.remittance_rows import CHUNK, _cols, _copy, _encode
from shared.audit import GENESIS, event_hash


@dataclass(slots=True)
class _Claim:
    id: str
    status: str
    version: int
    payer_id: str | None
    tf_deadline: date | None
    appeal_window: int
    events: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    icn: str | None = None
    moved: bool = False
    pending_reversal: int | None = None  # cents taken back and not yet re-adjudicated
    paid_in_full: bool = False
    appeal_result: str | None = None


_WI_COLS = {
    "id": "uuid",
    "tenant_id": "text",
    "dedupe_key": "text",
    "source": "text",
    "category": "text",
    "claim_id": "uuid",
    "batch_id": "text",
    "claim_payment_id": "uuid",
    "payer_id": "uuid",
    "summary": "text",
    "reasons": "jsonb",
    "primary_reason": "text",
    "recommended_action": "text",
    "recommendation": "text",
    "route": "text",
    "amount_cents": "bigint",
    "timely_filing_deadline": "date",
    "appeal_deadline": "date",
    "no_appeal": "boolean",
    "priority_score": "float8",
    "past_due": "boolean",
    "status": "text",
}


_EVENT_COLS = {
    "tenant_id": "text",
    "entity_type": "text",
    "entity_id": "text",
    "seq": "int",
    "action": "text",
    "actor": "text",
    "request_id": "text",
    "reason": "text",
    "before": "jsonb",
    "after": "jsonb",
    "occurred_at": "timestamptz",
    "prev_hash": "text",
    "hash": "text",
}


_EV_NAMES, _EV_DEFS = _cols(_EVENT_COLS)


_WI_NAMES, _WI_DEFS = _cols(_WI_COLS)


_INSERT_WORK_ITEMS = f"""
INSERT INTO billing.work_items ({_WI_NAMES})
SELECT {_WI_NAMES} FROM jsonb_to_recordset($1::jsonb) AS r({_WI_DEFS})
ON CONFLICT (tenant_id, dedupe_key) DO NOTHING
RETURNING id
"""  # noqa: S608 - constants only


_RESOLVE_ITEMS = text(
    """
    UPDATE billing.work_items
    SET status = 'resolved', disposition = 'paid_on_remit', resolved_at = now(),
        updated_at = now(), version = version + 1
    WHERE tenant_id = :t AND claim_id = ANY(CAST(:ids AS uuid[])) AND status <> 'resolved'
      AND source IN ('835', '835_reversal', '835_review')
    RETURNING id::text AS id, claim_id::text AS claim_id
    """
)


def _item(
    tenant_id: str,
    *,
    source: str,
    category: WorkItemCategory,
    action: str,
    text: str,
    claim: _Claim | None,
    batch: str | None,
    payment: str | None,
    amount: int,
    reasons: list[dict[str, Any]],
    summary: str,
    today: date,
    route: Route = Route.BILLING_STAFF,
    appeal_by: date | None = None,
    no_appeal: bool = False,
) -> dict[str, Any]:
    tf = claim.tf_deadline if claim else None
    pr = priority(amount, [tf, appeal_by], today)
    code = str(reasons[0].get("code", "")) if reasons else ""
    claim_id = claim.id if claim else None
    return {
        "id": str(uuid.uuid4()),
        "tenant_id": tenant_id,
        "dedupe_key": f"{source}|{claim_id or ''}|{batch or ''}|{code}"[:300],
        "source": source,
        "category": category.value,
        "claim_id": claim_id,
        "batch_id": batch,
        "claim_payment_id": payment,
        "payer_id": claim.payer_id if claim else None,
        "summary": summary,
        "reasons": reasons,
        "primary_reason": code[:20],
        "recommended_action": action,
        "recommendation": text,
        "route": route.value,
        "amount_cents": amount,
        "timely_filing_deadline": tf.isoformat() if tf else None,
        "appeal_deadline": appeal_by.isoformat() if appeal_by else None,
        "no_appeal": no_appeal,
        "priority_score": round(pr.score, 6),
        "past_due": pr.past_due,
        "status": "open",
    }


_EVENT_COPY_COLUMNS = list(_EVENT_COLS)


def _event_rows(
    heads: dict[str, tuple[int, str]],
    tenant_id: str,
    entity_type: str,
    entity_id: str,
    events: Sequence[tuple[str, str | None, Any, Any]],
    actor: str,
    request_id: str | None,
    at: datetime,
    out: list[tuple[Any, ...]],
) -> None:
    """Append COPY records (columns of `_EVENT_COLS`) for one entity's new events.

    `before` / `after` here are JSON-native (str keys; str, int, bool, None, lists, dicts),
    so decoding their JSON gives them back unchanged: hashing them directly is hashing what
    PostgreSQL will return, which `shared.audit.verify_chain` recomputes."""
    seq, prev = heads.get(entity_id, (0, GENESIS))
    for action, reason, before, after in events:
        seq += 1
        digest = event_hash(
            prev_hash=prev,
            tenant_id=tenant_id,
            entity_type=entity_type,
            entity_id=entity_id,
            seq=seq,
            action=action,
            actor=actor,
            request_id=request_id,
            reason=reason,
            before=before,
            after=after,
            occurred_at=at,
        )
        out.append(
            (
                tenant_id,
                entity_type,
                entity_id,
                seq,
                action,
                actor,
                request_id,
                reason,
                _encode(before).decode() if before is not None else None,
                _encode(after).decode() if after is not None else None,
                at,
                prev,
                digest,
            )
        )
        prev = digest


async def _copy_events(drv: Any, events: list[tuple[Any, ...]]) -> None:
    for i in range(0, len(events), CHUNK):
        await _copy(drv, "events", events[i : i + CHUNK], _EVENT_COPY_COLUMNS, "audit")


def _claim_event_rows(
    heads: dict[str, tuple[int, str]],
    tenant_id: str,
    touched: list[_Claim],
    actor: str,
    request_id: str | None,
    at: datetime,
    out: list[tuple[Any, ...]],
) -> Iterator[None]:
    """COPY records of the claims' new events, yielding every `SLICE` claims."""
    for n, c in enumerate(touched, start=1):
        _event_rows(heads, tenant_id, "claim", c.id, c.events, actor, request_id, at, out)
        if n % SLICE == 0:
            yield


_ITEM_AUDIT_KEYS = (
    "source",
    "category",
    "claim_id",
    "batch_id",
    "amount_cents",
    "recommended_action",
    "primary_reason",
    "status",
    "timely_filing_deadline",
    "appeal_deadline",
)


def _item_event_rows(
    tenant_id: str,
    items: list[dict[str, Any]],
    actor: str,
    request_id: str | None,
    at: datetime,
    out: list[tuple[Any, ...]],
) -> Iterator[None]:
    """COPY records of the "opened" event of every new work item, yielding every `SLICE`."""
    for n, it in enumerate(items, start=1):
        after = {k: it[k] for k in _ITEM_AUDIT_KEYS}
        _event_rows(
            {},
            tenant_id,
            "work_item",
            it["id"],
            [("work_item.opened", None, None, after)],
            actor,
            request_id,
            at,
            out,
        )
        if n % SLICE == 0:
            yield


async def _write_items(drv: Any, items: list[dict[str, Any]], events: list[tuple[Any, ...]]) -> int:
    if not items:
        return 0
    # ON CONFLICT: an item already open for the same problem (dedupe key) is kept, and only
    # the items actually inserted get their "opened" event.
    inserted = await drv.fetch(_INSERT_WORK_ITEMS, _encode(items).decode())
    ids = {str(r["id"]) for r in inserted}
    await _copy_events(drv, [e for e in events if e[2] in ids])
    return len(ids)


async def _resolve_items(
    conn: AsyncConnection,
    drv: Any,
    tenant_id: str,
    claim_ids: list[str],
    actor: str,
    request_id: str | None,
    at: datetime,
) -> None:
    rows = list(await conn.execute(_RESOLVE_ITEMS, {"t": tenant_id, "ids": claim_ids}))
    if not rows:
        return
    heads = await audit_heads(conn, "work_item", [(tenant_id, r.id) for r in rows])
    events: list[tuple[Any, ...]] = []
    for r in rows:
        _event_rows(
            heads,
            tenant_id,
            "work_item",
            r.id,
            [
                (
                    "work_item.resolved",
                    "the claim was paid on an 835",
                    None,
                    {"status": "resolved", "disposition": "paid_on_remit"},
                )
            ],
            actor,
            request_id,
            at,
            events,
        )
    await _copy_events(drv, events)
