"""Latency statistics: percentiles of a sample, and how Palisade compares with a baseline."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(samples: Sequence[float], rank: int) -> float:
    """The ``rank``-th percentile (1 to 99) of ``samples``; NaN for no samples."""
    if not 1 <= rank <= 99:
        raise ValueError(f"percentile rank must be 1 to 99, not {rank}")
    if not samples:
        return math.nan
    if len(samples) == 1:
        return samples[0]
    # "inclusive" keeps every percentile within the observed range, even for few samples.
    return statistics.quantiles(samples, n=100, method="inclusive")[rank - 1]


def percentiles(samples: Sequence[float]) -> tuple[float, float, float]:
    """p50, p95 and p99 of ``samples`` (NaN for no samples)."""
    if len(samples) < 2:
        return percentile(samples, 50), percentile(samples, 95), percentile(samples, 99)
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


@dataclass(frozen=True)
class Summary:
    """What one measured workload did: its successes' latency, its errors, its rate."""

    count: int
    errors: int
    elapsed_s: float
    p50: float
    p95: float
    p99: float

    @property
    def rate(self) -> float:
        """Successful requests per second of the phase's wall time."""
        return self.count / self.elapsed_s if self.elapsed_s > 0 else math.nan


def summarise(latencies_ms: Sequence[float], *, errors: int, elapsed_s: float) -> Summary:
    p50, p95, p99 = percentiles(latencies_ms)
    return Summary(len(latencies_ms), errors, elapsed_s, p50, p95, p99)


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else math.nan


@dataclass(frozen=True)
class Added:
    """The latency Palisade adds over calling Tavus directly, as a difference and a ratio
    of the same percentile."""

    p50_ms: float
    p99_ms: float
    p50_ratio: float
    p99_ratio: float


def added(palisade: Summary, direct: Summary) -> Added:
    return Added(
        p50_ms=palisade.p50 - direct.p50,
        p99_ms=palisade.p99 - direct.p99,
        p50_ratio=ratio(palisade.p50, direct.p50),
        p99_ratio=ratio(palisade.p99, direct.p99),
    )
