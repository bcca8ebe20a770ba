"""`/v1/sessions`: documented MTM sessions in; their processing state and history out."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.params import JSONBody, PathParameter

from services.billing import intake
from services.billing.schemas import SessionCreate, SessionRead
from shared.web import principal_of, request_id_of, runtime_of


class SessionController(Controller):
    path = "/sessions"
    tags = ["sessions"]

    @post(
        "/",
        opt={"policy": "sessions.create"},
        summary="Record a documented MTM session",
        description=(
            "Idempotent on (tenant, external_id): the same body returns the first result "
            "(200), a new session answers 201, a different body under the same id is 409. "
            "The claim is created asynchronously by the worker."
        ),
        status_code=201,
    )
    async def create(
        self, request: Request[Any, Any, Any], data: JSONBody[SessionCreate]
    ) -> Response[dict[str, str]]:
        principal = principal_of(request)
        rt = runtime_of(request)
        rec = await intake.record_session(
            rt.db, rt.queue, principal, data, request_id=request_id_of(request)
        )
        location = f"/v1/sessions/{rec.session_id}"
        return Response(
            {"id": rec.session_id, "external_id": data.external_id, "status_url": location},
            status_code=201 if rec.created else 200,
            headers={
                "Location": location,
                "Idempotent-Replayed": "false" if rec.created else "true",
            },
        )

    @get(
        "/{session_id:str}",
        opt={"policy": "sessions.read"},
        summary="A session, its state and history",
    )
    async def read(
        self,
        request: Request[Any, Any, Any],
        session_id: Annotated[
            str, PathParameter(description="session id (uuid) returned on create")
        ],
    ) -> SessionRead:
        async with runtime_of(request).uow() as uow:
            return await intake.get_session(uow.conn, principal_of(request), session_id)
