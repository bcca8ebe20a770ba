"""Payer and contract queries, including the batched contract-versions-and-payers read
(terms come from the terms cache).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.coverage.domain.contracts import ContractTerms, ContractVersion
from services.coverage.repository_records import ContractMeta, PayerRecord, as_uuid, payer_from_row
from services.coverage.tables import contract_versions, contracts, payers
from services.coverage.terms_codec import TERMS_CACHE, terms_from_json

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
