"""Submission step 1 (record): lock the ready claims, group them per tenant / trading
partner / payer, build the 837P files and store each batch with its claims, in the caller's
transaction. A claim that cannot become a valid 837P goes on hold instead."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing import claim_repository
from services.billing.domain.claim_state import ClaimEvent, ClaimStatus, transition
from services.billing.submission_build import (
    BatchKey,
    ClaimRow,
    SnapshotCache,
    allocate_control_numbers,
    batch_file_name,
    batch_key,
    claim_837,
    receiver_of,
)
from services.billing.submission_config import BATCH, BatchResult, SubmissionConfig
from services.billing.tables_submission import batch_claims, batches
from services.billing.transports import content_hash
from shared import audit
from shared.clock import utc_now
from shared.logging import get_logger
from shared.x12.envelope import ControlNumbers, Parties
from shared.x12.x837p import (
    MAX_CLAIMS_PER_SET,
    Claim837,
    Claim837Error,
    build_837p_batch,
)

log = get_logger("billing.submission")

# ----------------------------------------------------------------------------- record

_READY_SQL = """
SELECT c.id::text AS id, c.tenant_id, c.status, c.version, c.claim_version,
       c.patient_control_number, c.total_charge_cents, c.timely_filing_deadline,
       c.frequency_code, c.payer_icn, c.place_of_service, c.diagnoses,
       c.billing_provider, c.rendering_provider, c.subscriber, c.payer, c.hold_reasons
FROM billing.claims c
WHERE c.status = 'ready' {tenant_filter}
  AND NOT EXISTS (SELECT 1 FROM billing.batch_claims bc WHERE bc.claim_id = c.id AND bc.active)
