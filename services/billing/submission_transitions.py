"""Claim status moves made by submission and acknowledgments, many claims at a time.

Each move is validated by ``claim_state.transition``, bumps the claim's ``version``
(optimistic lock) and appends one hash-chained audit event with actor, reason and
before/after, in the caller's transaction. Callers hold the claims' row locks
(``lock_claims``), which serialises appends to each claim's audit chain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.claim_repository import audit_heads, driver
from services.billing.domain.claim_state import (
    ClaimEvent,
    ClaimStatus,
    InvalidTransition,
    transition,
)
from services.billing.submission_build import ClaimRow
from shared import audit

__all__ = ["Moved", "lock_claims", "move_claims"]

CLAIM = "claim"
_encode = msgspec.json.Encoder().encode

_LOCK_SQL = text(
    """
    SELECT id::text AS id, tenant_id, status, version, claim_version, patient_control_number,
           total_charge_cents, timely_filing_deadline
    FROM billing.claims WHERE id = ANY(CAST(:ids AS uuid[]))
    ORDER BY id FOR UPDATE
    """
)

_UPDATE_SQL = """
WITH upd AS (
    UPDATE billing.claims c
    SET status = r.status, status_reason = r.reason, version = c.version + 1, updated_at = r.at
    FROM jsonb_to_recordset($1::jsonb) AS r(id uuid, status text, reason text, version int,
                                            at timestamptz)
    WHERE c.id = r.id AND c.version = r.version
    RETURNING c.id
)
INSERT INTO audit.events (tenant_id, entity_type, entity_id, seq, action, actor, request_id,
                          reason, before, after, occurred_at, prev_hash, hash)
SELECT tenant_id, entity_type, entity_id, seq, action, actor, request_id, reason, before, after,
       occurred_at, prev_hash, hash
FROM jsonb_to_recordset($2::jsonb) AS e(tenant_id text, entity_type text, entity_id text,
    seq int, action text, actor text, request_id text, reason text, before jsonb, after jsonb,
    occurred_at timestamptz, prev_hash text, hash text)
WHERE e.entity_id::uuid IN (SELECT id FROM upd)
RETURNING entity_id
"""


async def lock_claims(conn: AsyncConnection, claim_ids: Sequence[str]) -> dict[str, ClaimRow]:
    """Row-lock claims in id order (no deadlocks between two runs)."""
    if not claim_ids:
        return {}
    rows = await conn.execute(_LOCK_SQL, {"ids": list(claim_ids)})
    return {
        r.id: ClaimRow(
            id=r.id,
            tenant_id=r.tenant_id,
            status=r.status,
            version=r.version,
            claim_version=r.claim_version,
            patient_control_number=r.patient_control_number,
            total_charge_cents=r.total_charge_cents,
            timely_filing_deadline=r.timely_filing_deadline,
        )
        for r in rows
    }


@dataclass(slots=True)
class Moved:
    moved: list[str] = field(default_factory=list)
    # claim id -> why it was not moved (its current status does not allow the move)
    skipped: dict[str, str] = field(default_factory=dict)


async def move_claims(
    conn: AsyncConnection,
    claims: Sequence[ClaimRow],
    target: ClaimStatus,
    event: ClaimEvent,
    *,
    action: str,
    actor: str,
    reasons: Mapping[str, str],
    after: Mapping[str, dict[str, Any]] | None = None,
    now: datetime,
    request_id: str | None = None,
) -> Moved:
    """Move each claim to ``target``; ``reasons[claim id]`` is the audit reason (and the
    claim's ``status_reason``), ``after[claim id]`` extra facts for the audit event."""
    result = Moved()
    if not claims:
        return result
    heads = await audit_heads(conn, CLAIM, [(c.tenant_id, c.id) for c in claims])
    updates: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for c in claims:
        try:
            move = transition(ClaimStatus(c.status), target, reason=reasons[c.id], event=event)
        except InvalidTransition as exc:
            result.skipped[c.id] = str(exc)
            continue
        seq, prev = heads.get(c.id, (0, audit.GENESIS))
        updates.append(
            {"id": c.id, "status": target.value, "reason": move.reason[:2000],
             "version": c.version, "at": now}
        )  # fmt: skip
        events.append(
            audit.build_event(
                tenant_id=c.tenant_id,
                entity_type=CLAIM,
                entity_id=c.id,
                seq=seq + 1,
                prev_hash=prev,
                action=action,
                actor=actor,
                request_id=request_id,
                reason=move.reason,
                before={"status": move.source.value, "version": c.version},
                after={
                    "status": move.target.value,
                    "version": c.version + 1,
                    **((after or {}).get(c.id) or {}),
                },
                occurred_at=now,
            )
        )
    if not updates:
        return result
    drv = await driver(conn)
    done = await drv.fetch(_UPDATE_SQL, _encode(updates).decode(), _encode(events).decode())
    moved = {r["entity_id"] for r in done}
    for u in updates:
        if u["id"] in moved:
            result.moved.append(u["id"])
        else:  # pragma: no cover - the caller holds the row lock
            result.skipped[u["id"]] = "the claim changed concurrently"
    return result
