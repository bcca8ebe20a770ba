"""`/v1/pmpm`: monthly PMPM runs (create, read with paginated lines, CSV, close, work items)
and payment imports (payer CSV, 835, PLB CT rows already posted by remittance)."""

from __future__ import annotations

import base64
import csv
import io
from datetime import date, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.params import JSONBody, PathParameter, QueryParameter
from msgspec import Meta, Struct
from sqlalchemy import Text, literal, select, tuple_

from services.billing import pmpm, pmpm_items, pmpm_payments
from services.billing.domain.pmpm import Classification, parse_month
from services.billing.pmpm_tasks import OPEN_ITEMS_JOB, open_items_job_id
from services.billing.tables_pmpm import line_order, pmpm_lines, pmpm_runs
from shared.errors import FieldProblem, RuleViolation
from shared.money import format_cents
from shared.web import principal_of, request_id_of, runtime_of

RunId = Annotated[str, PathParameter(description="PMPM run id (uuid)")]


class RunCreate(Struct, frozen=True, forbid_unknown_fields=True):
    contract_id: str
    #: YYYY-MM
    month: str
    #: Lock the month on this run right away.
    close: bool = False


class CsvPayments(Struct, frozen=True, forbid_unknown_fields=True):
    contract_id: str
    content: Annotated[str, Meta(max_length=50_000_000)]
    #: Our field -> the payer's header (member_id, month, amount, tier, paid_date, reference).
    columns: dict[str, str] | None = None
    source_name: str | None = None


class X12Payments(Struct, frozen=True, forbid_unknown_fields=True):
    """An X12 payment file (835 or 820) for one contract, as text."""

    contract_id: str
    content: Annotated[str, Meta(max_length=50_000_000)]
    source_name: str | None = None


class PostedPayments(Struct, frozen=True, forbid_unknown_fields=True):
    contract_id: str
    remittance_file_id: str


class ImportRead(Struct):
    import_id: str
    source: str
    rows: int
    total: str
    duplicate: bool


class Totals(Struct):
    lines: int
    members_on_roster: int
    expected: str
    received: str
    variance: str
    variance_lines: int
    expected_adjustment: str
    received_adjustment: str
    changed_lines: int
    by_classification: dict[str, dict[str, Any]]


class RunRead(Struct):
    id: str
    contract_id: str
    payer_id: str
    contract_version: int
    month: str
    run_no: int
    kind: str
    base_run_id: str | None
    status: str
    payment_mode: str
    proration: str
    as_of: datetime
    lines_hash: str | None
    created_by: str
    created_at: datetime
    closed_at: datetime | None
    closed_by: str | None
    summary: Totals


class LineRead(Struct):
    member_id: str
    patient_ref: str | None
    on_roster: bool
    tier: str | None
    rate: str | None
    enrolled_days: int
    days_in_month: int
    expected: str
    recorded_late: bool
    minutes: int
    interventions: int
    activity_met: bool | None
    monthly_code: str | None
    addon_code: str | None
    addon_units: int
    charge: str
    received: str
    payment_count: int
    recouped: str
    paid_tier: str | None
    classification: str
    variance: str
    prior_classification: str | None
    prior_expected: str | None
    prior_received: str | None
    change: str | None
    work_item_id: str | None


class RunPage(Struct):
    run: RunRead
    lines: list[LineRead]
    next_cursor: str | None


class RunList(Struct):
    runs: list[RunRead]


class WorkItemsRead(Struct):
    run_id: str
    lines_with_items: int


def _opt_cents(v: int | None) -> str | None:
    return None if v is None else format_cents(v)


def _run_read(r: Any) -> RunRead:
    s = dict(r.summary or {})
    by = {
        name: {
            "lines": agg.get("lines", 0),
            "expected": format_cents(int(agg.get("expected_cents", 0))),
            "received": format_cents(int(agg.get("received_cents", 0))),
            "variance": format_cents(int(agg.get("variance_cents", 0))),
        }
        for name, agg in sorted((s.get("by_classification") or {}).items())
    }
    return RunRead(
        id=str(r.id),
        contract_id=str(r.contract_id),
        payer_id=str(r.payer_id),
        contract_version=r.contract_version,
        month=f"{r.period:%Y-%m}",
        run_no=r.run_no,
        kind=r.kind,
        base_run_id=str(r.base_run_id) if r.base_run_id else None,
        status=r.status,
        payment_mode=r.payment_mode,
        proration=r.proration,
        as_of=r.as_of,
        lines_hash=r.lines_hash,
        created_by=r.actor,
        created_at=r.created_at,
        closed_at=r.closed_at,
        closed_by=r.closed_by,
        summary=Totals(
            lines=int(s.get("lines", 0)),
            members_on_roster=int(s.get("members_on_roster", 0)),
            expected=format_cents(int(s.get("expected_cents", 0))),
            received=format_cents(int(s.get("received_cents", 0))),
            variance=format_cents(int(s.get("variance_cents", 0))),
            variance_lines=int(s.get("variance_lines", 0)),
            expected_adjustment=format_cents(int(s.get("expected_adjustment_cents", 0))),
            received_adjustment=format_cents(int(s.get("received_adjustment_cents", 0))),
            changed_lines=int(s.get("changed_lines", 0)),
            by_classification=by,
        ),
    )


