"""Palisade's benchmark suite, in one command (run it from the repository root):

    .venv/bin/python -m bench.run [--processes 2] [--clients 50] [--rate 10]
        [--sim-latency-ms 0] [--database-url postgresql://user@host:5432/postgres] [--quick]

Starts the Tavus simulator, N ``palisade serve`` processes on one fresh database and a
load-generator process, measures every part (docs/benchmarks.md says what each figure
means), and writes a markdown results file and a PNG chart under bench/results/.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench import chart, results, workload
from bench.config import FULL, QUICK, Options
from bench.context import Bench
from bench.database import fresh_database
from bench.loadgen import LoadGenerator
from bench.machine import describe
from bench.monitor import ProcessMonitor
from bench.report import progress
from bench.scenarios import drain, history, round_trips, starts, webhooks
from bench.stack import running_stack

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0: {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0: {text}")
    return value


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description="Palisade's benchmark suite."
    )
    parser.add_argument("--processes", type=_positive_int, default=2, help="Palisade processes")
    parser.add_argument("--clients", type=_positive_int, default=50, help="concurrent clients")
    parser.add_argument(
        "--rate", type=_positive_float, default=10.0, help="starts/s offered when paced"
    )
    parser.add_argument(
        "--sim-latency-ms",
        type=float,
        default=0.0,
        help="latency the simulator adds to every Tavus operation",
    )
    parser.add_argument(
        "--database-url",
        help="PostgreSQL server to create the run's database on (default: an embedded one)",
    )
    parser.add_argument("--quick", action="store_true", help="every part, small sizes")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    if args.sim_latency_ms < 0:
        parser.error("--sim-latency-ms must be 0 or more")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    options = Options(
        processes=args.processes,
        clients=args.clients,
        rate=args.rate,
        sim_latency_ms=args.sim_latency_ms,
        quick=args.quick,
        sizes=QUICK if args.quick else FULL,
    )
    started_at = datetime.now(UTC)
    began = time.perf_counter()
    machine = describe()
    stem = f"{started_at:%Y%m%d-%H%M%S}{'-quick' if args.quick else ''}"
    args.results_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="palisade-bench-") as tmp, ProcessMonitor() as monitor:
        workdir = Path(tmp)
        try:
            with (
                fresh_database(args.database_url, workdir) as database,
                running_stack(
                    database,
                    processes=options.processes,
                    sim_latency_ms=options.sim_latency_ms,
                    workdir=workdir,
                    monitor=monitor,
                ) as stack,
            ):
                loader = LoadGenerator()
                try:
                    monitor.watch("load generator", loader.pid)
                    bench = Bench(stack, loader, monitor, options)
                    progress("capturing the Tavus calls of each start")
                    workloads = workload.capture(stack)
                    progress("database round trips per start")
                    counted = round_trips.run(bench, workloads)
                    progress("session starts")
                    start_figures = starts.run(bench, workloads)
                    progress("webhooks")
                    webhook_figures = webhooks.run(bench, workloads["reuse"])
                    progress("cleanup drain")
                    drain_figures = drain.run(bench)
                    progress("start latency with history")
                    history_figures = history.run(bench, workloads)
                    peak_rss = monitor.peak_rss()
                finally:
                    loader.close()
        except BaseException:
            _keep_logs(workdir, args.results_dir / f"{stem}-logs")
            raise
        run = results.RunFigures(
            started_at=started_at,
            wall_s=time.perf_counter() - began,
            command=shlex.join([".venv/bin/python", "-m", "bench.run", *argv]),
            machine=machine,
            database=database,
            options=options,
            starts=start_figures,
            webhooks=webhook_figures,
            drain=drain_figures,
            history=history_figures,
            round_trips=counted,
            peak_rss=peak_rss,
            chart_file=f"{stem}.png",
        )
        if run.failed:
            _keep_logs(workdir, args.results_dir / f"{stem}-logs")
    chart.draw(args.results_dir / run.chart_file, start_figures, webhook_figures, history_figures)
    report = args.results_dir / f"{stem}.md"
    report.write_text(results.render(run))
    progress(f"results: {report}")
    return 1 if run.failed else 0


def _keep_logs(workdir: Path, into: Path) -> None:
    """The processes' logs outlive a failed run, for whoever has to find out why."""
    logs = sorted(workdir.glob("*.log"))
    if logs:
        into.mkdir(parents=True, exist_ok=True)
        for log in logs:
            shutil.copy(log, into / log.name)
        progress(f"logs kept in {into}")


if __name__ == "__main__":
    sys.exit(main())
