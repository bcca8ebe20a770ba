"""`/v1/submissions/run`, `/v1/batches` and `/v1/acknowledgments`: send ready claims now,
read what was sent with the acknowledgments that answered it, upload a 999/277CA."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.params import PathParameter, QueryParameter
from msgspec import Struct

from services.billing import acknowledgments, submission, submission_read
from services.billing.submission import SubmissionConfig, Transports
from services.billing.submission_read import BatchPage, BatchRead, RunRead
from shared.errors import Conflict, FieldProblem, NotFound, RuleViolation
from shared.web import Runtime, principal_of, request_id_of, runtime_of

BatchId = Annotated[str, PathParameter(description="batch id (uuid)")]


def submission_setup(rt: Runtime) -> tuple[SubmissionConfig, Transports]:
    """Config and transports from the runtime (tests put overrides in ``rt.extras``)."""
    config = rt.extras.get("submission_config") or SubmissionConfig.from_settings(rt.settings)
    return config, Transports(config, rt.extras.get("transports"))


class RetryCommand(Struct, forbid_unknown_fields=True):
    reason: str


class AckUploadRead(Struct):
    kind: str
    status: str  # applied | duplicate
    accepted: int
    rejected: int
    received: int
    acknowledgment_ids: list[str]


class SubmissionController(Controller):
    path = "/submissions"
    tags = ["submission"]

    @post(
        "/run",
        opt={"policy": "submissions.run"},
        summary="Batch and send this tenant's ready claims now (after re-sending any batch "
        "recorded but not confirmed)",
        status_code=200,
    )
    async def run(self, request: Request[Any, Any, Any]) -> RunRead:
        rt = runtime_of(request)
        principal = principal_of(request)
        config, transports = submission_setup(rt)
        try:
            result = await submission.run_submission(
                rt.db, transports, config, actor=principal.actor, tenant_id=principal.tenant_id
            )
        finally:
            await transports.aclose()
        return submission_read.run_read(result)


class BatchController(Controller):
    path = "/batches"
    tags = ["submission"]

    @get(
        "/",
        opt={"policy": "batches.read"},
        summary="837P batches, newest first (keyset pagination), with claims and acknowledgments",
    )
    async def list_batches(
        self,
        request: Request[Any, Any, Any],
        status: Annotated[
            Literal["recorded", "sent", "failed"] | None, QueryParameter(description="status")
        ] = None,
        after: Annotated[
            str | None, QueryParameter(description="next_cursor of the previous page")
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    ) -> BatchPage:
        async with runtime_of(request).read_conn() as conn:
            return await submission_read.list_batches(
                conn, principal_of(request).tenant_id, status=status, after=after, limit=limit
            )

    @get(
        "/{batch_id:str}",
        opt={"policy": "batches.read"},
        summary="One batch with its claims (and their current status) and acknowledgments",
    )
    async def read(self, request: Request[Any, Any, Any], batch_id: BatchId) -> BatchRead:
        async with runtime_of(request).read_conn() as conn:
            return await submission_read.get_batch(conn, principal_of(request).tenant_id, batch_id)

    @get(
        "/{batch_id:str}/file",
        opt={"policy": "batches.read"},
        summary="The exact 837P bytes that were sent",
        media_type="application/edi-x12",
    )
    async def file(self, request: Request[Any, Any, Any], batch_id: BatchId) -> Response[bytes]:
        async with runtime_of(request).read_conn() as conn:
            name, content = await submission_read.batch_file(
                conn, principal_of(request).tenant_id, batch_id
            )
        return Response(
            content,
            media_type="application/edi-x12",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @post(
        "/{batch_id:str}/retry",
        opt={"policy": "submissions.run"},
        summary="Send a failed batch again (same file name and bytes)",
        status_code=200,
    )
    async def retry(
        self, request: Request[Any, Any, Any], batch_id: BatchId, data: RetryCommand
    ) -> BatchRead:
        rt = runtime_of(request)
        principal = principal_of(request)
        if not data.reason.strip():
            raise RuleViolation(
                "a retry needs a reason",
                code="invalid_request",
                errors=(FieldProblem("reason", "say why the batch can be sent now", "empty"),),
            )
        async with rt.read_conn() as conn:
            current = await submission_read.get_batch(conn, principal.tenant_id, batch_id)
        async with rt.uow() as uow:
            ok = await submission.retry_batch(
                uow.conn,
                principal.tenant_id,
                current.batch.id,
                actor=principal.actor,
                reason=data.reason.strip(),
                request_id=request_id_of(request),
            )
            await uow.commit()
        if not ok:
            raise Conflict(
                f"only a failed batch can be retried; this one is {current.batch.status}",
                code="invalid_transition",
            )
        config, transports = submission_setup(rt)
        try:
            await submission.send_batch(
                rt.db, transports, config, current.batch.id, actor=principal.actor
            )
        finally:
            await transports.aclose()
        async with rt.read_conn() as conn:
            return await submission_read.get_batch(conn, principal.tenant_id, batch_id)


class AcknowledgmentController(Controller):
    path = "/acknowledgments"
    tags = ["submission"]

    @post(
        "/",
        opt={"policy": "acks.ingest"},
        summary="Upload a 999 or 277CA (raw X12 body); 422 with the reasons when it cannot "
        "be used (nothing is applied); the same file twice changes nothing",
        status_code=200,
    )
    async def upload(
        self,
        request: Request[Any, Any, Any],
        name: Annotated[
            str | None, QueryParameter(description="file name to record", max_length=200)
        ] = None,
    ) -> AckUploadRead:
        rt = runtime_of(request)
        principal = principal_of(request)
        body = await request.body()
        if not body.strip():
            raise RuleViolation(
                "the request body must be a 999 or 277CA file",
                code="invalid_acknowledgment",
                errors=(FieldProblem("body", "empty", "empty"),),
            )
        result = await acknowledgments.ingest_file(
            rt.db,
            file_name=name or "upload.x12",
            content=body,
            source="upload",
            actor=principal.actor,
            tenant_id=principal.tenant_id,
        )
        if result.status == "quarantined":
            if any("no batch of ours" in r or "names no claim" in r for r in result.reasons):
                raise NotFound(
                    "the acknowledgment answers no batch or claim of this tenant",
                    code="acknowledgment_unmatched",
                    errors=tuple(FieldProblem("body", r, "unmatched") for r in result.reasons),
                )
            raise RuleViolation(
                "the file is not a usable 999 or 277CA; nothing was applied",
                code="invalid_acknowledgment",
                errors=tuple(FieldProblem("body", r, "invalid") for r in result.reasons),
            )
        return AckUploadRead(
            kind=result.kind,
            status=result.status,
            accepted=result.accepted,
            rejected=result.rejected,
            received=result.received,
            acknowledgment_ids=list(result.ack_ids),
        )


# Mounted under /v1 by services.billing.api.billing_router.
SUBMISSION_CONTROLLERS = [SubmissionController, BatchController, AcknowledgmentController]
