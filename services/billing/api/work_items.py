"""`/v1/work-items`: the biller queue (list by priority, take next, update, notes, actions)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, patch, post
from litestar.params import JSONBody, PathParameter, QueryParameter

from services.billing import remittance_actions as actions
from services.billing import work_queue
from services.billing.api.ports import coverage_of
from services.billing.remittance_schemas import (
    ActionResult,
    BillOtherPayer,
    CorrectResubmit,
    NoteCreate,
    SimpleAction,
    WorkItemPage,
    WorkItemRead,
    WorkItemUpdate,
    WriteOffAction,
)
from shared.web import principal_of, request_id_of, runtime_of

ItemId = Annotated[str, PathParameter(description="work item id (uuid)")]


class WorkItemController(Controller):
    path = "/work-items"
    tags = ["work items"]

    @get("/", opt={"policy": "work_items.read"}, summary="Work items, highest priority first")
    async def list_items(
        self,
        request: Request[Any, Any, Any],
        status: Annotated[
            list[str] | None, QueryParameter(description="default: open, in_progress, blocked")
        ] = None,
        category: Annotated[list[str] | None, QueryParameter()] = None,
        assignee: Annotated[str | None, QueryParameter()] = None,
        payer: Annotated[str | None, QueryParameter(description="payer id (uuid)")] = None,
        claim: Annotated[str | None, QueryParameter(description="claim id (uuid)")] = None,
        route: Annotated[str | None, QueryParameter()] = None,
        after: Annotated[str | None, QueryParameter()] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    ) -> WorkItemPage:
        f = work_queue.ItemFilter(
            status=tuple(status) if status else ("open", "in_progress", "blocked"),
            category=tuple(category or ()),
            assignee=assignee,
            payer_id=payer,
            claim_id=claim,
            route=route,
        )
        async with runtime_of(request).read_conn() as conn:
            page: WorkItemPage = await work_queue.list_items(
                conn, principal_of(request), f, after=after, limit=limit
            )
            return page

    @post(
        "/next",
        opt={"policy": "work_items.work"},
        summary="Take the highest-priority open item (assigned to you; 204 when none)",
        status_code=200,
    )
    async def take_next(
        self,
        request: Request[Any, Any, Any],
        route: Annotated[str | None, QueryParameter()] = None,
        category: Annotated[str | None, QueryParameter()] = None,
    ) -> Response[WorkItemRead | None]:
        item = await work_queue.take_next_fast(
            runtime_of(request).db,
            principal_of(request),
            route=route,
            category=category,
            request_id=request_id_of(request),
        )
        if item is None:
            return Response(None, status_code=204)
        return Response(item, status_code=200)

    @get("/{item_id:str}", opt={"policy": "work_items.read"}, summary="A work item with notes")
    async def read(self, request: Request[Any, Any, Any], item_id: ItemId) -> WorkItemRead:
        async with runtime_of(request).read_conn() as conn:
            item: WorkItemRead = await work_queue.get_item(conn, principal_of(request), item_id)
            return item

    @patch(
        "/{item_id:str}",
        opt={"policy": "work_items.work"},
        summary="Change status (open, in_progress, blocked) or assignee; `version` required",
    )
    async def update(
        self, request: Request[Any, Any, Any], item_id: ItemId, data: JSONBody[WorkItemUpdate]
    ) -> WorkItemRead:
        async with runtime_of(request).uow() as uow:
            out: WorkItemRead = await work_queue.update_item(
                uow.conn, principal_of(request), item_id, data, request_id=request_id_of(request)
            )
            await uow.commit()
        return out

    @post(
        "/{item_id:str}/notes",
        opt={"policy": "work_items.work"},
        summary="Add a note",
        status_code=201,
    )
    async def note(
        self, request: Request[Any, Any, Any], item_id: ItemId, data: JSONBody[NoteCreate]
    ) -> WorkItemRead:
        async with runtime_of(request).uow() as uow:
            out: WorkItemRead = await work_queue.add_note(
                uow.conn,
                principal_of(request),
                item_id,
                data.body,
                request_id=request_id_of(request),
            )
            await uow.commit()
        return out

    async def _run(
        self, request: Request[Any, Any, Any], fn: Any, *args: Any, **kwargs: Any
    ) -> ActionResult:
        async with runtime_of(request).uow() as uow:
            out: ActionResult = await fn(
                uow.conn, principal_of(request), *args, request_id=request_id_of(request), **kwargs
            )
            await uow.commit()
        return out

    @post(
        "/{item_id:str}/actions/correct-resubmit",
        opt={"policy": "work_items.work"},
        summary="Correct and resubmit: replacement claim (frequency 7, REF*F8 = payer ICN)",
        status_code=200,
    )
    async def correct_resubmit(
        self, request: Request[Any, Any, Any], item_id: ItemId, data: JSONBody[CorrectResubmit]
    ) -> ActionResult:
        return await self._run(request, actions.correct_resubmit, item_id, data)

    @post(
        "/{item_id:str}/actions/void",
        opt={"policy": "work_items.work"},
        summary="Void the claim (frequency 8 with the payer ICN)",
        status_code=200,
    )
    async def void(
        self, request: Request[Any, Any, Any], item_id: ItemId, data: JSONBody[SimpleAction]
    ) -> ActionResult:
        return await self._run(request, actions.void, item_id, data)

    @post(
        "/{item_id:str}/actions/appeal",
        opt={"policy": "work_items.work"},
        summary="Appeal: recorded with its deadline and a letter draft",
        status_code=200,
    )
    async def appeal(
        self, request: Request[Any, Any, Any], item_id: ItemId, data: JSONBody[SimpleAction]
    ) -> ActionResult:
        return await self._run(request, actions.appeal, item_id, data)

    @post(
        "/{item_id:str}/actions/write-off",
        opt={"policy": "work_items.work"},
        summary="Write off with a reason code (contractual, timely_filing, no_authorization, other)",
        status_code=200,
    )
    async def write_off(
        self, request: Request[Any, Any, Any], item_id: ItemId, data: JSONBody[WriteOffAction]
    ) -> ActionResult:
        return await self._run(request, actions.write_off, item_id, data)

    @post(
        "/{item_id:str}/actions/bill-other-payer",
        opt={"policy": "work_items.work"},
        summary="Bill another payer: close the claim, create that payer's original claim",
        description=(
            "`payer_id` is a payer in coverage. Coverage must find the patient eligible with "
            "that payer on the date of service (422 otherwise, nothing changes). The session is "
            "coded, priced and scrubbed under that payer's contract into a new original claim "
            "(`new_claim_id`, `ready` or `on_hold`); the denied claim is closed."
        ),
        status_code=200,
    )
    async def bill_other_payer(
        self, request: Request[Any, Any, Any], item_id: ItemId, data: JSONBody[BillOtherPayer]
    ) -> ActionResult:
        return await self._run(
            request, actions.bill_other_payer, item_id, data, coverage=coverage_of(request)
        )

    @post(
        "/{item_id:str}/actions/bill-patient",
        opt={"policy": "work_items.work"},
        summary="Close the claim to bill the patient (not for CO denials)",
        status_code=200,
    )
    async def bill_patient(
        self, request: Request[Any, Any, Any], item_id: ItemId, data: JSONBody[SimpleAction]
    ) -> ActionResult:
        return await self._run(request, actions.bill_patient, item_id, data)

    @post(
        "/{item_id:str}/actions/reopen",
        opt={"policy": "work_items.work"},
        summary="Reopen a resolved item",
        status_code=200,
    )
    async def reopen(
        self, request: Request[Any, Any, Any], item_id: ItemId, data: JSONBody[SimpleAction]
    ) -> ActionResult:
        return await self._run(request, actions.reopen, item_id, data)
