"""What OpenTelemetry tracing costs a session start:

    .venv/bin/python -m bench.tracing [--database-url URL] [--rounds 3] [--seconds 10]

Runs the suite's stack (simulator at 0 ms, N Palisade processes with tracing off) and,
on the same database, N more Palisade processes with ``OTEL_EXPORTER_OTLP_ENDPOINT`` set
to an OTLP/HTTP sink in this process, which answers every export with an empty success
and counts the bytes. Then paced starts of each strategy, in rounds that alternate
which set goes first, and prints as markdown each set's p50 and p99, the median over
rounds of the traced p50 against the untraced one of the same round, the Palisade
processes' CPU per start (the exporter's thread included) and what was exported
(decoded as OTLP, its spans counted).
docs/benchmarks.md quotes it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from statistics import median

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench import workload
from bench.config import FULL, Options
from bench.context import Bench
from bench.database import fresh_database
from bench.loadgen import LoadGenerator
from bench.machine import describe
from bench.monitor import ProcessMonitor
from bench.scenarios import starts
from bench.stack import HOST, Stack, running_stack
from bench.stats import percentiles
from tests.support.processes import free_port, palisade, running, wait_ready

OFF = "off"
ON = "on"
SETS = (OFF, ON)
PROFILES = ("reuse", "ephemeral")
TRACED = "palisade-traced"
WARMUP = 100


@dataclass
class Sink:
    """The OTLP/HTTP collector stand-in: every export accepted, nothing kept."""

    url: str
    exports: int = 0
    bytes: int = 0
    spans: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def running_sink() -> Iterator[Sink]:
    sink: Sink

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            # Decoded, so that what was exported is known to be valid OTLP.
            request = ExportTraceServiceRequest.FromString(self.rfile.read(length))
            spans = sum(
                len(scope.spans)
                for resource in request.resource_spans
                for scope in resource.scope_spans
            )
            with sink.lock:
                sink.exports += 1
                sink.bytes += length
                sink.spans += spans
            # An empty ExportTraceServiceResponse: full success.
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((HOST, free_port()), Handler)
    sink = Sink(f"http://{HOST}:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def running_traced(
    stack: Stack, count: int, sink: Sink, monitor: ProcessMonitor
) -> Iterator[list[str]]:
    """``count`` more Palisade processes on the stack's database, tracing to ``sink``."""
    urls = []
    with ExitStack() as exits:
        for number in range(1, count + 1):
            port = free_port()
            url = f"http://{HOST}:{port}"
            log = stack.workdir / f"{TRACED}-{number}.log"
            env = {**stack.env, "PUBLIC_BASE_URL": url, "OTEL_EXPORTER_OTLP_ENDPOINT": sink.url}
            command = palisade("serve", "--host", HOST, "--port", str(port))
            process = exits.enter_context(running(command, env, stack.workdir, log))
            wait_ready(f"{url}/readyz", process, log)
            monitor.watch(f"{TRACED}-{number}", process.pid)
            urls.append(url)
        yield urls


