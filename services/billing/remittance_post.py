"""Posting a balanced 835: every CLP becomes a claim payment, set-based.

Posting model (a ledger, never an overwrite):

* Each CLP is one `claim_payments` row with its lines and every CAS adjustment (group, CARC,
  amount, kind: contractual / patient responsibility / denial, from the versioned tables).
  Amounts are as the payer sent them, so a reversal (CLP02 22) is a row of negated amounts.
  What a claim has been paid is the *sum* of its rows: original + reversal (-original) +
  correction = the correction, which is why a reversal and its correction never double count.
* A claim is matched by CLP01 (our CLM01, unique per claim version). A reversal is matched by
  CLP07 to the payment it takes back (that payment's claim, so the reversal of a replaced
  claim lands on the original even when CLP01 names the replacement), else by CLP01.
* The claim's status follows `decide_remit` (the adjustments, never CLP02 = 4 alone):
  paid / patient responsibility only -> paid, partially_paid, denied; moved through
  `claim_state.transition`, version bumped, one audit event per move. CLP07 becomes the
  claim's payer ICN (the latest adjudication's, which a replacement must quote).
* Work items: every denial and partial denial (beyond contractual and patient
  responsibility), every CLP we cannot match, a payment that needs review, a posting the claim
  state does not allow, and a reversal not followed by a correction (unless the claim was
  voided or replaced). A full payment resolves the claim's open items; an appealed claim's
  appeal is marked won or lost.
* PLB entries are stored as sent (WO recoupments, FB forward balances, CT capitation for
  PMPM reconciliation, L6 interest, ...).

Everything is written with a handful of statements whatever the file size: payments, lines,
adjustments and audit events by binary COPY in chunks of `CHUNK` claims (so the rows in
flight stay bounded), claim updates by one `unnest` statement, work items by one
`jsonb_to_recordset` statement (they need ON CONFLICT). All of it runs in the caller's
transaction: a file is applied whole or not at all.

Per-claim Python work is kept small: `decide_remit` is pure, so its decision is memoised per
file on the claim's adjudication shape (status, amounts, CAS, remarks, date: claims paid on
one fee schedule repeat it); audit events of one posting share one timestamp and are hashed
straight from their JSON-native content (`shared.audit.event_hash`, no encode/decode round
trip); the cyclic GC is paused while the rows are built.

The Python work overlaps the database's (`_overlap`): PostgreSQL runs on its own core, so
the decisions are made while it locks the claims, chunk k+1 is built while chunk k is
copied, and the audit events are hashed while it updates the claims. The statements are the
same, sent in the same order on the one connection; only the waiting is shared.
"""

from __future__ import annotations

import asyncio
import gc
import uuid
from collections.abc import Awaitable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import chain
from typing import Any, TypeVar

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.claim_repository import audit_heads, driver
from services.billing.domain.adjustments import (
    GroupCode,
    RemitAdjustment,
    RemitClaim,
    RemitDecision,
    RemitLine,
    RemitOutcome,
    decide_remit,
)
from services.billing.domain.claim_state import (
    ClaimEvent,
    ClaimStatus,
    InvalidTransition,
    transition,
)
from services.billing.domain.work_items import (
    Route,
    WorkItemCategory,
    appeal_deadline,
    category_for_denial,
    priority,
    recommend,
)
from services.billing.remittance_codes import db_code_tables
from services.billing.work_queue import apply_overturn_rates, overturn_rates
from shared.audit import GENESIS, event_hash
from shared.clock import utc_now
from shared.codes import DefaultAction
from shared.x12.x835 import ClaimPayment, Remittance

__all__ = ["CHUNK", "PostingResult", "gc_paused", "post_remittances"]

#: Claims per COPY batch: bounds the rows held in memory and sent at once.
CHUNK = 2000
#: Claims built between two yields to the event loop while a statement is in flight: small
#: enough that the statement's next round trip is not held up for long (about a millisecond).
SLICE = 50

_T = TypeVar("_T")

