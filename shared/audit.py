"""Append-only, hash-chained audit events (schema `audit`).

Each entity (tenant, type, id) has its own chain: event n stores the SHA-256 of its canonical
content together with the hash of event n-1, so changing, removing or reordering any event
breaks every later link. A trigger (see the migrations) rejects UPDATE and DELETE on the
table; verification recomputes the chain and names the first broken link.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import utc_now
from shared.tables import audit_events

GENESIS = "0" * 64

_encoder = msgspec.json.Encoder(order="sorted")


@dataclass(frozen=True, slots=True)
class AuditEvent:
    tenant_id: str
    entity_type: str
    entity_id: str
    seq: int
    action: str
    actor: str
    request_id: str | None
    reason: str | None
    before: Any
    after: Any
    occurred_at: datetime
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class ChainCheck:
    valid: bool
    events: int
    broken_at_seq: int | None = None
    problem: str | None = None


def _payload(
    *,
    prev_hash: str | None,
    tenant_id: str,
    entity_type: str,
    entity_id: str | None,
    seq: int | None,
    action: str,
    actor: str,
    request_id: str | None,
    reason: str | None,
    before: Any,
    after: Any,
    occurred_at: datetime,
) -> bytes:
    """The canonical bytes an event's hash covers (keys sorted, compact JSON)."""
    return _encoder.encode(
        {
            "prev": prev_hash,
            "tenant": tenant_id,
            "type": entity_type,
            "id": entity_id,
            "seq": seq,
            "action": action,
            "actor": actor,
            "request_id": request_id,
            "reason": reason,
            "before": before,
            "after": after,
            "at": occurred_at.isoformat(),
        }
    )


def event_hash(
    *,
    prev_hash: str,
    tenant_id: str,
    entity_type: str,
    entity_id: str,
    seq: int,
    action: str,
    actor: str,
    request_id: str | None,
    reason: str | None,
    before: Any,
    after: Any,
    occurred_at: datetime,
) -> str:
    payload = _payload(
        prev_hash=prev_hash,
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
        occurred_at=occurred_at,
    )
    return hashlib.sha256(payload).hexdigest()


def hash_template(
    *,
    tenant_id: str,
    entity_type: str,
    action: str,
    actor: str,
    request_id: str | None,
    reason: str | None,
    before: Any,
    after: Any,
    occurred_at: datetime,
) -> str:
    """The canonical payload `event_hash` hashes, for an event whose entity id, seq and
    previous hash are only known inside one SQL statement: they are encoded as `null` and
    `sql_event_hash` puts them in. Each of `"id":null`, `"prev":null` and `"seq":null` must
    occur exactly once (checked; ValueError otherwise). Inside a string value a `"` is always
    escaped and a value's closing quote is never followed by `:`, so free-text values (actor,
    request id, ...) can never produce them; only a key of `before`/`after` ending in `id`,
    `prev` or `seq` with a null value can, and such events are refused.
    `before` and `after` must already be what PostgreSQL gives back (JSON round trip, as
    `build_event` does)."""
    payload = _payload(
        prev_hash=None,
        tenant_id=tenant_id,
        entity_type=entity_type,
        entity_id=None,
        seq=None,
        action=action,
        actor=actor,
        request_id=request_id,
        reason=reason,
        before=before,
        after=after,
        occurred_at=occurred_at,
    ).decode()
    if any(payload.count(f'"{k}":null') != 1 for k in ("id", "prev", "seq")):
        raise ValueError("before/after may not hold a null id, prev or seq key")
    return payload


def sql_event_hash(template: str, entity_id: str, seq: str, prev_hash: str) -> str:
    """The SQL expression of `event_hash` over a `hash_template` (a text expression) and the
    SQL expressions of the entity id (text), the seq (integer) and the previous hash (text)."""
    return (
        "encode(sha256(convert_to(replace(replace(replace("
        f"{template}, '\"id\":null', '\"id\":' || to_json(CAST({entity_id} AS text))::text), "
        f"'\"prev\":null', '\"prev\":\"' || {prev_hash} || '\"'), "
        f"'\"seq\":null', '\"seq\":' || CAST({seq} AS text)), 'UTF8')), 'hex')"
    )