def report(
    latencies: dict[tuple[str, str], list[float]],
    round_p50s: dict[tuple[str, str], list[float]],
    cpu_ms: dict[tuple[str, str], float],
    errors: int,
) -> str:
    lines = [
        "| strategy | tracing | starts | p50 | p99 | traced p50 / untraced p50, "
        "median of rounds | Palisade CPU per start |",
        "|---|---|---|---|---|---|---|",
    ]
    for profile in PROFILES:
        ratios = [
            on / off
            for on, off in zip(round_p50s[profile, ON], round_p50s[profile, OFF], strict=True)
        ]
        for which in SETS:
            p50, _, p99 = percentiles(latencies[profile, which])
            ratio = f"{median(ratios):.3f}" if which == ON and ratios else ""
            lines.append(
                f"| {profile} | {which} | {len(latencies[profile, which])} | {p50:.2f} ms "
                f"| {p99:.2f} ms | {ratio} | {cpu_ms[profile, which]:.2f} ms |"
            )
    if errors:
        lines += ["", f"**{errors} starts failed.**"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tracing", description=__doc__)
    parser.add_argument("--database-url")
    parser.add_argument("--processes", type=int, default=2, help="per set")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rate", type=float, default=10.0, help="starts/s, paced")
    parser.add_argument("--rounds", type=int, default=3, help="paced phases per set")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of a paced phase")
    parser.add_argument(
        "--warm-up", type=int, default=WARMUP, help="closed-loop starts per set first"
    )
    args = parser.parse_args(argv)
    sizes = replace(FULL, paced_seconds=args.seconds)
    options = Options(args.processes, args.clients, args.rate, 0.0, False, sizes)
    requests = max(1, round(args.rate * args.seconds))
    m = describe()
    out = [
        f"Machine: {m.cpu_model}, {m.cores} cores, {m.python}, {m.kernel}, load average "
        f"{m.load_average[0]:.2f}. {args.processes} Palisade processes with tracing off and "
        f"{args.processes} with it on, {args.clients} clients, paced at {args.rate:g} "
        f"starts/s, {args.rounds} rounds of {requests} starts per strategy and set, "
        "simulator at 0 ms.",
        "",
    ]
    keys = [(profile, which) for profile in PROFILES for which in SETS]
    latencies: dict[tuple[str, str], list[float]] = {key: [] for key in keys}
    round_p50s: dict[tuple[str, str], list[float]] = {key: [] for key in keys}
    cpu_s: dict[tuple[str, str], float] = dict.fromkeys(keys, 0.0)
    errors = 0
    with (
        tempfile.TemporaryDirectory(prefix="palisade-tracing-") as tmp,
        ProcessMonitor() as monitor,
        running_sink() as sink,
    ):
        workdir = Path(tmp)
        with (
            fresh_database(args.database_url, workdir) as database,
            running_stack(
                database, processes=args.processes, sim_latency_ms=0.0, workdir=workdir,
                monitor=monitor,
            ) as stack,
            running_traced(stack, args.processes, sink, monitor) as traced_urls,
        ):  # fmt: skip
            workloads = workload.capture(stack)
            loader = LoadGenerator()
            benches = {
                OFF: Bench(stack, loader, monitor, options),
                ON: Bench(replace(stack, palisade_urls=traced_urls), loader, monitor, options),
            }

            def cpu(which: str) -> float:
                traced = monitor.cpu_seconds(TRACED)
                return traced if which == ON else monitor.cpu_seconds("palisade") - traced

            try:
                for profile in PROFILES:
                    for which in SETS:
                        starts.phase(
                            benches[which], workloads[profile], starts.PALISADE, starts.CLOSED,
                            requests=args.warm_up, label=f"warm-up {which} ",
                        )  # fmt: skip
                for round_ in range(args.rounds):
                    order = SETS if round_ % 2 == 0 else tuple(reversed(SETS))
                    for profile in PROFILES:
                        for which in order:
                            before = cpu(which)
                            result, _ = starts.phase(
                                benches[which], workloads[profile], starts.PALISADE,
                                starts.PACED, requests=requests, label=f"tracing {which} ",
                            )  # fmt: skip
                            cpu_s[profile, which] += cpu(which) - before
                            latencies[profile, which] += result.latencies_ms
                            if result.latencies_ms:
                                round_p50s[profile, which].append(median(result.latencies_ms))
                            errors += result.errors
            finally:
                loader.close()
        exported = f"{sink.spans} spans in {sink.exports} exports, {sink.bytes / 1e6:.2f} MB"
    cpu_ms = {key: 1000 * cpu_s[key] / max(1, len(latencies[key])) for key in keys}
    out.append(report(latencies, round_p50s, cpu_ms, errors))
    traced_starts = args.warm_up * len(PROFILES) + sum(len(latencies[p, ON]) for p in PROFILES)
    out += [
        "",
        f"The traced processes exported {exported} of OTLP protobuf to the sink, for "
        f"{traced_starts} starts: {sink.spans / max(1, traced_starts):.1f} spans and "
        f"{sink.bytes / max(1, traced_starts) / 1e3:.1f} kB per start.",
    ]
    sys.stdout.write("\n".join(out) + "\n")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
