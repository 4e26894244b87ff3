"""`palisade serve` and `palisade worker`: supervise uvicorn, and in dev mode everything the
API needs beside it (embedded PostgreSQL, the Tavus simulator, the demo tenant)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Annotated

import typer
import uvicorn
from uvicorn.supervisors import Multiprocess

from app.cli.base import (
    AllowPublicDev,
    database,
    fail,
    load_settings,
    raise_on_sigterm,
    refuse_public_dev,
    schema_can_serve,
    upgrade,
)
from app.cli.dev_stack import (
    SIMULATOR_DEFAULT_PORT,
    RunningStack,
    RuntimeFile,
    seed_demo_tenant,
    simulator_process,
)
from app.main import create_app
from app.observability.logging import configure_logging
from app.observability.metrics import multiprocess_directory
from app.settings import HTTP_KEEP_ALIVE_SECONDS, Settings


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
    allow_public_dev: AllowPublicDev = False,
) -> None:
    """Run the HTTP API (and, with no database or Tavus key, everything it needs)."""
    settings = load_settings()
    refuse_public_dev(settings, host, allow_public_dev)
    configure_logging(settings)
    signal.signal(signal.SIGTERM, raise_on_sigterm)
    with database(settings) as url:
        if settings.uses_embedded_database or migrate:
            asyncio.run(upgrade(url, settings))
        elif not asyncio.run(schema_can_serve(url, settings)):
            raise fail(
                "the database schema is out of date: run `palisade migrate` "
                "(or `palisade serve --migrate`)"
            )
        env = {"DATABASE_URL": url, "PALISADE_MODE": str(settings.mode)}
        if settings.is_dev and "PUBLIC_BASE_URL" not in os.environ:
            env["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"
        with (
            simulator_process(settings, simulator_port)
            if settings.uses_simulator
            else nullcontext(None)
        ) as simulator_url:
            if simulator_url:
                env["TAVUS_BASE_URL"] = simulator_url
            os.environ.update(env)
            if simulator_url and settings.is_dev:
                seeded = settings.model_copy(
                    update={
                        "database_url": url,
                        "tavus_base_url": simulator_url,
                        "public_base_url": env.get("PUBLIC_BASE_URL", settings.public_base_url),
                    }
                )
                banner = seed_demo_tenant(seeded, url, simulator_url)
                typer.secho(banner, fg=typer.colors.CYAN)
            stack = RunningStack(
                pid=os.getpid(),
                api_url=f"http://{host}:{port}",
                database_url=url,
                tavus_base_url=simulator_url,
            )
            with RuntimeFile(settings.data_dir).kept(stack) if settings.is_dev else nullcontext():
                if settings.is_dev:
                    typer.secho(
                        f"Palisade (dev mode) on http://{host}:{port}  admin token: "
                        f"{settings.admin_token_value}",
                        fg=typer.colors.GREEN,
                    )
                _serve_api(settings, host, port, workers)


def _serve_api(settings: Settings, host: str, port: int, workers: int) -> None:
    # Workers share their metrics through files; one process keeps them in memory.
    with multiprocess_directory() if workers > 1 else nullcontext():
        run_uvicorn(
            uvicorn.Config(
                "app.main:create_served_app",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                proxy_headers=True,
                forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
                log_level=settings.log_level.lower(),
                # uvicorn's own handlers would bypass the redacting formatter, and
                # its access log prints query strings (webhook tokens): Palisade
                # logs each request itself (app/observability/http.py).
                log_config=None,
                access_log=False,
                timeout_graceful_shutdown=20,
                timeout_keep_alive=HTTP_KEEP_ALIVE_SECONDS,
            )
        )


def worker(
    host: Annotated[str, typer.Option(help="Interface for the probes and /metrics.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for the probes and /metrics.")] = 9100,
    allow_public_dev: AllowPublicDev = False,
) -> None:
    """Run only the background work (reconciler, warm pools, periodic sweep); HTTP serves
    only /healthz, /readyz and /metrics."""
    settings = load_settings()
    refuse_public_dev(settings, host, allow_public_dev)
    configure_logging(settings)
    signal.signal(signal.SIGTERM, raise_on_sigterm)
    with database(settings) as url:
        if settings.uses_embedded_database:
            asyncio.run(upgrade(url, settings))
        elif not asyncio.run(schema_can_serve(url, settings)):
            raise fail("the database schema is out of date: run `palisade migrate`")
        # Whatever the API pods are told, a worker exists to run the background work.
        worker_settings = settings.model_copy(update={"database_url": url, "reconciler": True})
        typer.echo(f"palisade worker running; probes and /metrics on http://{host}:{port}")
        # uvicorn turns SIGTERM into a graceful stop: the lifespan stops claiming, lets
        # in-flight Tavus calls finish within a bound and releases the claims.
        run_uvicorn(
            uvicorn.Config(
                create_app(worker_settings, serve_api=False),
                host=host,
                port=port,
                log_level=settings.log_level.lower(),
                log_config=None,
                access_log=False,
                timeout_graceful_shutdown=20,
            )
        )
        typer.echo("palisade worker stopped; claims released")


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


def run_uvicorn(config: uvicorn.Config) -> None:
    if config.workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        _Server(config).run()
