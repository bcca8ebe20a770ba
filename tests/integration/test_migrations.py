"""Migrations build exactly the models, and go down to base and back up."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from shared import migrate
from shared.db import asyncpg_dsn, create_engine, include_name, include_object, load_all_tables


def _fresh_db(server_url: str, name: str) -> str:
    async def go() -> None:
        conn = await asyncpg.connect(asyncpg_dsn(server_url))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(go())
    from sqlalchemy.engine import make_url

    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture
def scratch_db(server_database_url: str, testrun_uid: str) -> Iterator[Callable[[str], str]]:
    """Fresh databases for a test, dropped afterwards (shared servers keep no leftovers)."""
    made: list[str] = []

    def make(prefix: str) -> str:
        name = f"{prefix}_{testrun_uid[:8]}"
        made.append(name)
        return _fresh_db(server_database_url, name)

    yield make

    async def drop() -> None:
        conn = await asyncpg.connect(asyncpg_dsn(server_database_url))
        try:
            for name in made:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


def _diff(url: str) -> list[object]:
    metadata = load_all_tables()

    def compare(sync_conn: object) -> list[object]:
        ctx = MigrationContext.configure(
            sync_conn,  # type: ignore[arg-type]
            opts={
                "include_schemas": True,
                "include_name": include_name,
                "include_object": include_object,
                "compare_type": True,
                "compare_server_default": True,
            },
        )
        return list(compare_metadata(ctx, metadata))

    async def go() -> list[object]:
        engine = create_engine(url, pool_size=1, max_overflow=0)
        async with engine.connect() as conn:
            result = await conn.run_sync(compare)
            tables = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM pg_tables WHERE schemaname IN ('core','audit','coverage','billing')"
                    )
                )
            ).scalar_one()
        await engine.dispose()
        return [*result, *([] if tables else ["no tables"])]

    return asyncio.run(go())


def test_upgrade_matches_models_and_downgrade_works(
    scratch_db: Callable[[str], str],
) -> None:
    url = scratch_db("mtm_migrations")
    migrate.upgrade(url)
    assert _diff(url) == []
    migrate.downgrade(url, "base")

    async def remaining() -> int:
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            n: int = await conn.fetchval(
                "SELECT count(*) FROM pg_tables WHERE schemaname IN ('audit','coverage','billing') "
                "OR (schemaname = 'core' AND tablename <> 'alembic_version')"
            )
            return n
        finally:
            await conn.close()

    assert asyncio.run(remaining()) == 0
    migrate.upgrade(url)
    assert _diff(url) == []


def test_pmpm_lines_move_into_chunks_and_back(scratch_db: Callable[[str], str]) -> None:
    """Lines written before the compact storage read the same through the view (work items
    included), and come back as rows on the way down."""
    url = scratch_db("mtm_migr_chunks")
    migrate.upgrade(url, "20261127_bill_other")
    run, item = "6c0a3f3e-0000-4000-8000-000000000001", "6c0a3f3e-0000-4000-8000-0000000000aa"
    cols = (
        "run_id, member_id, patient_id, patient_ref, on_roster, tier, rate_cents, enrolled_days, "
        "days_in_month, expected_cents, recorded_late, minutes, interventions, activity_met, "
        "received_cents, payment_count, recouped_cents, classification, variance_cents, "
        "work_item_id"
    )
    rows = [
        (run, "M1", None, "R1", True, "std", 2500, 31, 31, 2500, False, 20, 1, True, 2500, 1, 0,
         "paid_as_expected", 0, None),
        (run, "M2", None, "R2", True, "std", 2500, 31, 31, 2500, False, 0, 0, False, 0, 0, 0,
         "activity_not_met", -2500, item),
        (run, "X9", None, None, False, None, None, 0, 31, 0, False, 0, 0, None, 2500, 1, 0,
         "paid_not_on_roster", 2500, None),
    ]  # fmt: skip

    async def query(sql: str, *args: object) -> list[tuple[object, ...]]:
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            return [tuple(r) for r in await conn.fetch(sql, *args)]
        finally:
            await conn.close()

    marks = ", ".join(f"${i}" for i in range(1, 21))
    for row in rows:
        insert = f"INSERT INTO billing.pmpm_lines ({cols}) VALUES ({marks})"  # noqa: S608
        asyncio.run(query(insert, *row))
    read = f"SELECT {cols} FROM billing.pmpm_lines ORDER BY member_id"  # noqa: S608
    before = asyncio.run(query(read))
    migrate.upgrade(url)
    assert asyncio.run(query(read)) == before
    assert asyncio.run(query("SELECT count(*) FROM billing.pmpm_line_items")) == [(1,)]
    migrate.downgrade(url, "20261127_bill_other")
    assert asyncio.run(query(read)) == before