_encode = msgspec.json.Encoder().encode
_GROUPS = {g.value: g for g in GroupCode}
_TARGET = {
    RemitOutcome.PAID: (ClaimStatus.PAID, ClaimEvent.REMIT_PAID),
    RemitOutcome.PATIENT_RESPONSIBILITY: (ClaimStatus.PAID, ClaimEvent.REMIT_PAID),
    RemitOutcome.PARTIALLY_PAID: (ClaimStatus.PARTIALLY_PAID, ClaimEvent.REMIT_PARTIAL),
    RemitOutcome.DENIED: (ClaimStatus.DENIED, ClaimEvent.REMIT_DENIED),
}
DEFAULT_APPEAL_WINDOW_DAYS = 120


@dataclass(slots=True)
class PostingResult:
    matched: int = 0
    unmatched: int = 0
    work_items: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)


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


def _remit_claim(cp: ClaimPayment) -> RemitClaim:
    def adj(a: Any) -> RemitAdjustment:
        return RemitAdjustment(_GROUPS.get(a.group, GroupCode.OA), a.carc, a.amount)

    return RemitClaim(
        status_code=cp.status,
        charge_cents=cp.charge,
        paid_cents=cp.paid,
        adjustments=tuple(adj(a) for a in cp.adjustments),
        lines=tuple(
            RemitLine(
                ln.code,
                ln.charge,
                ln.paid,
                tuple(adj(a) for a in ln.adjustments),
                tuple(ln.remark_codes),
            )
            for ln in cp.lines
        ),
    )


_LOOKUP_PRIOR = text(
    """
    SELECT DISTINCT ON (payer_icn) payer_icn, id::text AS id, claim_id::text AS claim_id
    FROM billing.claim_payments
    WHERE tenant_id = :t AND payer_icn = ANY(CAST(:icns AS text[])) AND status_code <> '22'
    ORDER BY payer_icn, created_at DESC, seq DESC
    """
)
# Raw asyncpg ($n): 10,000 rows through SQLAlchemy's result layer cost more than the query.
_LOCK_CLAIMS = """
SELECT id::text AS id, patient_control_number AS pcn, status, version,
       payer_id::text AS payer_id, timely_filing_deadline,
       CAST(eligibility #>> '{payer,appeal_window_days}' AS int) AS appeal_window
FROM billing.claims
WHERE tenant_id = $1
  AND (patient_control_number = ANY($2::text[]) OR id = ANY($3::uuid[]))
ORDER BY id
FOR UPDATE
"""


def _json_list(values: Sequence[str], _cache: dict[tuple[str, ...], str] = {}) -> str:  # noqa: B006
    """JSON text of a short list of codes (modifiers, remarks), memoised: mostly empty."""
    key = tuple(values)
    found = _cache.get(key)
    if found is None:
        found = _encode(list(key)).decode()
        if len(_cache) < 4096:
            _cache[key] = found
    return found


_PAY_COLS = {
    "id": "uuid",
    "tenant_id": "text",
    "remittance_file_id": "uuid",
    "seq": "int",
    "claim_id": "uuid",
    "patient_control_number": "text",
    "status_code": "text",
    "charge_cents": "bigint",
    "paid_cents": "bigint",
    "patient_resp_cents": "bigint",
    "allowed_cents": "bigint",
    "contractual_cents": "bigint",
    "denied_cents": "bigint",
    "payer_icn": "text",
    "reverses_payment_id": "uuid",
    "filing_indicator": "text",
    "outcome": "text",
    "remarks": "jsonb",
    "payer_code": "text",
    "remit_date": "date",
}
_LINE_COLS = {
    "claim_payment_id": "uuid",
    "seq": "smallint",
    "line_no": "smallint",
    "procedure_code": "text",
    "modifiers": "jsonb",
    "units": "int",
    "charge_cents": "bigint",
    "paid_cents": "bigint",
    "allowed_cents": "bigint",
    "patient_resp_cents": "bigint",
    "service_date": "date",
    "remarks": "jsonb",
}
_ADJ_COLS = {
    "claim_payment_id": "uuid",
    "line_seq": "smallint",
    "group_code": "text",
    "carc": "text",
    "amount_cents": "bigint",
    "quantity": "int",
    "kind": "text",
}
_PLB_COLS = {
    "tenant_id": "text",
    "remittance_file_id": "uuid",
    "provider_id": "text",
    "fiscal_period": "date",
    "reason_code": "text",
    "reference": "text",
    "amount_cents": "bigint",
    "payer_code": "text",
}
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


