"""Statements for claims: bulk writes for the worker, keyset reads for the API."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

import msgspec
from sqlalchemy import and_, delete, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.claims_build import PatientHistory
from services.billing.domain.claim_state import ClaimStatus
from services.billing.tables import claim_lines, claims, sessions
from shared import audit
from shared.errors import FieldProblem, RuleViolation


def as_uuid(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


async def lock_pending_sessions(conn: AsyncConnection, session_ids: Sequence[str]) -> list[Any]:
    """Sessions still waiting for their claim, row-locked in id order (no deadlocks between
    two workers); a session another transaction already priced is not returned."""
    if not session_ids:
        return []
    rows = await conn.execute(
        select(
            sessions.c.id,
            sessions.c.tenant_id,
            sessions.c.patient_ref,
            sessions.c.date_of_service,
            sessions.c.payload,
            sessions.c.state,
            sessions.c.created_at,
        )
        .where(
            sessions.c.id.in_(list(session_ids)),
            sessions.c.state.in_(("received", "awaiting_pricing")),
        )
        .order_by(sessions.c.id)
        .with_for_update()
    )
    return list(rows)


# One index probe per patient (tenant, patient_ref, DOS), one per claim for its codes and one
# per claim for whether another claim was rebilled from it: "bill another payer" makes the new
# claim from the same session, so it has the same tenant and patient_ref (the probe stays on
# that index; rebilled_from_claim_id has none). The EXISTS ignores :exclude, so rescrubbing
# the new claim (excluded itself) still marks the claim it was rebilled from.
_HISTORY_SQL = text(
    """
    SELECT c.tenant_id, c.patient_ref, c.patient_control_number, c.status, c.date_of_service,
           c.billing_tin, c.service_type, c.payer_id::text AS payer_id,
           c.contract_id::text AS contract_id,
           ARRAY(SELECT l.procedure_code FROM billing.claim_lines l
                 WHERE l.claim_id = c.id ORDER BY l.line_no) AS codes,
           EXISTS(SELECT 1 FROM billing.claims n
                  WHERE n.tenant_id = c.tenant_id AND n.patient_ref = c.patient_ref
                    AND n.rebilled_from_claim_id = c.id) AS rebilled
    FROM unnest(CAST(:tenants AS text[]), CAST(:refs AS text[])) AS k(tenant_id, patient_ref)
    JOIN billing.claims c ON c.tenant_id = k.tenant_id AND c.patient_ref = k.patient_ref
    WHERE CAST(:exclude AS uuid) IS NULL OR c.id <> CAST(:exclude AS uuid)
    ORDER BY c.date_of_service, c.created_at
    """
)


async def histories(
    conn: AsyncConnection, pairs: Sequence[tuple[str, str]], *, exclude_claim: str | None = None
) -> dict[tuple[str, str], PatientHistory]:
    """Every earlier claim of each (tenant, patient_ref), with its line codes, in DOS order.
    A line of a claim another claim was rebilled from carries ``rebilled`` (the duplicate check
    in ``domain.scrub`` decides what that means)."""
    out: dict[tuple[str, str], PatientHistory] = {pair: PatientHistory() for pair in pairs}
    if not pairs:
        return out
    rows = await conn.execute(
        _HISTORY_SQL,
        {
            "tenants": [t for t, _ in pairs],
            "refs": [p for _, p in pairs],
            "exclude": exclude_claim,
        },
    )
    rebilled: set[str] = set()  # patient control numbers (unique across tenants)
    for r in rows:
        if r.rebilled:
            rebilled.add(r.patient_control_number)
        out[(r.tenant_id, r.patient_ref)].add(
            patient_ref=r.patient_ref,
            pcn=r.patient_control_number,
            status=ClaimStatus(r.status),
            dos=r.date_of_service,
            tin=r.billing_tin,
            service_type=r.service_type,
            codes=list(r.codes or ()),
            payer_id=r.payer_id,
            contract_id=r.contract_id,
        )
    if rebilled:
        for history in out.values():
            history.lines = [
                replace(ln, rebilled=True) if ln.patient_control_number in rebilled else ln
                for ln in history.lines
            ]
    return out


async def next_pcn_numbers(conn: AsyncConnection, n: int) -> list[int]:
    rows = await conn.execute(
        text("SELECT nextval('billing.claim_pcn_seq') FROM generate_series(1, :n)"), {"n": n}
    )
    return [r[0] for r in rows]


_encode = msgspec.json.Encoder().encode

_CLAIM_TYPES = {
    "id": "uuid",
    "tenant_id": "text",
    "session_id": "uuid",
    "claim_version": "int",
    "frequency_code": "text",
    "patient_control_number": "text",
    "status": "text",
    "status_reason": "text",
    "patient_ref": "text",
    "patient_id": "uuid",
    "payer_id": "uuid",
    "contract_id": "uuid",
    "contract_version": "int",
    "service_type": "text",
    "date_of_service": "date",
    "place_of_service": "text",
    "billing_tin": "text",
    "total_charge_cents": "bigint",
    "expected_cents": "bigint",
    "timely_filing_deadline": "date",
    "billing_provider": "jsonb",
    "rendering_provider": "jsonb",
    "subscriber": "jsonb",
    "payer": "jsonb",
    "diagnoses": "jsonb",
    "coding": "jsonb",
    "scrub": "jsonb",
    "eligibility": "jsonb",
    "hold_reasons": "jsonb",
    "version": "int",
    "created_at": "timestamptz",
    "updated_at": "timestamptz",
}
_LINE_TYPES = {
    "claim_id": "uuid",
    "line_no": "smallint",
    "procedure_code": "text",
    "modifiers": "jsonb",
    "units": "int",
    "unit_charge_cents": "bigint",
    "unit_expected_cents": "bigint",
    "charge_cents": "bigint",
    "expected_cents": "bigint",
    "date_of_service": "date",
    "diagnosis_pointers": "jsonb",
}
_EVENT_TYPES = {
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


def _recordset(types: dict[str, str]) -> tuple[str, str]:
    """(column list, recordset definition) for INSERT ... SELECT FROM jsonb_to_recordset."""
    names = ", ".join(types)
    return names, ", ".join(f"{name} {kind}" for name, kind in types.items())


_CLAIM_COLS, _CLAIM_DEF = _recordset(_CLAIM_TYPES)
_LINE_COLS, _LINE_DEF = _recordset(_LINE_TYPES)
_EVENT_COLS, _EVENT_DEF = _recordset(_EVENT_TYPES)

# The worker's whole write in two round trips: rows travel as one JSON document each and
# PostgreSQL unpacks them (no per-row binds to compile). A claim the unique constraint
# refuses (a racing worker already made it) takes its lines and events with it.
_INSERT_CLAIMS_SQL = f"""
WITH ins AS (
    INSERT INTO billing.claims ({_CLAIM_COLS})
    SELECT {_CLAIM_COLS} FROM jsonb_to_recordset($1::jsonb) AS r({_CLAIM_DEF})
    ON CONFLICT (tenant_id, session_id, claim_version) DO NOTHING
    RETURNING id
), lines AS (
    INSERT INTO billing.claim_lines ({_LINE_COLS})
    SELECT {_LINE_COLS} FROM jsonb_to_recordset($2::jsonb) AS r({_LINE_DEF})
    WHERE r.claim_id IN (SELECT id FROM ins)
), events AS (
    INSERT INTO audit.events ({_EVENT_COLS})
    SELECT {_EVENT_COLS} FROM jsonb_to_recordset($3::jsonb) AS r({_EVENT_DEF})
    WHERE r.entity_id IN (SELECT id::text FROM ins)
)
SELECT id::text AS id FROM ins
"""  # noqa: S608 - column lists are constants

_FINISH_SESSIONS_SQL = f"""
WITH upd AS (
    UPDATE billing.sessions s
    SET state = r.state, state_reason = r.reason, updated_at = r.at, version = s.version + 1
    FROM jsonb_to_recordset($1::jsonb) AS r(sid uuid, state text, reason text, at timestamptz)
    WHERE s.id = r.sid
    RETURNING s.id
)
INSERT INTO audit.events ({_EVENT_COLS})
SELECT {_EVENT_COLS} FROM jsonb_to_recordset($2::jsonb) AS r({_EVENT_DEF})
"""  # noqa: S608 - column lists are constants


async def driver(conn: AsyncConnection) -> Any:
    """The asyncpg connection under the caller's transaction (bulk statements only)."""
    raw = await conn.get_raw_connection()
    return raw.driver_connection


