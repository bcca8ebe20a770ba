"""Coverage records and row <-> record mapping, plus the connection helpers every query
module uses (`as_uuid`, `driver`, `lock`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.coverage.domain.spans import CoverageSpan, Priority, SpanSource


def as_uuid(value: str) -> str | None:
    """The canonical form of `value` when it is a UUID, else None (such ids are never found)."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        return None


async def driver(conn: AsyncConnection | Any) -> Any:
    """The asyncpg connection under `conn`, in the same transaction (SQLAlchemy begins
    transactions lazily: callers that need one must have executed a statement through it).
    A raw asyncpg connection (the read-only hot path, `Database.raw()`) is returned as is."""
    if not isinstance(conn, AsyncConnection):
        return conn
    raw = await conn.get_raw_connection()
    return raw.driver_connection


async def lock(conn: AsyncConnection, key: str) -> None:
    await conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": key})


# ----------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class PayerRecord:
    id: str
    tenant_id: str
    name: str
    x12_payer_id: str
    receiver_id: str
    receiver_name: str
    claim_filing_indicator: str
    timely_filing_days: int
    appeal_window_days: int
    transport: str
    trading_partner_id: str
    roster_columns: dict[str, str] | None
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class PatientRecord:
    id: str
    tenant_id: str
    patient_ref: str
    first_name: str
    last_name: str
    birth_date: date
    sex: str
    address1: str | None
    address2: str | None
    city: str | None
    state: str | None
    zip: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class SpanVersion:
    """One stored version of a span: the domain span plus its version number."""

    span: CoverageSpan
    version: int


@dataclass(frozen=True, slots=True)
class ContractMeta:
    id: str
    payer_id: str
    name: str
    created_at: datetime


def payer_from_row(row: Any) -> PayerRecord:
    values: dict[str, Any] = dict(row._mapping)
    values["id"] = str(values["id"])
    return PayerRecord(**values)


def patient_from_row(row: Any) -> PatientRecord:
    values: dict[str, Any] = dict(row._mapping)
    values["id"] = str(values["id"])
    return PatientRecord(**values)


_SPAN_COLUMNS = (
    "span_id, version, patient_id::text AS patient_id, payer_id::text AS payer_id, "
    "contract_id::text AS contract_id, member_id, group_number, relationship, priority, "
    "effective_from, effective_to, rate_tier, opt_out_date, population_flags, source, recorded_at"
)


def span_from_record(r: Any) -> SpanVersion:
    """A row with `_SPAN_COLUMNS` (asyncpg Record or SQLAlchemy row mapping)."""
    return SpanVersion(
        CoverageSpan(
            span_id=r["span_id"],
            patient_id=r["patient_id"],
            payer_id=r["payer_id"],
            contract_id=r["contract_id"],
            member_id=r["member_id"],
            group=r["group_number"],
            relationship=r["relationship"],
            priority=Priority(r["priority"]),
            effective_from=r["effective_from"],
            effective_to=r["effective_to"],
            rate_tier=r["rate_tier"],
            opt_out_date=r["opt_out_date"],
            population_flags=frozenset(r["population_flags"] or ()),
            source=SpanSource(r["source"]),
            recorded_at=r["recorded_at"],
        ),
        r["version"],
    )
