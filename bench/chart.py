"""The PNG of a run's latency distributions: one cumulative distribution per workload, on
a log scale, so that sub-millisecond direct calls and second-long queues share an axis."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display, and the same output on every machine

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.ticker import LogFormatter

from bench.scenarios.history import HistoryFigures
from bench.scenarios.starts import CLOSED, DIRECT, MODES, PALISADE, StartFigures
from bench.scenarios.webhooks import WebhookFigures
from bench.workload import PROFILES


def _distributions(ax: Axes, title: str, series: Sequence[tuple[str, list[float]]]) -> None:
    for label, samples in series:
        if samples:
            ax.ecdf(samples, label=f"{label} (n={len(samples):,})")
    ax.set_title(title, fontsize=10)
    ax.set_xscale("log")
    # Plain numbers (2, 30, 400) rather than powers of ten; fewer labels on wide ranges.
    for axis_formatter in (ax.xaxis.set_major_formatter, ax.xaxis.set_minor_formatter):
        axis_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(1, 0.5)))
    ax.set_xlabel("latency, ms")
    ax.set_ylabel("share of requests at or below")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")


def draw(
    path: Path, starts: StartFigures, webhooks: WebhookFigures, history: HistoryFigures
) -> None:
    rows = len(MODES) + 1
    figure, axes = plt.subplots(rows, len(PROFILES), figsize=(5 * len(PROFILES), 4 * rows))
    for row, mode in enumerate(MODES):
        for column, profile in enumerate(PROFILES):
            kind = "closed loop" if mode == CLOSED else "paced"
            _distributions(
                axes[row][column],
                f"start, {profile}, {kind}",
                [
                    ("Tavus calls, direct", starts.get(mode, profile, DIRECT).latencies_ms),
                    ("POST /sessions", starts.get(mode, profile, PALISADE).latencies_ms),
                ],
            )
    last = axes[len(MODES)]
    _distributions(last[0], "webhook acknowledgement", [("events", webhooks.latencies_ms)])
    for column, profile in enumerate(history.empty, start=1):
        _distributions(
            last[column],
            f"start, {profile}, paced: history",
            [
                ("empty database", history.empty[profile].latencies_ms),
                (f"{history.rows:,} historical sessions", history.loaded[profile].latencies_ms),
            ],
        )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
