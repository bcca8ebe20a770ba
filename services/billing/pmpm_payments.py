"""PMPM payments: a payer capitation CSV, an 835 (PLB CT capitation and monthly-code claim
lines), an 820 (X218 premium payment: RMR per member and coverage month, ADX adjustments) or
the PLB CT rows remittance posting already stored, each line tied to a member and a month of
one contract. An import is all or nothing, and importing the same content again for
the same contract changes nothing.

CSV columns (header names may be remapped per payer, see `domain.pmpm.CSV_FIELDS`):
``member_id``, ``month`` (YYYY-MM), ``amount`` (decimal; negative = recoupment), and
optionally ``tier``, ``paid_date`` (YYYY-MM-DD), ``reference``.

835: each PLB adjustment with reason ``CT`` is a capitation payment for the member in its
reference (PLB03-2) and the month of its fiscal period date (PLB02); the PLB amount's sign is
inverted (a negative PLB amount is money paid to us). Service lines whose code is one of the
contract's monthly codes are payments for the claim's member (NM1*QC) in the month of the
line's service date (else the claim's statement date); reversals (CLP02 22) come negative.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.domain.pmpm import PaymentRow, RowProblem, month_start, parse_payment_csv
from services.billing.pmpm import PmpmCoveragePort, load_contract
from services.billing.tables_pmpm import pmpm_payment_imports, pmpm_payments
from shared import audit
from shared.clock import utc_now
from shared.errors import FieldProblem, RuleViolation
from shared.money import format_cents
from shared.x12.tokenizer import X12SyntaxError
from shared.x12.x820 import parse_820
from shared.x12.x835 import parse_835

MAX_PROBLEMS = 200


@dataclass(frozen=True, slots=True)
class ImportResult:
    import_id: str
    source: str
    rows: int
    total_cents: int
    duplicate: bool  # the same content was imported before; nothing changed


def _problems(problems: Sequence[RowProblem]) -> RuleViolation:
    shown = list(problems)[:MAX_PROBLEMS]
    rows = sorted({p.row for p in problems})
    return RuleViolation(
        f"{len(rows)} row(s) could not be read (rows {', '.join(map(str, rows[:20]))}"
        f"{', ...' if len(rows) > 20 else ''}); nothing was imported",
        code="invalid_payment_rows",
        errors=tuple(FieldProblem(f"rows[{p.row}].{p.field}", p.message, p.code) for p in shown),
        action="fix the rows named (row 1 is the header) and import the whole file again",
    )


async def _store(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    contract_id: str,
    source: str,
    content_hash: str,
    rows: Sequence[PaymentRow],
    actor: str,
    source_name: str | None,
) -> ImportResult:
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"),
        {"k": f"pmpm-pay:{tenant_id}:{contract_id}:{content_hash}"},
    )
    existing = (
        await conn.execute(
            select(
                pmpm_payment_imports.c.id,
                pmpm_payment_imports.c.rows,
                pmpm_payment_imports.c.total_cents,
            ).where(
                pmpm_payment_imports.c.tenant_id == tenant_id,
                pmpm_payment_imports.c.contract_id == contract_id,
                pmpm_payment_imports.c.source == source,
                pmpm_payment_imports.c.content_hash == content_hash,
            )
        )
    ).first()
    if existing is not None:
        return ImportResult(
            str(existing.id), source, existing.rows, existing.total_cents, duplicate=True
        )
    import_id = str(uuid.uuid4())
    now = utc_now()
    total = sum(r.amount for r in rows)
    await conn.execute(
        insert(pmpm_payment_imports).values(
            id=import_id,
            tenant_id=tenant_id,
            contract_id=contract_id,
            source=source,
            content_hash=content_hash,
            source_name=source_name,
            rows=len(rows),
            total_cents=total,
            actor=actor,
            imported_at=now,
        )
    )
    if rows:
        await conn.execute(
            insert(pmpm_payments),
            [
                {
                    "tenant_id": tenant_id,
                    "contract_id": contract_id,
                    "import_id": import_id,
                    "row_no": r.row,
                    "source": source,
                    "member_id": r.member_id,
                    "period": r.period,
                    "amount_cents": r.amount,
                    "tier": r.tier,
                    "paid_date": r.paid_date,
                    "reference": r.reference,
                    "recorded_at": now,
                }
                for r in rows
            ],
        )
    await audit.append(
        conn,
        tenant_id=tenant_id,
        entity_type="pmpm_payment_import",
        entity_id=import_id,
        action="pmpm.payments_imported",
        actor=actor,
        after={
            "contract_id": contract_id,
            "source": source,
            "rows": len(rows),
            "total_cents": total,
        },
        new_entity=True,
    )
    return ImportResult(import_id, source, len(rows), total, duplicate=False)


def _hash(content: str | bytes) -> str:
    data = content.encode() if isinstance(content, str) else content
    return hashlib.sha256(data).hexdigest()


async def import_csv(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    contract_id: str,
    content: str,
    actor: str,
    coverage: PmpmCoveragePort,
    columns: Mapping[str, str] | None = None,
    source_name: str | None = None,
) -> ImportResult:
    view = await load_contract(conn, coverage, tenant_id, contract_id)
    rows, problems = parse_payment_csv(content, columns)
    if problems:
        raise _problems(problems)
    return await _store(
        conn,
        tenant_id=tenant_id,
        contract_id=view.contract_id,
        source="csv",
        content_hash=_hash(content),
        rows=rows,
        actor=actor,
        source_name=source_name,
    )


def payments_from_835(content: str, monthly_codes: frozenset[str]) -> list[PaymentRow]:
    """PLB CT pairs and monthly-code service lines as payment rows (see the module doc).
    Raises RuleViolation listing every unusable entry."""
    try:
        remittances = parse_835(content)
    except (X12SyntaxError, ValueError) as exc:
        raise RuleViolation(f"the 835 could not be parsed: {exc}", code="invalid_835") from exc
    rows: list[PaymentRow] = []
    problems: list[RowProblem] = []
    n = 0
    for remit in remittances:
        paid = remit.payment_date
        for adj in remit.plb:
            n += 1
            if adj.reason != "CT":
                continue
            if not adj.reference.strip():
                problems.append(RowProblem(n, "reference", "PLB CT without a member reference"))
                continue
            rows.append(
                PaymentRow(
                    n,
                    adj.reference.strip()[:80],
                    month_start(adj.fiscal_period_date),
                    -adj.amount,
                    None,
                    paid,
                    f"PLB CT {remit.trace_number}"[:80],
                )
            )
        for claim in remit.claims:
            for line in claim.lines:
                n += 1
                if line.code not in monthly_codes:
                    continue
                day = line.service_date or line.service_from or claim.statement_from
                if not claim.member_id or day is None:
                    problems.append(
                        RowProblem(
                            n,
                            "claim",
                            f"monthly-code line of claim {claim.patient_control_number} has no "
                            "member id or service date",
                        )
                    )
                    continue
                rows.append(
                    PaymentRow(
                        n,
                        claim.member_id[:80],
                        month_start(day),
                        line.paid,
                        None,
                        paid,
                        f"CLP {claim.patient_control_number} {line.code}"[:80],
                    )
                )
    if problems:
        raise _problems(problems)
    return rows


async def import_835(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    contract_id: str,
    content: str,
    actor: str,
    coverage: PmpmCoveragePort,
    source_name: str | None = None,
) -> ImportResult:
    view = await load_contract(conn, coverage, tenant_id, contract_id)
    codes: set[str] = set()
    for v in view.versions:
        for m in v.monthly_codes:
            codes.add(m.code)
            if m.addon_code:
                codes.add(m.addon_code)
    rows = payments_from_835(content, frozenset(codes))
    return await _store(
        conn,
        tenant_id=tenant_id,
        contract_id=view.contract_id,
        source="835",
        content_hash=_hash(content),
        rows=rows,
        actor=actor,
        source_name=source_name,
    )


def payments_from_820(content: str) -> list[PaymentRow]:
    """Each RMR of an 820 (and each ADX after it) as a payment row for the individual's member
    id (ENT04, else NM109) and the month of its coverage period (DTM*582). Every transaction
    set must balance (BPR02 = sum of RMR04 + sum of ADX01). A debit (BPR03 D) takes money
    back, so its amounts come negative. Raises RuleViolation listing every unusable entry."""
    try:
        premiums = parse_820(content)
    except (X12SyntaxError, ValueError) as exc:
        raise RuleViolation(f"the 820 could not be parsed: {exc}", code="invalid_820") from exc
    for k, prem in enumerate(premiums, start=1):
        if not prem.balanced:
            raise RuleViolation(
                f"820 transaction {k} ({prem.trace_number or 'no trace'}) does not balance: "
                f"BPR02 {format_cents(prem.total)} but the remittances add up to "
                f"{format_cents(prem.detail_total)}; nothing was imported",
                code="unbalanced_820",
                action="ask the payer for a corrected 820",
            )
    rows: list[PaymentRow] = []
    problems: list[RowProblem] = []
    n = 0
    for prem in premiums:
        sign = 1 if prem.credit else -1
        trace = f"820 {prem.trace_number}".strip()
        for ind in prem.individuals:
            first = next((r.period_begin for r in ind.remittances if r.period_begin), None)
            entries: list[tuple[int, date | None, date | None, str]] = []
            for adj in ind.adjustments:
                entries.append((adj.amount, first, None, f"{trace} ADX {adj.reason}"))
            for r in ind.remittances:
                entries.append(
                    (r.amount, r.period_begin, r.period_end, f"{trace} {r.qualifier} {r.reference}")
                )
                for adj in r.adjustments:
                    entries.append(
                        (adj.amount, r.period_begin, r.period_end, f"{trace} ADX {adj.reason}")
                    )
            for amount, begin, end, reference in entries:
                n += 1
                where = f"ENT {ind.number or '?'} (segment {ind.segment_index})"
                if not ind.member_id:
                    problems.append(RowProblem(n, "member_id", f"{where}: no member id"))
                    continue
                if begin is None:
                    problems.append(
                        RowProblem(n, "period", f"{where}: no coverage period (DTM*582)")
                    )
                    continue
                if end is not None and (end < begin or month_start(end) != month_start(begin)):
                    problems.append(
                        RowProblem(
                            n,
                            "period",
                            f"{where}: the coverage period {begin:%Y-%m-%d} to {end:%Y-%m-%d} "
                            "is not within one month; it must be sent per month",
                        )
                    )
                    continue
                rows.append(
                    PaymentRow(
                        n,
                        ind.member_id[:80],
                        month_start(begin),
                        sign * amount,
                        None,
                        prem.payment_date,
                        reference[:80],
                    )
                )
    if problems:
        shown = problems[:MAX_PROBLEMS]
        entries_bad = sorted({p.row for p in problems})
        raise RuleViolation(
            f"{len(entries_bad)} payment entr{'y' if len(entries_bad) == 1 else 'ies'} of the "
            "820 could not be used; nothing was imported",
            code="invalid_payment_rows",
            errors=tuple(
                FieldProblem(f"entries[{p.row}].{p.field}", p.message, p.code) for p in shown
            ),
            action="ask the payer for a corrected 820 (one coverage month per remittance)",
        )
    return rows


async def import_820(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    contract_id: str,
    content: str,
    actor: str,
    coverage: PmpmCoveragePort,
    source_name: str | None = None,
) -> ImportResult:
    """Capitation from an 820 (X218): all or nothing, idempotent per content."""
    view = await load_contract(conn, coverage, tenant_id, contract_id)
    rows = payments_from_820(content)
    return await _store(
        conn,
        tenant_id=tenant_id,
        contract_id=view.contract_id,
        source="820",
        content_hash=_hash(content),
        rows=rows,
        actor=actor,
        source_name=source_name,
    )


_PLB_CT_SQL = """
SELECT pa.id, pa.fiscal_period, pa.reference, pa.amount_cents, f.payment_date
FROM billing.provider_adjustments pa
JOIN billing.remittance_files f ON f.id = pa.remittance_file_id
WHERE pa.tenant_id = :tenant AND pa.remittance_file_id = CAST(:file AS uuid)
  AND pa.reason_code = 'CT'
