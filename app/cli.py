"""The ``palisade`` command line."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, TypeVar

import httpx
import typer
import uvicorn
import yaml
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from uvicorn.supervisors import Multiprocess

from app.db import migrations
from app.db.embedded import EmbeddedPostgres
from app.db.engine import create_engine
from app.domain import strict_json
from app.domain.sessions.sweep import sweep as run_sweep
from app.domain.tenants import service as tenant_service
from app.domain.tenants.apply import ApplyResult, TenantsFile, apply_tenants, tavus_keys
from app.domain.tenants.demo import demo_banner, seed_demo
from app.errors import AppError
from app.main import create_app
from app.observability.logging import configure_logging
from app.observability.metrics import multiprocess_directory
from app.runtime import Runtime, open_runtime
from app.settings import HTTP_KEEP_ALIVE_SECONDS, Settings, SettingsError, is_loopback_host

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


AllowPublicDev = Annotated[
    bool,
    typer.Option(
        "--allow-public-dev",
        help="In dev mode, bind a non-loopback --host anyway (it serves the well-known "
        "dev admin token).",
    ),
]


def _refuse_public_dev(settings: Settings, host: str, allowed: bool) -> None:
    # Dev mode's admin token is printed in the README: served on a reachable interface,
    # it hands the admin API to anyone on the network.
    if settings.is_dev and not allowed and not is_loopback_host(host):
        raise _fail(
            f"dev mode serves the well-known dev admin token, so it binds loopback only, "
            f"not {host}: use --host 127.0.0.1, or set PALISADE_MODE=production with "
            "ADMIN_TOKEN and SECRET_KEY, or pass --allow-public-dev"
        )


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


async def _schema_can_serve(url: str, settings: Settings) -> bool:
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
    allow_public_dev: AllowPublicDev = False,
) -> None:
    """Run the HTTP API (and, with no database or Tavus key, everything it needs)."""
    settings = load_settings()
    _refuse_public_dev(settings, host, allow_public_dev)
    configure_logging(settings)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    with database(settings) as url:
        if settings.uses_embedded_database or migrate:
            asyncio.run(_upgrade(url, settings))
        elif not asyncio.run(_schema_can_serve(url, settings)):
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
            if simulator_url and settings.is_dev:
                seeded = settings.model_copy(
                    update={
                        "database_url": url,
                        "tavus_base_url": simulator_url,
                        "public_base_url": env.get("PUBLIC_BASE_URL", settings.public_base_url),
                    }
                )
                banner = asyncio.run(_seed_demo(seeded, url, simulator_url))
                typer.secho(banner, fg=typer.colors.CYAN)
            if settings.is_dev:
                typer.secho(
                    f"Palisade (dev mode) on http://{host}:{port}  admin token: "
                    f"{settings.admin_token_value}",
                    fg=typer.colors.GREEN,
                )
            # Workers share their metrics through files; one process keeps them in memory.
            with multiprocess_directory() if workers > 1 else nullcontext():
                _run_uvicorn(
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


async def _seed_demo(settings: Settings, url: str, simulator_url: str) -> str:
    async with open_runtime(settings, url) as runtime:
        await _wait_for_simulator(runtime.http, simulator_url)
        seed = await seed_demo(runtime)
    return demo_banner(seed, settings.public_base_url)


async def _wait_for_simulator(http: httpx.AsyncClient, url: str, within: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        try:
            if (await http.get(f"{url}/_sim/healthz", timeout=1.0)).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if asyncio.get_running_loop().time() > deadline:
            raise _fail(f"the Tavus simulator did not start on {url}")
        await asyncio.sleep(0.05)


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
    configure_logging(settings)
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


@cli.command()
def simulator(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = SIMULATOR_DEFAULT_PORT,
    seed: Annotated[int | None, typer.Option(help="Seed for ids and faults (replayable).")] = None,
    time_scale: Annotated[
        float, typer.Option(min=0.001, help="Simulated seconds per real second.")
    ] = 1.0,
    max_concurrent_conversations: Annotated[
        int | None, typer.Option(min=0, help="Account concurrency slots (default unlimited).")
    ] = None,
    api_key: Annotated[
        list[str] | None, typer.Option(help="Accepted x-api-key (repeatable; default any).")
    ] = None,
    pal_get_shape: Annotated[
        str, typer.Option(help="GET /v2/pals/{id} shape: flat or wrapped.")
    ] = "flat",
    conversation_get_shape: Annotated[
        str, typer.Option(help="GET /v2/conversations/{id} shape: flat or wrapped.")
    ] = "flat",
    list_order: Annotated[
        str, typer.Option(help="List order: newest_first or oldest_first.")
    ] = "newest_first",
    list_max_limit: Annotated[
        int | None, typer.Option(help="Most items a list page holds (default no cap).")
    ] = None,
    list_page_ignored_after: Annotated[
        int | None, typer.Option(help="List pages above this answer page 1 (0: always).")
    ] = None,
    list_lag: Annotated[
        float, typer.Option(help="Simulated seconds before a change reaches the lists.")
    ] = 0.0,
    app_message_rate_limit: Annotated[
        int, typer.Option(help="send-app-message requests per conversation and window.")
    ] = 120,
    app_message_rate_window: Annotated[
        float, typer.Option(help="Simulated seconds of one send-app-message window.")
    ] = 60.0,
    prefill: Annotated[
        list[str] | None,
        typer.Option(
            help='Earlier objects for an account, as JSON: {"api_key": "k", '
            '"conversations": 5000, "active_conversations": 2, "pals": 50} (repeatable).'
        ),
    ] = None,
    public_base_url: Annotated[
        str, typer.Option(help="Prefix of every conversation_url.")
    ] = "https://tavus.daily.co",
    webhook_timeout: Annotated[
        float, typer.Option(min=0.001, help="Real seconds one webhook POST may take.")
    ] = 5.0,
    replica_join_delay: Annotated[
        float | None, typer.Option(min=0, help="Simulated seconds before the face joins.")
    ] = 1.0,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = False,
) -> None:
    """Run the standalone, fault-injectable Tavus simulator (docs/simulator.md)."""
    from app.tavus.simulator import SimulatorConfig, build_server
    from app.tavus.simulator.config import Prefill

    try:
        config = SimulatorConfig(
            seed=seed,
            time_scale=time_scale,
            max_concurrent_conversations=max_concurrent_conversations,
            api_keys=set(api_key) if api_key else None,
            pal_get_shape=pal_get_shape,
            conversation_get_shape=conversation_get_shape,
            list_order=list_order,
            list_max_limit=list_max_limit,
            list_page_ignored_after=list_page_ignored_after,
            list_lag_s=list_lag,
            app_message_rate_limit=app_message_rate_limit,
            app_message_rate_window_s=app_message_rate_window,
            prefill=tuple(Prefill.model_validate_json(spec) for spec in prefill or ()),
            public_base_url=public_base_url,
            webhook_timeout_s=webhook_timeout,
            replica_join_delay_s=replica_join_delay,
            access_log=access_log,
        )
    except ValidationError as exc:
        raise _fail(f"invalid simulator option: {exc.errors()[0]['msg']}") from None
    # `_Server` so that a SIGTERM or Ctrl-C ends a graceful shutdown with exit code 0
    # (supervisors and `palisade serve` stop it that way) instead of being re-raised.
    _Server(build_server(host, port, config, log_level="info").config).run()


@cli.command()
def worker(
    host: Annotated[str, typer.Option(help="Interface for the probes and /metrics.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for the probes and /metrics.")] = 9100,
    allow_public_dev: AllowPublicDev = False,
) -> None:
    """Run only the background work (reconciler, warm pools, periodic sweep); HTTP serves
    only /healthz, /readyz and /metrics."""
    settings = load_settings()
    _refuse_public_dev(settings, host, allow_public_dev)
    configure_logging(settings)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    with database(settings) as url:
        if settings.uses_embedded_database:
            asyncio.run(_upgrade(url, settings))
        elif not asyncio.run(_schema_can_serve(url, settings)):
            raise _fail("the database schema is out of date: run `palisade migrate`")
        # Whatever the API pods are told, a worker exists to run the background work.
        worker_settings = settings.model_copy(update={"database_url": url, "reconciler": True})
        typer.echo(f"palisade worker running; probes and /metrics on http://{host}:{port}")
        # uvicorn turns SIGTERM into a graceful stop: the lifespan stops claiming, lets
        # in-flight Tavus calls finish within a bound and releases the claims.
        _run_uvicorn(
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


@cli.command()
def sweep(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would be removed; change nothing.")
    ] = False,
) -> None:
    """Find Palisade's orphaned PALs and conversations on Tavus and remove them."""
    settings = load_settings()
    configure_logging(settings)

    async def work(runtime: Runtime, session: AsyncSession) -> list[str]:
        report = await run_sweep(runtime.sessionmaker, runtime.accounts, dry_run=dry_run)
        return report.lines()

    for line in _in_transaction(settings, work):
        typer.echo(line)


