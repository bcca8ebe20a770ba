"""`/v1/claims`: the claims the worker created, their history, and a biller's hold, release
and corrections. A PMPM claim (made when a contract-month that bills by claim is closed) bills
a member-month, not a session: its reads carry `pmpm_period` and `pmpm_run_id` and a null
`session_id`."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from litestar import Controller, Request, get, patch, post
from litestar.params import JSONBody, PathParameter, QueryParameter

from services.billing import claims_manage
from services.billing.claim_repository import ClaimFilter
from services.billing.schemas import (
    AuditTrailRead,
    ClaimAction,
    ClaimPage,
    ClaimPatch,
    ClaimRead,
)
from shared.errors import FieldProblem, RuleViolation
from shared.web import principal_of, request_id_of, runtime_of

ClaimId = Annotated[str, PathParameter(description="claim id (uuid)")]


class ClaimController(Controller):
    path = "/claims"
    tags = ["claims"]

    @get(
        "/",
        opt={"policy": "claims.read"},
        summary="List claims, newest first (keyset pagination)",
    )
    async def list_claims(
        self,
        request: Request[Any, Any, Any],
        status: Annotated[
            list[str] | None,
            QueryParameter(description="claim status; repeat for several"),
        ] = None,
        payer: Annotated[str | None, QueryParameter(description="payer id (uuid)")] = None,
        patient: Annotated[str | None, QueryParameter(description="patient_ref")] = None,
        dos_from: Annotated[date | None, QueryParameter(description="DOS on or after")] = None,
        dos_to: Annotated[date | None, QueryParameter(description="DOS on or before")] = None,
        created_from: Annotated[
            datetime | None, QueryParameter(description="created at or after (UTC)")
        ] = None,
        created_to: Annotated[
            datetime | None, QueryParameter(description="created before (UTC)")
        ] = None,
        after: Annotated[
            str | None, QueryParameter(description="next_cursor of the previous page")
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    ) -> ClaimPage:
        for name, value in (("created_from", created_from), ("created_to", created_to)):
            if value is not None and value.tzinfo is None:
                raise RuleViolation(
                    f"{name} needs a time zone",
                    code="invalid_query",
                    errors=(FieldProblem(name, "give a UTC offset, e.g. Z", "invalid"),),
                )
        f = ClaimFilter(
            status=tuple(status or ()),
            payer_id=payer,
            patient_ref=patient,
            dos_from=dos_from,
            dos_to=dos_to,
            created_from=created_from,
            created_to=created_to,
        )
        principal = principal_of(request)
        async with runtime_of(request).read_conn() as conn:
            return await claims_manage.list_claims(conn, principal, f, after=after, limit=limit)

    @get(
        "/{claim_id:str}",
        opt={"policy": "claims.read"},
        summary="A claim with its lines, scrub results, eligibility evidence and rationale",
    )
    async def read(self, request: Request[Any, Any, Any], claim_id: ClaimId) -> ClaimRead:
        principal = principal_of(request)
        async with runtime_of(request).read_conn() as conn:
            return await claims_manage.get_claim(conn, principal, claim_id)

    @get(
        "/{claim_id:str}/history",
        opt={"policy": "claims.read"},
        summary="Every change to the claim and whether its hash chain verifies",
    )
    async def history(self, request: Request[Any, Any, Any], claim_id: ClaimId) -> AuditTrailRead:
        async with runtime_of(request).read_conn() as conn:
            return await claims_manage.claim_history(conn, principal_of(request), claim_id)

    @post(
        "/{claim_id:str}/hold",
        opt={"policy": "claims.write"},
        summary="Hold a claim (it will not be submitted until released)",
        status_code=200,
    )
    async def hold(
        self, request: Request[Any, Any, Any], claim_id: ClaimId, data: JSONBody[ClaimAction]
    ) -> ClaimRead:
        principal = principal_of(request)
        async with runtime_of(request).uow() as uow:
            out = await claims_manage.hold_claim(
                uow.conn, principal, claim_id, data, request_id=request_id_of(request)
            )
            await uow.commit()
        return out

    @post(
        "/{claim_id:str}/release",
        opt={"policy": "claims.write"},
        summary="Release a held claim: scrubbed again, ready when clean (else 422)",
        status_code=200,
    )
    async def release(
        self, request: Request[Any, Any, Any], claim_id: ClaimId, data: JSONBody[ClaimAction]
    ) -> ClaimRead:
        principal = principal_of(request)
        async with runtime_of(request).uow() as uow:
            out = await claims_manage.release_claim(
                uow.conn, principal, claim_id, data, request_id=request_id_of(request)
            )
            await uow.commit()
        return out

    @patch(
        "/{claim_id:str}",
        opt={"policy": "claims.write"},
        summary="Correct a held claim (optimistic locking on `version`); re-scrubbed",
    )
    async def correct(
        self, request: Request[Any, Any, Any], claim_id: ClaimId, data: JSONBody[ClaimPatch]
    ) -> ClaimRead:
        principal = principal_of(request)
        async with runtime_of(request).uow() as uow:
            out = await claims_manage.correct_claim(
                uow.conn, principal, claim_id, data, request_id=request_id_of(request)
            )
            await uow.commit()
        return out
