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

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from itertools import chain
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.claim_repository import audit_heads, driver
from services.billing.domain.adjustments import RemitDecision
from services.billing.domain.claim_state import ClaimStatus
from services.billing.domain.work_items import WorkItemCategory
from services.billing.remittance_codes import db_code_tables
from services.billing.remittance_decisions import (
    _apply_outcome,
    _decide_all,
    _Decided,
    _Decider,
    _Planned,
    _remit_claim,
    _remit_date,
)
from services.billing.remittance_items import (
    _Claim,
    _claim_event_rows,
    _copy_events,
    _item,
    _item_event_rows,
    _resolve_items,
    _write_items,
)
from services.billing.remittance_pipeline import SLICE, _overlap, gc_paused
from services.billing.remittance_rows import (
    _INSERT_PLB,
    CHUNK,
    _encode,
    _json_list,
    _Rows,
    _units,
    _write_rows,
)
from services.billing.work_queue import apply_overturn_rates, overturn_rates
from shared.clock import utc_now
from shared.codes import DefaultAction
from shared.x12.x835 import ClaimPayment, Remittance

__all__ = [
    "CHUNK",
    "PostingResult",
    "_Decider",
    "_overlap",
    "_remit_claim",
    "gc_paused",
    "post_remittances",
]

DEFAULT_APPEAL_WINDOW_DAYS = 120


@dataclass(slots=True)
class PostingResult:
    matched: int = 0
    unmatched: int = 0
    work_items: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)


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


_UPDATE_CLAIMS = """
UPDATE billing.claims c
SET status = r.status, status_reason = r.reason, payer_icn = coalesce(r.icn, c.payer_icn),
    version = c.version + 1, updated_at = now()
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS r(id, status, reason, icn)
WHERE c.id = r.id
"""


_DECIDE_APPEALS = text(
    """
    UPDATE billing.appeals a SET status = r.result, decided_on = :today
    FROM unnest(CAST(:ids AS uuid[]), CAST(:results AS text[])) AS r(claim_id, result)
    WHERE a.tenant_id = :t AND a.claim_id = r.claim_id AND a.status = 'filed'
    """
)


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
