"""Builders for PMPM tests: coverage rows written directly (so recorded_at can be set), sessions
and payments, and a small facade over the use cases."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing import pmpm
from services.billing.adapters.pmpm_coverage import InProcessPmpmCoverage
from services.billing.tables import sessions
from services.billing.tables_pmpm import line_order, pmpm_lines, pmpm_runs
from services.coverage.domain.contracts import (
    ActivityRequirement,
    BillingModel,
    ContractTerms,
    FeeScheduleEntry,
    MonthlyCode,
    PaymentMode,
    PmpmTerms,
    ProrationRule,
    TierRate,
)
from services.coverage.tables import (
    contract_versions,
    contracts,
    coverage_span_versions,
    patients,
    payers,
)
from services.coverage.terms_codec import terms_to_json

COVERAGE = InProcessPmpmCoverage()
EARLY = datetime(2025, 12, 1, tzinfo=UTC)


def pmpm_terms(
    *,
    proration: ProrationRule = ProrationRule.FIRST_OF_MONTH,
    rates: dict[str, int] | None = None,
    default_tier: str | None = "std",
    activity: ActivityRequirement | None = None,
    mode: PaymentMode = PaymentMode.CAPITATION,
    monthly_codes: tuple[MonthlyCode, ...] = (),
    retro_window_months: int = 6,
) -> PmpmTerms:
    return PmpmTerms(
        rates=tuple(TierRate(t, r) for t, r in (rates or {"std": 2500, "high": 4000}).items()),
        default_tier=default_tier,
        proration=proration,
        activity=activity,
        monthly_codes=monthly_codes,
        retro_window_months=retro_window_months,
        payment_mode=mode,
    )


@dataclass
class World:
    conn: AsyncConnection
    tenant: str
    payer_id: str = ""
    contract_id: str = ""
    patients: dict[str, str] = field(default_factory=dict)  # member id -> patient id
    refs: dict[str, str] = field(default_factory=dict)  # member id -> patient_ref

    async def setup(
        self,
        terms: PmpmTerms,
        *,
        fees: tuple[FeeScheduleEntry, ...] = (),
        exclusions: frozenset[str] = frozenset(),
    ) -> World:
        self.payer_id = str(uuid.uuid4())
        self.contract_id = str(uuid.uuid4())
        await self.conn.execute(
            insert(payers).values(
                id=self.payer_id,
                tenant_id=self.tenant,
                name="PMPM payer",
                x12_payer_id=f"P{self.payer_id[:6]}",
                receiver_id="RCV",
                receiver_name="Clearinghouse",
                claim_filing_indicator="MC",
                timely_filing_days=95,
                appeal_window_days=60,
                transport="directory",
                trading_partner_id="TP1",
            )
        )
        await self.conn.execute(
            insert(contracts).values(
                id=self.contract_id, tenant_id=self.tenant, payer_id=self.payer_id, name="PMPM"
            )
        )
        ct = ContractTerms(
            billing_model=BillingModel.PMPM,
            pmpm=terms,
            fee_schedule=fees,
            exclusions=exclusions,
        )
        await self.conn.execute(
            insert(contract_versions).values(
                contract_id=self.contract_id,
                version=1,
                tenant_id=self.tenant,
                effective_from=date(2025, 1, 1),
                terms=terms_to_json(ct),
            )
        )
        return self

    async def member(self, member_id: str) -> str:
        if member_id not in self.patients:
            pid = str(uuid.uuid4())
            ref = f"REF-{member_id}"
            await self.conn.execute(
                insert(patients).values(
                    id=pid,
                    tenant_id=self.tenant,
                    patient_ref=ref,
                    first_name="A",
                    last_name="B",
                    birth_date=date(1950, 1, 1),
                    sex="F",
                )
            )
            self.patients[member_id] = pid
            self.refs[member_id] = ref
        return self.patients[member_id]

    async def span(
        self,
        member_id: str,
        start: date,
        end: date | None = None,
        *,
        tier: str | None = None,
        span_id: str | None = None,
        version: int = 1,
        recorded_at: datetime = EARLY,
        priority: str = "primary",
        opt_out: date | None = None,
        flags: list[str] | None = None,
    ) -> str:
        pid = await self.member(member_id)
        sid = span_id or f"{member_id}|{start.isoformat()}"
        await self.conn.execute(
            insert(coverage_span_versions).values(
                tenant_id=self.tenant,
                span_id=sid,
                version=version,
                patient_id=pid,
                payer_id=self.payer_id,
                contract_id=self.contract_id,
                member_id=member_id,
                relationship="18",
                priority=priority,
                effective_from=start,
                effective_to=end,
                rate_tier=tier,
                opt_out_date=opt_out,
                population_flags=flags or [],
                source="manual",
                recorded_at=recorded_at,
            )
        )
        return sid

    async def session(
        self, member_id: str, dos: date, minutes: int, interventions: int = 0
    ) -> None:
        await self.member(member_id)
        payload: dict[str, Any] = {
            "documented_minutes": minutes,
            "interventions": [{"type": "x"} for _ in range(interventions)],
        }
        await self.conn.execute(
            insert(sessions).values(
                id=str(uuid.uuid4()),
                tenant_id=self.tenant,
                external_id=f"S-{uuid.uuid4().hex[:12]}",
                body_hash="0" * 64,
                patient_ref=self.refs[member_id],
                date_of_service=dos,
                payload=payload,
                state="priced",
            )
        )

    async def pay_csv(self, csv_text: str, actor: str = "test") -> Any:
        from services.billing import pmpm_payments

        return await pmpm_payments.import_csv(
            self.conn,
            tenant_id=self.tenant,
            contract_id=self.contract_id,
            content=csv_text,
            actor=actor,
            coverage=COVERAGE,
        )

    async def run(self, month: date, *, today: date = date(2026, 12, 15), **kw: Any) -> pmpm.RunRef:
        (ref,) = await pmpm.create_runs(
            self.conn,
            tenant_id=self.tenant,
            contract_id=self.contract_id,
            periods=[month],
            actor="test",
            coverage=COVERAGE,
            today=today,
            **kw,
        )
        return ref

    async def lines(self, run_id: str) -> dict[str, Any]:
        rows = await self.conn.execute(
            select(pmpm_lines).where(pmpm_lines.c.run_id == run_id).order_by(*line_order())
        )
        return {r.member_id: r for r in rows}

    async def run_row(self, run_id: str) -> Any:
        return (await self.conn.execute(select(pmpm_runs).where(pmpm_runs.c.id == run_id))).one()
