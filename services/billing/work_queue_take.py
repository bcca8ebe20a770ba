"""The biller's take-next: assign the highest-priority open work item in one statement
(pick, assign and append the audit event in a single round trip).
"""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.domain.work_items import WorkItemStatus
from services.billing.work_queue_read import ENTITY, item_read
from shared import audit
from shared.auth import Principal
from shared.clock import utc_now
from shared.errors import Conflict
from shared.uow import Database

__all__ = ["take_next", "take_next_fast"]

# `next` is ONE statement (one round trip; no BEGIN/COMMIT around it on the hot path):
#
# 1. pick the top open item (FOR UPDATE SKIP LOCKED on the queue's partial index
#    ix_work_items_queue, walked backwards) and assign it;
# 2. read the item's audit chain head and append the `work_item.assigned` event, its hash
#    computed in SQL over the canonical payload built here (`audit.hash_template` /
#    `audit.sql_event_hash`, the same bytes `audit.event_hash` hashes; a test verifies
#    chains written this way);
# 3. `synchronous_commit` is off for this statement's transaction only.
#
# The chain head is read with the statement's snapshot. If another transaction appended to
# this item's chain and committed after that snapshot was taken (it then no longer holds the
# row, or SKIP LOCKED would have passed it by), the insert collides with the chain's unique
# (tenant, type, id, seq): the whole statement fails, nothing is applied, and it runs again
# on a fresh snapshot.
_TAKE_BASE = """
WITH cfg AS (SELECT set_config('synchronous_commit', 'off', true) AS sc),
pick AS (
    SELECT id FROM billing.work_items
    WHERE tenant_id = $1 AND status = 'open'{extra}
    ORDER BY priority_score DESC, id DESC
    LIMIT 1
    FOR UPDATE SKIP LOCKED
), upd AS (
    UPDATE billing.work_items w
    SET status = 'in_progress', assignee = $2, version = w.version + 1, updated_at = now()
    FROM pick, cfg
    WHERE w.id = pick.id AND cfg.sc IS NOT NULL
    RETURNING w.*
), ev AS (
    SELECT upd.id::text AS eid, COALESCE(h.seq, 0) + 1 AS seq,
           COALESCE(h.hash, '{genesis}') AS prev
    FROM upd LEFT JOIN LATERAL (
        SELECT e.seq, e.hash FROM audit.events e
        WHERE e.tenant_id = $1 AND e.entity_type = '{entity}' AND e.entity_id = upd.id::text
        ORDER BY e.seq DESC
        LIMIT 1
    ) h ON true
), ins AS (
    INSERT INTO audit.events (tenant_id, entity_type, entity_id, seq, action, actor, request_id,
                              reason, before, after, occurred_at, prev_hash, hash)
    SELECT $1, '{entity}', ev.eid, ev.seq, '{action}', $2, $3, '{reason}', $4::jsonb, $5::jsonb,
           $6, ev.prev, {hash}
    FROM ev
    RETURNING seq
)
SELECT upd.*, ins.seq AS event_seq FROM upd CROSS JOIN ins
"""
_TAKE_ACTION = "work_item.assigned"
_TAKE_REASON = "next"
_TAKE_FIXED_ARGS = 7


def _take_sql(route: bool, category: bool) -> str:
    extra = ""
    n = _TAKE_FIXED_ARGS
    if route:
        n += 1
        extra += f" AND route = ${n}"
    if category:
        n += 1
        extra += f" AND category = ${n}"
    return _TAKE_BASE.format(
        extra=extra,
        genesis=audit.GENESIS,
        entity=ENTITY,
        action=_TAKE_ACTION,
        reason=_TAKE_REASON,
        hash=audit.sql_event_hash("$7::text", "ev.eid", "ev.seq", "ev.prev"),
    )


# One statement per filter combination, so each gets a plan on the queue index.
_TAKE_SQL = {(r, c): _take_sql(r, c) for r in (False, True) for c in (False, True)}
_TAKE_BEFORE = {"status": WorkItemStatus.OPEN.value, "assignee": None}
_json = msgspec.json.Encoder()
# Attempts before giving up when the item's chain keeps changing under the take.
_TAKE_ATTEMPTS = 5


