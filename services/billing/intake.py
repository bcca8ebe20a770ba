"""Session intake use cases: record a documented MTM session, read it, move it along.

`record_session` is the hot path of the API: one round trip writes the session, its outbox
row and the first audit event (a single CTE statement), and the worker's job is sent after
the commit. Idempotent on (tenant, external id): the same body returns the first result; a
different body under the same id is a conflict.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import msgspec
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.schemas import HistoryEntry, SessionCreate, SessionRead
from services.billing.tables import sessions
from shared import audit
from shared.auth import Principal
from shared.clock import utc_now
from shared.errors import Conflict, FieldProblem, NotFound, RuleViolation
from shared.tables import audit_events
from shared.uow import Database, Queue, batch_wakeup, send_after_commit

PRICE_SESSION = "price_session"

_encoder = msgspec.json.Encoder()


def price_session_job_id(session_id: str) -> str:
    return f"{PRICE_SESSION}:{session_id}"


def documented_minutes(cmd: SessionCreate) -> int:
    """Face-to-face minutes: explicit minutes, or end - start (same day)."""
    if cmd.start_time is not None and cmd.end_time is not None:
        start = datetime.combine(cmd.date_of_service, cmd.start_time)
        end = datetime.combine(cmd.date_of_service, cmd.end_time)
        return int((end - start) / timedelta(minutes=1))
    return cmd.documented_minutes or 0


def validate_session(cmd: SessionCreate, today: date) -> None:
    """Rules msgspec cannot express; all problems are reported at once."""
    problems: list[FieldProblem] = []
    if cmd.date_of_service > today:
        problems.append(
            FieldProblem("date_of_service", "date of service is in the future", "future_date")
        )
    has_times = cmd.start_time is not None or cmd.end_time is not None
    if has_times and (cmd.start_time is None or cmd.end_time is None):
        field = "end_time" if cmd.end_time is None else "start_time"
        problems.append(
            FieldProblem(field, "give both start_time and end_time, or neither", "incomplete_times")
        )
    elif cmd.start_time is not None and cmd.end_time is not None:
        if cmd.end_time <= cmd.start_time:
            problems.append(
                FieldProblem("end_time", "end_time must be after start_time", "invalid_times")
            )
        elif (
            cmd.documented_minutes is not None
            and abs(documented_minutes(cmd) - cmd.documented_minutes) > 1
        ):
            problems.append(
                FieldProblem(
                    "documented_minutes",
                    "documented_minutes disagrees with end_time - start_time",
                    "minutes_mismatch",
                )
            )
    elif cmd.documented_minutes is None:
        problems.append(
            FieldProblem(
                "documented_minutes",
                "document the face-to-face time: documented_minutes or start_time and end_time",
                "missing_time",
            )
        )
    if len({d.replace(".", "").upper() for d in cmd.diagnoses}) != len(cmd.diagnoses):
        problems.append(
            FieldProblem("diagnoses", "a diagnosis is listed twice", "duplicate_diagnosis")
        )
    if problems:
        raise RuleViolation(
            "the session cannot be accepted as documented",
            code="invalid_session",
            errors=tuple(problems),
            action="correct the listed fields and send the session again",
        )


def body_hash(cmd: SessionCreate) -> str:
    return hashlib.sha256(_encoder.encode(cmd)).hexdigest()


PRICE_SESSIONS_BATCH = "price_sessions_batch"


@dataclass(frozen=True, slots=True)
class Recorded:
    session_id: str
    created: bool


# One statement is one atomic unit of work: the session, its outbox row and its first audit
# event are written together or not at all, in a single round trip. When the external id is
# taken, the second branch returns the existing row for the idempotency check instead.
_INSERT_SQL = """
WITH ins AS (
    INSERT INTO billing.sessions
        (id, tenant_id, external_id, body_hash, patient_ref, date_of_service, payload, state,
         created_at, updated_at)
    VALUES ($1::uuid, $2, $3, $4, $5, $6, $7::jsonb, 'received', $8, $8)
    ON CONFLICT (tenant_id, external_id) DO NOTHING
    RETURNING id
), ob AS (
    INSERT INTO core.outbox (tenant_id, job_name, job_id, args, created_at, enqueued_at)
    SELECT $2, $9, $10, $11::jsonb, $8, $8 FROM ins
), au AS (
    INSERT INTO audit.events
        (tenant_id, entity_type, entity_id, seq, action, actor, request_id, reason, before,
         after, occurred_at, prev_hash, hash)
    SELECT $2, 'session', $1, 1, $12, $13, $14, NULL, NULL, $15::jsonb, $8, $16, $17 FROM ins
)
SELECT id::text AS id, true AS created, $4 AS body_hash FROM ins
UNION ALL
SELECT id::text, false, body_hash FROM billing.sessions
WHERE tenant_id = $2 AND external_id = $3 AND NOT EXISTS (SELECT 1 FROM ins)
"""


async def record_session(
    db: Database,
    queue: Queue | None,
    principal: Principal,
    cmd: SessionCreate,
    *,
    request_id: str | None,
) -> Recorded:
    now = utc_now()
    validate_session(cmd, now.date())
    encoded = _encoder.encode(cmd)
    digest = hashlib.sha256(encoded).hexdigest()
    sid = str(uuid.uuid4())
    job_args = {"session_id": sid, "tenant_id": principal.tenant_id}
    event = audit.build_event(
        tenant_id=principal.tenant_id,
        entity_type="session",
        entity_id=sid,
        seq=1,
        prev_hash=audit.GENESIS,
        action="session.received",
        actor=principal.actor,
        request_id=request_id,
        after={"state": "received", "external_id": cmd.external_id},
        occurred_at=now,
    )
    row = await db.fetchrow_atomic(
        _INSERT_SQL,
        sid,
        principal.tenant_id,
        cmd.external_id,
        digest,
        cmd.patient_ref,
        cmd.date_of_service,
        encoded.decode(),
        now,
        PRICE_SESSION,
        price_session_job_id(sid),
        _encoder.encode(job_args).decode(),
        event["action"],
        event["actor"],
        request_id,
        _encoder.encode(event["after"]).decode(),
        event["prev_hash"],
        event["hash"],
    )
    if row is None:  # pragma: no cover - a concurrent delete between the two branches
        raise Conflict("the session changed while it was recorded; retry", code="retry")
    if row["created"]:
        await send_after_commit(queue, [batch_wakeup(PRICE_SESSIONS_BATCH, time.time())])
        return Recorded(sid, True)
    if row["body_hash"] != digest:
        raise Conflict(
            f"session {cmd.external_id!r} was already recorded with a different body",
            code="idempotency_conflict",
            errors=(
                FieldProblem("external_id", "already used for a different session", "conflict"),
            ),
            action="send corrections as a new session id, or resend the original body unchanged",
        )
    return Recorded(row["id"], False)


async def _history(conn: AsyncConnection, tenant_id: str, session_id: str) -> list[HistoryEntry]:
    rows = await conn.execute(
        select(
            audit_events.c.seq,
            audit_events.c.action,
            audit_events.c.actor,
            audit_events.c.occurred_at,
            audit_events.c.reason,
            audit_events.c.request_id,
            audit_events.c.after,
        )
        .where(
            audit_events.c.tenant_id == tenant_id,
            audit_events.c.entity_type == "session",
            audit_events.c.entity_id == session_id,
        )
        .order_by(audit_events.c.seq)
    )
    return [HistoryEntry(**r._mapping) for r in rows]


def _uuid_or_none(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


async def get_session(conn: AsyncConnection, principal: Principal, session_id: str) -> SessionRead:
    sid = _uuid_or_none(session_id)
    row = None
    if sid is not None:
        row = (
            await conn.execute(
                select(sessions).where(
                    sessions.c.id == sid, sessions.c.tenant_id == principal.tenant_id
                )
            )
        ).first()
    if row is None:
        raise NotFound(f"no session {session_id}", code="session_not_found")
    cmd = msgspec.convert(row.payload, SessionCreate)
    return SessionRead(
        id=str(row.id),
        external_id=row.external_id,
        patient_ref=row.patient_ref,
        date_of_service=row.date_of_service,
        state=row.state,
        state_reason=row.state_reason,
        minutes=documented_minutes(cmd),
        created_at=row.created_at,
        updated_at=row.updated_at,
        session=cmd,
        history=await _history(conn, principal.tenant_id, str(row.id)),
    )


async def claim_pending_sessions(
    conn: AsyncConnection, own_session_id: str | None, limit: int
) -> list[tuple[str, str]]:
    """Lock up to `limit` pending price_session outbox rows (own first); (job_id, tenant)."""
    rows = await conn.execute(
        text(
            """
            SELECT job_id, tenant_id FROM core.outbox
            WHERE job_name = :name AND processed_at IS NULL
            ORDER BY (job_id = :own) DESC, id
            LIMIT :limit
            FOR UPDATE SKIP LOCKED
            """
        ),
        {"name": PRICE_SESSION, "own": price_session_job_id(own_session_id or ""), "limit": limit},
    )
    return [(r.job_id, r.tenant_id) for r in rows]
