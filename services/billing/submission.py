"""Submission: ready claims -> 837P batches -> the clearinghouse, exactly once.

The protocol, in three steps with a commit between each:

1. **record** (one transaction): lock ready claims not held by another batch
   (``FOR UPDATE SKIP LOCKED``), group them per tenant / trading partner / receiver / payer,
   take control numbers from the partner's sequences, build the file and store the batch
   (file name, bytes, sha256, control numbers, claims). Claims stay ``ready``; the batch
   holds them (``batch_claims.active``, unique per claim), so no other run can batch them.
2. **send** (no transaction open): the stored bytes under the stored name, with retries. A
   session advisory lock on the batch keeps two processes from sending it at once; it dies
   with the process.
3. **confirm** (one transaction): only after the transport confirmed, the batch becomes
   ``sent`` and its claims ``submitted`` (audited, version bumped). When the tries run out
   (or the error is permanent) the batch becomes ``failed`` and a work item; its claims stay
   held until a manager retries it.

A crash after step 1 or 2 leaves a ``recorded`` batch; every run (and the worker's start)
first re-sends those, with the SAME name and bytes: the directory mailbox treats an
identical file as already delivered and the HTTP clearinghouse dedupes on the
Idempotency-Key (the content hash). A new batch is never made for claims a batch holds.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import IntegrityError
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
from services.billing.submission_transitions import lock_claims, move_claims
from services.billing.tables_submission import batch_claims, batches
from services.billing.transports import (
    Attempt,
    DirectoryTransport,
    HttpTransport,
    OutgoingFile,
    PermanentTransportError,
    RetryPolicy,
    SendOutcome,
    SendReceipt,
    Transport,
    content_hash,
    send_with_retry,
)
from shared import audit
from shared.clock import utc_now
from shared.config import Settings
from shared.logging import get_logger
from shared.uow import Database, UnitOfWork
from shared.x12.envelope import ControlNumbers, Parties
from shared.x12.x837p import (
    MAX_CLAIMS_PER_SET,
    Claim837,
    Claim837Error,
    Submitter,
    build_837p_batch,
)

__all__ = [
    "BatchResult",
    "RunHooks",
    "RunResult",
    "SubmissionConfig",
    "Transports",
    "confirm_batch",
    "record_batches",
    "retry_batch",
    "run_submission",
    "send_batch",
]

log = get_logger("billing.submission")

BATCH = "batch"

# Who we are in 1000A / ISA06 until the lead adds MTM_SUBMITTER_* settings.
DEFAULT_RETRY = RetryPolicy(max_attempts=5, base_delay=2.0, max_delay=60.0)
DEFAULT_SUBMITTER = Submitter("MTM BILLING", "MTMBILLING", "BILLING OFFICE", "5555550100")


@dataclass(frozen=True, slots=True)
class SubmissionConfig:
    """Submission settings. ``from_settings`` derives them from ``Settings`` (``var_dir``)
    plus the documented defaults below; the MTM_* variables that will set them are listed
    in the README's settings table once added to ``Settings``."""

    mailbox_dir: Path  # MTM_CLEARINGHOUSE_DIR, default <var_dir>/mailbox
    http_url: str = ""  # MTM_CLEARINGHOUSE_URL; empty: the http transport is off
    http_auth_header: str = ""  # MTM_CLEARINGHOUSE_AUTH_HEADER, "Name: value"
    http_timeout_seconds: float = 30.0  # MTM_CLEARINGHOUSE_TIMEOUT_SECONDS
    retry: RetryPolicy = DEFAULT_RETRY  # MTM_SUBMISSION_RETRY_ATTEMPTS/_BASE_SECONDS/_MAX_SECONDS
    submitter: Submitter = DEFAULT_SUBMITTER  # MTM_SUBMITTER_ID/NAME/CONTACT/PHONE
    usage: str = "T"  # MTM_X12_USAGE: ISA15, P in production
    max_claims_per_file: int = 5000  # MTM_SUBMISSION_MAX_CLAIMS_PER_FILE
    max_claims_per_run: int = 50_000  # MTM_SUBMISSION_MAX_CLAIMS_PER_RUN

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> SubmissionConfig:
        values: dict[str, Any] = {
            "mailbox_dir": Path(settings.clearinghouse_dir or Path(settings.var_dir) / "mailbox"),
            "http_url": settings.clearinghouse_url,
            "http_auth_header": settings.clearinghouse_auth_header,
            "http_timeout_seconds": settings.clearinghouse_timeout_seconds,
            "retry": RetryPolicy(
                max_attempts=settings.submission_retry_attempts,
                base_delay=settings.submission_retry_base_seconds,
                max_delay=settings.submission_retry_max_seconds,
            ),
            "submitter": Submitter(
                settings.submitter_name,
                settings.submitter_id,
                settings.submitter_contact,
                settings.submitter_phone,
            ),
            "usage": settings.x12_usage,
            "max_claims_per_file": settings.submission_max_claims_per_file,
            "max_claims_per_run": settings.submission_max_claims_per_run,
        }
        values.update(overrides)
        return cls(**values)