def _take_args(
    principal: Principal, route: str | None, category: str | None, request_id: str | None
) -> list[Any]:
    at = utc_now()
    after = {"status": WorkItemStatus.IN_PROGRESS.value, "assignee": principal.actor}
    template = audit.hash_template(
        tenant_id=principal.tenant_id,
        entity_type=ENTITY,
        action=_TAKE_ACTION,
        actor=principal.actor,
        request_id=request_id,
        reason=_TAKE_REASON,
        before=_TAKE_BEFORE,
        after=after,
        occurred_at=at,
    )
    args: list[Any] = [
        principal.tenant_id,
        principal.actor,
        request_id,
        _json.encode(_TAKE_BEFORE).decode(),
        _json.encode(after).decode(),
        at,
        template,
    ]
    if route is not None:
        args.append(route)
    if category is not None:
        args.append(category)
    return args


class _Row:
    """Attribute access over an asyncpg record (what `item_read` reads)."""

    __slots__ = ("_r",)

    def __init__(self, record: Any) -> None:
        self._r = record

    def __getattr__(self, name: str) -> Any:
        return self._r[name]


def _taken(row: dict[str, Any]) -> Any:
    reasons = row["reasons"]
    if isinstance(reasons, str | bytes):  # depends on the connection's jsonb codec
        row["reasons"] = msgspec.json.decode(reasons)
    return item_read(_Row(row))


def _busy() -> Conflict:
    return Conflict("the work item's history keeps changing; try again", code="busy")


async def take_next(
    conn: AsyncConnection,
    principal: Principal,
    *,
    route: str | None = None,
    category: str | None = None,
    request_id: str | None = None,
) -> Any | None:
    """Assign the highest-priority open item to the caller, inside the caller's unit of work.
    Rows other billers are taking right now are skipped (FOR UPDATE SKIP LOCKED), so two
    billers never get the same one.

    The assignment and its audit event are one statement (see `_TAKE_BASE`), committed with
    the caller's transaction with `synchronous_commit = off` for that transaction only: a
    crash can lose the last fraction of a second of takes, and a lost take loses both (the
    item is simply open again, with no event claiming otherwise); it can never leave one
    without the other. Each attempt runs in a savepoint, so a chain collision is retried
    without aborting the caller's transaction.
    """
    sql = _TAKE_SQL[(route is not None, category is not None)]
    for _ in range(_TAKE_ATTEMPTS):
        args = tuple(_take_args(principal, route, category, request_id))
        try:
            async with conn.begin_nested():
                rec = (await conn.exec_driver_sql(sql, args)).first()
        except IntegrityError as exc:
            if not _is_chain_collision(exc.orig):
                raise
            continue
        return None if rec is None else _taken(dict(rec._mapping))
    raise _busy()  # pragma: no cover - needs five appends to one item racing this take


async def take_next_fast(
    db: Database,
    principal: Principal,
    *,
    route: str | None = None,
    category: str | None = None,
    request_id: str | None = None,
) -> Any | None:
    """`take_next` as its own single-statement transaction on a raw pooled asyncpg connection
    in autocommit: one round trip, no ORM layer (the queue's hot path)."""
    sql = _TAKE_SQL[(route is not None, category is not None)]
    for _ in range(_TAKE_ATTEMPTS):
        args = _take_args(principal, route, category, request_id)
        try:
            async with db.raw() as drv:
                rec = await drv.fetchrow(sql, *args)
        except asyncpg.UniqueViolationError as exc:
            if not _is_chain_collision(exc):
                raise
            continue
        return None if rec is None else _taken(dict(rec))
    raise _busy()  # pragma: no cover - needs five appends to one item racing this take


def _is_chain_collision(exc: BaseException | None) -> bool:
    """A unique violation on the audit chain's (tenant, type, id, seq) (asyncpg's error, or
    SQLAlchemy's DBAPI adapter around it)."""
    found = exc if isinstance(exc, asyncpg.UniqueViolationError) else None
    if found is None and exc is not None:
        found = exc.__cause__ if isinstance(exc.__cause__, asyncpg.UniqueViolationError) else None
    return found is not None and str(found.constraint_name or "").startswith("uq_events_")
