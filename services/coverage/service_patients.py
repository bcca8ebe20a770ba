"""Patient and coverage-span use cases: create, read and list patients; read span history
and add (or version) manual spans.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.coverage import repository as repo
from services.coverage.domain.spans import CoverageSpan, Priority, SpanSource, as_known_at
from services.coverage.schemas import (
    AddressIn,
    PatientCreate,
    PatientPage,
    PatientRead,
    SpanCreate,
    SpanRead,
    SpansRead,
)
from services.coverage.service_common import _cursor
from services.coverage.tables import coverage_span_versions, patients
from shared import audit
from shared.auth import Principal
from shared.clock import utc_now
from shared.errors import Conflict, FieldProblem, NotFound, RuleViolation
from shared.uow import UnitOfWork

# ----------------------------------------------------------------------------- patients


def _patient_read(p: repo.PatientRecord) -> PatientRead:
    address = None
    if p.address1 and p.city and p.state and p.zip:
        address = AddressIn(p.address1, p.city, p.state, p.zip, p.address2)
    return PatientRead(
        id=p.id,
        patient_ref=p.patient_ref,
        first_name=p.first_name,
        last_name=p.last_name,
        birth_date=p.birth_date,
        sex=p.sex,
        address=address,
        created_at=p.created_at,
        updated_at=p.updated_at,
    )


async def create_patient(
    uow: UnitOfWork, principal: Principal, cmd: PatientCreate, *, request_id: str | None
) -> PatientRead:
    if cmd.birth_date > utc_now().date():
        raise RuleViolation(
            "birth_date is in the future",
            code="invalid_patient",
            errors=(FieldProblem("birth_date", "birth date is in the future", "future_date"),),
        )
    now = utc_now()
    pid = str(uuid.uuid4())
    a = cmd.address
    row = (
        await uow.conn.execute(
            pg_insert(patients)
            .values(
                id=pid,
                tenant_id=principal.tenant_id,
                patient_ref=cmd.patient_ref,
                first_name=cmd.first_name,
                last_name=cmd.last_name,
                birth_date=cmd.birth_date,
                sex=cmd.sex,
                address1=a.line1 if a else None,
                address2=a.line2 if a else None,
                city=a.city if a else None,
                state=a.state if a else None,
                zip=a.zip.replace("-", "") if a else None,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["tenant_id", "patient_ref"])
            .returning(*patients.c)
        )
    ).first()
    if row is None:
        raise Conflict(
            f"patient {cmd.patient_ref!r} already exists",
            code="patient_exists",
            errors=(FieldProblem("patient_ref", "already used by another patient", "conflict"),),
        )
    # Names and birth dates stay out of the audit trail's payload: the id is enough.
    await audit.append(
        uow.conn,
        tenant_id=principal.tenant_id,
        entity_type="patient",
        entity_id=pid,
        action="patient.created",
        actor=principal.actor,
        request_id=request_id,
        after={"patient_ref": cmd.patient_ref, "source": "manual"},
        new_entity=True,
    )
    await uow.commit()
    return _patient_read(repo.patient_from_row(row))


async def get_patient(conn: AsyncConnection, principal: Principal, patient_id: str) -> PatientRead:
    p = await repo.get_patient(conn, principal.tenant_id, patient_id)
    if p is None:
        raise NotFound(f"no patient {patient_id}", code="patient_not_found")
    return _patient_read(p)


async def list_patients(
    conn: AsyncConnection,
    principal: Principal,
    after: str | None,
    limit: int,
    patient_ref: str | None = None,
) -> PatientPage:
    items = await repo.list_patients(conn, principal.tenant_id, _cursor(after), limit, patient_ref)
    return PatientPage(
        [_patient_read(p) for p in items], items[-1].id if len(items) == limit else None
    )


def _span_read(sv: repo.SpanVersion) -> SpanRead:
    s = sv.span
    return SpanRead(
        span_id=s.span_id,
        version=sv.version,
        payer_id=s.payer_id,
        contract_id=s.contract_id,
        member_id=s.member_id,
        group=s.group,
        relationship=s.relationship,
        priority=s.priority.value,
        effective_from=s.effective_from,
        effective_to=s.effective_to,
        rate_tier=s.rate_tier,
        opt_out_date=s.opt_out_date,
        population_flags=sorted(s.population_flags),
        source=s.source.value,
        recorded_at=s.recorded_at,
        void=s.is_void,
    )


async def spans_of(
    conn: AsyncConnection, principal: Principal, patient_id: str, known_at: datetime | None
) -> SpansRead:
    p = await repo.get_patient(conn, principal.tenant_id, patient_id)
    if p is None:
        raise NotFound(f"no patient {patient_id}", code="patient_not_found")
    if known_at is not None and known_at.tzinfo is None:
        raise RuleViolation(
            "as_known_at needs a time zone",
            code="invalid_query",
            errors=(FieldProblem("as_known_at", "give a UTC offset, e.g. Z", "invalid"),),
        )
    versions = await repo.span_versions_of(conn, principal.tenant_id, p.id)
    history = [v for v in versions if known_at is None or v.span.recorded_at <= known_at]
    by_span = {id(v.span): v for v in history}
    latest = as_known_at([v.span for v in history], known_at)
    current = sorted(
        (by_span[id(s)] for s in latest),
        key=lambda v: (v.span.priority.rank, v.span.effective_from, v.span.span_id),
    )
    return SpansRead(
        p.id, known_at, [_span_read(v) for v in current], [_span_read(v) for v in history]
    )


async def add_span(
    uow: UnitOfWork,
    principal: Principal,
    patient_id: str,
    cmd: SpanCreate,
    *,
    request_id: str | None,
) -> SpanRead:
    """A manual span, or a new version of an existing span (e.g. a retro-termination)."""
    p = await repo.get_patient(uow.conn, principal.tenant_id, patient_id, for_update=True)
    if p is None:
        raise NotFound(f"no patient {patient_id}", code="patient_not_found")
    contract = await repo.get_contract(uow.conn, principal.tenant_id, cmd.contract_id)
    if contract is None:
        raise NotFound(
            f"no contract {cmd.contract_id}",
            code="contract_not_found",
            errors=(FieldProblem("contract_id", "no such contract", "not_found"),),
        )
    problems: list[FieldProblem] = []
    if cmd.effective_to is not None and cmd.effective_to < cmd.effective_from and not cmd.span_id:
        problems.append(
            FieldProblem(
                "effective_to", "effective_to is before effective_from", "INVALID_DATE_RANGE"
            )
        )
    if cmd.opt_out_date is not None and cmd.opt_out_date < cmd.effective_from:
        problems.append(
            FieldProblem(
                "opt_out_date", "opt_out_date is before effective_from", "INVALID_DATE_RANGE"
            )
        )
    if problems:
        raise RuleViolation("the span is not valid", code="invalid_span", errors=tuple(problems))
    if cmd.span_id is not None:
        existing = [
            v
            for v in await repo.span_versions_of(uow.conn, principal.tenant_id, p.id)
            if v.span.span_id == cmd.span_id
        ]
        if not existing:
            raise NotFound(
                f"patient has no span {cmd.span_id}",
                code="span_not_found",
                errors=(FieldProblem("span_id", "no such span for this patient", "not_found"),),
            )
        span_id = cmd.span_id
        number = max(v.version for v in existing) + 1
        before: Any = _audit_span(existing[-1].span)
    else:
        span_id = f"manual|{uuid.uuid4()}"
        number = 1
        before = None
    now = utc_now()
    span = CoverageSpan(
        span_id=span_id,
        patient_id=p.id,
        payer_id=contract.payer_id,
        contract_id=contract.id,
        member_id=cmd.member_id,
        effective_from=cmd.effective_from,
        effective_to=cmd.effective_to,
        group=cmd.group,
        relationship=cmd.relationship,
        priority=Priority(cmd.priority),
        rate_tier=cmd.rate_tier,
        opt_out_date=cmd.opt_out_date,
        population_flags=frozenset(cmd.population_flags),
        source=SpanSource.MANUAL,
        recorded_at=now,
    )
    await uow.conn.execute(
        insert(coverage_span_versions).values(**_span_row(principal.tenant_id, span, number, None))
    )
    await audit.append(
        uow.conn,
        tenant_id=principal.tenant_id,
        entity_type="patient",
        entity_id=p.id,
        action="coverage.span_versioned" if before is not None else "coverage.span_added",
        actor=principal.actor,
        request_id=request_id,
        before=before,
        after={**_audit_span(span), "version": number},
    )
    await uow.commit()
    return _span_read(repo.SpanVersion(span, number))


def _audit_span(s: CoverageSpan) -> dict[str, Any]:
    return {
        "span_id": s.span_id,
        "contract_id": s.contract_id,
        "effective_from": s.effective_from,
        "effective_to": s.effective_to,
        "priority": s.priority.value,
        "rate_tier": s.rate_tier,
        "opt_out_date": s.opt_out_date,
        "population_flags": sorted(s.population_flags),
        "source": s.source.value,
    }


def _span_row(
    tenant_id: str, s: CoverageSpan, version: int, import_id: str | None
) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "span_id": s.span_id,
        "version": version,
        "patient_id": s.patient_id,
        "payer_id": s.payer_id,
        "contract_id": s.contract_id,
        "member_id": s.member_id,
        "group_number": s.group,
        "relationship": s.relationship,
        "priority": s.priority.value,
        "effective_from": s.effective_from,
        "effective_to": s.effective_to,
        "rate_tier": s.rate_tier,
        "opt_out_date": s.opt_out_date,
        "population_flags": sorted(s.population_flags),
        "source": s.source.value,
        "recorded_at": s.recorded_at,
        "import_id": import_id,
    }
