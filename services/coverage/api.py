"""Coverage HTTP controllers (payers, contracts, patients, eligibility) mount here."""

from __future__ import annotations

from litestar import Router


def coverage_router() -> Router:
    return Router(path="/v1", route_handlers=[])
