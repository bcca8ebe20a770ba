"""Coverage HTTP controllers: payers, contracts, patients and spans, rosters, eligibility.
Thin: parse, call one use case, map the result."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, Router, get, patch, post
from litestar.params import JSONBody, PathParameter, QueryParameter

from services.coverage import service
from services.coverage.rosters import importer
from services.coverage.schemas import (
    ContractCreate,
    ContractPage,
    ContractRead,
    ContractVersionCreate,
    EligibilityCheck,
    EligibilityRead,
    ImportRead,
    PatientCreate,
    PatientPage,
    PatientRead,
    PayerCreate,
    PayerPage,
    PayerRead,
    PayerUpdate,
    SpanCreate,
    SpanRead,
    SpansRead,
)
from shared.web import principal_of, request_id_of, runtime_of

Id = Annotated[str, PathParameter(description="the resource id returned on create")]
# A 100,000-member roster is about 12 MB of CSV; Litestar's default limit is 10 MB.
_MAX_ROSTER_BYTES = 128 * 1024 * 1024

After = Annotated[
    str | None, QueryParameter(name="after", description="`next` of the previous page")
]
PageLimit = Annotated[int, QueryParameter(name="limit", ge=1, le=500)]


def _history(request: Request[Any, Any, Any]) -> service.PriorServiceSource:
    """Billing's history port: the runtime may carry one (an HTTP adapter when deployed
    apart); in one process it is billing's in-process adapter."""
    rt = runtime_of(request)
    port = rt.extras.get("billing_history")
    if port is None:
        from services.billing.adapters.history_inprocess import SessionHistory

        port = rt.extras["billing_history"] = SessionHistory()
    result: service.PriorServiceSource = port
    return result


class PayerController(Controller):
    path = "/payers"
    tags = ["payers"]

    @post("/", opt={"policy": "payers.write"}, summary="Create a payer", status_code=201)
    async def create(
        self, request: Request[Any, Any, Any], data: JSONBody[PayerCreate]
    ) -> PayerRead:
        async with runtime_of(request).uow() as uow:
            return await service.create_payer(
                uow, principal_of(request), data, request_id=request_id_of(request)
            )

    @get("/", opt={"policy": "payers.read"}, summary="List payers (keyset pages)")
    async def list_(
        self, request: Request[Any, Any, Any], after: After = None, limit: PageLimit = 100
    ) -> PayerPage:
        async with runtime_of(request).read_conn() as conn:
            return await service.list_payers(conn, principal_of(request), after, limit)

    @get("/{payer_id:str}", opt={"policy": "payers.read"}, summary="A payer")
    async def read(self, request: Request[Any, Any, Any], payer_id: Id) -> PayerRead:
        async with runtime_of(request).read_conn() as conn:
            return await service.get_payer(conn, principal_of(request), payer_id)

    @patch("/{payer_id:str}", opt={"policy": "payers.write"}, summary="Update a payer")
    async def update(
        self, request: Request[Any, Any, Any], payer_id: Id, data: JSONBody[PayerUpdate]
    ) -> PayerRead:
        async with runtime_of(request).uow() as uow:
            return await service.update_payer(
                uow, principal_of(request), payer_id, data, request_id=request_id_of(request)
            )


class ContractController(Controller):
    path = "/contracts"
    tags = ["contracts"]

    @post(
        "/",
        opt={"policy": "contracts.write"},
        summary="Create a contract with its first version",
        description="Terms are validated on write: every problem comes back as a 422 with "
        "its field path (e.g. terms.fee_schedule[2].charge).",
        status_code=201,
    )
    async def create(
        self, request: Request[Any, Any, Any], data: JSONBody[ContractCreate]
    ) -> ContractRead:
        async with runtime_of(request).uow() as uow:
            return await service.create_contract(
                uow, principal_of(request), data, request_id=request_id_of(request)
            )

    @get("/", opt={"policy": "contracts.read"}, summary="List contracts (keyset pages)")
    async def list_(
        self,
        request: Request[Any, Any, Any],
        payer_id: Annotated[str | None, QueryParameter(name="payer_id")] = None,
        after: After = None,
        limit: PageLimit = 100,
    ) -> ContractPage:
        async with runtime_of(request).read_conn() as conn:
            return await service.list_contracts(conn, principal_of(request), payer_id, after, limit)

    @get(
        "/{contract_id:str}",
        opt={"policy": "contracts.read"},
        summary="A contract and its versions",
    )
    async def read(self, request: Request[Any, Any, Any], contract_id: Id) -> ContractRead:
        async with runtime_of(request).read_conn() as conn:
            return await service.get_contract(conn, principal_of(request), contract_id)

    @post(
        "/{contract_id:str}/versions",
        opt={"policy": "contracts.write"},
        summary="Add a contract version (the version in force on a DOS is the one applied)",
        status_code=201,
    )
    async def add_version(
        self,
        request: Request[Any, Any, Any],
        contract_id: Id,
        data: JSONBody[ContractVersionCreate],
    ) -> ContractRead:
        async with runtime_of(request).uow() as uow:
            return await service.add_contract_version(
                uow, principal_of(request), contract_id, data, request_id=request_id_of(request)
            )