def _cols(types: dict[str, str]) -> tuple[str, str]:
    return ", ".join(types), ", ".join(f"{k} {v}" for k, v in types.items())


def _insert_sql(table: str, types: dict[str, str], param: str) -> str:
    names, defs = _cols(types)
    return (
        f"INSERT INTO {table} ({names}) "  # noqa: S608 - constants only
        f"SELECT {names} FROM jsonb_to_recordset({param}::jsonb) AS r({defs})"
    )


_EV_NAMES, _EV_DEFS = _cols(_EVENT_COLS)
_WI_NAMES, _WI_DEFS = _cols(_WI_COLS)
_UPDATE_CLAIMS = """
UPDATE billing.claims c
SET status = r.status, status_reason = r.reason, payer_icn = coalesce(r.icn, c.payer_icn),
    version = c.version + 1, updated_at = now()
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS r(id, status, reason, icn)
WHERE c.id = r.id
"""
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
_DECIDE_APPEALS = text(
    """
    UPDATE billing.appeals a SET status = r.result, decided_on = :today
    FROM unnest(CAST(:ids AS uuid[]), CAST(:results AS text[])) AS r(claim_id, result)
    WHERE a.tenant_id = :t AND a.claim_id = r.claim_id AND a.status = 'filed'
    """
)


def _units(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError, ArithmeticError):
        return None


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC (restored afterwards) while tens of thousands of small acyclic
    dicts and tuples are built: collections would rescan the whole parsed file each time and
    find nothing. It spans awaits (the statements the rows overlap), so other tasks of the
    process run without cyclic collection meanwhile: that only delays their collection."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


async def _overlap(statement: Awaitable[_T], work: Iterable[object]) -> _T:
    """Await `statement` (database work on the posting's connection) while running `work`,
    a generator of synchronous slices of row building that must not touch the connection.

    PostgreSQL executes the statement on its own core meanwhile; between two slices the event
    loop runs, so the statement's I/O (COPY data, the next statement of a sequence) goes on.
    A failed statement stops the work and raises its error. When the work fails, the statement
    is waited for (cancelled first if this task is being cancelled) before the error goes on,
    so the caller's rollback finds the connection idle."""
    task = asyncio.ensure_future(statement)
    try:
        for _ in work:
            await asyncio.sleep(0)
            if task.done() and not task.cancelled() and task.exception() is not None:
                break
    except BaseException as exc:
        if isinstance(exc, asyncio.CancelledError):
            task.cancel()
        await asyncio.wait([task])
        if not task.cancelled():
            task.exception()  # retrieved: the work's error is the one that goes on
        raise
    return await task


class _Decider:
    """`decide_remit` memoised on everything it reads, plus the adjustment rows it implies.

    The key is the claim's full adjudication content (CLP02, charge, paid, every CAS triple
    and line with its remarks) and the lookup date, and the code tables are fixed for the
    file, so a hit returns exactly what a fresh call would."""

    __slots__ = ("carcs", "hits", "memo", "rarcs")

    def __init__(self, carcs: Any, rarcs: Any) -> None:
        self.carcs = carcs
        self.rarcs = rarcs
        self.memo: dict[Any, tuple[RemitDecision, list[tuple[Any, ...]]]] = {}
        self.hits = 0

    def __call__(self, cp: ClaimPayment, on: date) -> tuple[RemitDecision, list[tuple[Any, ...]]]:
        key = (
            cp.status,
            cp.charge,
            cp.paid,
            tuple([(a.group, a.carc, a.amount) for a in cp.adjustments]),
            tuple(
                [
                    (
                        ln.code,
                        ln.charge,
                        ln.paid,
                        tuple([(a.group, a.carc, a.amount) for a in ln.adjustments]),
                        tuple(ln.remark_codes),
                    )
                    for ln in cp.lines
                ]
            ),
            on,
        )
        found = self.memo.get(key)
        if found is not None:
            self.hits += 1
            return found
        decision = decide_remit(
            _remit_claim(cp), on=on, carc_table=self.carcs, rarc_table=self.rarcs
        )
        adjustments = [
            (
                ci.line_index + 1 if ci.line_index is not None else None,
                ci.adjustment.group.value,
                ci.adjustment.carc[:5],
                ci.adjustment.amount_cents,
                None,
                ci.kind.value,
            )
            for ci in decision.adjustments
        ]
        self.memo[key] = (decision, adjustments)
        return decision, adjustments