def _line_read(r: Any) -> LineRead:
    return LineRead(
        member_id=r.member_id,
        patient_ref=r.patient_ref,
        on_roster=r.on_roster,
        tier=r.tier,
        rate=_opt_cents(r.rate_cents),
        enrolled_days=r.enrolled_days,
        days_in_month=r.days_in_month,
        expected=format_cents(r.expected_cents),
        recorded_late=r.recorded_late,
        minutes=r.minutes,
        interventions=r.interventions,
        activity_met=r.activity_met,
        monthly_code=r.monthly_code,
        addon_code=r.addon_code,
        addon_units=r.addon_units,
        charge=format_cents(r.charge_cents),
        received=format_cents(r.received_cents),
        payment_count=r.payment_count,
        recouped=format_cents(r.recouped_cents),
        paid_tier=r.paid_tier,
        classification=r.classification,
        variance=format_cents(r.variance_cents),
        prior_classification=r.prior_classification,
        prior_expected=_opt_cents(r.prior_expected_cents),
        prior_received=_opt_cents(r.prior_received_cents),
        change=r.change,
        work_item_id=str(r.work_item_id) if r.work_item_id else None,
    )


def _encode_cursor(r: Any) -> str:
    """Keyset cursor: the last line's (member id, patient id), opaque to clients."""
    raw = msgspec.json.encode([r.member_id, str(r.patient_id) if r.patient_id else ""])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        member, patient = msgspec.json.decode(raw, type=tuple[str, str])
    except (ValueError, msgspec.DecodeError, msgspec.ValidationError):
        raise RuleViolation(
            "after must be a cursor from next_cursor", code="invalid_cursor"
        ) from None
    return member, patient


def _month(text: str, field: str = "month") -> date:
    try:
        return parse_month(text)
    except ValueError as exc:
        raise RuleViolation(
            str(exc), code="invalid_month", errors=(FieldProblem(field, str(exc), "invalid"),)
        ) from None


def _coverage(request: Request[Any, Any, Any]) -> pmpm.PmpmCoveragePort:
    rt = runtime_of(request)
    port: pmpm.PmpmCoveragePort | None = rt.extras.get("pmpm_coverage_port")
    if port is None:
        port = rt.extras["pmpm_coverage_port"] = pmpm.default_pmpm_coverage()
    return port


def _classes(values: list[str] | None) -> list[str]:
    known = {c.value for c in Classification}
    out = list(values or ())
    bad = [v for v in out if v not in known]
    if bad:
        raise RuleViolation(
            f"unknown classification(s): {', '.join(bad)}",
            code="invalid_query",
            errors=tuple(FieldProblem("classification", v, "unknown") for v in bad),
        )
    return out


