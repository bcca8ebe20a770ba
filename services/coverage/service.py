"""Coverage use cases: payers, contracts, patients and spans, eligibility.

Each use case is `async def verb(uow | conn, principal, command)`; writes go through the unit
of work and append an audit event in the same transaction. Roster imports live in
`rosters/importer.py`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import insert, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.coverage import repository as repo
from services.coverage.domain.contract_validation import validate_terms
from services.coverage.domain.contracts import (
    ContractTerms,
    ContractVersion,
    FieldError,
    Modality,
    PatientLocation,
    ServiceType,
    version_in_force,
)
from services.coverage.domain.eligibility import (
    Eligibility,
    LimitUsage,
    PriorService,
    Reason,
    check_eligibility,
)
from services.coverage.domain.spans import CoverageSpan, Priority, SpanSource, as_known_at
from services.coverage.rosters.csv_roster import ColumnMap
from services.coverage.schemas import (
    AddressIn,
    ChosenCoverage,
    ContractCreate,
    ContractPage,
    ContractRead,
    ContractSummary,
    ContractVersionCreate,
    ContractVersionRead,
    EligibilityCheck,
    EligibilityRead,
    PatientCreate,
    PatientPage,
    PatientRead,
    PayerCreate,
    PayerPage,
    PayerRead,
    PayerUpdate,
    ReasonRead,
    RejectedSpan,
    RoutingRead,
    SpanCreate,
    SpanRead,
    SpansRead,
    UsageRead,
    WindowRead,
)
from services.coverage.tables import (
    contract_versions,
    contracts,
    coverage_span_versions,
    patients,
    payers,
)
from services.coverage.terms_codec import terms_from_wire, terms_to_json, terms_to_wire
from shared import audit
from shared.auth import Principal
from shared.clock import utc_now
from shared.errors import Conflict, FieldProblem, NotFound, RuleViolation
from shared.uow import UnitOfWork

_COLUMN_FIELDS = frozenset(f.name for f in fields(ColumnMap))


def _problems(errors: Sequence[FieldError]) -> tuple[FieldProblem, ...]:
    return tuple(FieldProblem(e.path, e.message, e.code) for e in errors)


def _cursor(after: str | None) -> str | None:
    if after is None:
        return None
    cursor = repo.as_uuid(after)
    if cursor is None:
        raise RuleViolation(
            "after must be the `next` cursor of a previous page",
            code="invalid_cursor",
            errors=(FieldProblem("after", "not a cursor", "invalid"),),
        )
    return cursor


# ----------------------------------------------------------------------------- payers


def _payer_read(p: repo.PayerRecord) -> PayerRead:
    return PayerRead(
        id=p.id,
        name=p.name,
        x12_payer_id=p.x12_payer_id,
        receiver_id=p.receiver_id,
        receiver_name=p.receiver_name,
        claim_filing_indicator=p.claim_filing_indicator,
        timely_filing_days=p.timely_filing_days,
        appeal_window_days=p.appeal_window_days,
        transport=p.transport,
        trading_partner_id=p.trading_partner_id,
        roster_columns=p.roster_columns,
        version=p.version,
        created_at=p.created_at,
        updated_at=p.updated_at,
    )


def _check_columns(columns: dict[str, str] | None) -> None:
    if not columns:
        return
    bad = [
        FieldProblem(
            f"roster_columns.{name}",
            f"unknown roster field; one of: {', '.join(sorted(_COLUMN_FIELDS))}",
            "unknown_field",
        )
        for name in columns
        if name not in _COLUMN_FIELDS
    ]
    if bad:
        raise RuleViolation(
            "roster_columns names unknown fields", code="invalid_payer", errors=tuple(bad)
        )


def _payer_audit(p: PayerRead) -> dict[str, Any]:
    return dict(
        {
            "name": p.name,
            "x12_payer_id": p.x12_payer_id,
            "receiver_id": p.receiver_id,
            "receiver_name": p.receiver_name,
            "claim_filing_indicator": p.claim_filing_indicator,
            "timely_filing_days": p.timely_filing_days,
            "appeal_window_days": p.appeal_window_days,
            "transport": p.transport,
            "trading_partner_id": p.trading_partner_id,
            "roster_columns": p.roster_columns,
        }
    )


async def create_payer(
    uow: UnitOfWork, principal: Principal, cmd: PayerCreate, *, request_id: str | None
) -> PayerRead:
    _check_columns(cmd.roster_columns)
    now = utc_now()
    pid = str(uuid.uuid4())
    row = (
        await uow.conn.execute(
            pg_insert(payers)
            .values(
                id=pid,
                tenant_id=principal.tenant_id,
                name=cmd.name,
                x12_payer_id=cmd.x12_payer_id,
                receiver_id=cmd.receiver_id,
                receiver_name=cmd.receiver_name,
                claim_filing_indicator=cmd.claim_filing_indicator,
                timely_filing_days=cmd.timely_filing_days,
                appeal_window_days=cmd.appeal_window_days,
                transport=cmd.transport,
                trading_partner_id=cmd.trading_partner_id,
                roster_columns=cmd.roster_columns,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["tenant_id", "x12_payer_id"])
            .returning(*payers.c)
        )
    ).first()
    if row is None:
        raise Conflict(
            f"a payer with payer id {cmd.x12_payer_id!r} already exists",
            code="payer_exists",
            errors=(FieldProblem("x12_payer_id", "already used by another payer", "conflict"),),
            action="update the existing payer instead",
        )
    read = _payer_read(repo.payer_from_row(row))
    await audit.append(
        uow.conn,
        tenant_id=principal.tenant_id,
        entity_type="payer",
        entity_id=pid,
        action="payer.created",
        actor=principal.actor,
        request_id=request_id,
        after=_payer_audit(read),
        new_entity=True,
    )
    await uow.commit()
    return read


async def update_payer(
    uow: UnitOfWork,
    principal: Principal,
    payer_id: str,
    cmd: PayerUpdate,
    *,
    request_id: str | None,
) -> PayerRead:
    _check_columns(cmd.roster_columns)
    pid = repo.as_uuid(payer_id)
    current = await repo.get_payer(uow.conn, principal.tenant_id, payer_id) if pid else None
    if current is None or pid is None:
        raise NotFound(f"no payer {payer_id}", code="payer_not_found")
    changes = {
        name: value
        for name in cmd.__struct_fields__
        if (value := getattr(cmd, name)) is not None and value != getattr(current, name)
    }
    if not changes:
        return _payer_read(current)
    row = (
        await uow.conn.execute(
            update(payers)
            .where(
                payers.c.id == pid,
                payers.c.tenant_id == principal.tenant_id,
                payers.c.version == current.version,
            )
            .values(**changes, version=payers.c.version + 1, updated_at=utc_now())
            .returning(*payers.c)
        )
    ).first()
    if row is None:
        raise Conflict("the payer changed meanwhile; read it and retry", code="stale_payer")
    await audit.append(
        uow.conn,
        tenant_id=principal.tenant_id,
        entity_type="payer",
        entity_id=pid,
        action="payer.updated",
        actor=principal.actor,
        request_id=request_id,
        before={k: getattr(current, k) for k in changes},
        after=changes,
    )
    await uow.commit()
    return _payer_read(repo.payer_from_row(row))


async def get_payer(conn: AsyncConnection, principal: Principal, payer_id: str) -> PayerRead:
    p = await repo.get_payer(conn, principal.tenant_id, payer_id)
    if p is None:
        raise NotFound(f"no payer {payer_id}", code="payer_not_found")
    return _payer_read(p)


async def list_payers(
    conn: AsyncConnection, principal: Principal, after: str | None, limit: int
) -> PayerPage:
    items = await repo.list_payers(conn, principal.tenant_id, _cursor(after), limit)
    return PayerPage([_payer_read(p) for p in items], items[-1].id if len(items) == limit else None)


# ----------------------------------------------------------------------------- contracts


def _validated_terms(
    terms_in: Any, effective_from: date, effective_to: date | None
) -> ContractTerms:
    terms = terms_from_wire(terms_in)
    errors = _problems(validate_terms(terms, "terms"))
    if effective_to is not None and effective_to < effective_from:
        errors += (
            FieldProblem(
                "effective_to", "effective_to is before effective_from", "INVALID_DATE_RANGE"
            ),
        )
    if errors:
        raise RuleViolation(
            "the contract terms are not valid",
            code="invalid_terms",
            errors=errors,
            action="fix the listed fields and send the contract again",
        )
    return terms


def _contract_read(meta: repo.ContractMeta, versions: Sequence[repo.StoredVersion]) -> ContractRead:
    return ContractRead(
        id=meta.id,
        payer_id=meta.payer_id,
        name=meta.name,
        created_at=meta.created_at,
        versions=[
            ContractVersionRead(
                version=v.version.version,
                effective_from=v.version.effective_from,
                effective_to=v.version.effective_to,
                terms=terms_to_wire(v.version.terms),
                created_at=v.created_at,
            )
            for v in versions
        ],
    )


async def create_contract(
    uow: UnitOfWork, principal: Principal, cmd: ContractCreate, *, request_id: str | None
) -> ContractRead:
    payer = await repo.get_payer(uow.conn, principal.tenant_id, cmd.payer_id)
    if payer is None:
        raise NotFound(
            f"no payer {cmd.payer_id}",
            code="payer_not_found",
            errors=(FieldProblem("payer_id", "no such payer", "not_found"),),
        )
    terms = _validated_terms(cmd.terms, cmd.effective_from, cmd.effective_to)
    cid = str(uuid.uuid4())
    now = utc_now()
    created = (
        await uow.conn.execute(
            pg_insert(contracts)
            .values(
                id=cid,
                tenant_id=principal.tenant_id,
                payer_id=payer.id,
                name=cmd.name,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["tenant_id", "payer_id", "name"])
            .returning(contracts.c.id)
        )
    ).first()
    if created is None:
        raise Conflict(
            f"payer already has a contract named {cmd.name!r}",
            code="contract_exists",
            errors=(FieldProblem("name", "already used for this payer", "conflict"),),
            action="add a version to the existing contract",
        )
    await uow.conn.execute(
        insert(contract_versions).values(
            contract_id=cid,
            version=1,
            tenant_id=principal.tenant_id,
            effective_from=cmd.effective_from,
            effective_to=cmd.effective_to,
            terms=terms_to_json(terms),
            created_at=now,
        )
    )
    await audit.append(
        uow.conn,
        tenant_id=principal.tenant_id,
        entity_type="contract",
        entity_id=cid,
        action="contract.created",
        actor=principal.actor,
        request_id=request_id,
        after={
            "payer_id": payer.id,
            "name": cmd.name,
            "version": 1,
            "effective_from": cmd.effective_from,
            "effective_to": cmd.effective_to,
            "terms": terms_to_json(terms),
        },
        new_entity=True,
    )
    await uow.commit()
    meta = repo.ContractMeta(cid, payer.id, cmd.name, now)
    version = repo.StoredVersion(
        ContractVersion(1, cmd.effective_from, cmd.effective_to, terms), now
    )
    return _contract_read(meta, [version])


def _overlaps(a_from: date, a_to: date | None, b_from: date, b_to: date | None) -> bool:
    return (a_to is None or b_from <= a_to) and (b_to is None or a_from <= b_to)


async def add_contract_version(
    uow: UnitOfWork,
    principal: Principal,
    contract_id: str,
    cmd: ContractVersionCreate,
    *,
    request_id: str | None,
) -> ContractRead:
    meta = await repo.get_contract(uow.conn, principal.tenant_id, contract_id, for_update=True)
    if meta is None:
        raise NotFound(f"no contract {contract_id}", code="contract_not_found")
    terms = _validated_terms(cmd.terms, cmd.effective_from, cmd.effective_to)
    existing = await repo.contract_versions_of(uow.conn, principal.tenant_id, meta.id)
    closed: repo.StoredVersion | None = None
    problems: list[FieldProblem] = []
    for stored in existing:
        v = stored.version
        if (
            v.effective_to is None
            and v.effective_from < cmd.effective_from
            and stored is existing[-1]
        ):
            # The open-ended current version ends the day before the new one starts.
            closed = stored
            continue
        if _overlaps(v.effective_from, v.effective_to, cmd.effective_from, cmd.effective_to):
            problems.append(
                FieldProblem(
                    "effective_from",
                    f"overlaps version {v.version} ({v.effective_from.isoformat()} to "
                    f"{v.effective_to.isoformat() if v.effective_to else 'open'}); "
                    "a date of service must fall in one version",
                    "OVERLAPPING_VERSION",
                )
            )
    if problems:
        raise RuleViolation(
            "the new version overlaps existing versions",
            code="invalid_terms",
            errors=tuple(problems),
            action="choose dates after the last version, or end the overlapping version first",
        )
    number = (existing[-1].version.version if existing else 0) + 1
    now = utc_now()
    versions = list(existing)
    if closed is not None:
        end = cmd.effective_from - timedelta(days=1)
        await uow.conn.execute(
            update(contract_versions)
            .where(
                contract_versions.c.contract_id == meta.id,
                contract_versions.c.version == closed.version.version,
            )
            .values(effective_to=end)
        )
        versions[-1] = repo.StoredVersion(
            ContractVersion(
                closed.version.version, closed.version.effective_from, end, closed.version.terms
            ),
            closed.created_at,
        )
    await uow.conn.execute(
        insert(contract_versions).values(
            contract_id=meta.id,
            version=number,
            tenant_id=principal.tenant_id,
            effective_from=cmd.effective_from,
            effective_to=cmd.effective_to,
            terms=terms_to_json(terms),
            created_at=now,
        )
    )
    versions.append(
        repo.StoredVersion(
            ContractVersion(number, cmd.effective_from, cmd.effective_to, terms), now
        )
    )
    await audit.append(
        uow.conn,
        tenant_id=principal.tenant_id,
        entity_type="contract",
        entity_id=meta.id,
        action="contract.version_added",
        actor=principal.actor,
        request_id=request_id,
        before=(
            {"version": closed.version.version, "effective_to": None}
            if closed is not None
            else None
        ),
        after={
            "version": number,
            "effective_from": cmd.effective_from,
            "effective_to": cmd.effective_to,
            "terms": terms_to_json(terms),
            "closed_version": closed.version.version if closed is not None else None,
        },
    )
    await uow.commit()
    return _contract_read(meta, versions)


async def get_contract(
    conn: AsyncConnection, principal: Principal, contract_id: str
) -> ContractRead:
    meta = await repo.get_contract(conn, principal.tenant_id, contract_id)
    if meta is None:
        raise NotFound(f"no contract {contract_id}", code="contract_not_found")
    return _contract_read(meta, await repo.contract_versions_of(conn, principal.tenant_id, meta.id))


async def list_contracts(
    conn: AsyncConnection,
    principal: Principal,
    payer_id: str | None,
    after: str | None,
    limit: int,
) -> ContractPage:
    payer = None
    if payer_id is not None:
        payer = repo.as_uuid(payer_id)
        if payer is None:
            return ContractPage([])
    items = await repo.list_contracts(conn, principal.tenant_id, payer, _cursor(after), limit)
    return ContractPage(
        [ContractSummary(m.id, m.payer_id, m.name, m.created_at, latest) for m, latest in items],
        items[-1][0].id if len(items) == limit else None,
    )


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


# ----------------------------------------------------------------------------- eligibility


class PriorServiceSource(Protocol):
    """Billing's history port, seen from coverage (structural: billing's BillingHistoryPort
    satisfies it)."""

    async def prior_services(
        self, conn: AsyncConnection, *, tenant_id: str, patient_ref: str, before: date | None = None
    ) -> Sequence[Any]: ...


def service_type_of(value: str) -> ServiceType:
    return ServiceType(value.upper())


def to_prior(item: Any) -> PriorService | None:
    """Billing's PriorService (or anything shaped like it) as the domain's; unknown service
    types are ignored rather than guessed."""
    try:
        st = service_type_of(str(item.service_type))
    except ValueError:
        return None
    return PriorService(
        dos=item.dos,
        service_type=st,
        tin=item.tin,
        contract_id=item.contract_id,
        payer_id=item.payer_id,
    )


def attribute_priors(
    priors: Sequence[PriorService], spans: Sequence[CoverageSpan]
) -> list[PriorService]:
    """Services billing knows no payer for yet (sessions before claims exist) count against the
    coverage the patient had on their date: the span eligibility would have chosen."""
    out: list[PriorService] = []
    for prior in priors:
        if prior.contract_id is None and prior.payer_id is None:
            covering = [s for s in spans if s.covers(prior.dos) and not s.is_void]
            if covering:
                best = min(covering, key=lambda s: (s.priority.rank, -s.effective_from.toordinal()))
                prior = PriorService(
                    prior.dos, prior.service_type, prior.tin, best.contract_id, best.payer_id
                )
        out.append(prior)
    return out


@dataclass(frozen=True, slots=True)
class Evaluation:
    patient: repo.PatientBrief
    eligibility: Eligibility
    span_version: int | None
    payer: repo.PayerRecord | None


def _needs_history(
    spans: Sequence[CoverageSpan],
    versions: dict[str, list[ContractVersion]],
    dos: date,
    service_type: ServiceType,
) -> bool:
    for s in spans:
        if not s.covers(dos):
            continue
        v = version_in_force(versions.get(s.contract_id, ()), dos)
        if v is not None and any(
            lim.service_type.matches(service_type) for lim in v.terms.frequency_limits
        ):
            return True
    return False


async def evaluate(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    patient_ref: str,
    dos: date,
    service_type: ServiceType,
    modality: Modality | None = None,
    patient_location: PatientLocation | None = None,
    known_at: datetime | None = None,
    prior_services: Sequence[Any] | None = None,
    history: PriorServiceSource | None = None,
    loaded: tuple[repo.PatientBrief, list[repo.SpanVersion]] | None = None,
    versions: dict[str, list[ContractVersion]] | None = None,
    payers: dict[str, repo.PayerRecord] | None = None,
) -> Evaluation | None:
    """Eligibility of one patient (by ref) on `dos`; None when the patient is not on file.

    Prior services come from `prior_services` when given, else from `history`, which is only
    asked when a covering contract limits this service type. `loaded`/`versions` let batch
    callers pass what they fetched for many patients at once."""
    drv = None
    if loaded is None and versions is None:
        drv = await repo.driver(conn)
        combined = await repo.patient_spans_and_versions(drv, tenant_id, patient_ref)
        if combined is None:
            return None
        loaded, versions, payers = combined
    elif loaded is None:
        drv = await repo.driver(conn)
        loaded = await repo.patient_with_spans(drv, tenant_id, patient_ref)
        if loaded is None:
            return None
    patient, stored = loaded
    spans = [v.span for v in stored]
    if versions is None:
        drv = drv or await repo.driver(conn)
        versions, payers = await repo.versions_and_payers(
            drv, tenant_id, {s.contract_id for s in spans}
        )
    priors_raw: Sequence[Any] = prior_services or ()
    if (
        prior_services is None
        and history is not None
        and _needs_history(spans, versions, dos, service_type)
    ):
        priors_raw = await history.prior_services(
            conn, tenant_id=tenant_id, patient_ref=patient_ref, before=dos
        )
    priors = [p for p in (to_prior(x) for x in priors_raw) if p is not None]
    if priors:
        known = as_known_at(spans, known_at) if len(spans) > 1 or known_at else spans
        priors = attribute_priors(priors, known)
    result = check_eligibility(
        spans,
        versions,
        dos,
        service_type,
        priors,
        as_known_at=known_at,
        modality=modality,
        patient_location=patient_location,
    )
    span_version: int | None = None
    payer: repo.PayerRecord | None = None
    if result.span is not None:
        chosen = result.span
        span_version = next(v.version for v in stored if v.span is chosen)
        payer = (payers or {}).get(chosen.payer_id)
    return Evaluation(patient, result, span_version, payer)


async def load_batch(
    conn: AsyncConnection, tenant_id: str, patient_refs: Sequence[str]
) -> tuple[
    dict[str, tuple[repo.PatientBrief, list[repo.SpanVersion]]],
    dict[str, list[ContractVersion]],
    dict[str, repo.PayerRecord],
]:
    """Everything `evaluate` needs for many patients, in two round trips."""
    drv = await repo.driver(conn)
    loaded = await repo.patients_with_spans(drv, tenant_id, patient_refs)
    spans = [v.span for _, stored in loaded.values() for v in stored]
    versions, payers = await repo.versions_and_payers(
        drv, tenant_id, {s.contract_id for s in spans}
    )
    return loaded, versions, payers


def _reason(r: Reason) -> ReasonRead:
    return ReasonRead(r.code.value, r.message, r.fix, r.span_id)


def _usage(u: LimitUsage) -> UsageRead:
    return UsageRead(
        service_type=u.limit.service_type.value,
        period=u.limit.period.value,
        period_start=u.period_start,
        period_end=u.period_end,
        used=u.used,
        max_count=u.max_count,
        text=u.text,
    )


async def check(
    conn: AsyncConnection,
    principal: Principal,
    cmd: EligibilityCheck,
    history: PriorServiceSource | None,
) -> EligibilityRead:
    if cmd.as_known_at is not None and cmd.as_known_at.tzinfo is None:
        raise RuleViolation(
            "as_known_at needs a time zone",
            code="invalid_query",
            errors=(FieldProblem("as_known_at", "give a UTC offset, e.g. Z", "invalid"),),
        )
    st = service_type_of(cmd.service_type)
    ev = await evaluate(
        conn,
        tenant_id=principal.tenant_id,
        patient_ref=cmd.patient_ref,
        dos=cmd.date_of_service,
        service_type=st,
        modality=cmd.modality,
        patient_location=cmd.patient_location,
        known_at=cmd.as_known_at,
        history=history,
    )
    if ev is None:
        raise NotFound(
            f"no patient {cmd.patient_ref!r}",
            code="patient_not_found",
            errors=(FieldProblem("patient_ref", "no such patient", "not_found"),),
            action="create the patient or import the payer's roster first",
        )
    e = ev.eligibility
    coverage = None
    if e.span is not None and e.contract_version is not None:
        s = e.span
        coverage = ChosenCoverage(
            span_id=s.span_id,
            span_version=ev.span_version or 0,
            payer_id=s.payer_id,
            payer_name=ev.payer.name if ev.payer else "",
            contract_id=s.contract_id,
            contract_version=e.contract_version.version,
            billing_model=e.contract_version.terms.billing_model.value,
            member_id=s.member_id,
            group=s.group,
            priority=s.priority.value,
            rate_tier=s.rate_tier,
            source=s.source.value,
        )
    return EligibilityRead(
        eligible=e.eligible,
        patient_id=ev.patient.id,
        patient_ref=ev.patient.patient_ref,
        date_of_service=e.dos,
        service_type=st.value,
        as_known_at=cmd.as_known_at,
        reasons=[_reason(r) for r in e.reasons],
        coverage=coverage,
        window=WindowRead(e.window.start, e.window.end) if e.window else None,
        usage=[_usage(u) for u in e.usage],
        usage_text=[u.text for u in e.usage],
        routing=RoutingRead(e.routing.place_of_service, e.routing.modifier) if e.routing else None,
        rejected=[
            RejectedSpan(
                r.span.span_id, [_reason(x) for x in r.reasons], [_usage(u) for u in r.usage]
            )
            for r in e.rejected
        ],
    )
