"""`/v1/reports`: revenue-cycle KPIs (domain.md §9)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.params import QueryParameter

from services.billing.remittance_schemas import KpiRead
from services.billing.reports import kpi_report
from shared.web import principal_of, runtime_of


class ReportController(Controller):
    path = "/reports"
    tags = ["reports"]

    @get("/kpis", opt={"policy": "reports.read"}, summary="KPIs for a period, optionally a payer")
    async def kpis(
        self,
        request: Request[Any, Any, Any],
        from_: Annotated[date, QueryParameter(query="from", description="first day (ISO date)")],
        to: Annotated[date, QueryParameter(description="last day (ISO date)")],
        payer: Annotated[str | None, QueryParameter(description="payer id (uuid)")] = None,
    ) -> KpiRead:
        async with runtime_of(request).read_conn() as conn:
            return await kpi_report(conn, principal_of(request), from_, to, payer)
