"""What a Palisade process spends on its background work when there is nothing to do:

    .venv/bin/python -m bench.idle [--database-url URL] [--cycles 1000] [--rounds 5]

Every process runs a reconciler tick each second and a warm-pool pass every two,
whether or not anything is due: that is most of the CPU an idle process uses, and what
it takes from the requests of a busy one. This opens Palisade's runtime in this process on a fresh,
migrated database with no sessions and no pooled profiles, runs ``--cycles`` cycles of
both back to back, ``--rounds`` times, and prints the median per cycle: the CPU time of
this process and the wall time. docs/benchmarks.md quotes it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from statistics import median

from app.db.migrations import upgrade
from app.runtime import open_runtime
from app.settings import Mode, Settings
from bench.database import fresh_database

WARM_UP_CYCLES = 200


async def measure(url: str, cycles: int, rounds: int) -> tuple[float, float]:
    """Median CPU and wall time of one cycle, in microseconds."""
    settings = Settings.model_validate(
        {"DATABASE_URL": url, "PALISADE_MODE": Mode.DEV, "PALISADE_RECONCILER": False}
    )
    async with open_runtime(settings, url) as runtime:
        await upgrade(runtime.engine)

        reconciler = runtime.reconciler
        assert reconciler is not None

        async def cycle() -> None:
            await reconciler.tick()
            await runtime.warm_pool.tick()

        for _ in range(WARM_UP_CYCLES):
            await cycle()
        cpu: list[float] = []
        wall: list[float] = []
        for _ in range(rounds):
            cpu_start, wall_start = time.process_time(), time.perf_counter()
            for _ in range(cycles):
                await cycle()
            cpu.append((time.process_time() - cpu_start) / cycles * 1e6)
            wall.append((time.perf_counter() - wall_start) / cycles * 1e6)
    return median(cpu), median(wall)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.idle", description=__doc__)
    parser.add_argument("--database-url")
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="palisade-idle-") as tmp,
        fresh_database(args.database_url, Path(tmp)) as database,
    ):
        cpu_us, wall_us = asyncio.run(measure(database.url, args.cycles, args.rounds))
        where, version = database.where, database.server_version
    sys.stdout.write(
        f"PostgreSQL {version} ({where}), {args.rounds} rounds of {args.cycles} cycles\n"
        f"one background cycle with nothing due: {cpu_us:.0f} µs of CPU, {wall_us:.0f} µs "
        "of wall time (median per cycle)\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
