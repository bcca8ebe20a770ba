"""BillingHistoryPort over billing's claims, in process.

Once claims exist they are what billing knows it billed: each claim whose service still
stands at the payer (not not_billable, voided, replaced or rejected) is one prior service,
with its payer and contract, so coverage counts it against the right frequency limit.
Sessions not yet turned into claims are counted too (without a payer: coverage attributes
them to the coverage on their date), so a limit holds while the worker catches up.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.ports import PriorService

_SQL_TEXT = """
    SELECT c.date_of_service AS dos, c.service_type, c.billing_tin AS tin,
           coalesce((SELECT l.procedure_code FROM billing.claim_lines l
                     WHERE l.claim_id = c.id ORDER BY l.line_no LIMIT 1), '') AS code,
           c.payer_id::text AS payer_id, c.contract_id::text AS contract_id
    FROM billing.claims c
    WHERE c.tenant_id = :tenant AND c.patient_ref = :ref
      AND c.status NOT IN ('not_billable', 'voided', 'replaced', 'rejected')
      AND (CAST(:before AS date) IS NULL OR c.date_of_service < CAST(:before AS date))
    UNION ALL
    SELECT s.date_of_service, upper(s.payload->>'service_type'),
           replace(coalesce(s.payload->'pharmacy'->>'tin', ''), '-', ''), '', NULL, NULL
    FROM billing.sessions s
    WHERE s.tenant_id = :tenant AND s.patient_ref = :ref
      AND s.state IN ('received', 'awaiting_pricing')
      AND (CAST(:before AS date) IS NULL OR s.date_of_service < CAST(:before AS date))
    ORDER BY 1
"""
_SQL = text(_SQL_TEXT)
# The same statement for a raw asyncpg connection (the eligibility API's read-only path).
_SQL_RAW = _SQL_TEXT.replace(":tenant", "$1").replace(":ref", "$2").replace(":before", "$3")


class ClaimHistory:
    async def prior_services(
        self,
        conn: AsyncConnection | Any,
        *,
        tenant_id: str,
        patient_ref: str,
        before: date | None = None,
    ) -> Sequence[PriorService]:
        rows: Any
        if isinstance(conn, AsyncConnection):
            rows = [
                r._mapping
                for r in await conn.execute(
                    _SQL, {"tenant": tenant_id, "ref": patient_ref, "before": before}
                )
            ]
        else:
            rows = await conn.fetch(_SQL_RAW, tenant_id, patient_ref, before)
        return [
            PriorService(
                dos=r["dos"],
                service_type=r["service_type"],
                tin=r["tin"],
                code=r["code"],
                payer_id=r["payer_id"],
                contract_id=r["contract_id"],
            )
            for r in rows
        ]
