"""Where the time of one session start goes, inside Palisade:

    .venv/bin/python -m bench.timeline [--database-url URL] [--starts 200] [--rate 10]

Runs the suite's stack (simulator at 0 ms, N Palisade processes, the load generator)
with each Palisade process under ``bench.timeline_serve``, sends paced starts of each
strategy and prints, as markdown, each step of a start with the median time it begins
(ms after FastAPI got the request) and the median time it takes; then the median start
split into SQL statements, commits, Tavus calls and the rest (Python: the framework,
validation, the saga's own work). docs/benchmarks.md quotes it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from statistics import median
from typing import Any

from bench import timeline_serve, workload
from bench.config import FULL, Options
from bench.context import Bench
from bench.database import fresh_database
from bench.loadgen import LoadGenerator
from bench.machine import describe
from bench.monitor import ProcessMonitor
from bench.scenarios import starts
from bench.stack import running_stack
from bench.timeline_serve import ENV_VAR

PROFILES = ("reuse", "ephemeral")
WARMUP = 200


def _launcher(*args: str) -> list[str]:
    # By path: the processes run in a scratch directory, where ``bench`` is not importable.
    return [sys.executable, str(Path(timeline_serve.__file__)), *args]


def _read(prefix: Path) -> list[list[tuple[str, float, float]]]:
    timelines = []
    for path in sorted(prefix.parent.glob(prefix.name + ".*")):
        for line in path.read_text().splitlines():
            timelines.append([(label, at, took) for label, at, took in json.loads(line)])
    return timelines


def _forget(prefix: Path) -> None:
    for path in prefix.parent.glob(prefix.name + ".*"):
        path.write_text("")  # the processes append: they carry on from the start


def _category(label: str) -> str:
    if label.startswith("sql "):
        return "SQL statements"
    if label == "commit":
        return "commits"
    if label.startswith("tavus "):
        return "Tavus calls"
    return ""


def report(profile: str, client_ms: list[float], timelines: list[Any]) -> str:
    steps: dict[str, list[tuple[float, float]]] = defaultdict(list)
    totals: list[float] = []
    split: dict[str, list[float]] = defaultdict(list)
    for spans in timelines:
        seen: dict[str, int] = defaultdict(int)
        sums: dict[str, float] = defaultdict(float)
        total = 0.0
        for label, at, took in spans:
            seen[label] += 1
            # The same statement twice in one start (the ephemeral moves) stays apart.
            key = label if seen[label] == 1 else f"{label} ({seen[label]})"
            steps[key].append((at, took))
            if label == "response":
                total = took
            elif category := _category(label):
                sums[category] += took
        totals.append(total)
        for category in ("SQL statements", "commits", "Tavus calls"):
            split[category].append(sums[category])
        split["the rest (Python)"].append(total - sum(sums.values()))
    lines = [
        f"#### {profile}: {len(timelines)} starts, client p50 {median(client_ms):.2f} ms, "
        f"server p50 {median(totals):.2f} ms",
        "",
        "| step | begins at (p50) | takes (p50) |",
        "|---|---|---|",
    ]
    ordered = sorted(steps.items(), key=lambda item: median(at for at, _ in item[1]))
    for label, values in ordered:
        if 2 * len(values) < len(timelines):
            continue  # once-only work (a key's last_used_at): not part of a typical start
        lines.append(
            f"| {label} | {median(at for at, _ in values):.2f} ms "
            f"| {median(took for _, took in values):.2f} ms |"
        )
    lines += ["", "| part of the server time | p50 per start |", "|---|---|"]
    lines += [f"| {name} | {median(values):.2f} ms |" for name, values in split.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.timeline", description=__doc__)
    parser.add_argument("--database-url")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rate", type=float, default=10.0, help="starts/s, paced")
    parser.add_argument("--starts", type=int, default=200, help="measured starts per strategy")
    parser.add_argument(
        "--warm-up", type=int, default=WARMUP, help="closed-loop starts before each strategy"
    )
    args = parser.parse_args(argv)
    sizes = replace(FULL, paced_seconds=args.starts / args.rate)
    options = Options(args.processes, args.clients, args.rate, 0.0, False, sizes)
    m = describe()
    out = [
        f"Machine: {m.cpu_model}, {m.cores} cores, {m.python}, {m.kernel}, load average "
        f"{m.load_average[0]:.2f}. {args.processes} Palisade processes, {args.clients} "
        f"clients, paced at {args.rate:g} starts/s, simulator at 0 ms.",
        "",
    ]
    with (
        tempfile.TemporaryDirectory(prefix="palisade-timeline-") as tmp,
        ProcessMonitor() as monitor,
    ):
        workdir = Path(tmp)
        prefix = workdir / "timeline"
        with (
            fresh_database(args.database_url, workdir) as database,
            running_stack(
                database,
                processes=args.processes,
                sim_latency_ms=0.0,
                workdir=workdir,
                monitor=monitor,
                launcher=_launcher,
                extra_env={ENV_VAR: str(prefix)},
            ) as stack,
        ):
            loader = LoadGenerator()
            try:
                bench = Bench(stack, loader, monitor, options)
                workloads = workload.capture(stack)
                for profile in PROFILES:
                    starts.phase(
                        bench, workloads[profile], starts.PALISADE, starts.CLOSED,
                        requests=args.warm_up, label="warm-up ",
                    )  # fmt: skip
                    _forget(prefix)
                    result, _ = starts.phase(
                        bench, workloads[profile], starts.PALISADE, starts.PACED
                    )
                    out += [report(profile, result.latencies_ms, _read(prefix)), ""]
            finally:
                loader.close()
    sys.stdout.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
