"""The one Litestar app factory: mounts coverage, billing or both, per Settings.components."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin

from services.billing.adapters.history_claims import ClaimHistory
from services.billing.api import billing_router
from services.common_api import ApiKeyController, AuditController, whoami
from shared.auth import KeyCache
from shared.config import Settings
from shared.db import create_engine
from shared.http import EXCEPTION_HANDLERS, RequestIdMiddleware
from shared.jobs import ArqQueue
from shared.logging import configure_logging, get_logger
from shared.uow import Database
from shared.web import OPENAPI_PATH, RUNTIME_KEY, Runtime, auth_guard, health, ready

log = get_logger("services.app")


def _arq_redis(url: str) -> Any:
    from arq.connections import ArqRedis

    # Lazy connection (no ping at start): the API starts and serves even while Redis is
    # down; /ready says so and the outbox sweeper re-sends what could not be enqueued.
    return ArqRedis.from_url(url, socket_connect_timeout=1, socket_timeout=2)


def create_app(
    settings: Settings, *, database: Database | None = None, configure_logs: bool = True
) -> Litestar:
    """Build the app. `database` lets tests inject a shared-connection database."""
    if configure_logs:
        configure_logging(settings.log_level, json=settings.log_json)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        db = database or Database(
            create_engine(
                settings.database_url,
                pool_size=settings.db_pool_size,
                max_overflow=settings.db_max_overflow,
            ),
            raw_pool_size=settings.db_pool_size + settings.db_max_overflow,
        )
        redis: Any = _arq_redis(settings.redis_url) if settings.redis_url else None
        queue = ArqQueue(redis, settings.queue_name) if redis is not None else None
        app.state[RUNTIME_KEY] = Runtime(
            settings=settings,
            db=db,
            queue=queue,
            redis=redis,
            keys=KeyCache(settings.api_key_cache_seconds),
            # The composition root wires the ports: coverage asks billing for prior services
            # (frequency limits) through its claims history, in process.
            extras={"billing_history": ClaimHistory()},
        )
        # Everything allocated so far lives as long as the process: move it out of the cyclic
        # collector's view, so its pauses (tail latency) stay short under load.
        gc.freeze()
        log.info("api.started", components=settings.components)
        try:
            yield
        finally:
            if redis is not None:
                await redis.aclose()
            if database is None:
                await db.dispose()

    handlers: list[Any] = [health, ready, AuditController, ApiKeyController, whoami]
    if settings.components in ("billing", "all"):
        handlers.append(billing_router())
    if settings.components in ("coverage", "all"):
        from services.coverage.api import coverage_router

        handlers.append(coverage_router())

    app = Litestar(
        route_handlers=handlers,
        lifespan=[lifespan],
        guards=[auth_guard],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=OpenAPIConfig(
            title="mtm-billing",
            version="0.1.0",
            description=(
                "Billing and claims for community-pharmacy MTM. Authenticate with "
                "'Authorization: Bearer <API key>'. Errors are RFC 9457 problem+json."
            ),
            path=OPENAPI_PATH,
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
        ),
        debug=False,
        logging_config=None,
    )
    # Outermost, around Litestar's exception handling, so that routing errors (404/405)
    # carry a request id too; Litestar's own middleware runs per route only.
    app.asgi_handler = RequestIdMiddleware(app.asgi_handler)
    return app


def app_from_env() -> Litestar:
    """Factory for `uvicorn --factory` and multi-process serving: Settings from MTM_*."""
    return create_app(Settings.from_env())