async def insert_claims(
    conn: AsyncConnection,
    rows: Sequence[dict[str, Any]],
    lines: Sequence[dict[str, Any]],
    events: Sequence[dict[str, Any]],
) -> set[str]:
    """Insert claims with their lines and audit events; returns the claim ids inserted."""
    if not rows:
        return set()
    drv = await driver(conn)
    found = await drv.fetch(
        _INSERT_CLAIMS_SQL,
        _encode(rows).decode(),
        _encode(lines).decode(),
        _encode(events).decode(),
    )
    return {r["id"] for r in found}


async def finish_sessions(
    conn: AsyncConnection, updates: Sequence[dict[str, Any]], events: Sequence[dict[str, Any]]
) -> None:
    """New session states (sid, state, reason, at) and their audit events, in one statement."""
    if not updates and not events:
        return
    drv = await driver(conn)
    await drv.execute(_FINISH_SESSIONS_SQL, _encode(updates).decode(), _encode(events).decode())


async def audit_heads(
    conn: AsyncConnection, entity_type: str, keys: Sequence[tuple[str, str]]
) -> dict[str, tuple[int, str]]:
    """Last (seq, hash) of each (tenant, entity id) chain, through the chain's unique index;
    callers hold the entity's row lock, which serialises appends to its chain."""
    if not keys:
        return {}
    rows = await conn.execute(
        text(
            """
            SELECT DISTINCT ON (e.entity_id) e.entity_id, e.seq, e.hash
            FROM unnest(CAST(:tenants AS text[]), CAST(:ids AS text[])) AS k(tenant_id, id)
            JOIN audit.events e ON e.tenant_id = k.tenant_id AND e.entity_type = :type
                               AND e.entity_id = k.id
            ORDER BY e.entity_id, e.seq DESC
            """
        ),
        {"type": entity_type, "tenants": [t for t, _ in keys], "ids": [i for _, i in keys]},
    )
    return {r.entity_id: (r.seq, r.hash) for r in rows}


