"""The coverage ports the billing API hands to its use cases, made once per app (tests put
their own in the runtime's extras first)."""

from __future__ import annotations

from typing import Any

from litestar import Request

from services.billing import claims
from services.billing.ports import CoveragePort
from shared.web import runtime_of


def coverage_of(request: Request[Any, Any, Any]) -> CoveragePort:
    """Billing's eligibility port to coverage."""
    rt = runtime_of(request)
    port: CoveragePort | None = rt.extras.get("coverage_port")
    if port is None:
        port = rt.extras["coverage_port"] = claims.default_coverage()
    return port