_Decided = tuple[RemitDecision, list[tuple[Any, ...]]]
_Planned = tuple[tuple[Remittance, ClaimPayment], _Decided]


def _remit_date(remit: Remittance, today: date) -> date:
    return remit.production_date or remit.payment_date or today


def _decide_all(
    decide: _Decider,
    flat: Sequence[tuple[Remittance, ClaimPayment]],
    today: date,
    out: list[_Decided],
) -> Iterator[None]:
    """Append the decision of every CLP to `out`, yielding every `SLICE` CLPs."""
    for n, (remit, cp) in enumerate(flat, start=1):
        out.append(decide(cp, _remit_date(remit, today)))
        if n % SLICE == 0:
            yield


@dataclass(slots=True)
class _Rows:
    """COPY records for one chunk, in the column order of `_COPY_COLUMNS`."""

    payments: list[tuple[Any, ...]] = field(default_factory=list)
    lines: list[tuple[Any, ...]] = field(default_factory=list)
    adjustments: list[tuple[Any, ...]] = field(default_factory=list)


_COPY_COLUMNS = {
    "claim_payments": list(_PAY_COLS),
    "line_payments": list(_LINE_COLS),
    "remit_adjustments": list(_ADJ_COLS),
}


async def _copy(
    drv: Any, table: str, records: list[tuple[Any, ...]], columns: list[str], schema: str
) -> None:
    if records:
        await drv.copy_records_to_table(table, schema_name=schema, columns=columns, records=records)


async def _write_rows(drv: Any, rows: _Rows) -> None:
    # Parents first: the lines' and adjustments' foreign keys are checked row by row.
    for table, records in (
        ("claim_payments", rows.payments),
        ("line_payments", rows.lines),
        ("remit_adjustments", rows.adjustments),
    ):
        await _copy(drv, table, records, _COPY_COLUMNS[table], "billing")


