"""Statement-composing queries and row <-> domain mapping for the coverage schema.

Every query is scoped by tenant. The eligibility hot path and the bulk roster paths talk to
asyncpg directly (`driver`), inside the caller's transaction: SQLAlchemy's per-statement
overhead would be most of an eligibility check's budget.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import msgspec
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.coverage.domain.contracts import ContractTerms, ContractVersion
from services.coverage.domain.spans import CoverageSpan, Priority, SpanSource
from services.coverage.tables import (
    contract_versions,
    contracts,
    coverage_span_versions,
    patients,
    payers,
)
from services.coverage.terms_codec import TERMS_CACHE, terms_from_json


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


# ----------------------------------------------------------------------------- payers


async def get_payer(conn: AsyncConnection, tenant_id: str, payer_id: str) -> PayerRecord | None:
    pid = as_uuid(payer_id)
    if pid is None:
        return None
    row = (
        await conn.execute(
            select(payers).where(payers.c.tenant_id == tenant_id, payers.c.id == pid)
        )
    ).first()
    return payer_from_row(row) if row is not None else None


async def list_payers(
    conn: AsyncConnection, tenant_id: str, after: str | None, limit: int
) -> list[PayerRecord]:
    q = select(payers).where(payers.c.tenant_id == tenant_id)
    if after is not None:
        q = q.where(payers.c.id > after)
    rows = await conn.execute(q.order_by(payers.c.id).limit(limit))
    return [payer_from_row(r) for r in rows]


# ----------------------------------------------------------------------------- contracts


async def get_contract(
    conn: AsyncConnection, tenant_id: str, contract_id: str, *, for_update: bool = False
) -> ContractMeta | None:
    cid = as_uuid(contract_id)
    if cid is None:
        return None
    q = select(
        contracts.c.id, contracts.c.payer_id, contracts.c.name, contracts.c.created_at
    ).where(contracts.c.tenant_id == tenant_id, contracts.c.id == cid)
    if for_update:
        q = q.with_for_update()
    row = (await conn.execute(q)).first()
    if row is None:
        return None
    return ContractMeta(str(row.id), str(row.payer_id), row.name, row.created_at)


@dataclass(frozen=True, slots=True)
class StoredVersion:
    version: ContractVersion
    created_at: datetime


async def contract_versions_of(
    conn: AsyncConnection, tenant_id: str, contract_id: str
) -> list[StoredVersion]:
    rows = await conn.execute(
        select(contract_versions)
        .where(
            contract_versions.c.tenant_id == tenant_id,
            contract_versions.c.contract_id == contract_id,
        )
        .order_by(contract_versions.c.version)
    )
    out: list[StoredVersion] = []
    for r in rows:
        terms = TERMS_CACHE.get(contract_id, r.version)
        if terms is None:
            terms = terms_from_json(r.terms)
            TERMS_CACHE.put(contract_id, r.version, terms)
        out.append(
            StoredVersion(
                ContractVersion(r.version, r.effective_from, r.effective_to, terms), r.created_at
            )
        )
    return out


async def list_contracts(
    conn: AsyncConnection, tenant_id: str, payer_id: str | None, after: str | None, limit: int
) -> list[tuple[ContractMeta, int]]:
    latest = (
        select(
            contract_versions.c.contract_id, func.max(contract_versions.c.version).label("latest")
        )
        .group_by(contract_versions.c.contract_id)
        .subquery()
    )
    q = (
        select(contracts, latest.c.latest)
        .join(latest, latest.c.contract_id == contracts.c.id)
        .where(contracts.c.tenant_id == tenant_id)
    )
    if payer_id is not None:
        q = q.where(contracts.c.payer_id == payer_id)
    if after is not None:
        q = q.where(contracts.c.id > after)
    rows = await conn.execute(q.order_by(contracts.c.id).limit(limit))
    return [
        (ContractMeta(str(r.id), str(r.payer_id), r.name, r.created_at), int(r.latest))
        for r in rows
    ]


_VERSIONS_SQL = """
SELECT cv.contract_id::text AS contract_id, cv.version, cv.effective_from, cv.effective_to,
       p.id::text AS id, p.tenant_id, p.name, p.x12_payer_id, p.receiver_id, p.receiver_name,
       p.claim_filing_indicator, p.timely_filing_days, p.appeal_window_days, p.transport,
       p.trading_partner_id, p.version AS payer_version, p.created_at, p.updated_at
