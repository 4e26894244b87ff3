"""The ASGI application: ``create_app()`` wires settings, database and routes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import app
from app.api import health, problems, sessions, tenants
from app.api.middleware import BodySizeLimit
from app.runtime import open_runtime
from app.settings import Settings, get_settings
from app.tavus.retry import RetryPolicy

logger = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None, *, tavus_retry: RetryPolicy | None = None
) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        if settings.database_url is None:
            raise RuntimeError(
                "DATABASE_URL is unset; start Palisade with `palisade serve`, "
                "which runs an embedded PostgreSQL"
            )
        async with open_runtime(
            settings, settings.database_url, tavus_retry=tavus_retry
        ) as runtime:
            api.state.runtime = runtime
            yield

    api = FastAPI(
        title="Palisade",
        version=app.__version__,
        summary="Session orchestration for Tavus conversational video.",
        lifespan=lifespan,
    )
    problems.install(api)
    api.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    api.include_router(health.router)
    api.include_router(tenants.router)
    api.include_router(sessions.router)
    return api
