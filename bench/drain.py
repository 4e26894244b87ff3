"""The cleanup drain against Tavus's DELETE latency, at the default reconciler concurrency
and at a baseline one, in one run:

    .venv/bin/python -m bench.drain [--database-url URL] [--latencies-ms 10,100,300]
        [--sessions 1000] [--concurrency 25] [--baseline-concurrency 10]

For each latency and each concurrency (baseline first, then the setting under test), a
fresh stack: the Tavus simulator with that latency on every operation and one ``palisade
serve`` with ``PALISADE_RECONCILER_CONCURRENCY``; then ``--sessions`` ended sessions
whose ephemeral PALs are all due for deletion at once (the suite's drain,
``bench/scenarios/drain.py``). It prints as markdown the drain time and PALs deleted per
second; the run fails if a PAL was left or deleted twice. docs/benchmarks.md quotes it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from bench.config import FULL, Options
from bench.context import Bench
from bench.database import fresh_database
from bench.loadgen import LoadGenerator
from bench.machine import describe
from bench.monitor import ProcessMonitor
from bench.scenarios import drain
from bench.stack import running_stack


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.drain", description=__doc__)
    parser.add_argument("--database-url")
    parser.add_argument("--latencies-ms", default="10,100,300")
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=25)
    parser.add_argument("--baseline-concurrency", type=int, default=10)
    parser.add_argument("--bound-seconds", type=float, default=300.0)
    args = parser.parse_args(argv)
    latencies = [float(x) for x in args.latencies_ms.split(",")]
    sizes = replace(FULL, drain_sessions=args.sessions, drain_seconds=args.bound_seconds)
    m = describe()
    out = [
        f"Machine: {m.cpu_model}, {m.cores} cores, {m.python}, {m.kernel}, load average "
        f"{m.load_average[0]:.2f}. One Palisade process, {args.sessions} PALs to delete, "
        "every Tavus operation at the given latency.",
        "",
        "| Tavus latency | reconciler concurrency | drained in | PALs/s | Palisade CPU |",
        "|---|---|---|---|---|",
    ]
    failed = False
    for latency in latencies:
        for concurrency in (args.baseline_concurrency, args.concurrency):
            with (
                tempfile.TemporaryDirectory(prefix="palisade-drain-") as tmp,
                ProcessMonitor() as monitor,
                fresh_database(args.database_url, Path(tmp)) as database,
                running_stack(
                    database,
                    processes=1,
                    sim_latency_ms=latency,
                    workdir=Path(tmp),
                    monitor=monitor,
                    extra_env={"PALISADE_RECONCILER_CONCURRENCY": str(concurrency)},
                ) as stack,
            ):
                loader = LoadGenerator()
                try:
                    options = Options(1, 50, 10.0, latency, False, sizes)
                    figures = drain.run(Bench(stack, loader, monitor, options))
                finally:
                    loader.close()
            failed = failed or figures.failed
            took = "not drained" if figures.drained_s is None else f"{figures.drained_s:.2f} s"
            out.append(
                f"| {latency:g} ms | {concurrency} | {took} | {figures.deletes_per_second:.0f} "
                f"| {figures.palisade_cpu_s:.1f} s |"
            )
            if figures.pals_left or figures.deleted_more_than_once:
                out.append(
                    f"| | | {figures.pals_left} PALs left, {figures.deleted_more_than_once} "
                    "deleted twice | | |"
                )
    sys.stdout.write("\n".join(out) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