FROM coverage.contract_versions cv
JOIN coverage.contracts c ON c.id = cv.contract_id
JOIN coverage.payers p ON p.id = c.payer_id
WHERE cv.tenant_id = $1 AND cv.contract_id = ANY($2::uuid[])
"""
_TERMS_SQL = """
SELECT contract_id::text AS contract_id, version, terms::text AS terms
FROM coverage.contract_versions
WHERE tenant_id = $1 AND contract_id = ANY($2::uuid[]) AND version = ANY($3::int[])
"""


async def versions_and_payers(
    drv: Any, tenant_id: str, contract_ids: Iterable[str]
) -> tuple[dict[str, list[ContractVersion]], dict[str, PayerRecord]]:
    """Every version of each contract and each contract's payer, in one round trip; terms
    come from the cache, and only terms not cached yet cost a second one."""
    ids = list(set(contract_ids))
    if not ids:
        return {}, {}
    rows = await drv.fetch(_VERSIONS_SQL, tenant_id, ids)
    return await _versions_from_rows(drv, tenant_id, rows)


async def _versions_from_rows(
    drv: Any, tenant_id: str, rows: Sequence[Any]
) -> tuple[dict[str, list[ContractVersion]], dict[str, PayerRecord]]:
    missing = [
        (r["contract_id"], r["version"])
        for r in rows
        if TERMS_CACHE.get(r["contract_id"], r["version"]) is None
    ]
    if missing:
        fetched = await drv.fetch(
            _TERMS_SQL, tenant_id, [m[0] for m in missing], [m[1] for m in missing]
        )
        for f in fetched:
            TERMS_CACHE.put(
                f["contract_id"], f["version"], msgspec.json.decode(f["terms"], type=ContractTerms)
            )
    versions: dict[str, list[ContractVersion]] = {}
    found_payers: dict[str, PayerRecord] = {}
    for r in rows:
        terms = TERMS_CACHE.get(r["contract_id"], r["version"])
        if terms is None:  # pragma: no cover - fetched above
            continue
        versions.setdefault(r["contract_id"], []).append(
            ContractVersion(r["version"], r["effective_from"], r["effective_to"], terms)
        )
        if r["id"] not in found_payers:
            found_payers[r["id"]] = PayerRecord(
                id=r["id"],
                tenant_id=r["tenant_id"],
                name=r["name"],
                x12_payer_id=r["x12_payer_id"],
                receiver_id=r["receiver_id"],
                receiver_name=r["receiver_name"],
                claim_filing_indicator=r["claim_filing_indicator"],
                timely_filing_days=r["timely_filing_days"],
                appeal_window_days=r["appeal_window_days"],
                transport=r["transport"],
                trading_partner_id=r["trading_partner_id"],
                roster_columns=None,
                version=r["payer_version"],
                created_at=r["created_at"],
                updated_at=r["updated_at"],
            )
    return versions, found_payers


# ----------------------------------------------------------------------------- patients, spans


async def get_patient(
    conn: AsyncConnection, tenant_id: str, patient_id: str, *, for_update: bool = False
) -> PatientRecord | None:
    pid = as_uuid(patient_id)
    if pid is None:
        return None
    q = select(patients).where(patients.c.tenant_id == tenant_id, patients.c.id == pid)
    if for_update:
        q = q.with_for_update()
    row = (await conn.execute(q)).first()
    return patient_from_row(row) if row is not None else None


async def list_patients(
    conn: AsyncConnection, tenant_id: str, after: str | None, limit: int, patient_ref: str | None
) -> list[PatientRecord]:
    q = select(patients).where(patients.c.tenant_id == tenant_id)
    if patient_ref is not None:
        q = q.where(patients.c.patient_ref == patient_ref)
    if after is not None:
        q = q.where(patients.c.id > after)
    rows = await conn.execute(q.order_by(patients.c.id).limit(limit))
    return [patient_from_row(r) for r in rows]


async def span_versions_of(
    conn: AsyncConnection, tenant_id: str, patient_id: str
) -> list[SpanVersion]:
    rows = await conn.execute(
        text(
            f"SELECT {_SPAN_COLUMNS} FROM coverage.coverage_span_versions "  # noqa: S608
            "WHERE tenant_id = :t AND patient_id = :p ORDER BY recorded_at, id"
        ),
        {"t": tenant_id, "p": patient_id},
    )
    return [span_from_record(r._mapping) for r in rows]


async def latest_span_version(conn: AsyncConnection, tenant_id: str, span_id: str) -> int:
    row = (
        await conn.execute(
            select(coverage_span_versions.c.version)
            .where(
                coverage_span_versions.c.tenant_id == tenant_id,
                coverage_span_versions.c.span_id == span_id,
            )
            .order_by(coverage_span_versions.c.version.desc())
            .limit(1)
        )
    ).first()
    return int(row.version) if row is not None else 0


_PATIENT_SPANS_SQL = f"""
SELECT p.id::text AS pid, p.patient_ref, p.first_name, p.last_name, p.birth_date, p.sex,
       p.address1, p.city, p.state, p.zip, s.{_SPAN_COLUMNS.replace(", ", ", s.")}