T = TypeVar("T")


def _in_transaction(settings: Settings, work: Callable[[Runtime, AsyncSession], Awaitable[T]]) -> T:
    """Run ``work`` in one transaction against the configured (or embedded) database."""
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    with database(settings) as url:

        async def run() -> T:
            async with open_runtime(settings, url) as runtime:
                if settings.uses_embedded_database:
                    await migrations.upgrade(runtime.engine, "head", settings.migrations_dir)
                elif not (
                    await migrations.current_schema_state(runtime.engine, settings.migrations_dir)
                ).can_serve:
                    raise _fail("the database schema is out of date: run `palisade migrate`")
                async with runtime.sessionmaker.begin() as session:
                    return await work(runtime, session)

        try:
            return asyncio.run(run())
        except AppError as exc:
            raise _fail(f"{exc.code}: {exc.detail}{_extra(exc)}") from None


def _extra(exc: AppError) -> str:
    errors = exc.extra.get("errors")
    if not errors:
        return ""
    return "".join(
        f"\n  {'.'.join(str(p) for p in e.get('loc', []))}: {e.get('code')}: {e.get('msg')}"
        for e in errors
    )


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


tenant_cli = typer.Typer(help="Tenants and their profiles.", no_args_is_help=True)
key_cli = typer.Typer(help="Tenant API keys.", no_args_is_help=True)
cli.add_typer(tenant_cli, name="tenant")
cli.add_typer(key_cli, name="key")