class Transports:
    """The transports batches can go through, by name (``directory``, ``http``)."""

    def __init__(
        self, config: SubmissionConfig, overrides: Mapping[str, Transport] | None = None
    ) -> None:
        self._config = config
        self._made: dict[str, Transport] = dict(overrides or {})
        self._owned: list[HttpTransport] = []

    def get(self, name: str) -> Transport:
        found = self._made.get(name)
        if found is not None:
            return found
        if name == "directory":
            made: Transport = DirectoryTransport(self._config.mailbox_dir)
        elif name == "http":
            if not self._config.http_url or not self._config.http_auth_header:
                raise PermanentTransportError(
                    "the http transport is not configured (clearinghouse URL and auth header)"
                )
            http = HttpTransport(
                self._config.http_url,
                self._config.http_auth_header,
                self._config.http_timeout_seconds,
            )
            self._owned.append(http)
            made = http
        else:
            raise PermanentTransportError(f"unknown transport {name!r}")
        self._made[name] = made
        return made

    def inbound(self) -> list[Transport]:
        """Every transport to read acknowledgments from: the mailbox always, http when set."""
        names = ["directory"]
        if "http" in self._made or (self._config.http_url and self._config.http_auth_header):
            names.append("http")
        return [self.get(n) for n in names]

    async def aclose(self) -> None:
        for http in self._owned:
            await http.aclose()


@dataclass(frozen=True, slots=True)
class RunHooks:
    """Test seams (off by default): called after the record commit / after the transport
    confirmed and before the confirm transaction. A crash test makes them ``os._exit``."""

    after_record: Callable[[list[str]], None] | None = None
    after_send: Callable[[str], None] | None = None


@dataclass(frozen=True, slots=True)
class BatchResult:
    batch_id: str
    status: str  # recorded | sent | failed | busy (another process is sending it)
    file_name: str
    claim_count: int
    attempts: int = 0
    error: str | None = None


@dataclass(slots=True)
class RunResult:
    recovered: list[BatchResult] = field(default_factory=list)
    batches: list[BatchResult] = field(default_factory=list)
    held_claims: list[str] = field(default_factory=list)


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


# ----------------------------------------------------------------------------- confirm / fail


async def confirm_batch(
    conn: AsyncConnection,
    batch_id: str,
    *,
    actor: str,
    receipt: SendReceipt | None,
    attempts: int = 0,
    evidence: str = "the transport confirmed receipt",
    now: datetime | None = None,
) -> bool:
    """Step 3: the batch is ``sent`` and its ready claims ``submitted``. False when the
    batch was already confirmed (idempotent)."""
    now = now or utc_now()
    b = (
        await conn.execute(select(batches).where(batches.c.id == batch_id).with_for_update())
    ).one()
    if b.status == "sent":
        return False
    links = list(
        await conn.execute(
            select(batch_claims.c.claim_id).where(batch_claims.c.batch_id == batch_id)
        )
    )
    locked = await lock_claims(conn, [r.claim_id for r in links])
    reason = f"sent in batch {b.file_name} (ISA13 {b.isa13:09d}): {evidence}"
    ready = [c for c in locked.values() if c.status == ClaimStatus.READY.value]
    moved = await move_claims(
        conn,
        ready,
        ClaimStatus.SUBMITTED,
        ClaimEvent.SUBMIT,
        action="claim.submitted",
        actor=actor,
        reasons={c.id: reason for c in ready},
        after={c.id: {"batch_id": batch_id, "file_name": b.file_name} for c in ready},
        now=now,
    )
    for c in locked.values():
        if c.id not in moved.moved:
            # The payer has the claim anyway: say so where the biller will look.
            note = f"the claim was {c.status} when the batch was confirmed; it was sent"
            await conn.execute(
                update(batch_claims)
                .where(batch_claims.c.batch_id == batch_id, batch_claims.c.claim_id == c.id)
                .values(note=note)
            )
            log.warning("billing.batch.claim_not_ready", batch_id=batch_id, claim_id=c.id)
    await conn.execute(
        update(batch_claims).where(batch_claims.c.batch_id == batch_id).values(active=False)
    )
    await conn.execute(
        update(batches)
        .where(batches.c.id == batch_id)
        .values(
            status="sent",
            sent_at=now,
            updated_at=now,
            attempts=batches.c.attempts + attempts,
            remote_ref=receipt.remote_ref if receipt else b.remote_ref,
            last_error=None,
        )
    )
    await audit.append(
        conn,
        tenant_id=b.tenant_id,
        entity_type=BATCH,
        entity_id=batch_id,
        action="batch.sent",
        actor=actor,
        reason=evidence,
        before={"status": b.status},
        after={
            "status": "sent",
            "claims_submitted": len(moved.moved),
            "remote_ref": receipt.remote_ref if receipt else None,
            "already_present": receipt.already_present if receipt else None,
        },
    )
    log.info("billing.batch.sent", batch_id=batch_id, claims=len(moved.moved))
    return True


