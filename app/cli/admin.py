"""The admin commands: `migrate`, `sweep`, `tenant ...` and `key ...`. Each runs in one
transaction against the configured database, or the running dev stack's (found through
its runtime file), or an embedded server started for the command."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import httpx
import typer
import yaml
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.cli.base import database, fail, load_settings, raise_on_sigterm, upgrade
from app.cli.dev_stack import RuntimeFile
from app.db import migrations
from app.domain import strict_json
from app.domain.sessions.sweep import sweep as run_sweep
from app.domain.tenants import service as tenant_service
from app.domain.tenants.apply import (
    ApplyResult,
    TenantsFile,
    apply_tenants,
    tavus_keys,
    webhook_secrets,
)
from app.errors import AppError
from app.observability.logging import configure_logging
from app.runtime import Runtime, open_runtime
from app.settings import SIMULATOR_DEFAULT_URL, Settings, normalise_database_url

T = TypeVar("T")


def admin_settings(settings: Settings | None = None, *, needs_tavus: bool = False) -> Settings:
    """Settings for an admin command. With DATABASE_URL unset, a dev-mode `palisade serve`
    running on the same data directory lends its database, and its simulator when
    neither TAVUS_API_KEY nor TAVUS_BASE_URL says otherwise."""
    settings = settings or load_settings()
    if settings.database_url is None:
        stack = RuntimeFile(settings.data_dir).read()
        if stack is not None:
            update: dict[str, Any] = {"database_url": normalise_database_url(stack.database_url)}
            if (
                settings.uses_simulator
                and settings.tavus_url == SIMULATOR_DEFAULT_URL
                and stack.tavus_base_url
            ):
                update["tavus_base_url"] = stack.tavus_base_url
            settings = settings.model_copy(update=update)
    if needs_tavus and settings.uses_simulator:
        _require_simulator(settings.tavus_url)
    return settings


def _require_simulator(url: str) -> None:
    # Without a Tavus key Palisade talks to its simulator, which only `palisade serve`
    # (or `palisade simulator`) runs: say so at once rather than after the client's retries.
    try:
        answered = httpx.get(f"{url}/_sim/healthz", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        answered = False
    if not answered:
        raise fail(
            f"TAVUS_API_KEY is unset and no Tavus simulator answers on {url}: start "
            "`palisade serve` (in dev mode it runs one, and this command finds it), "
            "or set TAVUS_API_KEY"
        )


def in_transaction(settings: Settings, work: Callable[[Runtime, AsyncSession], Awaitable[T]]) -> T:
    """Run ``work`` in one transaction against the configured (or embedded) database."""
    signal.signal(signal.SIGTERM, raise_on_sigterm)
    with database(settings) as url:

        async def run() -> T:
            async with open_runtime(settings, url) as runtime:
                if settings.uses_embedded_database:
                    await migrations.upgrade(runtime.engine, "head", settings.migrations_dir)
                elif not (
                    await migrations.current_schema_state(runtime.engine, settings.migrations_dir)
                ).can_serve:
                    raise fail("the database schema is out of date: run `palisade migrate`")
                async with runtime.sessionmaker.begin() as session:
                    return await work(runtime, session)

        try:
            return asyncio.run(run())
        except AppError as exc:
            raise fail(f"{exc.code}: {exc.detail}{_extra(exc)}") from None


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


def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Upgrade the database schema (the embedded one when DATABASE_URL is unset)."""
    settings = admin_settings()
    configure_logging(settings)
    signal.signal(signal.SIGTERM, raise_on_sigterm)
    with database(settings) as url:
        current = asyncio.run(upgrade(url, settings, revision))
    typer.echo(f"database at revision {', '.join(sorted(current)) or '(empty)'}")


def sweep(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would be removed; change nothing.")
    ] = False,
) -> None:
    """Find Palisade's orphaned PALs and conversations on Tavus and remove them."""
    settings = admin_settings(needs_tavus=True)
    configure_logging(settings)

    async def work(runtime: Runtime, session: AsyncSession) -> list[str]:
        report = await run_sweep(runtime.sessionmaker, runtime.accounts, dry_run=dry_run)
        return report.lines()

    for line in in_transaction(settings, work):
        typer.echo(line)


