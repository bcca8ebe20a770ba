"""Alembic environment (async). The URL comes from the Config attribute set by
`shared.migrate` or, for the plain `alembic` CLI, from MTM_DATABASE_URL."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

from shared.db import create_engine, include_name, include_object, load_all_tables

config = context.config
target_metadata = load_all_tables()


def _configure(connection: Connection | None = None, url: str | None = None) -> None:
    context.configure(
        connection=connection,
        url=url,
        target_metadata=target_metadata,
        include_schemas=True,
        include_name=include_name,
        include_object=include_object,
        compare_type=True,
        compare_server_default=True,
        version_table_schema="core",
    )


def _url() -> str:
    url = config.attributes.get("database_url") or os.environ.get("MTM_DATABASE_URL", "")
    if not url:
        raise RuntimeError("set MTM_DATABASE_URL")
    return str(url)


def run_offline() -> None:
    _configure(url=_url())
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection: Connection) -> None:
    # The version table lives in `core`, which the first migration creates: make sure it exists.
    connection.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS core")
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_sync(connection)
        return
    engine = create_engine(_url(), pool_size=1, max_overflow=0)
    async with engine.connect() as conn:
        await conn.run_sync(_run_sync)
        await conn.commit()
    await engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    asyncio.run(run_online())
