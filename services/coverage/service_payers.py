"""Payer use cases: create, update, read and list payers (with their roster column maps)."""

from __future__ import annotations

import uuid
from dataclasses import fields
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.coverage import repository as repo
from services.coverage.rosters.csv_roster import ColumnMap
from services.coverage.schemas import PayerCreate, PayerPage, PayerRead, PayerUpdate
from services.coverage.service_common import _cursor
from services.coverage.tables import payers
from shared import audit
from shared.auth import Principal
from shared.clock import utc_now
from shared.errors import Conflict, FieldProblem, NotFound, RuleViolation
from shared.uow import UnitOfWork

_COLUMN_FIELDS = frozenset(f.name for f in fields(ColumnMap))


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
