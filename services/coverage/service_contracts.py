"""Contract use cases: create contracts, add dated versions of their terms, read and list them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.coverage import repository as repo
from services.coverage.domain.contract_validation import validate_terms
from services.coverage.domain.contracts import ContractTerms, ContractVersion, FieldError
from services.coverage.schemas import (
    ContractCreate,
    ContractPage,
    ContractRead,
    ContractSummary,
    ContractVersionCreate,
    ContractVersionRead,
)
from services.coverage.service_common import _cursor
from services.coverage.tables import contract_versions, contracts
from services.coverage.terms_codec import terms_from_wire, terms_to_json, terms_to_wire
from shared import audit
from shared.auth import Principal
from shared.clock import utc_now
from shared.errors import Conflict, FieldProblem, NotFound, RuleViolation
from shared.uow import UnitOfWork


def _problems(errors: Sequence[FieldError]) -> tuple[FieldProblem, ...]:
    return tuple(FieldProblem(e.path, e.message, e.code) for e in errors)


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
