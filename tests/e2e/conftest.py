"""The e2e tests reuse the integration fixtures (real PostgreSQL and Redis)."""

from tests.integration.conftest import (  # noqa: F401 - fixtures, registered by import
    committed_db,
    database_url,
    engine,
    redis_url,
    server_database_url,
    settings,
    tenant,
    worker_index,
)
