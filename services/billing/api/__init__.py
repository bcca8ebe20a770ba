"""Billing HTTP controllers, grouped by resource."""

from __future__ import annotations

from litestar import Router

from services.billing.api.claims import ClaimController
from services.billing.api.coding import CodingController
from services.billing.api.sessions import SessionController


def billing_router() -> Router:
    return Router(path="/v1", route_handlers=[SessionController, ClaimController, CodingController])
