"""Engine and metadata factories. Nothing is connected at import time."""

from __future__ import annotations

from typing import Any

from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

# One constraint naming convention for every schema, so migrations name things predictably.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SCHEMAS = ("core", "audit", "coverage", "billing")

metadata = MetaData(naming_convention=NAMING_CONVENTION)


def normalize_database_url(url: str) -> str:
    """Accept postgres://, postgresql:// or postgresql+asyncpg:// and return the asyncpg form."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError("MTM_DATABASE_URL must be a postgresql:// URL")


def asyncpg_dsn(url: str) -> str:
    """The same URL in the plain form asyncpg.connect() accepts."""
    return "postgresql://" + normalize_database_url(url)[len("postgresql+asyncpg://") :]


def create_engine(
    url: str, *, pool_size: int = 10, max_overflow: int = 10, **kw: Any
) -> AsyncEngine:
    return create_async_engine(
        normalize_database_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=False,
        # Statement caching on asyncpg's side is what makes repeated inserts cheap.
        connect_args={"server_settings": {"application_name": "mtm-billing"}},
        **kw,
    )


def load_all_tables() -> MetaData:
    """Import every table module so `metadata` is complete (for Alembic and tests)."""
    import services.billing.tables
    import services.billing.tables_pmpm
    import services.billing.tables_remittance
    import services.billing.tables_submission
    import services.coverage.tables  # noqa: F401
    import shared.tables  # noqa: F401

    return metadata


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Alembic filter: views are described as Tables (to select from) marked `is_view`; the
    migrations create them with SQL, and autogenerate must not take them for tables."""
    info = getattr(obj, "info", None)
    return not (type_ == "table" and isinstance(info, dict) and info.get("is_view"))


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic filter: our schemas only, and not Alembic's own version table."""
    if type_ == "schema":
        return name in SCHEMAS
    if type_ == "table":
        return name != "alembic_version"
    return True