ORDER BY pa.id
"""


async def import_posted_remittance(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    contract_id: str,
    remittance_file_id: str,
    actor: str,
    coverage: PmpmCoveragePort,
) -> ImportResult:
    """The PLB CT rows remittance posting stored for one 835 file (`provider_adjustments`)."""
    view = await load_contract(conn, coverage, tenant_id, contract_id)
    try:
        file_id = str(uuid.UUID(remittance_file_id))
    except ValueError:
        raise RuleViolation(
            "remittance_file_id is not a uuid", code="invalid_remittance_file"
        ) from None
    found: list[Any] = list(
        await conn.execute(text(_PLB_CT_SQL), {"tenant": tenant_id, "file": file_id})
    )
    rows: list[PaymentRow] = []
    problems: list[RowProblem] = []
    for i, r in enumerate(found, start=1):
        if not (r.reference or "").strip() or r.fiscal_period is None:
            problems.append(
                RowProblem(i, "reference", "PLB CT without a member reference or fiscal date")
            )
            continue
        fiscal: date = r.fiscal_period
        rows.append(
            PaymentRow(
                i,
                r.reference.strip()[:80],
                month_start(fiscal),
                -int(r.amount_cents),
                None,
                r.payment_date,
                f"PLB CT {r.id}",
            )
        )
    if problems:
        raise _problems(problems)
    return await _store(
        conn,
        tenant_id=tenant_id,
        contract_id=view.contract_id,
        source="835",
        content_hash=_hash(f"remittance_file:{file_id}"),
        rows=rows,
        actor=actor,
        source_name=f"remittance_file:{file_id}",
    )
