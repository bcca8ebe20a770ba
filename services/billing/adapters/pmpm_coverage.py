"""PmpmCoveragePort in process: PMPM contract terms and member-months from coverage.

Billing never reads coverage's tables; coverage hands over the SELECT of a contract's
member-months (coverage's own SQL and its `mm_*` parameters, see
`services/coverage/member_months_sql.py`) that billing's reconciliation statement embeds as a
CTE, in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.domain.pmpm import (
    FeeTerm,
    MonthlyCodeTerm,
    PmpmContractView,
    PmpmTermsView,
)
from services.coverage import member_months_sql as mm_sql
from services.coverage.domain.contracts import ContractVersion


def _view(v: ContractVersion) -> PmpmTermsView | None:
    p = v.terms.pmpm
    if p is None:
        return None
    return PmpmTermsView(
        version=v.version,
        effective_from=v.effective_from,
        effective_to=v.effective_to,
        proration=p.proration.value,
        payment_mode=p.payment_mode.value,
        rates=tuple((r.tier, r.rate) for r in p.rates),
        default_tier=p.default_tier,
        min_minutes=p.activity.min_minutes if p.activity is not None else None,
        min_interventions=p.activity.min_interventions if p.activity is not None else None,
        monthly_codes=tuple(
            MonthlyCodeTerm(
                m.code, m.min_minutes, m.addon_code, m.addon_step_minutes, m.max_addon_units
            )
            for m in p.monthly_codes
        ),
        fees=tuple(
            FeeTerm(e.code, e.charge, e.allowed, e.effective_from, e.effective_to)
            for e in v.terms.fee_schedule
            if e.modifier is None
        ),
        retro_window_months=p.retro_window_months,
        exclusions=v.terms.exclusions,
    )


class InProcessPmpmCoverage:
    async def contract(
        self, conn: AsyncConnection, *, tenant_id: str, contract_id: str
    ) -> PmpmContractView | None:
        found = await mm_sql.pmpm_contract(conn, tenant_id, contract_id)
        if found is None:
            return None
        views = tuple(v for v in (_view(x) for x in found.versions) if v is not None)
        return PmpmContractView(found.contract_id, found.payer_id, found.name, views)

    async def pmpm_contracts(self, conn: AsyncConnection) -> list[tuple[str, str]]:
        return await mm_sql.pmpm_contract_ids(conn)

    async def member_months_query(
        self,
        conn: AsyncConnection,
        *,
        tenant_id: str,
        contract_id: str,
        version: int,
        periods: Sequence[date],
        known_at: datetime,
    ) -> tuple[str, dict[str, Any]]:
        found = await mm_sql.pmpm_contract(conn, tenant_id, contract_id)
        chosen = next((v for v in found.versions if v.version == version), None) if found else None
        if chosen is None or chosen.terms.pmpm is None:
            raise LookupError(f"contract {contract_id} has no PMPM version {version}")
        query = mm_sql.member_months_query(
            tenant_id=tenant_id,
            contract_id=contract_id,
            periods=periods,
            known_at=known_at,
            terms=chosen.terms.pmpm,
            exclusions=chosen.terms.exclusions,
        )
        return query.sql, query.params
