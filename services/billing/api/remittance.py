"""`/v1/remittances`: 835 upload (raw X12 body), list and detail."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.params import PathParameter, QueryParameter
from sqlalchemy import select

from services.billing.remittance import IngestResult, ingest_835
from services.billing.remittance_schemas import (
    AdjustmentRead,
    ClaimPaymentRead,
    ProviderAdjustmentRead,
    QuarantineReasonRead,
    RemittanceDetail,
    RemittancePage,
    RemittanceRead,
    RemittanceSummary,
)
from services.billing.tables_remittance import (
    claim_payments,
    provider_adjustments,
    remit_adjustments,
    remittance_files,
)
from shared.errors import BadRequest, FieldProblem, NotFound
from shared.money import format_cents
from shared.web import principal_of, request_id_of, runtime_of

MAX_BYTES = 64 * 1024 * 1024


def _money(cents: int | None) -> str | None:
    return format_cents(cents) if cents is not None else None


def _read(r: IngestResult) -> RemittanceRead:
    return RemittanceRead(
        id=r.file_id,
        status=r.status,
        already_received=r.already_received,
        trace_number=r.trace_number,
        payer=r.payer_code,
        payment=_money(r.payment_cents),
        claims=r.claims,
        matched=r.matched,
        unmatched=r.unmatched,
        work_items=r.work_items,
        reasons=[
            QuarantineReasonRead(
                level=x.get("level", ""),
                code=x.get("code", ""),
                field=x.get("field", ""),
                message=x.get("message", ""),
                pcn=x.get("pcn"),
                line=x.get("line"),
            )
            for x in r.reasons
        ],
    )


class RemittanceController(Controller):
    path = "/remittances"
    tags = ["remittances"]

    @post(
        "/",
        opt={"policy": "remittance.ingest"},
        summary="Upload an 835 (the raw X12 file as the request body)",
        description=(
            "Balanced files are posted (201, status posted). A file failing a balance "
            "equation is recorded as quarantined with every reason and nothing applied (201, "
            "status quarantined). The same file again changes nothing (200, "
            "already_received true); a re-issued file with the same payer and TRN is "
            "recorded as a duplicate."
        ),
        status_code=201,
    )
    async def upload(self, request: Request[Any, Any, Any]) -> Response[RemittanceRead]:
        body = await request.body()
        if not body.strip():
            raise BadRequest(
                "send the 835 file as the request body",
                code="empty_body",
                errors=(FieldProblem("body", "empty", "required"),),
            )
        if len(body) > MAX_BYTES:
            raise BadRequest("the file is too large", code="too_large")
        principal = principal_of(request)
        async with runtime_of(request).uow() as uow:
            result = await ingest_835(
                uow.conn,
                tenant_id=principal.tenant_id,
                content=body,
                source="upload",
                source_name=request.headers.get("x-filename"),
                actor=principal.actor,
                request_id=request_id_of(request),
            )
            await uow.commit()
        return Response(
            _read(result),
            status_code=200 if result.already_received else 201,
            headers={"Location": f"/v1/remittances/{result.file_id}"},
        )

    @get("/", opt={"policy": "remittance.read"}, summary="Received 835 files, newest first")
    async def list_files(
        self,
        request: Request[Any, Any, Any],
        status: Annotated[str | None, QueryParameter()] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    ) -> RemittancePage:
        f = remittance_files.c
        stmt = select(remittance_files).where(f.tenant_id == principal_of(request).tenant_id)
        if status:
            stmt = stmt.where(f.status == status)
        async with runtime_of(request).read_conn() as conn:
            rows = list(await conn.execute(stmt.order_by(f.created_at.desc()).limit(limit)))
        return RemittancePage(
            items=[
                RemittanceSummary(
                    id=str(r.id),
                    status=r.status,
                    trace_number=r.trace_number,
                    payer=r.payer_code,
                    payment=_money(r.payment_cents),
                    claims=r.claim_count,
                    matched=r.matched_count,
                    source=r.source,
                    created_at=r.created_at,
                )
                for r in rows
            ]
        )

    @get(
        "/{file_id:str}",
        opt={"policy": "remittance.read"},
        summary="One 835: its payments, adjustments and provider-level adjustments",
    )
    async def read(
        self,
        request: Request[Any, Any, Any],
        file_id: Annotated[str, PathParameter(description="remittance file id (uuid)")],
    ) -> RemittanceDetail:
        import uuid

        tenant = principal_of(request).tenant_id
        try:
            fid = str(uuid.UUID(file_id))
        except ValueError:
            raise NotFound(f"remittance {file_id} not found", code="not_found") from None
        async with runtime_of(request).read_conn() as conn:
            f = (
                await conn.execute(
                    select(remittance_files).where(
                        remittance_files.c.id == fid, remittance_files.c.tenant_id == tenant
                    )
                )
            ).first()
            if f is None:
                raise NotFound(f"remittance {file_id} not found", code="not_found")
            pays = list(
                await conn.execute(
                    select(claim_payments)
                    .where(claim_payments.c.remittance_file_id == fid)
                    .order_by(claim_payments.c.seq)
                )
            )
            adjs = list(
                await conn.execute(
                    select(remit_adjustments)
                    .join(
                        claim_payments, claim_payments.c.id == remit_adjustments.c.claim_payment_id
                    )
                    .where(claim_payments.c.remittance_file_id == fid)
                    .order_by(remit_adjustments.c.id)
                )
            )
            plbs = list(
                await conn.execute(
                    select(provider_adjustments)
                    .where(provider_adjustments.c.remittance_file_id == fid)
                    .order_by(provider_adjustments.c.id)
                )
            )
        by_pay: dict[str, list[AdjustmentRead]] = {}
        for a in adjs:
            by_pay.setdefault(str(a.claim_payment_id), []).append(
                AdjustmentRead(
                    group=a.group_code,
                    carc=a.carc,
                    amount=format_cents(a.amount_cents),
                    kind=a.kind,
                    line=a.line_seq,
                )
            )
        return RemittanceDetail(
            id=str(f.id),
            status=f.status,
            trace_number=f.trace_number,
            payer=f.payer_code,
            payment=_money(f.payment_cents),
            reasons=list(f.quarantine_reasons),
            payments=[
                ClaimPaymentRead(
                    id=str(p.id),
                    claim_id=str(p.claim_id) if p.claim_id else None,
                    patient_control_number=p.patient_control_number,
                    status_code=p.status_code,
                    outcome=p.outcome,
                    charge=format_cents(p.charge_cents),
                    paid=format_cents(p.paid_cents),
                    allowed=format_cents(p.allowed_cents),
                    patient_responsibility=format_cents(p.patient_resp_cents),
                    contractual=format_cents(p.contractual_cents),
                    denied=format_cents(p.denied_cents),
                    payer_icn=p.payer_icn,
                    reverses_payment_id=(
                        str(p.reverses_payment_id) if p.reverses_payment_id else None
                    ),
                    remit_date=p.remit_date,
                    adjustments=by_pay.get(str(p.id), []),
                )
                for p in pays
            ],
            provider_adjustments=[
                ProviderAdjustmentRead(
                    reason_code=b.reason_code,
                    reference=b.reference,
                    amount=format_cents(b.amount_cents),
                    provider_id=b.provider_id,
                    fiscal_period=b.fiscal_period,
                )
                for b in plbs
            ],
        )