async def get_claim(
    conn: AsyncConnection, tenant_id: str, claim_id: str, *, for_update: bool = False
) -> Any | None:
    cid = as_uuid(claim_id)
    if cid is None:
        return None
    stmt = select(claims).where(claims.c.id == cid, claims.c.tenant_id == tenant_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await conn.execute(stmt)).first()


async def lines_of(conn: AsyncConnection, claim_id: str) -> list[Any]:
    rows = await conn.execute(
        select(claim_lines)
        .where(claim_lines.c.claim_id == claim_id)
        .order_by(claim_lines.c.line_no)
    )
    return list(rows)


async def update_claim(
    conn: AsyncConnection, tenant_id: str, claim_id: str, version: int, values: dict[str, Any]
) -> bool:
    """Optimistic update: False when the row moved on since `version` was read."""
    done = await conn.execute(
        update(claims)
        .where(
            claims.c.id == claim_id,
            claims.c.tenant_id == tenant_id,
            claims.c.version == version,
        )
        .values(**values, version=claims.c.version + 1)
    )
    return bool(done.rowcount)


async def replace_lines(
    conn: AsyncConnection, claim_id: str, rows: Sequence[dict[str, Any]]
) -> None:
    await conn.execute(delete(claim_lines).where(claim_lines.c.claim_id == claim_id))
    if rows:
        await conn.execute(claim_lines.insert(), list(rows))


# ----------------------------------------------------------------------------- listing


@dataclass(frozen=True, slots=True)
class ClaimFilter:
    status: tuple[str, ...] = ()
    payer_id: str | None = None
    patient_ref: str | None = None
    dos_from: date | None = None
    dos_to: date | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


def encode_cursor(created_at: datetime, claim_id: str) -> str:
    raw = f"{created_at.isoformat()}|{claim_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    bad = RuleViolation(
        "the cursor is not one this API returned",
        code="invalid_cursor",
        errors=(FieldProblem("after", "pass next_cursor from the previous page", "invalid"),),
    )
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, cid = raw.split("|", 1)
        created = datetime.fromisoformat(at)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad from None
    if as_uuid(cid) is None or created.tzinfo is None:
        raise bad
    return created, cid


async def list_claims(
    conn: AsyncConnection, tenant_id: str, f: ClaimFilter, after: str | None, limit: int
) -> tuple[list[Any], str | None]:
    """Newest first, keyset on (created_at, id)."""
    cond = [claims.c.tenant_id == tenant_id]
    if f.status:
        cond.append(claims.c.status.in_(f.status))
    if f.payer_id is not None:
        cond.append(claims.c.payer_id == f.payer_id)
    if f.patient_ref is not None:
        cond.append(claims.c.patient_ref == f.patient_ref)
    if f.dos_from is not None:
        cond.append(claims.c.date_of_service >= f.dos_from)
    if f.dos_to is not None:
        cond.append(claims.c.date_of_service <= f.dos_to)
    if f.created_from is not None:
        cond.append(claims.c.created_at >= f.created_from)
    if f.created_to is not None:
        cond.append(claims.c.created_at < f.created_to)
    if after is not None:
        at, cid = decode_cursor(after)
        cond.append(
            or_(claims.c.created_at < at, and_(claims.c.created_at == at, claims.c.id < cid))
        )
    rows = list(
        await conn.execute(
            select(
                claims.c.id,
                claims.c.session_id,
                claims.c.pmpm_period,
                claims.c.patient_control_number,
                claims.c.status,
                claims.c.patient_ref,
                claims.c.payer_id,
                claims.c.payer,
                claims.c.date_of_service,
                claims.c.total_charge_cents,
                claims.c.expected_cents,
                claims.c.version,
                claims.c.created_at,
                claims.c.updated_at,
            )
            .where(*cond)
            .order_by(claims.c.created_at.desc(), claims.c.id.desc())
            .limit(limit + 1)
        )
    )
    cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        cursor = encode_cursor(last.created_at, str(last.id))
    return rows, cursor


async def audit_history(conn: AsyncConnection, tenant_id: str, claim_id: str) -> list[Any]:
    return await audit.history(conn, tenant_id=tenant_id, entity_type="claim", entity_id=claim_id)
