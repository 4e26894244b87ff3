"""Session start latency and throughput, through Palisade and directly against Tavus,
closed loop and paced, for each strategy."""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import median

from bench.context import Bench
from bench.loadgen import StartResult, StartSpec
from bench.report import progress
from bench.stats import Added, Summary, added, summarise
from bench.workload import PROFILES, Workload

CLOSED = "closed"
PACED = "paced"
MODES = (CLOSED, PACED)
DIRECT = "direct"
PALISADE = "palisade"


@dataclass
class Measured:
    """The phases of one mode, profile and path, pooled."""

    latencies_ms: list[float] = field(default_factory=list)
    lag_ms: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None
    elapsed_s: float = 0.0
    phase_p50s: list[float] = field(default_factory=list)
    palisade_cpu_s: float = 0.0

    def add(self, result: StartResult, palisade_cpu_s: float) -> None:
        self.latencies_ms += result.latencies_ms
        self.lag_ms += result.lag_ms
        self.errors += result.errors
        self.first_error = self.first_error or result.first_error
        self.elapsed_s += result.elapsed_s
        if result.latencies_ms:
            self.phase_p50s.append(median(result.latencies_ms))
        self.palisade_cpu_s += palisade_cpu_s

    def summary(self) -> Summary:
        return summarise(self.latencies_ms, errors=self.errors, elapsed_s=self.elapsed_s)

    @property
    def palisade_cpu_ms_per_start(self) -> float:
        done = len(self.latencies_ms) + self.errors
        return 1000.0 * self.palisade_cpu_s / done if done else 0.0


@dataclass
class StartFigures:
    measured: dict[tuple[str, str, str], Measured] = field(default_factory=dict)

    def get(self, mode: str, profile: str, path: str) -> Measured:
        return self.measured.setdefault((mode, profile, path), Measured())

    def added(self, mode: str, profile: str) -> Added:
        return added(
            self.get(mode, profile, PALISADE).summary(), self.get(mode, profile, DIRECT).summary()
        )

    @property
    def errors(self) -> int:
        return sum(m.errors for m in self.measured.values())


def phase(
    bench: Bench,
    workload: Workload,
    path: str,
    mode: str,
    *,
    requests: int | None = None,
    label: str = "",
) -> tuple[StartResult, float]:
    """One phase; its result and the CPU time the Palisade processes spent in it. Each
    Palisade phase begins with no live session."""
    stack, options, sizes = bench.stack, bench.options, bench.options.sizes
    if path == PALISADE:
        stack.retire_live_sessions()
        targets, variants, prime = tuple(stack.palisade_urls), workload.palisade, "/healthz"
    else:
        targets, variants, prime = (stack.simulator_url,), workload.direct, "/_sim/healthz"
    if mode == CLOSED:
        rate = None
        count = requests if requests is not None else sizes.closed_requests
        bound = sizes.phase_seconds
    else:
        rate = options.rate
        count = requests if requests is not None else max(1, round(rate * sizes.paced_seconds))
        # Room for a system that cannot keep up, which the lag then shows.
        bound = 2 * count / rate + 10
    spec = StartSpec(
        label=f"{label}{mode}/{workload.profile}/{path}",
        targets=targets,
        variants=variants,
        requests=count,
        clients=options.clients,
        max_seconds=bound,
        prime_path=prime,
        rate=rate,
    )
    cpu_at_start = 0.0

    def at_start() -> None:
        nonlocal cpu_at_start
        cpu_at_start = bench.monitor.cpu_seconds("palisade")

    result = bench.loader.starts(spec, at_start)
    cpu = bench.monitor.cpu_seconds("palisade") - cpu_at_start
    p50 = median(result.latencies_ms) if result.latencies_ms else float("nan")
    progress(
        f"  {spec.label}: {len(result.latencies_ms)} ok, {result.errors} errors in "
        f"{result.elapsed_s:.1f} s, p50 {p50:.1f} ms"
    )
    return result, cpu


def run(bench: Bench, workloads: dict[str, Workload]) -> StartFigures:
    figures = StartFigures()
    sizes = bench.options.sizes
    for mode in MODES:
        for profile in PROFILES:
            workload = workloads[profile]
            if mode == CLOSED:
                for path in (DIRECT, PALISADE):
                    phase(bench, workload, path, CLOSED, requests=sizes.warmup, label="warm-up ")
            # ABBA: slow drift of the machine weighs on both paths alike.
            for round_ in range(sizes.rounds):
                order = (DIRECT, PALISADE) if round_ % 2 == 0 else (PALISADE, DIRECT)
                for path in order:
                    result, cpu = phase(bench, workload, path, mode)
                    figures.get(mode, profile, path).add(result, cpu)
    bench.stack.retire_live_sessions()
    return figures
