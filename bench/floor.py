"""How much of the latency Palisade adds to a reuse start is the machine's, and how much
is Palisade's own:

    .venv/bin/python -m bench.floor [--database-url URL] [--rounds 2] [--seconds 20]

Runs the suite's stack (simulator at 0 ms, N Palisade processes, the load generator) and,
beside it, N processes of ``bench.floor_app``: a service with Palisade's stack making the
same I/O for a start (two autocommit writes and the same Tavus call) and nothing else.
Then paced reuse starts, in rounds that alternate the order of the three paths (direct
to the simulator, the floor, Palisade), and prints as markdown each path's p50 and p99,
what each adds over direct, and each service's CPU per start. docs/benchmarks.md quotes
it. The floor is a reference, not a competitor: it keeps none of Palisade's promises.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path

from bench import workload
from bench.config import FULL, Options
from bench.context import Bench
from bench.database import fresh_database
from bench.loadgen import ID, Call, LoadGenerator, StartResult, StartSpec
from bench.machine import describe
from bench.monitor import ProcessMonitor
from bench.scenarios import starts
from bench.stack import HOST, running_stack
from bench.stats import percentiles
from bench.workload import DIRECT_TAVUS_KEY
from tests.support.processes import clean_env, free_port, running, wait_ready

FLOOR = "floor"
PATHS = (starts.DIRECT, FLOOR, starts.PALISADE)
WARMUP = 200
REPO = Path(__file__).resolve().parents[1]


@contextmanager
def running_floor(
    count: int, database_url: str, simulator_url: str, conversation_body: str, workdir: Path,
    monitor: ProcessMonitor, extra_env: dict[str, str] | None = None,
) -> Iterator[list[str]]:  # fmt: skip
    env = clean_env(
        {
            **(extra_env or {}),
            "FLOOR_DATABASE_URL": database_url.replace("postgresql+asyncpg://", "postgresql://"),
            "FLOOR_TAVUS_URL": simulator_url,
            "FLOOR_TAVUS_KEY": DIRECT_TAVUS_KEY,
            "FLOOR_CONVERSATION_BODY": conversation_body,
        }
    )
    urls = []
    with ExitStack() as exits:
        for number in range(1, count + 1):
            port = free_port()
            log = workdir / f"floor-{number}.log"
            command = [
                sys.executable, "-m", "uvicorn", "bench.floor_app:app", "--app-dir", str(REPO),
                "--host", HOST, "--port", str(port), "--loop", "uvloop", "--http", "httptools",
                "--no-access-log", "--log-level", "warning",
            ]  # fmt: skip
            process = exits.enter_context(running(command, env, workdir, log))
            url = f"http://{HOST}:{port}"
            wait_ready(f"{url}/healthz", process, log)
            monitor.watch(f"{FLOOR}-{number}", process.pid)
            urls.append(url)
        yield urls


def _floor_phase(
    bench: Bench, urls: list[str], body: str, *, requests: int, paced: bool
) -> tuple[StartResult, float]:
    headers = (("Content-Type", "application/json"),)
    spec = StartSpec(
        label=f"{'paced' if paced else 'closed'}/reuse/{FLOOR}",
        targets=tuple(urls),
        variants=((Call("POST", "/sessions", headers, body),),),
        requests=requests,
        clients=bench.options.clients,
        max_seconds=2 * requests / bench.options.rate + 10 if paced else 60.0,
        prime_path="/healthz",
        rate=bench.options.rate if paced else None,
    )
    cpu_at_start = 0.0

    def at_start() -> None:
        nonlocal cpu_at_start
        cpu_at_start = bench.monitor.cpu_seconds(FLOOR)

    result = bench.loader.starts(spec, at_start)
    return result, bench.monitor.cpu_seconds(FLOOR) - cpu_at_start


def report(latencies: dict[str, list[float]], cpu_ms: dict[str, float], errors: int) -> str:
    direct_p50, _, direct_p99 = percentiles(latencies[starts.DIRECT])
    lines = [
        "| path | starts | p50 | p99 | added p50 | added p99 | service CPU per start |",
        "|---|---|---|---|---|---|---|",
    ]
    for path in PATHS:
        p50, _, p99 = percentiles(latencies[path])
        added = (
            ("-", "-") if path == starts.DIRECT
            else (f"{p50 - direct_p50:.2f} ms", f"{p99 - direct_p99:.2f} ms")
        )  # fmt: skip
        cpu = f"{cpu_ms[path]:.2f} ms" if path in cpu_ms else "-"
        lines.append(
            f"| {path} | {len(latencies[path])} | {p50:.2f} ms | {p99:.2f} ms "
            f"| {added[0]} | {added[1]} | {cpu} |"
        )
    if errors:
        lines += ["", f"**{errors} starts failed.**"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    parser.add_argument("--database-url")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rate", type=float, default=10.0, help="starts/s, paced")
    parser.add_argument("--rounds", type=int, default=2, help="paced phases per path")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of a paced phase")
    parser.add_argument(
        "--warm-up", type=int, default=WARMUP, help="closed-loop starts per path first"
    )
    args = parser.parse_args(argv)
    sizes = replace(FULL, paced_seconds=args.seconds)
    options = Options(args.processes, args.clients, args.rate, 0.0, False, sizes)
    requests = max(1, round(args.rate * args.seconds))
    m = describe()
    out = [
        f"Machine: {m.cpu_model}, {m.cores} cores, {m.python}, {m.kernel}, load average "
        f"{m.load_average[0]:.2f}. {args.processes} processes each of Palisade and the "
        f"floor, {args.clients} clients, paced at {args.rate:g} starts/s, {args.rounds} "
        f"phases of {requests} starts per path, simulator at 0 ms.",
        "",
    ]
    latencies: dict[str, list[float]] = {path: [] for path in PATHS}
    cpu_s: dict[str, float] = {FLOOR: 0.0, starts.PALISADE: 0.0}
    errors = 0
    with tempfile.TemporaryDirectory(prefix="palisade-floor-") as tmp, ProcessMonitor() as monitor:
        workdir = Path(tmp)
        with (
            fresh_database(args.database_url, workdir) as database,
            running_stack(
                database, processes=args.processes, sim_latency_ms=0.0, workdir=workdir,
                monitor=monitor,
            ) as stack,
        ):  # fmt: skip
            reuse = workload.capture(stack)["reuse"]
            (conversation,) = reuse.direct[0]
            body = conversation.body.replace(ID, "{session}")
            with running_floor(
                args.processes, database.url, stack.simulator_url, body, workdir, monitor
            ) as floor_urls:
                loader = LoadGenerator()
                try:
                    bench = Bench(stack, loader, monitor, options)
                    start_body = reuse.palisade[0][0].body.replace(ID, "floor")

                    def phase(path: str, paced: bool, n: int) -> tuple[StartResult, float]:
                        if path == FLOOR:
                            return _floor_phase(
                                bench, floor_urls, start_body, requests=n, paced=paced
                            )
                        mode = starts.PACED if paced else starts.CLOSED
                        return starts.phase(bench, reuse, path, mode, requests=n)

                    for path in PATHS:
                        phase(path, False, args.warm_up)
                    for round_ in range(args.rounds):
                        order = PATHS if round_ % 2 == 0 else tuple(reversed(PATHS))
                        for path in order:
                            result, cpu = phase(path, True, requests)
                            latencies[path] += result.latencies_ms
                            errors += result.errors
                            if path in cpu_s:
                                cpu_s[path] += cpu
                finally:
                    loader.close()
    cpu_ms = {path: 1000 * cpu_s[path] / max(1, len(latencies[path])) for path in cpu_s}
    out.append(report(latencies, cpu_ms, errors))
    sys.stdout.write("\n".join(out) + "\n")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
