"""What every ``palisade`` command shares: settings, one-line failures, signals, the database."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Annotated

import typer
from pydantic import ValidationError

from app.db import embedded, migrations
from app.db.embedded import EmbeddedPostgres
from app.db.engine import create_engine
from app.settings import Settings, SettingsError, is_loopback_host

logger = logging.getLogger("palisade")

EMBEDDED_DATABASE = "palisade"
# Neither the embedded PostgreSQL nor the Tavus simulator is in the production image; a
# source checkout set up as the README says has both (docs/dependencies.md).
NOT_IN_THE_IMAGE = (
    "the production image leaves it out; a source checkout set up as the README says "
    "(`pip install -r requirements/local.txt && pip install --no-deps -e .`) has it"
)


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"palisade: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def load_settings() -> Settings:
    """Settings, or one clear line saying what to fix."""
    try:
        return Settings()
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            ctx_error = (error.get("ctx") or {}).get("error")
            if isinstance(ctx_error, SettingsError):
                lines.append(str(ctx_error))
            else:
                where = ".".join(str(p) for p in error.get("loc", ())) or "settings"
                lines.append(f"{where.upper()}: {error.get('msg')}")
        raise fail("; ".join(lines)) from None


AllowPublicDev = Annotated[
    bool,
    typer.Option(
        "--allow-public-dev",
        help="In dev mode, bind a non-loopback --host anyway (it serves the well-known "
        "dev admin token).",
    ),
]


def refuse_public_dev(settings: Settings, host: str, allowed: bool) -> None:
    # Dev mode's admin token is printed in the README: served on a reachable interface,
    # it hands the admin API to anyone on the network.
    if settings.is_dev and not allowed and not is_loopback_host(host):
        raise fail(
            f"dev mode serves the well-known dev admin token, so it binds loopback only, "
            f"not {host}: use --host 127.0.0.1, or set PALISADE_MODE=production with "
            "ADMIN_TOKEN and SECRET_KEY, or pass --allow-public-dev"
        )


def raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Turn SIGTERM into an exception so `finally` blocks stop what we started.
    raise SystemExit(128 + signum)


@contextmanager
def database(settings: Settings) -> Iterator[str]:
    """Yield a DSN: the configured one, or one to an embedded server started here."""
    if settings.database_url is not None:
        yield settings.database_url
        return
    if not embedded.is_installed():
        raise fail(
            "DATABASE_URL is unset and the embedded PostgreSQL is not installed "
            f"({NOT_IN_THE_IMAGE}): set DATABASE_URL"
        )
    server = EmbeddedPostgres(settings.embedded_pgdata)
    server.start()
    try:
        server.ensure_database(EMBEDDED_DATABASE)
        yield server.url(EMBEDDED_DATABASE)
    finally:
        server.stop()


async def schema_can_serve(url: str, settings: Settings) -> bool:
    """At head, or ahead (a newer release migrated it: additive-first migrations let this
    one run on it, so a rollback or a restart mid-upgrade still starts)."""
    engine = create_engine(url, settings)
    try:
        state = await migrations.current_schema_state(engine, settings.migrations_dir)
    finally:
        await engine.dispose()
    if state is migrations.SchemaState.AHEAD:
        logger.warning("the database schema is newer than this release; serving on it")
    return state.can_serve


async def upgrade(url: str, settings: Settings, revision: str = "head") -> set[str]:
    """Upgrade the schema to ``revision``; the revisions the database is at afterwards."""
    engine = create_engine(url, settings)
    try:
        await migrations.upgrade(engine, revision, settings.migrations_dir)
        return set(await migrations.current_revisions(engine))
    finally:
        await engine.dispose()