async def _fail_batch(
    conn: AsyncConnection, batch_id: str, outcome: SendOutcome, *, actor: str, now: datetime
) -> None:
    from services.billing.work_queue import open_work_item

    b = (
        await conn.execute(select(batches).where(batches.c.id == batch_id).with_for_update())
    ).one()
    if b.status != "recorded":
        return
    error = outcome.last_error or outcome.status
    await conn.execute(
        update(batches)
        .where(batches.c.id == batch_id)
        .values(
            status="failed",
            failed_at=now,
            updated_at=now,
            attempts=batches.c.attempts + len(outcome.attempts),
            last_error=error[:2000],
        )
    )
    await audit.append(
        conn,
        tenant_id=b.tenant_id,
        entity_type=BATCH,
        entity_id=batch_id,
        action="batch.failed",
        actor=actor,
        reason=f"{outcome.status} after {len(outcome.attempts)} attempt(s): {error}",
        before={"status": b.status},
        after={"status": "failed", "attempts": b.attempts + len(outcome.attempts)},
    )
    code = "TRANSPORT_GAVE_UP" if outcome.status == "gave_up" else "TRANSPORT_REFUSED"
    await open_work_item(
        conn,
        tenant_id=b.tenant_id,
        category="submission_failure",
        source="submission",
        summary=(
            f"Batch {b.file_name} ({b.claim_count} claims) was not delivered: "
            f"{outcome.status} after {len(outcome.attempts)} attempt(s) ({error}). "
            "Fix the clearinghouse connection, then retry the batch "
            f"(POST /v1/batches/{batch_id}/retry)."
        ),
        actor=actor,
        batch_id=batch_id,
        amount_cents=b.total_charge_cents,
        reasons=[{"code": code, "message": error}],
    )
    log.error("billing.batch.failed", batch_id=batch_id, status=outcome.status)


# ----------------------------------------------------------------------------- send


def _lock_key(batch_id: str) -> str:
    return f"batch-send:{batch_id}"


