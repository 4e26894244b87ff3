"""The ``palisade`` command line."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import FrameType
from typing import Annotated

import typer
import uvicorn
from pydantic import ValidationError
from uvicorn.supervisors import Multiprocess

from app.db import migrations
from app.db.embedded import EmbeddedPostgres
from app.db.engine import create_engine
from app.settings import Settings, SettingsError

logger = logging.getLogger("palisade")

cli = typer.Typer(
    name="palisade",
    help="Session orchestration for Tavus conversational video.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EMBEDDED_DATABASE = "palisade"
SIMULATOR_DEFAULT_PORT = 8100


def _fail(message: str, code: int = 2) -> typer.Exit:
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
        raise _fail("; ".join(lines)) from None


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # pgserver narrates every command it runs at INFO.
    logging.getLogger("pgserver").setLevel(logging.WARNING)


def _raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Turn SIGTERM into an exception so `finally` blocks stop what we started.
    raise SystemExit(128 + signum)


@contextmanager
def database(settings: Settings) -> Iterator[str]:
    """Yield a DSN: the configured one, or one to an embedded server started here."""
    if settings.database_url is not None:
        yield settings.database_url
        return
    server = EmbeddedPostgres(settings.embedded_pgdata)
    server.start()
    try:
        server.ensure_database(EMBEDDED_DATABASE)
        yield server.url(EMBEDDED_DATABASE)
    finally:
        server.stop()


async def _schema_at_head(url: str, settings: Settings) -> bool:
    engine = create_engine(url, settings)
    try:
        return await migrations.is_at_head(engine, settings.migrations_dir)
    finally:
        await engine.dispose()


async def _upgrade(url: str, settings: Settings) -> None:
    engine = create_engine(url, settings)
    try:
        await migrations.upgrade(engine, "head", settings.migrations_dir)
    finally:
        await engine.dispose()


@contextmanager
def simulator_process(port: int) -> Iterator[str]:
    command = [sys.executable, "-m", "app", "simulator", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    migrate: Annotated[
        bool, typer.Option("--migrate", help="Upgrade an external database before serving.")
    ] = False,
    simulator_port: Annotated[
        int,
        typer.Option(help="Port of the built-in Tavus simulator (when TAVUS_API_KEY is unset)."),
    ] = SIMULATOR_DEFAULT_PORT,
) -> None:
    """Run the HTTP API (and, with no database or Tavus key, everything it needs)."""
    settings = load_settings()
    _configure_logging(settings)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    with database(settings) as url:
        if settings.uses_embedded_database or migrate:
            asyncio.run(_upgrade(url, settings))
        elif not asyncio.run(_schema_at_head(url, settings)):
            raise _fail(
                "the database schema is out of date: run `palisade migrate` "
                "(or `palisade serve --migrate`)"
            )
        env = {"DATABASE_URL": url, "PALISADE_MODE": str(settings.mode)}
        if settings.is_dev and "PUBLIC_BASE_URL" not in os.environ:
            env["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"
        with _simulator_if_needed(settings, simulator_port) as simulator_url:
            if simulator_url:
                env["TAVUS_BASE_URL"] = simulator_url
            os.environ.update(env)
            if settings.is_dev:
                typer.secho(
                    f"Palisade (dev mode) on http://{host}:{port}  admin token: "
                    f"{settings.admin_token_value}",
                    fg=typer.colors.GREEN,
                )
            _run_uvicorn(
                uvicorn.Config(
                    "app.main:create_app",
                    factory=True,
                    host=host,
                    port=port,
                    workers=workers,
                    proxy_headers=True,
                    forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
                    log_level=settings.log_level.lower(),
                    timeout_graceful_shutdown=20,
                )
            )


class _Server(uvicorn.Server):
    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn re-raises the signal that stopped it; the CLI still has an embedded
        # database and a simulator to stop, so it returns normally instead.
        with super().capture_signals():
            try:
                yield
            finally:
                self._captured_signals.clear()


def _run_uvicorn(config: uvicorn.Config) -> None:
    if config.workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        _Server(config).run()


@contextmanager
def _simulator_if_needed(settings: Settings, port: int) -> Iterator[str | None]:
    if not settings.uses_simulator:
        yield None
        return
    banner = (
        "TAVUS_API_KEY is unset: using the built-in Tavus SIMULATOR on "
        f"http://127.0.0.1:{port}; no real conversations will start"
    )
    typer.secho("!" * len(banner), fg=typer.colors.YELLOW, err=True)
    typer.secho(banner, fg=typer.colors.YELLOW, bold=True, err=True)
    typer.secho("!" * len(banner), fg=typer.colors.YELLOW, err=True)
    with simulator_process(port) as url:
        yield url


@cli.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Upgrade the database schema (the embedded one when DATABASE_URL is unset)."""
    settings = load_settings()
    _configure_logging(settings)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    with database(settings) as url:
        engine_url = url

        async def run() -> None:
            engine = create_engine(engine_url, settings)
            try:
                await migrations.upgrade(engine, revision, settings.migrations_dir)
                current = await migrations.current_revisions(engine)
            finally:
                await engine.dispose()
            typer.echo(f"database at revision {', '.join(sorted(current)) or '(empty)'}")

        asyncio.run(run())


def main() -> None:
    with suppress(KeyboardInterrupt):
        cli()


if __name__ == "__main__":
    main()