FROM coverage.patients p
LEFT JOIN coverage.coverage_span_versions s ON s.tenant_id = p.tenant_id AND s.patient_id = p.id
WHERE p.tenant_id = $1 AND p.patient_ref = $2
ORDER BY s.recorded_at, s.id
"""  # noqa: S608 - a constant column list, no input


@dataclass(frozen=True, slots=True)
class PatientBrief:
    id: str
    patient_ref: str
    first_name: str
    last_name: str
    birth_date: date
    sex: str
    address1: str | None
    city: str | None
    state: str | None
    zip: str | None


async def patient_with_spans(
    drv: Any, tenant_id: str, patient_ref: str
) -> tuple[PatientBrief, list[SpanVersion]] | None:
    """One round trip: the patient and every version of every span (oldest first)."""
    rows = await drv.fetch(_PATIENT_SPANS_SQL, tenant_id, patient_ref)
    if not rows:
        return None
    r0 = rows[0]
    patient = PatientBrief(
        r0["pid"],
        r0["patient_ref"],
        r0["first_name"],
        r0["last_name"],
        r0["birth_date"],
        r0["sex"],
        r0["address1"],
        r0["city"],
        r0["state"],
        r0["zip"],
    )
    spans = [span_from_record(r) for r in rows if r["span_id"] is not None]
    return patient, spans


class _VersionRow(msgspec.Struct, frozen=True):
    """One contract version with its payer, as the combined query returns it in JSON."""

    contract_id: str
    version: int
    effective_from: date
    effective_to: date | None
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
    payer_version: int
    created_at: datetime
    updated_at: datetime

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)


_PATIENT_SPANS_VERSIONS_SQL = f"""
WITH pat AS (
    SELECT id, patient_ref, first_name, last_name, birth_date, sex, address1, city, state, zip
    FROM coverage.patients WHERE tenant_id = $1 AND patient_ref = $2
), s AS (
    SELECT v.* FROM coverage.coverage_span_versions v JOIN pat ON v.patient_id = pat.id
    WHERE v.tenant_id = $1
), vv AS (
    SELECT coalesce(json_agg(json_build_object(
        'contract_id', cv.contract_id::text, 'version', cv.version,
        'effective_from', cv.effective_from, 'effective_to', cv.effective_to,
        'id', p.id::text, 'tenant_id', p.tenant_id, 'name', p.name,
        'x12_payer_id', p.x12_payer_id, 'receiver_id', p.receiver_id,
        'receiver_name', p.receiver_name, 'claim_filing_indicator', p.claim_filing_indicator,
        'timely_filing_days', p.timely_filing_days, 'appeal_window_days', p.appeal_window_days,
        'transport', p.transport, 'trading_partner_id', p.trading_partner_id,
        'payer_version', p.version, 'created_at', p.created_at, 'updated_at', p.updated_at
    ) ORDER BY cv.contract_id, cv.version), '[]') AS versions
    FROM coverage.contract_versions cv
    JOIN coverage.contracts c ON c.id = cv.contract_id
    JOIN coverage.payers p ON p.id = c.payer_id
    WHERE cv.tenant_id = $1 AND cv.contract_id IN (SELECT contract_id FROM s)
)
SELECT pat.id::text AS pid, pat.patient_ref, pat.first_name, pat.last_name, pat.birth_date,
       pat.sex, pat.address1, pat.city, pat.state, pat.zip,
       s.{_SPAN_COLUMNS.replace(", ", ", s.")}, vv.versions::text AS versions