async def post_remittances(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    file_id: str,
    payer_code: str,
    remits: Sequence[Remittance],
    actor: str,
    request_id: str | None,
    today: date,
) -> PostingResult:
    result = PostingResult()
    carcs, rarcs = await db_code_tables(conn)
    pcns = list({cp.patient_control_number for r in remits for cp in r.claims})
    rev_icns = list(
        {cp.payer_icn for r in remits for cp in r.claims if cp.status == "22" and cp.payer_icn}
    )
    prior: dict[str, tuple[str, str | None]] = {}
    if rev_icns:
        for r in await conn.execute(_LOOKUP_PRIOR, {"t": tenant_id, "icns": rev_icns}):
            prior[r.payer_icn] = (r.id, r.claim_id)
    extra_ids = list({cid for _, cid in prior.values() if cid})
    drv = await driver(conn)
    flat = [(remit, cp) for remit in remits for cp in remit.claims]
    decide = _Decider(carcs, rarcs)
    decisions: list[_Decided] = []
    with gc_paused():
        # Decisions are pure (the CLP and its date): made while PostgreSQL locks the claims.
        locked = await _overlap(
            drv.fetch(_LOCK_CLAIMS, tenant_id, pcns, extra_ids),
            _decide_all(decide, flat, today, decisions),
        )
    by_pcn: dict[str, _Claim] = {}
    by_id: dict[str, _Claim] = {}
    for r in locked:
        c = _Claim(
            r["id"],
            r["status"],
            r["version"],
            r["payer_id"],
            r["timely_filing_deadline"],
            r["appeal_window"] if r["appeal_window"] is not None else DEFAULT_APPEAL_WINDOW_DAYS,
        )
        by_pcn[r["pcn"]] = c
        by_id[r["id"]] = c
    del pcns, locked

    post = _Posting(
        tenant_id=tenant_id,
        file_id=file_id,
        payer_code=payer_code,
        today=today,
        by_pcn=by_pcn,
        by_id=by_id,
        prior=prior,
        result=result,
    )
    # Pipelined: chunk k is written (three COPYs) while chunk k+1 is built (building takes
    # about half as long as writing).
    work = iter(zip(flat, decisions, strict=True))
    with gc_paused():
        rows = _Rows()
        for _ in post.build(work, CHUNK, rows):
            pass
        while rows.payments:
            nxt = _Rows()
            await _overlap(_write_rows(drv, rows), post.build(work, CHUNK, nxt))
            rows = nxt
    del rows, work, flat, decisions
    items = post.items

    for claim in by_id.values():
        if claim.pending_reversal and claim.status not in (
            ClaimStatus.VOIDED.value,
            ClaimStatus.REPLACED.value,
        ):
            items.append(
                _item(
                    tenant_id,
                    source="835_reversal",
                    category=WorkItemCategory.OTHER,
                    action=DefaultAction.CHECK_STATUS.value,
                    text=(
                        "The payer took back a payment without re-adjudicating the claim: "
                        "check the claim status (276/277) and look for a PLB WO recoupment."
                    ),
                    claim=claim,
                    batch=file_id,
                    payment=None,
                    amount=claim.pending_reversal,
                    reasons=[{"code": "REVERSAL_WITHOUT_CORRECTION"}],
                    summary="Payment reversed with no correction",
                    today=today,
                )
            )

    plbs = [
        {
            "tenant_id": tenant_id,
            "remittance_file_id": file_id,
            "provider_id": p.provider_id[:50],
            "fiscal_period": p.fiscal_period_date.isoformat(),
            "reason_code": p.reason[:2],
            "reference": p.reference[:50] or None,
            "amount_cents": p.amount,
            "payer_code": payer_code,
        }
        for r in remits
        for p in r.plb
    ]
    if plbs:
        await drv.execute(_INSERT_PLB, _encode(plbs).decode())
    if items:
        # Priority's overturn factor (payer x primary reason), one query per file.
        apply_overturn_rates(
            items, await overturn_rates(conn, tenant_id=tenant_id, today=today), today
        )
    at = utc_now()
    touched = [c for c in by_id.values() if c.events]
    claim_events: list[tuple[Any, ...]] = []
    item_events: list[tuple[Any, ...]] = []
    heads = await audit_heads(conn, "claim", [(tenant_id, c.id) for c in touched])
    audit_rows = chain(
        _claim_event_rows(heads, tenant_id, touched, actor, request_id, at, claim_events),
        _item_event_rows(tenant_id, items, actor, request_id, at, item_events),
    )
    with gc_paused():
        if touched:
            # The audit events are hashed while PostgreSQL updates the claims.
            await _overlap(
                drv.execute(
                    _UPDATE_CLAIMS,
                    [c.id for c in touched],
                    [c.status for c in touched],
                    [c.events[-1][1][:500] for c in touched],
                    [c.icn for c in touched],
                ),
                audit_rows,
            )
        else:
            for _ in audit_rows:
                pass
    await _copy_events(drv, claim_events)
    result.work_items = await _write_items(drv, items, item_events)
    paid_ids = [c.id for c in by_id.values() if c.paid_in_full]
    if paid_ids:
        await _resolve_items(conn, drv, tenant_id, paid_ids, actor, request_id, at)
    decided = [(c.id, c.appeal_result) for c in by_id.values() if c.appeal_result]
    if decided:
        await conn.execute(
            _DECIDE_APPEALS,
            {
                "t": tenant_id,
                "ids": [i for i, _ in decided],
                "results": [r for _, r in decided],
                "today": today,
            },
        )
    return result


_INSERT_PLB = _insert_sql("billing.provider_adjustments", _PLB_COLS, "$1")
_UNMATCHED_TEXT = (
    "The payer adjudicated a claim number we do not know: find the claim "
    "(typo, another tenant, a claim sent outside this service) and post it."
)


