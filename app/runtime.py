"""Long-lived objects of one process, built once and shared by requests and workers."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db.engine import create_autocommit_sessionmaker, create_engine, create_sessionmaker
from app.db.instrumentation import count_round_trips_if_enabled
from app.db.raw import RawConnections
from app.domain.accounts import TavusAccounts
from app.domain.pool.refill import WarmPool, WarmPoolConfig
from app.domain.profiles.cache import ProfileCache
from app.domain.sessions.interactions import ConversationAllowance, InteractionRelay
from app.domain.sessions.reconcile import Reconciler, ReconcilerConfig
from app.domain.sessions.start import StartContext, StartSaga
from app.domain.tenants.authentication import ApiKeyAuthenticator
from app.domain.tenants.cors import ListedOrigins
from app.domain.tenants.pals import TavusPalDirectory
from app.domain.webhooks.sender import DEFAULT_RETRY_SCHEDULE, SenderConfig, WebhookSender
from app.observability import metrics, tracing
from app.observability.redaction import remember_secret
from app.security.console_sessions import ConsoleSessions
from app.security.secret_box import SecretBox
from app.security.tokens import WebhookTokens
from app.settings import SIMULATOR_API_KEY, Settings
from app.tavus.client import TavusClient
from app.tavus.retry import DEFAULT_RETRY_POLICY, RetryPolicy


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    # Statements that commit by themselves (single reads and atomic single writes).
    autocommit: async_sessionmaker[AsyncSession]
    # The session store's connections (admission and every move of a session).
    connections: RawConnections
    http: httpx.AsyncClient
    tavus: TavusClient
    accounts: TavusAccounts
    secret_box: SecretBox
    webhook_tokens: WebhookTokens
    # Operators' sign-ins to the console (/console).
    console_sessions: ConsoleSessions
    pals: TavusPalDirectory
    api_keys: ApiKeyAuthenticator
    # Origins some tenant lists, for CORS preflights.
    cors_origins: ListedOrigins
    start_saga: StartSaga
    reconciler: Reconciler | None
    warm_pool: WarmPool
    interactions: InteractionRelay
    # Tenants' webhooks: the sender and its own HTTP client.
    webhook_http: httpx.AsyncClient
    webhook_sender: WebhookSender


def instance_id() -> str:
    """Names this process in leases it takes on sessions (visible in the database)."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(3)}"


