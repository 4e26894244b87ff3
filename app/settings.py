"""Typed settings, read once from the environment (and `.env`) and validated at start-up.

The six variables of the product contract keep their plain names (``DATABASE_URL``,
``TAVUS_API_KEY``, ...); Palisade's own tuning knobs are prefixed ``PALISADE_``.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Values an operator may have copied from an example file; never acceptable outside dev.
PLACEHOLDER_SECRETS = frozenset(
    {"", "changeme", "change-me", "changethis", "secret", "password", "admin", "xxx", "todo"}
)
DEV_ADMIN_TOKEN = "dev-admin-token"
DEV_SECRET_KEY = "palisade-dev-secret-key-not-for-production"
MIN_ADMIN_TOKEN_LENGTH = 16
MIN_SECRET_KEY_LENGTH = 32
# With no TAVUS_API_KEY, Palisade talks to its own Tavus simulator (started by `serve`).
SIMULATOR_DEFAULT_URL = "http://127.0.0.1:8100"
SIMULATOR_API_KEY = "palisade-simulator"
# Tavus documents nothing about how soon a new object shows in its listings.
DEFAULT_LIST_SETTLE_SECONDS = 10.0
# An ended conversation is confirmed on Tavus at least this often until a webhook says so.
END_RECHECK_MAX_SECONDS = 15.0
# How long Palisade's HTTP servers (and the simulator's) keep an idle connection open:
# longer than the load balancers and clients in front (60 s is common; httpx keeps 5 s).
# A server that closes an idle connection first races the client's next request on it,
# which then fails.
HTTP_KEEP_ALIVE_SECONDS = 75


class Mode(StrEnum):
    DEV = "dev"
    PRODUCTION = "production"


class SettingsError(ValueError):
    """A configuration problem worth one clear line to the operator."""


def _env(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
        populate_by_name=True,
    )

    # --- the product contract (DESIGN §5) ---
    database_url: Annotated[str | None, Field(validation_alias=_env("DATABASE_URL"))] = None
    tavus_api_key: Annotated[SecretStr | None, Field(validation_alias=_env("TAVUS_API_KEY"))] = None
    tavus_base_url: Annotated[str | None, Field(validation_alias=_env("TAVUS_BASE_URL"))] = None
    public_base_url: Annotated[str, Field(validation_alias=_env("PUBLIC_BASE_URL"))] = (
        "http://localhost:8000"
    )
    admin_token: Annotated[SecretStr | None, Field(validation_alias=_env("ADMIN_TOKEN"))] = None
    secret_key: Annotated[SecretStr | None, Field(validation_alias=_env("SECRET_KEY"))] = None
    # Unset: GET /metrics is open in dev mode and off (404) in production.
    metrics_token: Annotated[
        SecretStr | None, Field(validation_alias=_env("PALISADE_METRICS_TOKEN"))
    ] = None

    # OpenTelemetry's own variable: set, traces go there over OTLP/HTTP
    # (docs/observability.md); unset, tracing is off and costs nothing.
    otel_exporter_otlp_endpoint: Annotated[
        str | None, Field(validation_alias=_env("OTEL_EXPORTER_OTLP_ENDPOINT"))
    ] = None

    # --- Palisade's own knobs ---
    mode: Annotated[Mode | None, Field(validation_alias=_env("PALISADE_MODE"))] = None
    data_dir: Annotated[Path, Field(validation_alias=_env("PALISADE_DATA_DIR"))] = Path(".palisade")
    log_level: Annotated[str, Field(validation_alias=_env("PALISADE_LOG_LEVEL"))] = "info"
    # Kept open: an overflow connection is opened for one checkout and closed when it is
    # returned to a full pool, so a burst beyond the pool pays a connection set-up per
    # query. The same 20 connections at most as before, all of them kept.
    db_pool_size: Annotated[
        int, Field(ge=1, le=200, validation_alias=_env("PALISADE_DB_POOL_SIZE"))
    ] = 20
    db_max_overflow: Annotated[
        int, Field(ge=0, le=200, validation_alias=_env("PALISADE_DB_MAX_OVERFLOW"))
    ] = 0
    max_body_bytes: Annotated[
        int, Field(ge=1024, le=16 * 1024 * 1024, validation_alias=_env("PALISADE_MAX_BODY_BYTES"))
    ] = 256 * 1024
    tavus_timeout_seconds: Annotated[
        float, Field(gt=0, le=120, validation_alias=_env("PALISADE_TAVUS_TIMEOUT_SECONDS"))
    ] = 10.0
    reconciler: Annotated[bool, Field(validation_alias=_env("PALISADE_RECONCILER"))] = True
    reconciler_tick_seconds: Annotated[
        float, Field(gt=0, le=60, validation_alias=_env("PALISADE_RECONCILER_TICK_SECONDS"))
    ] = 1.0
    # Sessions the reconciler of one process works on at once (each mostly waiting on a
    # Tavus call): the cleanup drain is about this many divided by Tavus's latency.
    reconciler_concurrency: Annotated[
        int, Field(ge=1, le=500, validation_alias=_env("PALISADE_RECONCILER_CONCURRENCY"))
    ] = 25
    poll_interval_seconds: Annotated[
        float, Field(gt=0, le=3600, validation_alias=_env("PALISADE_POLL_INTERVAL_SECONDS"))
    ] = 60.0
    sweep_interval_seconds: Annotated[
        float, Field(ge=0, le=86400, validation_alias=_env("PALISADE_SWEEP_INTERVAL_SECONDS"))
    ] = 600.0
    retry_backoff_seconds: Annotated[
        float, Field(gt=0, le=60, validation_alias=_env("PALISADE_RETRY_BACKOFF_SECONDS"))
    ] = 2.0
    deadline_grace_seconds: Annotated[
        int, Field(ge=0, le=3600, validation_alias=_env("PALISADE_DEADLINE_GRACE_SECONDS"))
    ] = 120
    start_lease_seconds: Annotated[
        int, Field(ge=5, le=600, validation_alias=_env("PALISADE_START_LEASE_SECONDS"))
    ] = 60
    # After a create whose outcome is unknown, how long before a lookup's "not there" is
    # trusted (a listing may lag behind a create), doubling while it stays unresolved.
    # Unset: 10 s, or half the start lease if that is shorter (see ``list_settle``).
    tavus_list_settle_seconds: Annotated[
        float | None,
        Field(gt=0, le=300, validation_alias=_env("PALISADE_TAVUS_LIST_SETTLE_SECONDS")),
    ] = None
    # Pages one lookup of a PAL or conversation may read; past it, "cannot tell".
    tavus_lookup_max_pages: Annotated[
        int, Field(ge=1, le=10_000, validation_alias=_env("PALISADE_TAVUS_LOOKUP_MAX_PAGES"))
    ] = 100
    # How long a shutdown webhook that Tavus does not confirm is re-checked before it is
    # recorded as unconfirmed.
    shutdown_confirm_seconds: Annotated[
        float, Field(gt=0, le=600, validation_alias=_env("PALISADE_SHUTDOWN_CONFIRM_SECONDS"))
    ] = 30.0
    # How long each process accepts an API key it found active without looking it up
    # again: a revocation reaches other processes within it (0: look up every request).
    api_key_cache_seconds: Annotated[
        float, Field(ge=0, le=60, validation_alias=_env("PALISADE_API_KEY_CACHE_SECONDS"))
    ] = 5.0
    idempotency_ttl_hours: Annotated[
        int, Field(ge=24, le=24 * 30, validation_alias=_env("PALISADE_IDEMPOTENCY_TTL_HOURS"))
    ] = 24
    pool_tick_seconds: Annotated[
        float, Field(gt=0, le=60, validation_alias=_env("PALISADE_POOL_TICK_SECONDS"))
    ] = 2.0
    pool_max_pals_per_tenant: Annotated[
        int,
        Field(ge=0, le=100_000, validation_alias=_env("PALISADE_POOL_MAX_PALS_PER_TENANT")),
    ] = 50
    # Interactions each process sends to one conversation per minute: Tavus's documented
    # limit (0: no allowance of Palisade's own; Tavus's 429 alone then holds it back).
    interactions_per_minute: Annotated[
        int,
        Field(ge=0, le=100_000, validation_alias=_env("PALISADE_INTERACTIONS_PER_MINUTE")),
    ] = 120
    # How long an operator stays signed in to the console (/console) without signing in
    # again; a new ADMIN_TOKEN or SECRET_KEY signs everyone out at once.
    console_session_hours: Annotated[
        float, Field(gt=0, le=24 * 7, validation_alias=_env("PALISADE_CONSOLE_SESSION_HOURS"))
    ] = 8.0
    # Outbound tenant webhooks (docs/webhooks.md): how long one request to a receiver may
    # take, how many requests one process sends at once to one endpoint and in all, and
    # how long a rotated-out secret still signs.
    webhook_timeout_seconds: Annotated[
        float, Field(gt=0, le=60, validation_alias=_env("PALISADE_WEBHOOK_TIMEOUT_SECONDS"))
    ] = 10.0
    webhook_endpoint_concurrency: Annotated[
        int,
        Field(ge=1, le=1000, validation_alias=_env("PALISADE_WEBHOOK_ENDPOINT_CONCURRENCY")),
    ] = 10
    webhook_concurrency: Annotated[
        int, Field(ge=1, le=10_000, validation_alias=_env("PALISADE_WEBHOOK_CONCURRENCY"))
    ] = 100
    webhook_tick_seconds: Annotated[
        float, Field(gt=0, le=60, validation_alias=_env("PALISADE_WEBHOOK_TICK_SECONDS"))
    ] = 1.0
    webhook_secret_overlap_hours: Annotated[
        float,
        Field(ge=0, le=24 * 30, validation_alias=_env("PALISADE_WEBHOOK_SECRET_OVERLAP_HOURS")),
    ] = 24.0
    webhook_retention_days: Annotated[
        int, Field(ge=1, le=3650, validation_alias=_env("PALISADE_WEBHOOK_RETENTION_DAYS"))
    ] = 30
    # Seconds before each retry of a delivery, in order; the last failure marks it failed.
    # Unset: about a day (docs/webhooks.md). Tests and benchmarks shorten it.
    webhook_retry_seconds: Annotated[
        tuple[Annotated[float, Field(gt=0, le=7 * 86400)], ...] | None,
        Field(validation_alias=_env("PALISADE_WEBHOOK_RETRY_SECONDS")),
    ] = None
    migrations_dir: Annotated[
        Path | None, Field(validation_alias=_env("PALISADE_MIGRATIONS_DIR"))
    ] = None

    @field_validator("database_url")
    @classmethod
    def _asyncpg_driver(cls, value: str | None) -> str | None:
        return None if value is None else normalise_database_url(value)

    @field_validator("tavus_base_url", "public_base_url", "otel_exporter_otlp_endpoint")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _lease_outlasts_tavus_calls(self) -> Settings:
        # A start holds its session by a lease; one Tavus call must never outlive it, or
        # another process would take the session over while the call is still running.
        if self.start_lease_seconds < 3 * self.tavus_timeout_seconds:
            raise SettingsError(
                "PALISADE_START_LEASE_SECONDS must be at least 3 x PALISADE_TAVUS_TIMEOUT_SECONDS"
            )
        # A crashed start is resumed once its lease runs out; the creates it sent right
        # after taking the lease must show in the listings by then.
        settle = self.tavus_list_settle_seconds
        if settle is not None and settle >= self.start_lease_seconds:
            raise SettingsError(
                "PALISADE_TAVUS_LIST_SETTLE_SECONDS must be less than PALISADE_START_LEASE_SECONDS"
            )
        return self

    @model_validator(mode="after")
    def _mode_and_secrets(self) -> Settings:
        if self.tavus_base_url is None:
            self.tavus_base_url = (
                SIMULATOR_DEFAULT_URL if self.tavus_api_key is None else "https://tavusapi.com"
            )
        if self.mode is None:
            # Zero-setup: no database and no Tavus key means someone is trying Palisade out.
            self.mode = (
                Mode.DEV
                if self.database_url is None and self.tavus_api_key is None
                else Mode.PRODUCTION
            )
        if self.metrics_token is not None and not self.metrics_token.get_secret_value():
            self.metrics_token = None  # compose passes an unset variable as empty
        if self.metrics_token is not None:
            problem = _secret_problem(
                "PALISADE_METRICS_TOKEN", self.metrics_token, MIN_ADMIN_TOKEN_LENGTH, ""
            )
            if problem:
                raise SettingsError(problem)
        if self.mode is Mode.DEV:
            if self.admin_token is None:
                self.admin_token = SecretStr(DEV_ADMIN_TOKEN)
            if self.secret_key is None:
                self.secret_key = SecretStr(DEV_SECRET_KEY)
            return self
        problems = [
            problem
            for problem in (
                _secret_problem(
                    "ADMIN_TOKEN", self.admin_token, MIN_ADMIN_TOKEN_LENGTH, DEV_ADMIN_TOKEN
                ),
                _secret_problem(
                    "SECRET_KEY", self.secret_key, MIN_SECRET_KEY_LENGTH, DEV_SECRET_KEY
                ),
            )
            if problem
        ]
        if problems:
            raise SettingsError("; ".join(problems))
        return self

    # --- derived views -------------------------------------------------------

    @property
    def is_dev(self) -> bool:
        return self.mode is Mode.DEV

    @property
    def end_recheck(self) -> timedelta:
        """How long after asking Tavus to end a conversation Palisade checks that it did,
        when no shutdown webhook has come (and again at this pace until it has)."""
        return timedelta(seconds=min(END_RECHECK_MAX_SECONDS, self.poll_interval_seconds))

    @property
    def list_settle(self) -> timedelta:
        """How long after a create with an unknown outcome a lookup's "absent" is trusted."""
        if self.tavus_list_settle_seconds is not None:
            return timedelta(seconds=self.tavus_list_settle_seconds)
        return timedelta(seconds=min(DEFAULT_LIST_SETTLE_SECONDS, self.start_lease_seconds / 2))

    @property
    def console_session_lifetime(self) -> timedelta:
        return timedelta(hours=self.console_session_hours)

    @property
    def uses_embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def tavus_url(self) -> str:
        assert self.tavus_base_url is not None  # defaulted by _mode_and_secrets
        return self.tavus_base_url

    @property
    def uses_simulator(self) -> bool:
        return self.tavus_api_key is None

    @property
    def admin_token_value(self) -> str:
        assert self.admin_token is not None  # guaranteed by _mode_and_secrets
        return self.admin_token.get_secret_value()

    @property
    def secret_key_value(self) -> str:
        assert self.secret_key is not None  # guaranteed by _mode_and_secrets
        return self.secret_key.get_secret_value()

    @property
    def embedded_pgdata(self) -> Path:
        return self.data_dir / "pgdata"


def _secret_problem(
    name: str, value: SecretStr | None, min_length: int, dev_value: str
) -> str | None:
    raw = "" if value is None else value.get_secret_value()
    hint = f"set {name} to a random string of at least {min_length} characters"
    if not raw:
        return f"{name} is required in production mode: {hint}"
    if raw.strip().lower() in PLACEHOLDER_SECRETS or raw == dev_value:
        return f"{name} is a placeholder value: {hint}"
    if len(raw) < min_length:
        return f"{name} is too short: {hint}"
    return None


def is_loopback_host(host: str) -> bool:
    """Whether a server bound to ``host`` is reachable from this machine only: a loopback
    address or ``localhost``. A wildcard (``0.0.0.0``, ``::``), any other address and any
    other name may be reachable from elsewhere."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalise_database_url(url: str) -> str:
    """Accept the DSN spellings operators paste and always use the asyncpg driver."""
    for prefix in (
        "postgres://",
        "postgresql://",
        "postgresql+psycopg://",
        "postgresql+psycopg2://",
    ):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("postgresql+asyncpg://"):
        return url
    raise ValueError("must be a PostgreSQL URL (postgresql://user:password@host:5432/db)")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