@dataclass(slots=True)
class _Posting:
    """Per-file posting state: walks the CLPs in file order, a chunk at a time."""

    tenant_id: str
    file_id: str
    payer_code: str
    today: date
    by_pcn: dict[str, _Claim]
    by_id: dict[str, _Claim]
    prior: dict[str, tuple[str, str | None]]
    result: PostingResult
    items: list[dict[str, Any]] = field(default_factory=list)
    seen_icn: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    seq: int = 0

    def build(self, work: Iterator[_Planned], size: int, rows: _Rows) -> Iterator[None]:
        """Append the rows of the next `size` CLPs (file order) to `rows`, yielding every
        `SLICE` CLPs (see `_overlap`)."""
        for n in range(1, size + 1):
            nxt = next(work, None)
            if nxt is None:
                return
            (remit, cp), (decision, adjustments) = nxt
            self.claim(rows, remit, cp, decision, adjustments)
            if n % SLICE == 0:
                yield

    def claim(
        self,
        rows: _Rows,
        remit: Remittance,
        cp: ClaimPayment,
        decision: RemitDecision,
        adjustments: list[tuple[Any, ...]],
    ) -> None:
        seq = self.seq
        self.seq += 1
        result = self.result
        tenant_id, file_id, today = self.tenant_id, self.file_id, self.today
        remit_date = _remit_date(remit, today)
        pay_id = str(uuid.uuid4())
        reversal = cp.status == "22"
        reverses: str | None = None
        claim: _Claim | None = None
        if reversal and cp.payer_icn:
            found = self.seen_icn.get(cp.payer_icn) or self.prior.get(cp.payer_icn)
            if found is not None:
                reverses = found[0]
                claim = self.by_id.get(found[1]) if found[1] else None
        if claim is None:
            claim = self.by_pcn.get(cp.patient_control_number)
        if not reversal and cp.payer_icn:
            self.seen_icn[cp.payer_icn] = (pay_id, claim.id if claim else None)
        outcome = decision.outcome.value
        result.by_outcome[outcome] = result.by_outcome.get(outcome, 0) + 1
        allowed = cp.amounts.get("AU")
        if allowed is None:
            line_allowed = [ln.allowed for ln in cp.lines]
            allowed = (
                sum(a for a in line_allowed if a is not None)
                if cp.lines and all(a is not None for a in line_allowed)
                else cp.paid + decision.patient_responsibility_cents
            )
        rows.payments.append(
            (
                pay_id,
                tenant_id,
                file_id,
                seq,
                claim.id if claim else None,
                cp.patient_control_number[:38],
                cp.status[:2],
                cp.charge,
                cp.paid,
                cp.patient_responsibility,
                allowed,
                decision.contractual_cents,
                decision.denied_cents,
                cp.payer_icn[:50] or None,
                reverses,
                cp.filing_indicator[:2] or None,
                outcome,
                _json_list(decision.denial.remark_codes if decision.denial else ()),
                self.payer_code,
                remit_date,
            )
        )
        rows.adjustments.extend((pay_id, *a) for a in adjustments)
        for li, ln in enumerate(cp.lines, start=1):
            pr = sum(a.amount for a in ln.adjustments if a.group == "PR")
            rows.lines.append(
                (
                    pay_id,
                    li,
                    li if claim else None,
                    ln.code[:10],
                    _json_list(ln.modifiers),
                    _units(ln.units),
                    ln.charge,
                    ln.paid,
                    ln.allowed if ln.allowed is not None else ln.paid + pr,
                    pr,
                    ln.service_date,
                    _json_list(ln.remark_codes),
                )
            )
        if claim is None:
            result.unmatched += 1
            self.items.append(
                _item(
                    tenant_id,
                    source="835_unmatched",
                    category=WorkItemCategory.OTHER,
                    action=DefaultAction.CHECK_STATUS.value,
                    text=_UNMATCHED_TEXT,
                    claim=None,
                    batch=f"{file_id}:{seq}",
                    payment=pay_id,
                    amount=abs(cp.paid) or abs(cp.charge),
                    reasons=[
                        {
                            "code": "UNMATCHED_CLP01",
                            "pcn": cp.patient_control_number,
                            "payer_icn": cp.payer_icn,
                            "clp02": cp.status,
                        }
                    ],
                    summary=f"835 claim {cp.patient_control_number} matches no claim",
                    today=today,
                )
            )
            return
        result.matched += 1
        if reversal:
            claim.pending_reversal = (claim.pending_reversal or 0) - cp.paid
            claim.events.append(
                (
                    "claim.remit_reversed",
                    f"835 reversal (CLP02 22) of payer ICN {cp.payer_icn}",
                    {"status": claim.status},
                    {
                        "status": claim.status,
                        "payment_id": pay_id,
                        "reverses_payment_id": reverses,
                        "paid_cents": cp.paid,
                        "file_id": file_id,
                    },
                )
            )
            return
        claim.pending_reversal = None
        _apply_outcome(
            claim, cp, decision, pay_id, file_id, tenant_id, self.items, remit_date, today
        )