def build_event(
    *,
    tenant_id: str,
    entity_type: str,
    entity_id: str,
    seq: int,
    prev_hash: str,
    action: str,
    actor: str,
    request_id: str | None = None,
    reason: str | None = None,
    before: Any = None,
    after: Any = None,
    occurred_at: datetime | None = None,
) -> dict[str, Any]:
    """The row to insert for one event; pure, so callers can batch inserts."""
    at = occurred_at or utc_now()
    # JSON round trip first: what is hashed must be exactly what PostgreSQL will give back.
    before_j = msgspec.json.decode(msgspec.json.encode(before)) if before is not None else None
    after_j = msgspec.json.decode(msgspec.json.encode(after)) if after is not None else None
    digest = event_hash(
        prev_hash=prev_hash,
        tenant_id=tenant_id,
        entity_type=entity_type,
        entity_id=entity_id,
        seq=seq,
        action=action,
        actor=actor,
        request_id=request_id,
        reason=reason,
        before=before_j,
        after=after_j,
        occurred_at=at,
    )
    return {
        "tenant_id": tenant_id,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "seq": seq,
        "action": action,
        "actor": actor,
        "request_id": request_id,
        "reason": reason,
        "before": before_j,
        "after": after_j,
        "occurred_at": at,
        "prev_hash": prev_hash,
        "hash": digest,
    }


async def append(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    entity_type: str,
    entity_id: str,
    action: str,
    actor: str,
    request_id: str | None = None,
    reason: str | None = None,
    before: Any = None,
    after: Any = None,
    new_entity: bool = False,
) -> dict[str, Any]:
    """Append one event inside the caller's transaction.

    `new_entity=True` is for an entity created in this same transaction: nobody else can see
    it yet, so the chain starts at seq 1 without a lock or a read. Otherwise a transaction
    advisory lock on the entity serialises concurrent appends to one chain.
    """
    if new_entity:
        seq, prev = 1, GENESIS
    else:
        key = f"{tenant_id}/{entity_type}/{entity_id}"
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": key}
        )
        last = (
            await conn.execute(
                select(audit_events.c.seq, audit_events.c.hash)
                .where(
                    audit_events.c.tenant_id == tenant_id,
                    audit_events.c.entity_type == entity_type,
                    audit_events.c.entity_id == entity_id,
                )
                .order_by(audit_events.c.seq.desc())
                .limit(1)
            )
        ).first()
        seq, prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
    row = build_event(
        tenant_id=tenant_id,
        entity_type=entity_type,
        entity_id=entity_id,
        seq=seq,
        prev_hash=prev,
        action=action,
        actor=actor,
        request_id=request_id,
        reason=reason,
        before=before,
        after=after,
    )
    await conn.execute(audit_events.insert(), row)
    return row


async def history(
    conn: AsyncConnection, *, tenant_id: str, entity_type: str, entity_id: str
) -> list[AuditEvent]:
    rows = await conn.execute(
        select(audit_events)
        .where(
            audit_events.c.tenant_id == tenant_id,
            audit_events.c.entity_type == entity_type,
            audit_events.c.entity_id == entity_id,
        )
        .order_by(audit_events.c.seq)
    )
    return [AuditEvent(**{k: v for k, v in r._mapping.items() if k != "id"}) for r in rows]


def verify_chain(events: Sequence[AuditEvent]) -> ChainCheck:
    prev = GENESIS
    for expected_seq, ev in enumerate(events, start=1):
        if ev.seq != expected_seq:
            return ChainCheck(False, len(events), ev.seq, f"sequence gap: expected {expected_seq}")
        if ev.prev_hash != prev:
            return ChainCheck(
                False, len(events), ev.seq, "prev_hash does not match the previous event's hash"
            )
        recomputed = event_hash(
            prev_hash=ev.prev_hash,
            tenant_id=ev.tenant_id,
            entity_type=ev.entity_type,
            entity_id=ev.entity_id,
            seq=ev.seq,
            action=ev.action,
            actor=ev.actor,
            request_id=ev.request_id,
            reason=ev.reason,
            before=ev.before,
            after=ev.after,
            occurred_at=ev.occurred_at,
        )
        if recomputed != ev.hash:
            return ChainCheck(
                False, len(events), ev.seq, "content does not match its hash (event altered)"
            )
        prev = ev.hash
    return ChainCheck(True, len(events))
