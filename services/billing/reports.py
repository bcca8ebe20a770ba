"""KPIs from posted data (domain.md §9), computed by `domain.kpis.compute_kpis`.

Mapping from the database to the KPI records:

* A KPI *claim* is a claim series (one session, or one PMPM member-month: contract, patient
  and month; the original and its frequency 7 replacements); voids (frequency 8) are not claims
  of their own. Its charge is the original's.
* submitted_on: the first audit event that moved any claim of the series to `submitted`;
  submission_count: how many such events (a replacement or a resubmission after a rejection
  counts again).
* passed edits first time: the original was never `on_hold`; manual touch: a person (an API
  key, not the worker) changed the original before its first submission.
* first outcome: the first adjudication posted for the series (paid / partially paid / denied;
  `patient_responsibility` counts as paid); else `rejected` when a rejection came first.
* payments: every claim payment (a reversal's negative amount is a refund), by remit date.
* adjustments: contractual CAS (CO-45, ...) as contractual; patient responsibility as other
  (it leaves the payer's A/R); write-offs by their reason code: contractual, timely filing,
  no authorization, other. Only contractual ones leave the net-collection denominator.
* appeals: filed date and status (filed = pending, won, lost, withdrawn).

PLB WO/FB/CT are provider-level, not claim-level, so they are not in the claim KPIs; CT
capitation received in the period is reported separately for PMPM reconciliation.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date
from fractions import Fraction
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.domain.claim_state import ClaimStatus
from services.billing.domain.kpis import (
    AdjustmentRecord,
    AdjustmentType,
    AppealOutcome,
    AppealRecord,
    ClaimRecord,
    KpiReport,
    PaymentKind,
    PaymentRecord,
    Ratio,
    compute_kpis,
)
from services.billing.remittance_schemas import KpiRead, KpiValue
from shared.auth import Principal
from shared.errors import FieldProblem, RuleViolation
from shared.money import format_cents

__all__ = ["kpi_report", "load_kpi_inputs"]

_OUTCOME = {
    "paid": ClaimStatus.PAID,
    "patient_responsibility": ClaimStatus.PAID,
    "partially_paid": ClaimStatus.PARTIALLY_PAID,
    "denied": ClaimStatus.DENIED,
}
_WRITE_OFF = {
    "contractual": AdjustmentType.CONTRACTUAL,
    "timely_filing": AdjustmentType.TIMELY_FILING_WRITE_OFF,
    "no_authorization": AdjustmentType.NO_AUTHORIZATION_WRITE_OFF,
    "other": AdjustmentType.OTHER,
}
_APPEAL = {
    "filed": AppealOutcome.PENDING,
    "won": AppealOutcome.WON,
    "lost": AppealOutcome.LOST,
    "withdrawn": AppealOutcome.WITHDRAWN,
}
_PERSON_PREFIX = "apikey:"  # people act through API keys; the worker and jobs do not


async def load_kpi_inputs(
    conn: AsyncConnection, tenant_id: str, payer_id: str | None
) -> tuple[list[ClaimRecord], list[PaymentRecord], list[AdjustmentRecord], list[AppealRecord]]:
    claim_rows = list(
        await conn.execute(
            text(
                """
                SELECT id::text AS id, series, claim_version, total_charge_cents
                FROM (
                    SELECT id, claim_version, total_charge_cents,
                           COALESCE(session_id::text,
                                    'pmpm:' || contract_id::text || ':' || patient_id::text
                                    || ':' || pmpm_period::text) AS series
                    FROM billing.claims
                    WHERE tenant_id = :t AND frequency_code <> '8'
                      AND (CAST(:payer AS uuid) IS NULL OR payer_id = CAST(:payer AS uuid))
                ) c
                ORDER BY series, claim_version
                """
            ),
            {"t": tenant_id, "payer": payer_id},
        )
    )
    series_of: dict[str, str] = {}
    original: dict[str, Any] = {}
    for r in claim_rows:
        series_of[r.id] = r.series
        original.setdefault(r.series, r)
    ids = list(series_of)
    if not ids:
        return [], [], [], []
    events = await conn.execute(
        text(
            """
            SELECT entity_id, seq, actor, after->>'status' AS status,
                   CAST(occurred_at AS date) AS day, occurred_at
            FROM audit.events
            WHERE tenant_id = :t AND entity_type = 'claim' AND entity_id = ANY(:ids)
            ORDER BY occurred_at, entity_id, seq
            """
        ),
        {"t": tenant_id, "ids": ids},
    )
    submitted: dict[str, list[date]] = defaultdict(list)
    held: set[str] = set()
    touched: set[str] = set()
    rejected_at: dict[str, Any] = {}
    for e in events:
        s = series_of[e.entity_id]
        if e.status == "submitted":
            submitted[s].append(e.day)
        is_original = original[s].id == e.entity_id
        if is_original and e.status == "on_hold":
            held.add(s)
        if is_original and not submitted[s] and e.actor.startswith(_PERSON_PREFIX):
            touched.add(s)
        if e.status == "rejected":
            rejected_at.setdefault(s, e.occurred_at)
    pay_rows = list(
        await conn.execute(
            text(
                """
                SELECT claim_id::text AS claim_id, status_code, outcome, paid_cents,
                       denied_cents, contractual_cents, patient_resp_cents, remit_date, created_at
                FROM billing.claim_payments
                WHERE tenant_id = :t AND claim_id = ANY(CAST(:ids AS uuid[]))
                ORDER BY remit_date, created_at, seq
                """
            ),
            {"t": tenant_id, "ids": ids},
        )
    )
    first_pay: dict[str, Any] = {}
    payments: list[PaymentRecord] = []
    adjustments: list[AdjustmentRecord] = []
    for p in pay_rows:
        s = series_of[p.claim_id]
        if p.status_code != "22" and p.outcome in _OUTCOME:
            first_pay.setdefault(s, p)
        if p.paid_cents:
            payments.append(
                PaymentRecord(
                    s,
                    abs(p.paid_cents),
                    p.remit_date,
                    PaymentKind.PAYMENT if p.paid_cents > 0 else PaymentKind.REFUND,
                )
            )
        if p.contractual_cents:
            adjustments.append(
                AdjustmentRecord(s, p.contractual_cents, p.remit_date, AdjustmentType.CONTRACTUAL)
            )
        if p.patient_resp_cents:
            adjustments.append(
                AdjustmentRecord(s, p.patient_resp_cents, p.remit_date, AdjustmentType.OTHER)
            )
    for w in await conn.execute(
        text(
            """
            SELECT claim_id::text AS claim_id, reason, amount_cents, written_off_on
            FROM billing.write_offs
            WHERE tenant_id = :t AND claim_id = ANY(CAST(:ids AS uuid[]))
            """
        ),
        {"t": tenant_id, "ids": ids},
    ):
        adjustments.append(
            AdjustmentRecord(
                series_of[w.claim_id], w.amount_cents, w.written_off_on, _WRITE_OFF[w.reason]
            )
        )
    appeals = [
        AppealRecord(series_of[a.claim_id], a.filed_on, _APPEAL[a.status])
        for a in await conn.execute(
            text(
                """
                SELECT claim_id::text AS claim_id, filed_on, status FROM billing.appeals
                WHERE tenant_id = :t AND claim_id = ANY(CAST(:ids AS uuid[]))
                """
            ),
            {"t": tenant_id, "ids": ids},
        )
    ]
    records = []
    for s, orig in original.items():
        fp = first_pay.get(s)
        outcome: ClaimStatus | None = _OUTCOME[fp.outcome] if fp is not None else None
        if s in rejected_at and (fp is None or rejected_at[s] < fp.created_at):
            outcome = ClaimStatus.REJECTED
        records.append(
            ClaimRecord(
                claim_id=s,
                charge_cents=orig.total_charge_cents,
                submitted_on=min(submitted[s]) if submitted[s] else None,
                submission_count=len(submitted[s]),
                passed_edits_first_time=s not in held,
                manual_touch=s in touched,
                first_outcome=outcome,
                first_denied_cents=(
                    fp.denied_cents if fp is not None and outcome is not ClaimStatus.REJECTED else 0
                ),
            )
        )
    return records, payments, adjustments, appeals


def _value(r: Ratio) -> KpiValue:
    def show(x: Fraction) -> str:
        if x.denominator == 1:
            return str(x.numerator)
        return str(Ratio(x, Fraction(1)).decimal(4))

    d = r.decimal(4)
    return KpiValue(
        numerator=show(r.numerator),
        denominator=show(r.denominator),
        value=str(d) if d is not None else None,
        percent=r.percent(2),
    )


def _check_period(start: date, end: date) -> None:
    if end < start:
        raise RuleViolation(
            "the period ends before it starts",
            code="invalid_query",
            errors=(FieldProblem("to", "must be on or after from"),),
        )
    if (end - start).days > 3660:
        raise RuleViolation(
            "the period is too long",
            code="invalid_query",
            errors=(FieldProblem("to", "at most ten years after from"),),
        )


async def kpi_report(
    conn: AsyncConnection, principal: Principal, start: date, end: date, payer: str | None
) -> KpiRead:
    _check_period(start, end)
    if payer is not None:
        try:
            payer = str(uuid.UUID(payer))
        except ValueError:
            raise RuleViolation(
                "invalid payer",
                code="invalid_query",
                errors=(FieldProblem("payer", "not a uuid"),),
            ) from None
    records, payments, adjustments, appeals = await load_kpi_inputs(
        conn, principal.tenant_id, payer
    )
    report: KpiReport = compute_kpis(
        records, payments, adjustments, appeals, period_start=start, period_end=end
    )
    write_offs: dict[str, int] = dict.fromkeys(_WRITE_OFF, 0)
    contractual_cas = sum(
        p.contractual_cents
        for p in await conn.execute(
            text(
                """
                SELECT cp.contractual_cents FROM billing.claim_payments cp
                JOIN billing.claims c ON c.id = cp.claim_id
                WHERE cp.tenant_id = :t AND cp.remit_date BETWEEN :s AND :e
                  AND (CAST(:payer AS uuid) IS NULL OR c.payer_id = CAST(:payer AS uuid))
                """
            ),
            {"t": principal.tenant_id, "s": start, "e": end, "payer": payer},
        )
    )
    for w in await conn.execute(
        text(
            """
            SELECT reason, sum(amount_cents) AS total FROM billing.write_offs
            WHERE tenant_id = :t AND written_off_on BETWEEN :s AND :e
              AND (CAST(:payer AS uuid) IS NULL OR payer_id = CAST(:payer AS uuid))
            GROUP BY reason
            """
        ),
        {"t": principal.tenant_id, "s": start, "e": end, "payer": payer},
    ):
        write_offs[w.reason] = int(w.total)
    capitation = (
        await conn.execute(
            text(
                """
                SELECT coalesce(sum(-amount_cents), 0) FROM billing.provider_adjustments pa
                JOIN billing.remittance_files f ON f.id = pa.remittance_file_id
                WHERE pa.tenant_id = :t AND pa.reason_code = 'CT'
                  AND coalesce(f.payment_date, CAST(f.created_at AS date)) BETWEEN :s AND :e
                """
            ),
            {"t": principal.tenant_id, "s": start, "e": end},
        )
    ).scalar_one()
    return KpiRead(
        period_from=start,
        period_to=end,
        payer=payer,
        claims_submitted=report.claims_submitted,
        charges=format_cents(report.charges_cents),
        ar=format_cents(report.ar_cents),
        ar_over_90=format_cents(report.ar_over_90_cents),
        clean_claim_rate=_value(report.clean_claim_rate),
        first_pass_yield=_value(report.first_pass_yield),
        denial_rate_count=_value(report.denial_rate_count),
        denial_rate_dollars=_value(report.denial_rate_dollars),
        days_in_ar=_value(report.days_in_ar),
        ar_over_90_share=_value(report.ar_over_90_share),
        net_collection_rate=_value(report.net_collection_rate),
        overturn_rate=_value(report.overturn_rate),
        write_offs={k: format_cents(v) for k, v in write_offs.items()},
        contractual_adjustments=format_cents(contractual_cas),
        capitation_received=format_cents(int(capitation)),
    )
