"""CARC / RARC code tables as versioned data in PostgreSQL.

The packaged CSV tables (shared/codes) are the source; `code_table_rows` turns them into rows
stamped with the CSV's content hash (`table_version`), the migration inserts them, and
`sync_code_tables` upserts them again (idempotent; the worker runs it daily so a CSV update
shipped with a release reaches the database without a manual step). Posting reads the tables
back from the database (`db_code_tables`), so what decided a denial is what the database
holds, cached per table version.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from types import MappingProxyType
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.tables_remittance import carc_codes, rarc_codes
from shared.codes import (
    AdjustmentReason,
    CodeTable,
    DefaultAction,
    DenialCategory,
    RemarkCode,
    parse_carc,
    parse_rarc,
)

__all__ = ["code_table_rows", "db_code_tables", "sync_code_tables"]


def _csv(name: str) -> str:
    return resources.files("shared.codes").joinpath(name).read_text(encoding="utf-8")


def code_table_rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(carc rows, rarc rows) from the packaged CSVs, each stamped with its table version."""
    carc_text, rarc_text = _csv("carc.csv"), _csv("rarc.csv")
    carc_version = hashlib.sha256(carc_text.encode()).hexdigest()[:16]
    rarc_version = hashlib.sha256(rarc_text.encode()).hexdigest()[:16]
    carcs = [
        {
            "code": e.code,
            "start_date": e.start_date,
            "stop_date": e.stop_date,
            "description": e.description,
            "category": e.category.value,
            "default_action": e.default_action.value,
            "table_version": carc_version,
        }
        for versions in parse_carc(carc_text).versions.values()
        for e in versions
    ]
    rarcs = [
        {
            "code": e.code,
            "start_date": e.start_date,
            "stop_date": e.stop_date,
            "description": e.description,
            "category": e.category.value,
            "default_action": e.default_action.value,
            "no_appeal": e.no_appeal,
            "table_version": rarc_version,
        }
        for versions in parse_rarc(rarc_text).versions.values()
        for e in versions
    ]
    return carcs, rarcs


async def sync_code_tables(conn: AsyncConnection) -> int:
    """Upsert the packaged tables; returns the rows written (0 when already current)."""
    carcs, rarcs = code_table_rows()
    written = 0
    for table, rows in ((carc_codes, carcs), (rarc_codes, rarcs)):
        stmt = pg_insert(table)
        updatable = {c: stmt.excluded[c] for c in rows[0] if c not in ("code", "start_date")}
        res = await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["code", "start_date"],
                set_=updatable,
                where=table.c.table_version != stmt.excluded.table_version,
            ),
            rows,
        )
        written += max(res.rowcount or 0, 0)
    return written


_CACHE: dict[tuple[Any, ...], tuple[CodeTable[AdjustmentReason], CodeTable[RemarkCode]]] = {}


async def db_code_tables(
    conn: AsyncConnection,
) -> tuple[CodeTable[AdjustmentReason], CodeTable[RemarkCode]]:
    """The CARC and RARC tables as the database holds them (cached per table version)."""
    key = tuple(
        (
            await conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM billing.carc_codes),"
                    " (SELECT max(table_version) FROM billing.carc_codes),"
                    " (SELECT count(*) FROM billing.rarc_codes),"
                    " (SELECT max(table_version) FROM billing.rarc_codes)"
                )
            )
        ).one()
    )
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    carc: dict[str, list[AdjustmentReason]] = {}
    for r in await conn.execute(select(carc_codes).order_by(carc_codes.c.start_date)):
        carc.setdefault(r.code, []).append(
            AdjustmentReason(
                code=r.code,
                description=r.description,
                start_date=r.start_date,
                stop_date=r.stop_date,
                category=DenialCategory(r.category),
                default_action=DefaultAction(r.default_action),
            )
        )
    rarc: dict[str, list[RemarkCode]] = {}
    for r in await conn.execute(select(rarc_codes).order_by(rarc_codes.c.start_date)):
        rarc.setdefault(r.code, []).append(
            RemarkCode(
                code=r.code,
                description=r.description,
                start_date=r.start_date,
                stop_date=r.stop_date,
                category=DenialCategory(r.category),
                default_action=DefaultAction(r.default_action),
                no_appeal=r.no_appeal,
            )
        )
    tables = (
        CodeTable("carc", MappingProxyType({k: tuple(v) for k, v in carc.items()})),
        CodeTable("rarc", MappingProxyType({k: tuple(v) for k, v in rarc.items()})),
    )
    _CACHE.clear()
    _CACHE[key] = tables
    return tables
