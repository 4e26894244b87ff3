"""The ``palisade`` command line: one module per job (``serve`` supervises the API and, in dev
mode, what it needs; ``admin`` changes the database; ``simulator`` runs the Tavus simulator)."""

from __future__ import annotations

from contextlib import suppress

import typer

from app.cli import admin, serve, simulator

cli = typer.Typer(
    name="palisade",
    help="Session orchestration for Tavus conversational video.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
cli.command()(serve.serve)
cli.command()(admin.migrate)
# Its options are the simulator's own, parsed by it (help included).
cli.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)(simulator.simulator)
cli.command()(serve.worker)
cli.command()(admin.sweep)
cli.add_typer(admin.tenant_cli, name="tenant")
cli.add_typer(admin.key_cli, name="key")


def main() -> None:
    with suppress(KeyboardInterrupt):
        cli()
