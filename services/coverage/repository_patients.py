"""Patient and coverage-span queries, including the eligibility hot path's one-round-trip
reads on the asyncpg driver.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import msgspec
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.coverage.domain.contracts import ContractVersion
from services.coverage.repository_contracts import _versions_from_rows
from services.coverage.repository_records import (
    _SPAN_COLUMNS,
    PatientRecord,
    PayerRecord,
    SpanVersion,
    as_uuid,
    patient_from_row,
    span_from_record,
)
from services.coverage.tables import coverage_span_versions, patients

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