async def send_batch(
    db: Database,
    transports: Transports,
    config: SubmissionConfig,
    batch_id: str,
    *,
    actor: str,
    hooks: RunHooks | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> BatchResult:
    """Steps 2 and 3 for one recorded batch: send its stored bytes, then confirm or fail."""
    async with db.engine.connect() as lock_conn:
        got = (
            await lock_conn.execute(
                text("SELECT pg_try_advisory_lock(hashtextextended(:k, 0))"),
                {"k": _lock_key(batch_id)},
            )
        ).scalar_one()
        await lock_conn.commit()
        if not got:
            return BatchResult(batch_id, "busy", "", 0)
        try:
            return await _send_locked(db, transports, config, batch_id, actor, hooks, sleep)
        finally:
            await lock_conn.execute(
                text("SELECT pg_advisory_unlock(hashtextextended(:k, 0))"),
                {"k": _lock_key(batch_id)},
            )
            await lock_conn.commit()


async def _send_locked(
    db: Database,
    transports: Transports,
    config: SubmissionConfig,
    batch_id: str,
    actor: str,
    hooks: RunHooks | None,
    sleep: Callable[[float], Awaitable[Any]],
) -> BatchResult:
    async with db.transaction() as (conn, _t):
        b = (await conn.execute(select(batches).where(batches.c.id == batch_id))).one()
    if b.status != "recorded":
        return BatchResult(batch_id, b.status, b.file_name, b.claim_count, b.attempts)
    outgoing = OutgoingFile(b.file_name, bytes(b.content), batch_id, b.content_hash)
    try:
        transport = transports.get(b.transport)
    except PermanentTransportError as exc:
        outcome = SendOutcome("failed", b.file_name, batch_id, None, (Attempt(1, str(exc), False),))
    else:
        outcome = await send_with_retry(transport, outgoing, config.retry, sleep)
    if outcome.ok and hooks is not None and hooks.after_send is not None:
        hooks.after_send(batch_id)
    now = utc_now()
    async with UnitOfWork(db, None) as uow:
        if outcome.ok:
            await confirm_batch(
                uow.conn, batch_id, actor=actor, receipt=outcome.receipt,
                attempts=len(outcome.attempts), now=now,
            )  # fmt: skip
        else:
            await _fail_batch(uow.conn, batch_id, outcome, actor=actor, now=now)
        await uow.commit()
    return BatchResult(
        batch_id,
        "sent" if outcome.ok else "failed",
        b.file_name,
        b.claim_count,
        b.attempts + len(outcome.attempts),
        None if outcome.ok else outcome.last_error,
    )


async def unconfirmed_batches(db: Database, tenant_id: str | None = None) -> list[str]:
    async with db.transaction() as (conn, _t):
        stmt = select(batches.c.id).where(batches.c.status == "recorded")
        if tenant_id:
            stmt = stmt.where(batches.c.tenant_id == tenant_id)
        rows = await conn.execute(stmt.order_by(batches.c.created_at, batches.c.id))
        return [r.id for r in rows]


async def run_submission(
    db: Database,
    transports: Transports,
    config: SubmissionConfig,
    *,
    actor: str,
    tenant_id: str | None = None,
    hooks: RunHooks | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> RunResult:
    """Recover unconfirmed batches, then batch and send the ready claims."""
    result = RunResult()
    for batch_id in await unconfirmed_batches(db, tenant_id):
        result.recovered.append(
            await send_batch(
                db, transports, config, batch_id, actor=actor, hooks=hooks, sleep=sleep
            )
        )
    recorded: list[BatchResult] = []
    for attempt in (1, 2):
        try:
            async with UnitOfWork(db, None) as uow:
                recorded, held = await record_batches(
                    uow.conn, config, actor=actor, tenant_id=tenant_id
                )
                await uow.commit()
            result.held_claims.extend(held)
            break
        except IntegrityError:
            # A concurrent run batched one of these claims between our read and our insert
            # (the active-claim unique index refused it); read again.
            if attempt == 2:
                raise
            log.warning("billing.batch.record_conflict")
    if hooks is not None and hooks.after_record is not None and recorded:
        hooks.after_record([r.batch_id for r in recorded])
    for r in recorded:
        result.batches.append(
            await send_batch(
                db, transports, config, r.batch_id, actor=actor, hooks=hooks, sleep=sleep
            )
        )
    return result


async def retry_batch(
    conn: AsyncConnection,
    tenant_id: str,
    batch_id: str,
    *,
    actor: str,
    reason: str,
    request_id: str | None = None,
) -> bool:
    """A failed batch goes back to ``recorded``; the next send uses the same bytes."""
    b = (
        await conn.execute(
            select(batches)
            .where(batches.c.id == batch_id, batches.c.tenant_id == tenant_id)
            .with_for_update()
        )
    ).first()
    if b is None or b.status != "failed":
        return False
    await conn.execute(
        update(batches)
        .where(batches.c.id == batch_id)
        .values(status="recorded", updated_at=utc_now(), failed_at=None)
    )
    await audit.append(
        conn,
        tenant_id=tenant_id,
        entity_type=BATCH,
        entity_id=batch_id,
        action="batch.retry",
        actor=actor,
        request_id=request_id,
        reason=reason,
        before={"status": "failed"},
        after={"status": "recorded"},
    )
    return True


def batch_ids(results: Sequence[BatchResult]) -> list[str]:
    return [r.batch_id for r in results]