def _file_errors(exc: ValidationError) -> str:
    # Never the offending values: a file may hold a secret in the wrong place.
    return "".join(
        f"\n  {'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}"
        for e in exc.errors(include_input=False, include_url=False)
    )


@tenant_cli.command("apply")
def tenant_apply(
    file: Annotated[Path, typer.Option("-f", "--file", help="YAML or JSON file of tenants.")],
    prune_profiles: Annotated[
        bool, typer.Option("--prune-profiles", help="Remove profiles the file does not list.")
    ] = False,
) -> None:
    """Create or update tenants and profiles from a file; applying twice changes nothing."""
    settings = load_settings()
    configure_logging(settings)
    try:
        raw = yaml.safe_load(file.read_text())
        # The API's rule for JSON bodies, so that a file stores only what a body could:
        # YAML also has .nan, .inf, dates, and aliases that make a value contain itself.
        violation = strict_json.first_violation(raw)
        if violation is not None:
            where, reason = violation
            raise _fail(
                f"{file} is not a valid tenants file:"
                f"\n  {'.'.join(str(p) for p in where) or '(file)'}: {reason}"
            )
        document = TenantsFile.model_validate(raw)
    except (OSError, yaml.YAMLError) as exc:
        raise _fail(f"cannot read {file}: {exc}") from None
    except ValidationError as exc:
        raise _fail(f"{file} is not a valid tenants file:{_file_errors(exc)}") from None
    try:
        # Before the database is opened: a CI job missing a secret fails fast and plainly.
        tavus_keys(document)
    except AppError as exc:
        raise _fail(f"{exc.code}: {exc.detail}") from None

    async def work(runtime: Runtime, session: AsyncSession) -> list[ApplyResult]:
        return await apply_tenants(
            session,
            document,
            box=runtime.secret_box,
            pals=runtime.pals,
            prune_profiles=prune_profiles,
        )

    for result in _in_transaction(settings, work):
        detail = f" ({', '.join(result.changes)})" if result.changes else ""
        typer.echo(f"{result.tenant_id}: {result.action}{detail}")


@tenant_cli.command("list")
def tenant_list() -> None:
    """List tenants."""
    settings = load_settings()

    async def work(runtime: Runtime, session: AsyncSession) -> list[dict[str, Any]]:
        page = await tenant_service.list_tenants(session, limit=10_000, cursor=None)
        return [
            {
                "id": t.id,
                "name": t.name,
                "max_concurrent_sessions": t.max_concurrent_sessions,
                "profiles": sorted(t.profiles),
                "default_profile": t.default_profile,
            }
            for t in page.items
        ]

    _print_json(_in_transaction(settings, work))


@tenant_cli.command("show")
def tenant_show(tenant_id: Annotated[str, typer.Argument(help="Tenant id.")]) -> None:
    """Show one tenant with its profiles (never its Tavus key)."""
    settings = load_settings()

    async def work(runtime: Runtime, session: AsyncSession) -> dict[str, Any]:
        return (await tenant_service.get_tenant(session, tenant_id)).model_dump(mode="json")

    _print_json(_in_transaction(settings, work))


@key_cli.command("create")
def key_create(
    tenant_id: Annotated[str, typer.Argument(help="Tenant id.")],
    label: Annotated[str | None, typer.Option(help="What the key is for.")] = None,
) -> None:
    """Issue an API key; it is printed once and only its hash is stored."""
    settings = load_settings()

    async def work(runtime: Runtime, session: AsyncSession) -> dict[str, Any]:
        created = await tenant_service.create_api_key(session, tenant_id, label=label)
        return created.model_dump(mode="json")

    _print_json(_in_transaction(settings, work))


@key_cli.command("revoke")
def key_revoke(
    tenant_id: Annotated[str, typer.Argument(help="Tenant id.")],
    key_id: Annotated[str, typer.Argument(help="Key id (key_...).")],
) -> None:
    """Revoke an API key at once."""
    settings = load_settings()

    async def work(runtime: Runtime, session: AsyncSession) -> None:
        await tenant_service.revoke_api_key(session, tenant_id, key_id)

    _in_transaction(settings, work)
    typer.echo(f"revoked {key_id}")


def main() -> None:
    with suppress(KeyboardInterrupt):
        cli()


if __name__ == "__main__":
    main()
