"""The ASGI application: ``create_app()`` wires settings, database and routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp

import app
from app import console
from app.api import dev, health, metrics, problems, sessions, tenant_webhooks, tenants, webhooks
from app.api.cors import TenantCors
from app.api.middleware import BodySizeLimit
from app.domain.leased_loop import LeasedLoop, utcnow
from app.domain.retention import prune_expired
from app.domain.sessions.sweep import sweep_if_alone
from app.observability.http import RequestObservability
from app.observability.logging import configure_logging
from app.observability.tracing import tracing_for
from app.runtime import Runtime, open_runtime
from app.settings import Settings, get_settings
from app.tavus.retry import RetryPolicy

logger = logging.getLogger(__name__)

METRICS_OFF_WARNING = "GET /metrics answers 404 until PALISADE_METRICS_TOKEN is set"

OPENAPI_TAGS = [
    {
        "name": "sessions",
        "description": "A tenant's sessions, with a tenant API key whose scopes allow the "
        "operation. Browsers call them from the tenant's `cors_origins` (docs/frontends.md).",
    },
    {"name": "tenants", "description": "Tenants and their profiles (admin token)."},
    {"name": "api-keys", "description": "Tenants' API keys and their restrictions (admin token)."},
    {
        "name": "tenant-webhooks",
        "description": "Where Palisade tells a tenant's backend what happened to its "
        "sessions, and each delivery (admin token; docs/webhooks.md).",
    },
    {"name": "webhooks", "description": "Where Tavus reports on conversations."},
    {"name": "operations", "description": "Probes for orchestrators."},
]


@asynccontextmanager
async def background_work(runtime: Runtime) -> AsyncIterator[None]:
    """Run the reconciler, the warm pool's refill, the webhook sender and the periodic
    orphan sweep beside the API; on shutdown stop claiming, let in-flight calls finish
    within a bound, release claims."""
    if not runtime.settings.reconciler or runtime.reconciler is None:
        yield
        return
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(
            LeasedLoop(runtime.reconciler, runtime.reconciler.config.loop).run(stop),
            name="reconciler",
        ),
        asyncio.create_task(
            LeasedLoop(
                runtime.warm_pool, runtime.warm_pool.config.loop, wake=runtime.warm_pool.wake
            ).run(stop),
            name="warm-pool",
        ),
        asyncio.create_task(
            LeasedLoop(
                runtime.webhook_sender,
                runtime.webhook_sender.config.loop,
                wake=runtime.webhook_sender.wake,
            ).run(stop),
            name="webhook-sender",
        ),
    ]
    if runtime.settings.sweep_interval_seconds > 0:
        tasks.append(asyncio.create_task(periodic_sweep(runtime, stop), name="sweep"))
    try:
        yield
    finally:
        stop.set()
        for task, outcome in zip(
            tasks, await asyncio.gather(*tasks, return_exceptions=True), strict=True
        ):
            # Shutdown goes on: leases that could not be handed back run out by themselves.
            if isinstance(outcome, Exception):
                logger.error("%s stopped with an error", task.get_name(), exc_info=outcome)


async def periodic_sweep(runtime: Runtime, stop: asyncio.Event) -> None:
    interval = runtime.settings.sweep_interval_seconds
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
        if stop.is_set():
            return
        try:
            await sweep_if_alone(runtime.sessionmaker, runtime.accounts)
        except Exception:
            logger.exception("periodic sweep failed")
        try:
            pruned = await prune_expired(
                runtime.sessionmaker,
                now=utcnow(),
                webhook_retention=timedelta(days=runtime.settings.webhook_retention_days),
            )
        except Exception:
            logger.exception("pruning expired records failed")
        else:
            if pruned.idempotency_keys or pruned.webhook_events:
                logger.info(
                    "pruned %d expired idempotency keys and %d settled webhook events",
                    pruned.idempotency_keys,
                    pruned.webhook_events,
                )


class PalisadeAPI(FastAPI):
    def build_middleware_stack(self) -> ASGIApp:
        # Outside Starlette's own error middleware, so that its 500s are observed too.
        return RequestObservability(super().build_middleware_stack(), self._route_templates)

    def openapi(self) -> dict[str, Any]:
        if not self.openapi_schema:
            self.openapi_schema = problems.document_problems(super().openapi())
        return self.openapi_schema

    def _route_templates(self) -> list[str]:
        # FastAPI's public view of its routes; cached until the routes change.
        return list(self.openapi()["paths"])


def create_app(
    settings: Settings | None = None,
    *,
    tavus_retry: RetryPolicy | None = None,
    serve_api: bool = True,
) -> FastAPI:
    """The app of `palisade serve`; with ``serve_api=False``, that of `palisade worker`:
    the same background work, with only the health probes and ``/metrics``."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        if settings.database_url is None:
            raise RuntimeError(
                "DATABASE_URL is unset; start Palisade with `palisade serve`, "
                "which runs an embedded PostgreSQL"
            )
        if settings.metrics_token is None and not settings.is_dev:
            logger.warning(METRICS_OFF_WARNING)
        async with (
            tracing_for(settings),
            open_runtime(settings, settings.database_url, tavus_retry=tavus_retry) as runtime,
        ):
            api.state.runtime = runtime
            async with background_work(runtime):
                yield

    api = PalisadeAPI(
        title="Palisade",
        version=app.__version__,
        summary="Session orchestration for Tavus conversational video.",
        lifespan=lifespan,
        openapi_tags=OPENAPI_TAGS,
    )
    problems.install(api)
    api.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    api.add_middleware(TenantCors)
    api.include_router(health.router)
    if serve_api:
        api.include_router(tenants.router)
        api.include_router(tenant_webhooks.router)
        api.include_router(sessions.router)
        api.include_router(webhooks.router)
        console.install(api)
        if settings.is_dev:
            api.include_router(dev.router)
    api.include_router(metrics.router)
    return api


def create_served_app() -> FastAPI:
    """The factory `palisade serve` gives uvicorn. Each worker process starts from a
    fresh interpreter, so it sets up its own logging before anything logs."""
    settings = get_settings()
    configure_logging(settings)
    return create_app(settings)