def _apply_outcome(
    claim: _Claim,
    cp: ClaimPayment,
    decision: RemitDecision,
    pay_id: str,
    file_id: str,
    tenant_id: str,
    items: list[dict[str, Any]],
    remit_date: date,
    today: date,
) -> None:
    if cp.payer_icn:
        claim.icn = cp.payer_icn[:50]
    facts = {
        "payment_id": pay_id,
        "file_id": file_id,
        "outcome": decision.outcome.value,
        "paid_cents": decision.paid_cents,
        "denied_cents": decision.denied_cents,
        "contractual_cents": decision.contractual_cents,
        "patient_responsibility_cents": decision.patient_responsibility_cents,
        "payer_icn": cp.payer_icn,
    }
    target = _TARGET.get(decision.outcome)
    if target is None:  # needs review: nothing explains the (non-)payment
        claim.events.append(("claim.remit_posted", "835 needs review", {}, facts))
        items.append(
            _item(
                tenant_id,
                source="835_review",
                category=WorkItemCategory.OTHER,
                action=DefaultAction.CHECK_STATUS.value,
                text="The remittance neither pays nor explains the claim: check its status.",
                claim=claim,
                batch=None,
                payment=pay_id,
                amount=max(cp.charge - cp.paid, 0),
                reasons=[{"code": "NEEDS_REVIEW", "clp02": cp.status}],
                summary=f"835 outcome needs review (CLP02 {cp.status})",
                today=today,
            )
        )
        return
    status, event = target
    before = claim.status
    if before != status.value:
        try:
            move = transition(
                ClaimStatus(before),
                status,
                reason=f"835 {decision.outcome.value} (ICN {cp.payer_icn or '-'})",
                event=event,
            )
        except InvalidTransition as exc:
            claim.events.append(("claim.remit_posted", str(exc)[:500], {}, facts))
            items.append(
                _item(
                    tenant_id,
                    source="835_review",
                    category=WorkItemCategory.OTHER,
                    action=DefaultAction.CHECK_STATUS.value,
                    text=f"An 835 adjudicated a claim that is {before}: review the posting.",
                    claim=claim,
                    batch=None,
                    payment=pay_id,
                    amount=decision.denied_cents or max(cp.charge - cp.paid, 0),
                    reasons=[{"code": "STATE_CONFLICT", "status": before}],
                    summary=f"835 {decision.outcome.value} on a {before} claim",
                    today=today,
                )
            )
            return
        claim.status = move.target.value
        claim.moved = True
        claim.events.append(
            (
                f"claim.{move.event.value}",
                move.reason,
                {"status": before},
                {**facts, "status": claim.status},
            )
        )
    else:
        claim.moved = True  # same status; the ICN and the event still change
        claim.events.append(
            (
                "claim.remit_posted",
                f"835 {decision.outcome.value}",
                {"status": before},
                {**facts, "status": before},
            )
        )
    if before == ClaimStatus.APPEALED.value:
        claim.appeal_result = "lost" if status is ClaimStatus.DENIED else "won"
    claim.paid_in_full = status is ClaimStatus.PAID
    denial = decision.denial
    if denial is None or decision.denied_cents <= 0:
        return
    category = category_for_denial(denial.category)
    appeal_by = appeal_deadline(remit_date, claim.appeal_window)
    rec = recommend(
        category,
        denial.action,
        appeal_deadline_passed=appeal_by < today,
        no_appeal=denial.no_appeal,
    )
    items.append(
        _item(
            tenant_id,
            source="835",
            category=category,
            action=rec.action.value,
            text=rec.text,
            route=rec.route,
            claim=claim,
            batch=None,
            payment=pay_id,
            amount=decision.denied_cents,
            reasons=[
                {
                    "code": f"{denial.group.value}-{denial.carc}",
                    "group": denial.group.value,
                    "carc": denial.carc,
                    "description": denial.description,
                    "remarks": list(denial.remark_codes),
                    "payer_icn": cp.payer_icn,
                }
            ],
            summary=(
                f"{decision.outcome.value.replace('_', ' ')}: {denial.group.value}-{denial.carc} "
                f"{denial.description}"
            )[:500],
            appeal_by=appeal_by,
            no_appeal=denial.no_appeal,
            today=today,
        )
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
