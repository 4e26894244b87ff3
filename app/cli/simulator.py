"""`palisade simulator`: the Tavus simulator's own command line, under Palisade's name."""

from __future__ import annotations

import typer

from app.cli.base import NOT_IN_THE_IMAGE, fail


def simulator(ctx: typer.Context) -> None:
    """Run the standalone, fault-injectable Tavus simulator; --help lists its options."""
    try:
        from tavus_simulator.cli import main
    except ModuleNotFoundError:
        raise fail(f"the Tavus simulator is not installed ({NOT_IN_THE_IMAGE})") from None
    main(ctx.args, prog="palisade simulator")
