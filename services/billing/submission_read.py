"""Reading batches for people: keyset-paginated list, one batch with its claims and the
acknowledgments that answered it. Tenant-scoped: another tenant's batch is not found."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import date, datetime
from typing import Any

from msgspec import Struct
from sqlalchemy import and_, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.submission import BatchResult, RunResult
from services.billing.tables_submission import batches
from shared.errors import FieldProblem, NotFound, RuleViolation
from shared.money import format_cents

__all__ = [
    "AckClaimRead",
    "AckRead",
    "BatchClaimRead",
    "BatchPage",
    "BatchRead",
    "BatchSummary",
    "RunRead",
    "get_batch",
    "list_batches",
    "run_read",
]


class BatchSummary(Struct):
    id: str
    status: str
    transport: str
    file_name: str
    content_hash: str
    claim_count: int
    total_charge: str
    trading_partner_id: str
    receiver_id: str
    payer_x12_id: str
    payer_name: str
    isa13: str
    gs06: int
    st02: list[str]
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    failed_at: datetime | None


class BatchClaimRead(Struct):
    claim_id: str
    patient_control_number: str
    claim_version: int
    st02: str
    charge: str
    claim_status: str | None
    held: bool
    note: str | None = None


class AckClaimRead(Struct):
    claim_id: str
    patient_control_number: str
    outcome: str
    codes: list[str]
    reasons: list[dict[str, Any]]
    applied_status: str | None
    effective_date: date | None
    payer_claim_id: str | None


class AckRead(Struct):
    id: str
    kind: str
    file_name: str
    content_hash: str
    interchange_control_number: str
    received_at: datetime
    summary: dict[str, Any]
    claims: list[AckClaimRead]


class BatchRead(Struct):
    batch: BatchSummary
    claims: list[BatchClaimRead]
    acknowledgments: list[AckRead]


class BatchPage(Struct):
    items: list[BatchRead]
    next_cursor: str | None = None


class RunBatchRead(Struct):
    batch_id: str
    status: str
    file_name: str
    claim_count: int
    attempts: int
    error: str | None


class RunRead(Struct):
    batches: list[RunBatchRead]
    recovered: list[RunBatchRead]
    held_claims: list[str]


def _run_batch(r: BatchResult) -> RunBatchRead:
    return RunBatchRead(r.batch_id, r.status, r.file_name, r.claim_count, r.attempts, r.error)


def run_read(result: RunResult) -> RunRead:
    return RunRead(
        batches=[_run_batch(r) for r in result.batches],
        recovered=[_run_batch(r) for r in result.recovered],
        held_claims=list(result.held_claims),
    )


def _summary(b: Any) -> BatchSummary:
    return BatchSummary(
        id=str(b.id),
        status=b.status,
        transport=b.transport,
        file_name=b.file_name,
        content_hash=b.content_hash,
        claim_count=b.claim_count,
        total_charge=format_cents(b.total_charge_cents),
        trading_partner_id=b.trading_partner_id,
        receiver_id=b.receiver_id,
        payer_x12_id=b.payer_x12_id,
        payer_name=b.payer_name,
        isa13=f"{b.isa13:09d}",
        gs06=b.gs06,
        st02=[f"{b.st02_first + i:04d}" for i in range(b.set_count)],
        attempts=b.attempts,
        last_error=b.last_error,
        created_at=b.created_at,
        sent_at=b.sent_at,
        failed_at=b.failed_at,
    )


_SUMMARY_COLS = [c for c in batches.c if c.name != "content"]

_CLAIMS_SQL = text(
    """
    SELECT bc.batch_id::text AS batch_id, bc.claim_id::text AS claim_id,
           bc.patient_control_number, bc.claim_version, bc.st02, bc.charge_cents, bc.active,
           bc.note, c.status AS claim_status
    FROM billing.batch_claims bc
    LEFT JOIN billing.claims c ON c.id = bc.claim_id AND c.tenant_id = bc.tenant_id
    WHERE bc.batch_id = ANY(CAST(:ids AS uuid[])) AND bc.tenant_id = :tenant
    ORDER BY bc.batch_id, bc.st02, bc.patient_control_number
    """
)

_ACKS_SQL = text(
    """
    SELECT DISTINCT a.id::text AS id, a.kind, a.file_name, a.content_hash,
           a.interchange_control_number, a.received_at, a.summary,
           coalesce(ac.batch_id, a.batch_id)::text AS batch_id
    FROM billing.acknowledgments a
    LEFT JOIN billing.ack_claims ac ON ac.ack_id = a.id
    WHERE a.tenant_id = :tenant
      AND (a.batch_id = ANY(CAST(:ids AS uuid[])) OR ac.batch_id = ANY(CAST(:ids AS uuid[])))
    ORDER BY 6, 1
    """
)

_ACK_CLAIMS_SQL = text(
    """
    SELECT ack_id::text AS ack_id, batch_id::text AS batch_id, claim_id::text AS claim_id,
           patient_control_number, outcome, codes, reasons, applied_status, effective_date,
           payer_claim_id
    FROM billing.ack_claims
    WHERE ack_id = ANY(CAST(:acks AS uuid[])) AND tenant_id = :tenant
    ORDER BY patient_control_number
    """
)


async def _details(conn: AsyncConnection, tenant_id: str, rows: list[Any]) -> list[BatchRead]:
    ids = [str(b.id) for b in rows]
    if not ids:
        return []
    claims_by: dict[str, list[BatchClaimRead]] = {i: [] for i in ids}
    for r in await conn.execute(_CLAIMS_SQL, {"ids": ids, "tenant": tenant_id}):
        claims_by[r.batch_id].append(
            BatchClaimRead(
                claim_id=r.claim_id,
                patient_control_number=r.patient_control_number,
                claim_version=r.claim_version,
                st02=r.st02,
                charge=format_cents(r.charge_cents),
                claim_status=r.claim_status,
                held=r.active,
                note=r.note,
            )
        )
    ack_rows = list(await conn.execute(_ACKS_SQL, {"ids": ids, "tenant": tenant_id}))
    ack_ids = sorted({a.id for a in ack_rows})
    ack_claims: dict[tuple[str, str], list[AckClaimRead]] = {}
    if ack_ids:
        for r in await conn.execute(_ACK_CLAIMS_SQL, {"acks": ack_ids, "tenant": tenant_id}):
            ack_claims.setdefault((r.ack_id, r.batch_id or ""), []).append(
                AckClaimRead(
                    claim_id=r.claim_id,
                    patient_control_number=r.patient_control_number,
                    outcome=r.outcome,
                    codes=list(r.codes),
                    reasons=list(r.reasons),
                    applied_status=r.applied_status,
                    effective_date=r.effective_date,
                    payer_claim_id=r.payer_claim_id,
                )
            )
    acks_by: dict[str, list[AckRead]] = {i: [] for i in ids}
    seen: set[tuple[str, str]] = set()
    for a in ack_rows:
        if a.batch_id not in acks_by or (a.id, a.batch_id) in seen:
            continue
        seen.add((a.id, a.batch_id))
        acks_by[a.batch_id].append(
            AckRead(
                id=a.id,
                kind=a.kind,
                file_name=a.file_name,
                content_hash=a.content_hash,
                interchange_control_number=a.interchange_control_number,
                received_at=a.received_at,
                summary=a.summary,
                claims=ack_claims.get((a.id, a.batch_id), []),
            )
        )
    return [BatchRead(_summary(b), claims_by[str(b.id)], acks_by[str(b.id)]) for b in rows]


def _cursor(created_at: datetime, batch_id: str) -> str:
    raw = f"{created_at.isoformat()}|{batch_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    bad = RuleViolation(
        "the cursor is not one this API returned",
        code="invalid_cursor",
        errors=(FieldProblem("after", "pass next_cursor from the previous page", "invalid"),),
    )
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, bid = raw.split("|", 1)
        created = datetime.fromisoformat(at)
        uuid.UUID(bid)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad from None
    if created.tzinfo is None:
        raise bad
    return created, bid


async def list_batches(
    conn: AsyncConnection,
    tenant_id: str,
    *,
    status: str | None,
    after: str | None,
    limit: int,
) -> BatchPage:
    """Newest first; ``next_cursor`` continues after the last item."""
    stmt = select(*_SUMMARY_COLS).where(batches.c.tenant_id == tenant_id)
    if status:
        stmt = stmt.where(batches.c.status == status)
    if after:
        at, bid = _decode_cursor(after)
        stmt = stmt.where(
            or_(
                batches.c.created_at < at,
                and_(batches.c.created_at == at, batches.c.id < bid),
            )
        )
    rows = list(
        await conn.execute(
            stmt.order_by(batches.c.created_at.desc(), batches.c.id.desc()).limit(limit + 1)
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = _cursor(rows[-1].created_at, str(rows[-1].id)) if more and rows else None
    return BatchPage(items=await _details(conn, tenant_id, rows), next_cursor=cursor)


async def get_batch(conn: AsyncConnection, tenant_id: str, batch_id: str) -> BatchRead:
    try:
        bid = str(uuid.UUID(batch_id))
    except ValueError:
        bid = ""
    row = None
    if bid:
        row = (
            await conn.execute(
                select(*_SUMMARY_COLS).where(batches.c.id == bid, batches.c.tenant_id == tenant_id)
            )
        ).first()
    if row is None:
        raise NotFound(f"no batch {batch_id}", code="batch_not_found")
    return (await _details(conn, tenant_id, [row]))[0]


async def batch_file(conn: AsyncConnection, tenant_id: str, batch_id: str) -> tuple[str, bytes]:
    """The exact bytes sent (for support and audits)."""
    try:
        bid = str(uuid.UUID(batch_id))
    except ValueError:
        raise NotFound(f"no batch {batch_id}", code="batch_not_found") from None
    row = (
        await conn.execute(
            select(batches.c.file_name, batches.c.content).where(
                batches.c.id == bid, batches.c.tenant_id == tenant_id
            )
        )
    ).first()
    if row is None:
        raise NotFound(f"no batch {batch_id}", code="batch_not_found")
    return row.file_name, bytes(row.content)