class PmpmController(Controller):
    path = "/pmpm"
    tags = ["pmpm"]

    @post(
        "/runs",
        opt={"policy": "pmpm.run"},
        summary="Run (or re-run) a contract-month: ledger, activity, payments, classification",
        description=(
            "Creates a new versioned run; earlier runs of the month are kept. A closed month "
            "can be re-run only inside the contract's retro window: the new run is an "
            "adjustment run whose lines show the closed run's figures next to the new ones. "
            "Variance work items are opened by a job after the commit."
        ),
        status_code=201,
    )
    async def create_run(
        self, request: Request[Any, Any, Any], data: JSONBody[RunCreate]
    ) -> RunRead:
        principal = principal_of(request)
        period = _month(data.month)
        coverage = _coverage(request)
        async with runtime_of(request).uow() as uow:
            (ref,) = await pmpm.create_runs(
                uow.conn,
                tenant_id=principal.tenant_id,
                contract_id=data.contract_id,
                periods=[period],
                actor=principal.actor,
                coverage=coverage,
                request_id=request_id_of(request),
            )
            await pmpm.bill_late_member_months(
                uow.conn,
                tenant_id=principal.tenant_id,
                refs=[ref],
                actor=principal.actor,
                request_id=request_id_of(request),
            )
            if data.close:
                await pmpm.close_run(
                    uow.conn,
                    tenant_id=principal.tenant_id,
                    run_id=ref.run_id,
                    actor=principal.actor,
                    request_id=request_id_of(request),
                )
            await uow.add_job(
                principal.tenant_id,
                OPEN_ITEMS_JOB,
                open_items_job_id(ref.run_id),
                {"run_id": ref.run_id, "tenant_id": principal.tenant_id},
            )
            row = await pmpm.get_run_row(uow.conn, principal.tenant_id, ref.run_id)
            await uow.commit()
        return _run_read(row)

    @get("/runs", opt={"policy": "pmpm.read"}, summary="Runs of a contract, newest first")
    async def list_runs(
        self,
        request: Request[Any, Any, Any],
        contract: Annotated[str | None, QueryParameter(description="contract id")] = None,
        month: Annotated[str | None, QueryParameter(description="YYYY-MM")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
    ) -> RunList:
        principal = principal_of(request)
        q = select(pmpm_runs).where(pmpm_runs.c.tenant_id == principal.tenant_id)
        if contract is not None:
            cid = pmpm._uuid(contract)
            if cid is None:
                return RunList([])
            q = q.where(pmpm_runs.c.contract_id == cid)
        if month is not None:
            q = q.where(pmpm_runs.c.period == _month(month))
        q = q.order_by(pmpm_runs.c.period.desc(), pmpm_runs.c.run_no.desc()).limit(limit)
        async with runtime_of(request).read_conn() as conn:
            rows = (await conn.execute(q)).all()
        return RunList([_run_read(r) for r in rows])

    @get(
        "/runs/{run_id:str}",
        opt={"policy": "pmpm.read"},
        summary="A run: summary (expected, received, variance by classification) and lines",
    )
    async def read_run(
        self,
        request: Request[Any, Any, Any],
        run_id: RunId,
        classification: Annotated[
            list[str] | None, QueryParameter(description="only these; repeat for several")
        ] = None,
        variances_only: Annotated[bool, QueryParameter(description="variance != 0")] = False,
        after: Annotated[
            str | None, QueryParameter(description="next_cursor of the previous page")
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> RunPage:
        principal = principal_of(request)
        classes = _classes(classification)
        key = _decode_cursor(after) if after else None
        async with runtime_of(request).read_conn() as conn:
            run = await pmpm.get_run_row(conn, principal.tenant_id, run_id)
            order = line_order()
            q = select(pmpm_lines).where(pmpm_lines.c.run_id == run.id)
            if key is not None:
                q = q.where(tuple_(*order) > tuple_(*(literal(k, Text) for k in key)))
            if classes:
                q = q.where(pmpm_lines.c.classification.in_(classes))
            if variances_only:
                q = q.where(pmpm_lines.c.variance_cents != 0)
            rows = (await conn.execute(q.order_by(*order).limit(limit + 1))).all()
        more = len(rows) > limit
        rows = rows[:limit]
        return RunPage(
            _run_read(run),
            [_line_read(r) for r in rows],
            _encode_cursor(rows[-1]) if more and rows else None,
        )

    @get(
        "/runs/{run_id:str}/lines.csv",
        opt={"policy": "pmpm.read"},
        summary="Every line of a run as CSV (amounts as decimal strings)",
        media_type="text/csv",
    )
    async def run_csv(self, request: Request[Any, Any, Any], run_id: RunId) -> Response[str]:
        principal = principal_of(request)
        async with runtime_of(request).read_conn() as conn:
            run = await pmpm.get_run_row(conn, principal.tenant_id, run_id)
            rows = (
                await conn.execute(
                    select(pmpm_lines).where(pmpm_lines.c.run_id == run.id).order_by(*line_order())
                )
            ).all()
        out = io.StringIO()
        fields = list(LineRead.__struct_fields__)
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["month", *fields])
        month = f"{run.period:%Y-%m}"
        for r in rows:
            data = msgspec.structs.asdict(_line_read(r))
            writer.writerow([month, *("" if data[f] is None else _cell(data[f]) for f in fields)])
        name = f"pmpm-{month}-run{run.run_no}.csv"
        return Response(
            out.getvalue(),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @post(
        "/runs/{run_id:str}/close",
        opt={"policy": "pmpm.run"},
        summary="Close (lock) the run's month on this run (the month's latest run)",
        status_code=200,
    )
    async def close(self, request: Request[Any, Any, Any], run_id: RunId) -> RunRead:
        principal = principal_of(request)
        async with runtime_of(request).uow() as uow:
            await pmpm.close_run(
                uow.conn,
                tenant_id=principal.tenant_id,
                run_id=run_id,
                actor=principal.actor,
                request_id=request_id_of(request),
            )
            row = await pmpm.get_run_row(uow.conn, principal.tenant_id, run_id)
            await uow.commit()
        return _run_read(row)

    @post(
        "/runs/{run_id:str}/work-items",
        opt={"policy": "pmpm.run"},
        summary="Open the run's variance work items now (the job does this after each run)",
        status_code=200,
    )
    async def work_items(self, request: Request[Any, Any, Any], run_id: RunId) -> WorkItemsRead:
        principal = principal_of(request)
        async with runtime_of(request).uow() as uow:
            n = await pmpm_items.open_variance_items(
                uow.conn, tenant_id=principal.tenant_id, run_id=run_id, actor=principal.actor
            )
            await uow.commit()
        return WorkItemsRead(run_id, n)

    @post(
        "/payments/csv",
        opt={"policy": "pmpm.payments"},
        summary="Import a payer capitation CSV (all rows or none; bad rows named by number)",
        status_code=201,
    )
    async def payments_csv(
        self, request: Request[Any, Any, Any], data: JSONBody[CsvPayments]
    ) -> ImportRead:
        return await _import_payments(
            request,
            pmpm_payments.import_csv,
            contract_id=data.contract_id,
            content=data.content,
            columns=data.columns,
            source_name=data.source_name,
        )

    @post(
        "/payments/835",
        opt={"policy": "pmpm.payments"},
        summary="Import capitation from an 835: PLB CT and monthly-code service lines",
        status_code=201,
    )
    async def payments_835(
        self, request: Request[Any, Any, Any], data: JSONBody[X12Payments]
    ) -> ImportRead:
        return await _import_payments(
            request,
            pmpm_payments.import_835,
            contract_id=data.contract_id,
            content=data.content,
            source_name=data.source_name,
        )

    @post(
        "/payments/820",
        opt={"policy": "pmpm.payments"},
        summary="Import capitation from an 820 (X218): one payment per RMR and coverage month",
        description=(
            "Each 2000B individual's RMR04 is a payment for its member id (ENT04, else NM109) "
            "in the month of its DTM*582 coverage period; ADX adjustments follow their RMR. "
            "Every ST must balance (BPR02 = Σ RMR04 + Σ ADX01); a period spanning months, a "
            "missing member id or period is a 422 naming the entry, and nothing is imported."
        ),
        status_code=201,
    )
    async def payments_820(
        self, request: Request[Any, Any, Any], data: JSONBody[X12Payments]
    ) -> ImportRead:
        return await _import_payments(
            request,
            pmpm_payments.import_820,
            contract_id=data.contract_id,
            content=data.content,
            source_name=data.source_name,
        )

    @post(
        "/payments/remittance",
        opt={"policy": "pmpm.payments"},
        summary="Import the PLB CT payments of an 835 already posted by remittance",
        status_code=201,
    )
    async def payments_posted(
        self, request: Request[Any, Any, Any], data: JSONBody[PostedPayments]
    ) -> ImportRead:
        return await _import_payments(
            request,
            pmpm_payments.import_posted_remittance,
            contract_id=data.contract_id,
            remittance_file_id=data.remittance_file_id,
        )


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _import_read(res: pmpm_payments.ImportResult) -> ImportRead:
    return ImportRead(
        res.import_id, res.source, res.rows, format_cents(res.total_cents), res.duplicate
    )


async def _import_payments(
    request: Request[Any, Any, Any], importer: Any, **kwargs: Any
) -> ImportRead:
    """One unit of work around a payment importer, with the caller's tenant and actor."""
    principal = principal_of(request)
    async with runtime_of(request).uow() as uow:
        res = await importer(
            uow.conn,
            tenant_id=principal.tenant_id,
            actor=principal.actor,
            coverage=_coverage(request),
            **kwargs,
        )
        await uow.commit()
    return _import_read(res)