class PatientController(Controller):
    path = "/patients"
    tags = ["patients"]

    @post("/", opt={"policy": "patients.write"}, summary="Create a patient", status_code=201)
    async def create(
        self, request: Request[Any, Any, Any], data: JSONBody[PatientCreate]
    ) -> PatientRead:
        async with runtime_of(request).uow() as uow:
            return await service.create_patient(
                uow, principal_of(request), data, request_id=request_id_of(request)
            )

    @get("/", opt={"policy": "patients.read"}, summary="List patients (keyset pages)")
    async def list_(
        self,
        request: Request[Any, Any, Any],
        patient_ref: Annotated[str | None, QueryParameter(name="patient_ref")] = None,
        after: After = None,
        limit: PageLimit = 100,
    ) -> PatientPage:
        async with runtime_of(request).read_conn() as conn:
            return await service.list_patients(
                conn, principal_of(request), after, limit, patient_ref
            )

    @get("/{patient_id:str}", opt={"policy": "patients.read"}, summary="A patient")
    async def read(self, request: Request[Any, Any, Any], patient_id: Id) -> PatientRead:
        async with runtime_of(request).read_conn() as conn:
            return await service.get_patient(conn, principal_of(request), patient_id)

    @get(
        "/{patient_id:str}/spans",
        opt={"policy": "patients.read"},
        summary="Coverage spans as known at a time, with their full version history",
    )
    async def spans(
        self,
        request: Request[Any, Any, Any],
        patient_id: Id,
        as_known_at: Annotated[
            datetime | None,
            QueryParameter(name="as_known_at", description="what we knew then (UTC timestamp)"),
        ] = None,
    ) -> SpansRead:
        async with runtime_of(request).read_conn() as conn:
            return await service.spans_of(conn, principal_of(request), patient_id, as_known_at)

    @post(
        "/{patient_id:str}/spans",
        opt={"policy": "patients.write"},
        summary="Add a manual span, or a new version of one (e.g. a retro-termination)",
        status_code=201,
    )
    async def add_span(
        self, request: Request[Any, Any, Any], patient_id: Id, data: JSONBody[SpanCreate]
    ) -> SpanRead:
        async with runtime_of(request).uow() as uow:
            return await service.add_span(
                uow, principal_of(request), patient_id, data, request_id=request_id_of(request)
            )


class RosterController(Controller):
    path = "/rosters"
    tags = ["rosters"]

    @post(
        "/{fmt:str}",
        opt={"policy": "rosters.import"},
        summary="Import a roster file: csv (the payer's column map), 834 or 271",
        description=(
            "The body is the file itself. The whole file is applied in one transaction or "
            "not at all: every bad row is reported (422) as `rows[<n>].<field>`, n being the "
            "CSV row number (header = 1) or the member's position in an 834/271. The same "
            "file imported twice changes nothing (`replayed: true`)."
        ),
        status_code=201,
        request_max_body_size=_MAX_ROSTER_BYTES,
    )
    async def upload(
        self,
        request: Request[Any, Any, Any],
        fmt: Annotated[str, PathParameter(description="csv, 834 or 271")],
        payer_id: Annotated[str, QueryParameter(name="payer_id")],
        contract_id: Annotated[str, QueryParameter(name="contract_id")],
    ) -> Response[ImportRead]:
        data = await request.body()
        async with runtime_of(request).uow() as uow:
            result = await importer.import_file(
                uow,
                principal_of(request),
                fmt=fmt,
                payer_id=payer_id,
                contract_id=contract_id,
                content=data,
                request_id=request_id_of(request),
            )
        return Response(result, status_code=200 if result.replayed else 201)


@post(
    "/eligibility/check",
    opt={"policy": "eligibility.check"},
    tags=["eligibility"],
    summary="Is the patient eligible for this service on this date of service?",
    description=(
        "Answers eligible or not with machine-readable reasons (NO_COVERAGE_ON_DOS, "
        "OUTSIDE_CONTRACT_WINDOW, OPTED_OUT, EXCLUDED_POPULATION, MODALITY_NOT_COVERED, "
        "FREQUENCY_LIMIT_REACHED, UNKNOWN_CONTRACT), the span and contract version chosen "
        "(primary first), the window the date falls in and usage against limits. "
        "`as_known_at` answers from what was recorded by then."
    ),
    status_code=200,
)
async def check_eligibility(
    request: Request[Any, Any, Any], data: JSONBody[EligibilityCheck]
) -> EligibilityRead:
    rt = runtime_of(request)
    # Read-only: a raw pooled connection in autocommit, without SQLAlchemy's per-request
    # connect/begin/rollback (about a third of the request's CPU).
    async with rt.db.raw() as conn:
        return await service.check(conn, principal_of(request), data, _history(request))


def coverage_router() -> Router:
    return Router(
        path="/v1",
        route_handlers=[
            PayerController,
            ContractController,
            PatientController,
            RosterController,
            check_eligibility,
        ],
    )
