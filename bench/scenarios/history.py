"""Whether start latency depends on how many sessions a database has seen: paced starts on
an empty database, then again with many historical (terminal) sessions."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial

from bench import rows
from bench.context import Bench
from bench.report import progress
from bench.scenarios.starts import PACED, PALISADE, Measured, phase
from bench.stack import PROFILE_NAMES, TENANT_ID
from bench.stats import ratio
from bench.workload import Workload

PROFILES = ("reuse", "ephemeral")


@dataclass
class HistoryFigures:
    rows: int
    insert_s: float = 0.0
    empty: dict[str, Measured] = field(default_factory=dict)
    loaded: dict[str, Measured] = field(default_factory=dict)

    def p50_ratio(self, profile: str) -> float:
        return ratio(self.loaded[profile].summary().p50, self.empty[profile].summary().p50)

    def p99_ratio(self, profile: str) -> float:
        return ratio(self.loaded[profile].summary().p99, self.empty[profile].summary().p99)

    @property
    def errors(self) -> int:
        return sum(m.errors for m in (*self.empty.values(), *self.loaded.values()))


def run(bench: Bench, workloads: dict[str, Workload]) -> HistoryFigures:
    stack = bench.stack
    figures = HistoryFigures(bench.options.sizes.history_rows)
    stack.sql(rows.remove_all_sessions)
    _measure(bench, workloads, figures.empty, "empty database ")
    started = time.perf_counter()
    stack.sql(
        partial(
            rows.insert_history,
            tenant_id=TENANT_ID,
            rows=figures.rows,
            reuse_profile=PROFILE_NAMES["reuse"],
            ephemeral_profile=PROFILE_NAMES["ephemeral"],
            pal_id=stack.persistent_pal_id,
        )
    )
    figures.insert_s = time.perf_counter() - started
    progress(f"  {figures.rows:,} historical sessions inserted in {figures.insert_s:.1f} s")
    _measure(bench, workloads, figures.loaded, "with history ")
    stack.retire_live_sessions()
    return figures


def _measure(
    bench: Bench, workloads: dict[str, Workload], into: dict[str, Measured], label: str
) -> None:
    for profile in PROFILES:
        result, cpu = phase(bench, workloads[profile], PALISADE, PACED, label=label)
        into.setdefault(profile, Measured()).add(result, cpu)