tenant_cli = typer.Typer(help="Tenants and their profiles.", no_args_is_help=True)
key_cli = typer.Typer(help="Tenant API keys.", no_args_is_help=True)


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
            raise fail(
                f"{file} is not a valid tenants file:"
                f"\n  {'.'.join(str(p) for p in where) or '(file)'}: {reason}"
            )
        document = TenantsFile.model_validate(raw)
    except (OSError, yaml.YAMLError) as exc:
        raise fail(f"cannot read {file}: {exc}") from None
    except ValidationError as exc:
        raise fail(f"{file} is not a valid tenants file:{_file_errors(exc)}") from None
    try:
        # Before the database is opened: a CI job missing a secret fails fast and plainly.
        tavus_keys(document)
        webhook_secrets(document)
    except AppError as exc:
        raise fail(f"{exc.code}: {exc.detail}") from None
    settings = admin_settings(settings, needs_tavus=True)

    async def work(runtime: Runtime, session: AsyncSession) -> list[ApplyResult]:
        return await apply_tenants(
            session,
            document,
            box=runtime.secret_box,
            pals=runtime.pals,
            prune_profiles=prune_profiles,
            dev=settings.is_dev,
            secret_overlap=timedelta(hours=settings.webhook_secret_overlap_hours),
        )

    for result in in_transaction(settings, work):
        detail = f" ({', '.join(result.changes)})" if result.changes else ""
        typer.echo(f"{result.tenant_id}: {result.action}{detail}")


@tenant_cli.command("list")
def tenant_list() -> None:
    """List tenants."""
    settings = admin_settings()

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

    _print_json(in_transaction(settings, work))


@tenant_cli.command("show")
def tenant_show(tenant_id: Annotated[str, typer.Argument(help="Tenant id.")]) -> None:
    """Show one tenant with its profiles (never its Tavus key)."""
    settings = admin_settings()

    async def work(runtime: Runtime, session: AsyncSession) -> dict[str, Any]:
        return (await tenant_service.get_tenant(session, tenant_id)).model_dump(mode="json")

    _print_json(in_transaction(settings, work))


@key_cli.command("create")
def key_create(
    tenant_id: Annotated[str, typer.Argument(help="Tenant id.")],
    label: Annotated[str | None, typer.Option(help="What the key is for.")] = None,
) -> None:
    """Issue an API key; it is printed once and only its hash is stored."""
    settings = admin_settings()

    async def work(runtime: Runtime, session: AsyncSession) -> dict[str, Any]:
        created = await tenant_service.create_api_key(session, tenant_id, label=label)
        return created.model_dump(mode="json")

    _print_json(in_transaction(settings, work))


@key_cli.command("list")
def key_list(tenant_id: Annotated[str, typer.Argument(help="Tenant id.")]) -> None:
    """List a tenant's API keys, revoked ones included (never the keys themselves)."""
    settings = admin_settings()

    async def work(runtime: Runtime, session: AsyncSession) -> list[dict[str, Any]]:
        keys, cursor = [], None
        while True:
            page = await tenant_service.list_api_keys(session, tenant_id, limit=200, cursor=cursor)
            keys += [key.model_dump(mode="json") for key in page.items]
            if page.next_cursor is None:
                return keys
            cursor = page.next_cursor

    _print_json(in_transaction(settings, work))


@key_cli.command("revoke")
def key_revoke(
    tenant_id: Annotated[str, typer.Argument(help="Tenant id.")],
    key_id: Annotated[str, typer.Argument(help="Key id (key_...).")],
) -> None:
    """Revoke an API key at once."""
    settings = admin_settings()

    async def work(runtime: Runtime, session: AsyncSession) -> None:
        await tenant_service.revoke_api_key(session, tenant_id, key_id)

    in_transaction(settings, work)
    typer.echo(f"revoked {key_id}")
