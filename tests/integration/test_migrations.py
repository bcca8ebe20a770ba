"""Migrations build exactly the models, and go down to base and back up."""

from __future__ import annotations

import asyncio

import asyncpg
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
    server_database_url: str, testrun_uid: str
) -> None:
    url = _fresh_db(server_database_url, f"mtm_migrations_{testrun_uid[:8]}")
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
