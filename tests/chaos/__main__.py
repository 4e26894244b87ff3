"""``python -m tests.chaos [--long] [--seed N] [--duration S] [--keep]``: one chaos run,
exiting with status 1 when an invariant was violated."""

from __future__ import annotations

import argparse
import logging
import random
import signal
import sys
from dataclasses import replace
from types import FrameType

from tests.chaos.modes import LONG, SHORT
from tests.chaos.run import run


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # An exception unwinds the run, so every process and directory it made is removed.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--long", action="store_true", help="the long mode (about 11 minutes)")
    parser.add_argument("--seed", type=int, help="replay a run (default: a fresh seed)")
    parser.add_argument(
        "--duration", type=float, help="seconds of chaos (default: 60, or 600 with --long)"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the work directory (process logs) afterwards"
    )
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)
    mode = LONG if args.long else SHORT
    replay = f"python -m tests.chaos --seed {seed}" + " --long" * args.long
    if args.duration is not None:
        mode = replace(mode, duration_s=args.duration)
        replay += f" --duration {args.duration:g}"
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        return run(mode, seed, replay=replay, keep=args.keep, out=_out)
    except (KeyboardInterrupt, SystemExit) as stopped:
        _out(f"interrupted; everything the run started is stopped (seed {seed})")
        # SIGTERM exits 143 like a process killed by it; Ctrl-C exits 130.
        return (
            stopped.code
            if isinstance(stopped, SystemExit) and isinstance(stopped.code, int)
            else 130
        )


if __name__ == "__main__":
    sys.exit(main())
