"""How much of the latency Palisade adds to a start is the stack's, and how much is
Palisade's own:

    .venv/bin/python -m bench.floor [--database-url URL] [--rounds 3] [--seconds 20]

Runs the suite's stack (simulator at 0 ms, N Palisade processes, the load generator) and,
beside it, N processes of ``bench.floor_app``: a thin proxy on Palisade's stack that
inserts a row, makes the same Tavus calls (reuse: the conversation; ephemeral: the PAL,
then the conversation) and updates the row, and nothing else. Then paced starts of both
profiles, in rounds that alternate the order of the three paths (direct to the simulator,
the thin proxy, Palisade), and prints as markdown, per profile, each path's p50 and p99
over all rounds, what each adds over direct, each service's CPU per start, and the added
p50 of every round (the spread). docs/benchmarks.md quotes it. The thin proxy is a
reference, not a competitor: it keeps none of Palisade's promises.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from statistics import median

from bench import workload
from bench.config import FULL, Options
from bench.context import Bench
from bench.database import fresh_database
from bench.loadgen import ID, Call, LoadGenerator, StartResult, StartSpec
from bench.machine import describe
from bench.monitor import ProcessMonitor
from bench.scenarios import starts
from bench.stack import HOST, PROFILE_NAMES, running_stack
from bench.stats import percentiles
from bench.workload import DIRECT_TAVUS_KEY
from tests.support.processes import clean_env, free_port, running, wait_ready

FLOOR = "floor"
PATHS = (starts.DIRECT, FLOOR, starts.PALISADE)
PROFILES = ("reuse", "ephemeral")
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
        label=f"{'paced' if paced else 'closed'}/{FLOOR}",
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


def report(
    latencies: dict[str, list[float]],
    cpu_ms: dict[str, float],
    errors: int,
    rounds: Sequence[dict[str, list[float]]] = (),
) -> str:
    """One profile's table; ``rounds``: the latencies of each round, for the spread."""
    direct_p50, _, direct_p99 = percentiles(latencies[starts.DIRECT])
    lines = [
        "| path | starts | p50 | p99 | added p50 | added p99 | service CPU per start "
        "| added p50 per round |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for path in PATHS:
        p50, _, p99 = percentiles(latencies[path])
        added = (
            ("-", "-") if path == starts.DIRECT
            else (f"{p50 - direct_p50:.2f} ms", f"{p99 - direct_p99:.2f} ms")
        )  # fmt: skip
        cpu = f"{cpu_ms[path]:.2f} ms" if path in cpu_ms else "-"
        spread = (
            "-" if path == starts.DIRECT or not rounds
            else " / ".join(
                f"{percentiles(r[path])[0] - percentiles(r[starts.DIRECT])[0]:.1f}"
                for r in rounds
            ) + " ms"
        )  # fmt: skip
        lines.append(
            f"| {path} | {len(latencies[path])} | {p50:.2f} ms | {p99:.2f} ms "
            f"| {added[0]} | {added[1]} | {cpu} | {spread} |"
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
    parser.add_argument("--rounds", type=int, default=3, help="paced phases per path")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of a paced phase")
    parser.add_argument(
        "--warm-up", type=int, default=WARMUP, help="closed-loop starts per path first"
    )
    parser.add_argument(
        "--closed-starts", type=int, default=0,
        help="also, each round, a closed-loop phase of this many starts per profile and path "
        "(throughput)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    sizes = replace(FULL, paced_seconds=args.seconds)
    options = Options(args.processes, args.clients, args.rate, 0.0, False, sizes)
    requests = max(1, round(args.rate * args.seconds))
    m = describe()
    out = [
        f"Machine: {m.cpu_model}, {m.cores} cores, {m.python}, {m.kernel}, load average "
        f"{m.load_average[0]:.2f}. {args.processes} processes each of Palisade and the "
        f"thin proxy, {args.clients} clients, paced at {args.rate:g} starts/s, "
        f"{args.rounds} rounds of one phase of {requests} starts per profile and path, "
        "simulator at 0 ms.",
    ]
    keys = [(profile, path) for profile in PROFILES for path in PATHS]
    latencies: dict[tuple[str, str], list[float]] = {key: [] for key in keys}
    by_round: list[dict[tuple[str, str], list[float]]] = []
    cpu_s: dict[tuple[str, str], float] = {}
    # Closed-loop starts/s of each round.
    throughput: dict[tuple[str, str], list[float]] = {}
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
            workloads = workload.capture(stack)
            reuse, ephemeral = workloads["reuse"], workloads["ephemeral"]
            (conversation,) = reuse.direct[0]
            pal_call, ephemeral_conversation = ephemeral.direct[0]
            thin_env = {
                "FLOOR_EPHEMERAL_PROFILE": PROFILE_NAMES["ephemeral"],
                "FLOOR_PAL_BODY": pal_call.body.replace(ID, "{session}"),
                "FLOOR_EPHEMERAL_CONVERSATION_BODY": ephemeral_conversation.body.replace(
                    ID, "{session}"
                ),
            }
            body = conversation.body.replace(ID, "{session}")
            with running_floor(
                args.processes, database.url, stack.simulator_url, body, workdir, monitor,
                thin_env,
            ) as floor_urls:  # fmt: skip
                loader = LoadGenerator()
                try:
                    bench = Bench(stack, loader, monitor, options)

                    def phase(
                        profile: str, path: str, paced: bool, n: int
                    ) -> tuple[StartResult, float]:
                        load = workloads[profile]
                        if path == FLOOR:
                            start_body = load.palisade[0][0].body.replace(ID, "floor")
                            return _floor_phase(
                                bench, floor_urls, start_body, requests=n, paced=paced
                            )
                        mode = starts.PACED if paced else starts.CLOSED
                        return starts.phase(bench, load, path, mode, requests=n)

                    for profile, path in keys:
                        phase(profile, path, False, args.warm_up)
                    for round_ in range(args.rounds):
                        order = PATHS if round_ % 2 == 0 else tuple(reversed(PATHS))
                        this_round: dict[tuple[str, str], list[float]] = {}
                        for profile in PROFILES:
                            for path in order:
                                result, cpu = phase(profile, path, True, requests)
                                this_round[profile, path] = result.latencies_ms
                                latencies[profile, path] += result.latencies_ms
                                errors += result.errors
                                if path != starts.DIRECT:
                                    cpu_s[profile, path] = cpu_s.get((profile, path), 0.0) + cpu
                        by_round.append(this_round)
                        if args.closed_starts:
                            for profile in PROFILES:
                                for path in order:
                                    result, _ = phase(profile, path, False, args.closed_starts)
                                    errors += result.errors
                                    rate = len(result.latencies_ms) / max(result.elapsed_s, 1e-9)
                                    throughput.setdefault((profile, path), []).append(rate)
                finally:
                    loader.close()
    for profile in PROFILES:
        mine = {path: latencies[profile, path] for path in PATHS}
        cpu_ms = {
            path: 1000 * cpu_s[profile, path] / max(1, len(mine[path]))
            for path in PATHS
            if (profile, path) in cpu_s
        }
        rounds = [{path: r[profile, path] for path in PATHS} for r in by_round]
        out += ["", f"**{profile}**", "", report(mine, cpu_ms, 0, rounds)]
    if throughput:
        out += [
            "",
            f"Closed loop, {args.clients} clients, starts/s of each round:",
            "",
            "| profile | direct | thin proxy | Palisade | Palisade / thin proxy, median |",
            "|---|---|---|---|---|",
        ]
        for profile in PROFILES:
            cells = [" / ".join(f"{r:.0f}" for r in throughput[profile, path]) for path in PATHS]
            ratio = median(
                p / f
                for p, f in zip(
                    throughput[profile, starts.PALISADE], throughput[profile, FLOOR], strict=True
                )
            )
            out.append(f"| {profile} | {' | '.join(cells)} | {ratio:.2f} |")
    if errors:
        out += ["", f"**{errors} starts failed.**"]
    sys.stdout.write("\n".join(out) + "\n")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