ORDER BY c.created_at, c.id
LIMIT :limit
FOR UPDATE OF c SKIP LOCKED
"""

_LINES_SQL = text(
    """
    SELECT claim_id::text AS claim_id, procedure_code, modifiers, units, charge_cents,
           date_of_service, diagnosis_pointers
    FROM billing.claim_lines WHERE claim_id = ANY(CAST(:ids AS uuid[]))
    ORDER BY claim_id, line_no
    """
)


@dataclass(slots=True)
class _Pick:
    row: ClaimRow
    claim: Claim837
    raw: Any


async def _hold_invalid(
    conn: AsyncConnection, row: Any, message: str, *, actor: str, now: datetime
) -> None:
    """A ready claim that cannot become a valid 837P goes on hold with the reason."""
    move = transition(
        ClaimStatus(row.status),
        ClaimStatus.ON_HOLD,
        reason=f"cannot be submitted: {message}",
        event=ClaimEvent.HOLD,
    )
    hold = {
        "source": "submission",
        "code": "X12_INVALID",
        "message": message,
        "fix": "correct the claim and release it",
        "field": None,
    }
    reasons = [*(row.hold_reasons or []), hold]
    await claim_repository.update_claim(
        conn,
        row.tenant_id,
        row.id,
        row.version,
        {
            "status": move.target.value,
            "status_reason": move.reason[:2000],
            "hold_reasons": reasons,
            "updated_at": now,
        },
    )
    await audit.append(
        conn,
        tenant_id=row.tenant_id,
        entity_type="claim",
        entity_id=row.id,
        action="claim.hold",
        actor=actor,
        reason=move.reason,
        before={"status": move.source.value},
        after={"status": move.target.value, "reasons": [r["code"] for r in reasons]},
    )


async def record_batches(
    conn: AsyncConnection,
    config: SubmissionConfig,
    *,
    actor: str,
    tenant_id: str | None = None,
    now: datetime | None = None,
) -> tuple[list[BatchResult], list[str]]:
    """Step 1: batch the ready claims into stored (not yet sent) files, in the caller's
    transaction. Returns the batches and the ids of claims put on hold as unsendable."""
    now = now or utc_now()
    sql = _READY_SQL.format(tenant_filter="AND c.tenant_id = :tenant" if tenant_id else "")
    params: dict[str, Any] = {"limit": config.max_claims_per_run}
    if tenant_id:
        params["tenant"] = tenant_id
    rows = list(await conn.execute(text(sql), params))
    if not rows:
        return [], []
    lines: dict[str, list[Any]] = {}
    for ln in await conn.execute(_LINES_SQL, {"ids": [r.id for r in rows]}):
        lines.setdefault(ln.claim_id, []).append(ln._mapping)
    cache = SnapshotCache()
    groups: dict[BatchKey, list[_Pick]] = {}
    held: list[str] = []
    for r in rows:
        try:
            key = batch_key(r.tenant_id, r.payer)
            claim = claim_837(r._mapping, lines.get(r.id, []), cache)
        except (Claim837Error, KeyError, TypeError, ValueError) as exc:
            await _hold_invalid(conn, r, str(exc), actor=actor, now=now)
            held.append(r.id)
            continue
        row = ClaimRow(
            r.id, r.tenant_id, r.status, r.version, r.claim_version,
            r.patient_control_number, r.total_charge_cents, r.timely_filing_deadline,
        )  # fmt: skip
        groups.setdefault(key, []).append(_Pick(row, claim, r))
    out: list[BatchResult] = []
    per_file = max(1, config.max_claims_per_file)
    for key, picks in groups.items():
        for start in range(0, len(picks), per_file):
            chunk = picks[start : start + per_file]
            result, bad = await _record_one(conn, config, key, chunk, actor=actor, now=now)
            for pick, message in bad:
                await _hold_invalid(conn, pick.raw, message, actor=actor, now=now)
                held.append(pick.row.id)
            if result is not None:
                out.append(result)
    return out, held


def _isolate_invalid(config: SubmissionConfig, key: BatchKey, picks: list[_Pick]) -> list[str]:
    """Messages per claim that the builder refuses on its own (slow path, after a failure)."""
    messages = []
    for pick in picks:
        try:
            build_837p_batch(
                config.submitter, receiver_of(key), [pick.claim], ControlNumbers(1, 1, 1),
                utc_now(), batch_reference="CHECK", usage=config.usage,
            )  # fmt: skip
            messages.append("")
        except Claim837Error as exc:
            messages.append(str(exc))
    return messages


async def _record_one(
    conn: AsyncConnection,
    config: SubmissionConfig,
    key: BatchKey,
    picks: list[_Pick],
    *,
    actor: str,
    now: datetime,
) -> tuple[BatchResult | None, list[tuple[_Pick, str]]]:
    bad: list[tuple[_Pick, str]] = []
    sender = config.submitter.id
    sets = -(-len(picks) // MAX_CLAIMS_PER_SET)
    control = await allocate_control_numbers(conn, sender, key.trading_partner_id, sets)
    batch_id = str(uuid.uuid4())
    reference = batch_id.replace("-", "")
    parties = Parties("ZZ", sender, "ZZ", key.trading_partner_id, config.usage)
    receiver = receiver_of(key)
    try:
        built = build_837p_batch(
            config.submitter, receiver, [p.claim for p in picks], control, now,
            batch_reference=reference, usage=config.usage, parties=parties,
        )  # fmt: skip
    except Claim837Error:
        messages = _isolate_invalid(config, key, picks)
        bad = [(p, m) for p, m in zip(picks, messages, strict=True) if m]
        picks = [p for p, m in zip(picks, messages, strict=True) if not m]
        if not picks:
            return None, bad
        built = build_837p_batch(
            config.submitter, receiver, [p.claim for p in picks], control, now,
            batch_reference=reference, usage=config.usage, parties=parties,
        )  # fmt: skip
    content = built.text.encode("ascii")
    file_name = batch_file_name(key, control.isa13, batch_id)
    st_of = {pcn: st02 for st02, pcns in built.claims_by_set.items() for pcn in pcns}
    total = sum(p.row.total_charge_cents for p in picks)
    await conn.execute(
        insert(batches).values(
            id=batch_id,
            tenant_id=key.tenant_id,
            status="recorded",
            transport=key.transport,
            file_name=file_name,
            content_hash=content_hash(content),
            content=content,
            byte_size=len(content),
            claim_count=len(picks),
            total_charge_cents=total,
            sender_id=sender,
            trading_partner_id=key.trading_partner_id,
            receiver_id=key.receiver_id,
            payer_x12_id=key.payer_x12_id,
            payer_name=key.payer_name[:60],
            isa13=control.isa13,
            gs06=control.gs06,
            st02_first=control.st02_start,
            set_count=len(built.claims_by_set),
            batch_reference=reference,
            usage=config.usage,
            created_by=actor,
            created_at=now,
            updated_at=now,
        )
    )
    await conn.execute(
        insert(batch_claims),
        [
            {
                "batch_id": batch_id,
                "claim_id": p.row.id,
                "tenant_id": key.tenant_id,
                "patient_control_number": p.row.patient_control_number,
                "claim_version": p.row.claim_version,
                "st02": st_of[p.row.patient_control_number],
                "charge_cents": p.row.total_charge_cents,
                "active": True,
            }
            for p in picks
        ],
    )
    await audit.append(
        conn,
        tenant_id=key.tenant_id,
        entity_type=BATCH,
        entity_id=batch_id,
        action="batch.recorded",
        actor=actor,
        reason="ready claims batched for submission",
        after={
            "file_name": file_name,
            "content_hash": content_hash(content),
            "claims": len(picks),
            "isa13": control.isa13,
            "gs06": control.gs06,
            "st02": sorted(built.claims_by_set),
            "trading_partner_id": key.trading_partner_id,
        },
        new_entity=True,
    )
    log.info(
        "billing.batch.recorded",
        batch_id=batch_id,
        file=file_name,
        claims=len(picks),
        isa13=control.isa13,
    )
    return BatchResult(batch_id, "recorded", file_name, len(picks)), bad