FROM pat LEFT JOIN s ON true CROSS JOIN vv
ORDER BY s.recorded_at, s.id
"""  # noqa: S608 - a constant column list, no input


async def patient_spans_and_versions(
    drv: Any, tenant_id: str, patient_ref: str
) -> (
    tuple[
        tuple[PatientBrief, list[SpanVersion]],
        dict[str, list[ContractVersion]],
        dict[str, PayerRecord],
    ]
    | None
):
    """The eligibility read in ONE round trip (a second only on a terms-cache miss): the
    patient, every version of every span, and every version of the contracts they name with
    each contract's payer. Round trips dominate this path's cost on a small machine."""
    rows = await drv.fetch(_PATIENT_SPANS_VERSIONS_SQL, tenant_id, patient_ref)
    if not rows:
        return None
    r0 = rows[0]
    patient = PatientBrief(
        r0["pid"],
        r0["patient_ref"],
        r0["first_name"],
        r0["last_name"],
        r0["birth_date"],
        r0["sex"],
        r0["address1"],
        r0["city"],
        r0["state"],
        r0["zip"],
    )
    spans = [span_from_record(r) for r in rows if r["span_id"] is not None]
    version_rows = msgspec.json.decode(r0["versions"], type=list[_VersionRow])
    versions, payers = await _versions_from_rows(drv, tenant_id, version_rows)
    return (patient, spans), versions, payers


_PATIENTS_SPANS_MANY_SQL = _PATIENT_SPANS_SQL.replace(
    "p.patient_ref = $2", "p.patient_ref = ANY($2::text[])"
)


async def patients_with_spans(
    drv: Any, tenant_id: str, patient_refs: Sequence[str]
) -> dict[str, tuple[PatientBrief, list[SpanVersion]]]:
    """`patient_with_spans` for many patients in one round trip (batch pricing)."""
    rows = await drv.fetch(_PATIENTS_SPANS_MANY_SQL, tenant_id, list(set(patient_refs)))
    out: dict[str, tuple[PatientBrief, list[SpanVersion]]] = {}
    for r in rows:
        entry = out.get(r["patient_ref"])
        if entry is None:
            entry = (
                PatientBrief(
                    r["pid"],
                    r["patient_ref"],
                    r["first_name"],
                    r["last_name"],
                    r["birth_date"],
                    r["sex"],
                    r["address1"],
                    r["city"],
                    r["state"],
                    r["zip"],
                ),
                [],
            )
            out[r["patient_ref"]] = entry
        if r["span_id"] is not None:
            entry[1].append(span_from_record(r))
    return out