@asynccontextmanager
async def open_runtime(
    settings: Settings, database_url: str, *, tavus_retry: RetryPolicy | None = None
) -> AsyncIterator[Runtime]:
    engine = create_engine(database_url, settings)
    connections = RawConnections(engine)
    count_round_trips_if_enabled(engine, connections)
    # One client for the process: connection pooling and keep-alive to Tavus.
    http = httpx.AsyncClient(
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        timeout=httpx.Timeout(10.0, connect=3.0),
    )
    tracing.instrument_client(http)
    api_key = (
        settings.tavus_api_key.get_secret_value() if settings.tavus_api_key else SIMULATOR_API_KEY
    )
    tavus = TavusClient(
        http,
        base_url=settings.tavus_url,
        api_key=api_key,
        retry=tavus_retry or DEFAULT_RETRY_POLICY,
        timeout=httpx.Timeout(settings.tavus_timeout_seconds, connect=3.0, pool=3.0),
        max_lookup_pages=settings.tavus_lookup_max_pages,
        observe=tracing.traced_exchange(metrics.tavus_attempt),
        on_key=remember_secret,
    )
    # Receivers are the tenants' servers, untrusted and sometimes slow: a client of their
    # own, so they never hold the connections Tavus calls need, with no redirects (a
    # redirect could lead anywhere, past the URL checks) and their own timeout.
    webhook_http = httpx.AsyncClient(
        limits=httpx.Limits(
            max_connections=settings.webhook_concurrency,
            max_keepalive_connections=min(settings.webhook_concurrency, 50),
        ),
        timeout=httpx.Timeout(settings.webhook_timeout_seconds),
        follow_redirects=False,
    )
    sessionmaker = create_sessionmaker(engine)
    autocommit = create_autocommit_sessionmaker(engine)
    owner = instance_id()
    secret_box = SecretBox(settings.secret_key_value)
    webhook_tokens = WebhookTokens(settings.secret_key_value)
    accounts = TavusAccounts(tavus, secret_box, autocommit)
    warm_pool = WarmPool(
        sessionmaker,
        accounts,
        secret_box,
        owner,
        WarmPoolConfig(
            tick=timedelta(seconds=settings.pool_tick_seconds),
            lease=timedelta(seconds=settings.start_lease_seconds),
            max_pals_per_tenant=settings.pool_max_pals_per_tenant,
            backoff_base=timedelta(seconds=settings.retry_backoff_seconds),
        ),
        autocommit=autocommit,
        connections=connections,
    )
    start_saga = StartSaga(
        StartContext(
            sessionmaker=sessionmaker,
            connections=connections,
            profiles=ProfileCache(autocommit, secret_box),
            accounts=accounts,
            secret_box=secret_box,
            webhook_tokens=webhook_tokens,
            public_base_url=settings.public_base_url,
            instance_id=owner,
            start_lease=timedelta(seconds=settings.start_lease_seconds),
            deadline_grace=timedelta(seconds=settings.deadline_grace_seconds),
            idempotency_ttl=timedelta(hours=settings.idempotency_ttl_hours),
            poll_interval=timedelta(seconds=settings.poll_interval_seconds),
            warm_pool=warm_pool,
            lookup_settle=settings.list_settle,
        )
    )
    reconciler = Reconciler(
        connections,
        accounts,
        start_saga,
        owner,
        ReconcilerConfig(
            tick=timedelta(seconds=settings.reconciler_tick_seconds),
            concurrency=settings.reconciler_concurrency,
            # A pass claims at least as many as it may work on at once.
            batch=max(ReconcilerConfig.batch, settings.reconciler_concurrency),
            lease=timedelta(seconds=settings.start_lease_seconds),
            poll_interval=timedelta(seconds=settings.poll_interval_seconds),
            end_recheck=settings.end_recheck,
            backoff_base=timedelta(seconds=settings.retry_backoff_seconds),
            claim_window=timedelta(seconds=settings.shutdown_confirm_seconds),
        ),
        autocommit=autocommit,
    )
    webhook_sender = WebhookSender(
        autocommit,
        sessionmaker,
        webhook_http,
        secret_box,
        owner,
        SenderConfig(
            tick=timedelta(seconds=settings.webhook_tick_seconds),
            concurrency=settings.webhook_concurrency,
            endpoint_concurrency=settings.webhook_endpoint_concurrency,
            timeout=timedelta(seconds=settings.webhook_timeout_seconds),
            retry_schedule=(
                tuple(timedelta(seconds=s) for s in settings.webhook_retry_seconds)
                if settings.webhook_retry_seconds
                else DEFAULT_RETRY_SCHEDULE
            ),
            dev=settings.is_dev,
        ),
    )
    try:
        yield Runtime(
            settings=settings,
            engine=engine,
            sessionmaker=sessionmaker,
            autocommit=autocommit,
            connections=connections,
            http=http,
            tavus=tavus,
            accounts=accounts,
            secret_box=secret_box,
            webhook_tokens=webhook_tokens,
            console_sessions=ConsoleSessions(
                settings.secret_key_value,
                settings.admin_token_value,
                lifetime=settings.console_session_lifetime,
            ),
            api_keys=ApiKeyAuthenticator(
                autocommit,
                sessionmaker,
                remember_seconds=settings.api_key_cache_seconds,
            ),
            cors_origins=ListedOrigins(autocommit, remember_seconds=settings.api_key_cache_seconds),
            pals=TavusPalDirectory(tavus),
            start_saga=start_saga,
            reconciler=reconciler,
            warm_pool=warm_pool,
            interactions=InteractionRelay(
                sessionmaker,
                accounts,
                ConversationAllowance(settings.interactions_per_minute),
                autocommit=autocommit,
            ),
            webhook_http=webhook_http,
            webhook_sender=webhook_sender,
        )
    finally:
        await webhook_http.aclose()
        await http.aclose()
        await engine.dispose()
