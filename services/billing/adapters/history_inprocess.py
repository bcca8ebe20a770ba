"""BillingHistoryPort over billing's own tables, in process.

Until claims exist, the services billing knows about are its recorded sessions (any state
but `failed`). They carry no payer yet, so `payer_id`/`contract_id` are None: coverage
attributes each one to the coverage the patient had on its date.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.ports import PriorService

# Asked once per eligibility check: plain asyncpg on the caller's transaction, because
# SQLAlchemy's statement overhead would be a large share of the check.
_SQL = """
SELECT date_of_service, upper(payload->>'service_type') AS service_type,
       coalesce(payload->'pharmacy'->>'tin', '') AS tin
FROM billing.sessions
WHERE tenant_id = $1 AND patient_ref = $2 AND state <> 'failed'
  AND ($3::date IS NULL OR date_of_service < $3::date)
ORDER BY date_of_service
"""


class SessionHistory:
    async def prior_services(
        self, conn: AsyncConnection, *, tenant_id: str, patient_ref: str, before: date | None = None
    ) -> Sequence[PriorService]:
        raw = await conn.get_raw_connection()
        drv: Any = raw.driver_connection
        rows = await drv.fetch(_SQL, tenant_id, patient_ref, before)
        return [PriorService(dos=r[0], service_type=r[1], tin=r[2], code="") for r in rows]
