"""Billing HTTP controllers, grouped by resource."""

from __future__ import annotations

from litestar import Router

from services.billing.api.claims import ClaimController
from services.billing.api.coding import CodingController
from services.billing.api.pmpm import PmpmController
from services.billing.api.remittance import RemittanceController
from services.billing.api.reports import ReportController
from services.billing.api.sessions import SessionController
from services.billing.api.submissions import SUBMISSION_CONTROLLERS
from services.billing.api.work_items import WorkItemController


def billing_router() -> Router:
    return Router(
        path="/v1",
        route_handlers=[
            SessionController,
            ClaimController,
            CodingController,
            RemittanceController,
            WorkItemController,
            ReportController,
            PmpmController,
            *SUBMISSION_CONTROLLERS,
        ],
    )
