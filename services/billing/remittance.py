"""835 ingestion and posting.

Ingestion (`ingest_835`, used by the upload endpoint and the inbox job):

1. Parse every ST..SE; a syntax error quarantines the file.
2. Balance every transaction (line, claim and file equations, PLB sign included); any
   failure quarantines the file with each failure as a reason, and nothing is applied.
3. Idempotency: the same bytes for the same tenant are found by (payer, TRN, content hash) and
   change nothing; a re-issued file (same payer and TRN, other envelope) is recorded as a
   `duplicate` of the posted one and applies nothing.
4. Post (set-based, see `remittance_post.py`).

Tenancy for inbox files: CLP01 is our CLM01, unique across tenants, so the tenant is the one
whose claims the file names (else the payee NPI's tenant); a file that names no tenant's claim
is quarantined ("no tenant").
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.remittance_post import PostingResult, gc_paused, post_remittances
from services.billing.tables import claims
from services.billing.tables_remittance import remittance_files
from shared import audit
from shared.clock import utc_today
from shared.x12.tokenizer import X12SyntaxError
from shared.x12.x835 import BalanceError, Remittance, check_balance, parse_835

__all__ = ["IngestResult", "ingest_835", "quarantine_reasons"]

ENTITY = "remittance_file"


@dataclass(slots=True)
class IngestResult:
    file_id: str | None
    tenant_id: str | None
    status: str  # posted | quarantined | duplicate
    already_received: bool  # identical bytes seen before: nothing new was recorded
    trace_number: str = ""
    payer_code: str = ""
    payment_cents: int | None = None
    claims: int = 0
    matched: int = 0
    unmatched: int = 0
    work_items: int = 0
    reasons: list[dict[str, Any]] = field(default_factory=list)


def quarantine_reasons(remits: list[Remittance]) -> list[dict[str, Any]]:
    """Every balance failure of every transaction, as stored and shown."""
    out: list[dict[str, Any]] = []
    for ti, remit in enumerate(remits):
        for err in check_balance(remit):
            out.append(_reason(ti, remit, err))
    return out


def _reason(ti: int, remit: Remittance, err: BalanceError) -> dict[str, Any]:
    where = f"transactions[{ti}]"
    if err.claim_index is not None:
        where += f".claims[{err.claim_index}]"
    if err.line_index is not None:
        where += f".lines[{err.line_index}]"
    return {
        "level": err.level,
        "code": f"UNBALANCED_{err.level.upper()}",
        "field": where,
        "pcn": err.pcn,
        "line": err.line_index + 1 if err.line_index is not None else None,
        "trace_number": remit.trace_number,
        "expected_cents": err.expected,
        "actual_cents": err.actual,
        "message": err.message,
    }


def _decode(content: bytes) -> str:
    return content.decode("utf-8", errors="replace").replace("\x00", "")


async def _tenant_for(conn: AsyncConnection, remits: list[Remittance]) -> str | None:
    pcns = list({c.patient_control_number for r in remits for c in r.claims})
    if pcns:
        rows = (
            await conn.execute(
                select(claims.c.tenant_id, func.count())
                .where(claims.c.patient_control_number.in_(pcns[:5000]))
                .group_by(claims.c.tenant_id)
                .order_by(func.count().desc())
            )
        ).all()
        if rows:
            return str(rows[0][0])
    npis = list({r.payee_npi for r in remits if r.payee_npi})
    if npis:
        row = (
            await conn.execute(
                select(claims.c.tenant_id)
                .where(claims.c.billing_provider["npi"].astext.in_(npis))
                .limit(1)
            )
        ).first()
        if row is not None:
            return str(row.tenant_id)
    return None


async def ingest_835(
    conn: AsyncConnection,
    *,
    tenant_id: str | None,
    content: bytes,
    source: str,
    actor: str,
    source_name: str | None = None,
    request_id: str | None = None,
    today: date | None = None,
) -> IngestResult:
    """Record, balance-check and post one 835 file inside the caller's transaction.

    `tenant_id=None` (inbox) resolves the tenant from the claims the file names; when none is
    found the result has status `quarantined`, no tenant and no row (the transport keeps the
    file in its quarantine folder with the reason).
    """
    # The cyclic GC stays paused from parsing to the end of posting: the parsed file is
    # hundreds of thousands of acyclic objects, and with the collector running in between
    # (parse_835 pauses it only for its own call) each generation would scan them all once,
    # for nothing. They are freed by reference counting when `_ingest` returns, before the
    # collector is back.
    with gc_paused():
        return await _ingest(
            conn,
            tenant_id=tenant_id,
            content=content,
            source=source,
            actor=actor,
            source_name=source_name,
            request_id=request_id,
            today=today,
        )


async def _ingest(
    conn: AsyncConnection,
    *,
    tenant_id: str | None,
    content: bytes,
    source: str,
    actor: str,
    source_name: str | None,
    request_id: str | None,
    today: date | None,
) -> IngestResult:
    today = today or utc_today()
    digest = hashlib.sha256(content).hexdigest()
    try:
        remits = parse_835(content)
        syntax: list[dict[str, Any]] = []
        if not remits:
            syntax = [{"level": "syntax", "code": "NO_835", "field": "", "message": "no 835"}]
    except X12SyntaxError as exc:
        remits = []
        syntax = [{"level": "syntax", "code": "X12_SYNTAX", "field": "", "message": str(exc)}]
    trace = ",".join(dict.fromkeys(r.trace_number for r in remits))[:200]
    payer = (remits[0].payer_id or remits[0].trace_originator_id)[:50] if remits else ""
    if tenant_id is None:
        tenant_id = await _tenant_for(conn, remits) if remits else None
        if tenant_id is None:
            reasons = syntax or [
                {
                    "level": "file",
                    "code": "NO_TENANT",
                    "field": "",
                    "message": "no claim in the file matches a claim of any tenant",
                }
            ]
            return IngestResult(None, None, "quarantined", False, trace, payer, reasons=reasons)
    # One ingestion of a given payer/TRN at a time, so two deliveries cannot both post.
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
        {"k": f"835/{tenant_id}/{payer}/{trace or digest}"},
    )
    existing = (
        await conn.execute(
            select(remittance_files).where(
                remittance_files.c.tenant_id == tenant_id,
                remittance_files.c.payer_code == payer,
                remittance_files.c.trace_number == trace,
                remittance_files.c.content_hash == digest,
            )
        )
    ).first()
    if existing is not None:
        return IngestResult(
            existing.id,
            tenant_id,
            existing.status,
            True,
            existing.trace_number,
            existing.payer_code,
            existing.payment_cents,
            existing.claim_count,
            existing.matched_count,
            existing.claim_count - existing.matched_count,
            reasons=list(existing.quarantine_reasons),
        )
    reasons = syntax or quarantine_reasons(remits)
    duplicate_of = None
    if not reasons and trace:
        duplicate_of = (
            await conn.execute(
                select(remittance_files.c.id).where(
                    remittance_files.c.tenant_id == tenant_id,
                    remittance_files.c.payer_code == payer,
                    remittance_files.c.trace_number == trace,
                    remittance_files.c.status == "posted",
                )
            )
        ).scalar_one_or_none()
    status = "quarantined" if reasons else ("duplicate" if duplicate_of else "posted")
    file_id = str(uuid.uuid4())
    payment = sum(r.net_payment for r in remits) if remits else None
    first = remits[0] if remits else None
    n_claims = sum(len(r.claims) for r in remits)
    await conn.execute(
        remittance_files.insert().values(
            id=file_id,
            tenant_id=tenant_id,
            trace_number=trace,
            payer_code=payer,
            payer_name=(first.payer_name[:100] if first else None),
            content_hash=digest,
            content=_decode(content),
            source=source,
            source_name=source_name,
            duplicate_of=duplicate_of,
            status=status,
            quarantine_reasons=reasons,
            payment_cents=payment,
            payment_method=(first.payment_method[:10] if first else None),
            payment_date=(first.payment_date if first else None),
            claim_count=n_claims,
            received_by=actor,
        )
    )
    result = IngestResult(
        file_id, tenant_id, status, False, trace, payer, payment, n_claims, reasons=reasons
    )
    posting = PostingResult()
    if status == "posted":
        posting = await post_remittances(
            conn,
            tenant_id=tenant_id,
            file_id=file_id,
            payer_code=payer,
            remits=remits,
            actor=actor,
            request_id=request_id,
            today=today,
        )
        await conn.execute(
            remittance_files.update()
            .where(remittance_files.c.id == file_id)
            .values(matched_count=posting.matched)
        )
        result.matched = posting.matched
        result.unmatched = posting.unmatched
        result.work_items = posting.work_items
    await audit.append(
        conn,
        tenant_id=tenant_id,
        entity_type=ENTITY,
        entity_id=file_id,
        action=f"remittance.{status}",
        actor=actor,
        request_id=request_id,
        reason=(reasons[0]["message"][:500] if reasons else None),
        after={
            "trace_number": trace,
            "payer": payer,
            "content_hash": digest,
            "source": source,
            "claims": n_claims,
            "matched": posting.matched,
            "unmatched": posting.unmatched,
            "work_items": posting.work_items,
            "payment_cents": payment,
            "duplicate_of": duplicate_of,
            "reasons": [r["code"] for r in reasons],
        },
        new_entity=True,
    )
    return result
