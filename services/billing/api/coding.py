"""`/v1/coding/preview`: how a session would be coded and priced now, with no side effects."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.params import JSONBody

from services.billing import claims
from services.billing.api.ports import coverage_of
from services.billing.schemas import CodingPreviewRead, SessionCreate
from shared.web import principal_of, runtime_of


class CodingController(Controller):
    path = "/coding"
    tags = ["coding"]

    @post(
        "/preview",
        opt={"policy": "coding.preview"},
        summary="Dry run: eligibility, codes, units, POS, modifiers, amounts and rationale",
        description=(
            "Takes the same body as POST /v1/sessions. Nothing is written: the transaction "
            "is rolled back whatever happens."
        ),
        status_code=200,
    )
    async def preview(
        self, request: Request[Any, Any, Any], data: JSONBody[SessionCreate]
    ) -> CodingPreviewRead:
        # read_conn never commits: the dry run cannot leave anything behind.
        async with runtime_of(request).read_conn() as conn:
            return await claims.preview_coding(
                conn, principal_of(request), data, coverage=coverage_of(request)
            )
