"""The readable account of a run: what it did, what it injected, what it found."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tests.chaos.faults import count_faults
from tests.chaos.ground_truth import Recorded
from tests.chaos.invariants import Violation
from tests.chaos.modes import Mode
from tests.chaos.monkey import ChaosLog
from tests.chaos.workload import Tally

# Enough to see what broke without drowning the report.
DETAILS_PER_INVARIANT = 10


@dataclass(frozen=True)
class RunSummary:
    seed: int
    mode: Mode
    # The command that replays this run.
    replay: str
    phases: Mapping[str, float]
    tally: Tally
    recorded: Recorded
    calls: Sequence[Mapping[str, Any]]
    chaos: ChaosLog
    verdicts: Mapping[str, list[Violation]]

    @property
    def violations(self) -> int:
        return sum(len(found) for found in self.verdicts.values())


def _counts(counter: Mapping[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(counter.items())) or "none"


def _faults(calls: Sequence[Mapping[str, Any]]) -> list[str]:
    by_operation: dict[str, dict[str, int]] = defaultdict(dict)
    for (operation, kind), count in count_faults(calls).items():
        by_operation[operation][kind] = count
    lines = [f"  {op:<20} {_counts(kinds)}" for op, kinds in sorted(by_operation.items())]
    undelivered = sum(
        1
        for call in calls
        if call["operation"] == "webhook" and call["status"] is None and call.get("error")
    )
    lines.append(f"  {'webhook':<20} undeliverable (receiver down) {undelivered}")
    return lines


def render(summary: RunSummary) -> str:
    tally, recorded, chaos = summary.tally, summary.recorded, summary.chaos
    kills_per_replica = Counter(f"replica {kill.replica}" for kill in chaos.kills)
    lines = [
        f"== Palisade chaos run: seed {summary.seed}, {summary.mode.name} mode "
        f"({summary.mode.duration_s:.0f} s of chaos, {summary.mode.replicas} replicas, "
        f"{summary.mode.clients} clients)",
        "phases: " + ", ".join(f"{name} {s:.1f} s" for name, s in summary.phases.items()),
        f"starts: {len(tally.starts)} keys, {sum(tally.answers().values())} requests; "
        f"outcomes: {_counts(tally.outcomes())}",
        f"  answers: {_counts(tally.answers())}",
        f"  explicit ends: {tally.ends_requested} requested; answers: {_counts(tally.end_answers)}",
        f"sessions in the database: {len(recorded.sessions)}; "
        f"strategies: {_counts(recorded.strategies)}",
        f"  end states: {_counts(recorded.end_reasons)}",
        f"tenant webhooks: {sum(recorded.outbox.values())} events in the outbox; "
        f"deliveries: {_counts(recorded.deliveries)}",
        "faults injected (simulator call log):",
        *_faults(summary.calls),
        f"kills: {len(chaos.kills)} SIGKILLs ({_counts(kills_per_replica)}), "
        f"{chaos.restarts} replica restarts",
    ]
    for restart in chaos.database_restarts:
        recovered = (
            f"every replica ready {restart.recovered_after_s:.1f} s later"
            if restart.recovered_after_s is not None
            else "replicas did NOT recover"
        )
        lines.append(
            f"database restart at {restart.at_s:.1f} s: down {restart.down_s:.1f} s, {recovered}"
        )
    lines.append(f"invariants: {summary.violations} violation(s)")
    for name, found in summary.verdicts.items():
        lines.append(
            f"  {'ok  ' if not found else 'FAIL'} {name}" + (f" ({len(found)})" * bool(found))
        )
        lines += [f"       - {v.detail}" for v in found[:DETAILS_PER_INVARIANT]]
        if len(found) > DETAILS_PER_INVARIANT:
            lines.append(f"       ... and {len(found) - DETAILS_PER_INVARIANT} more")
    lines.append("PASS" if not summary.violations else f"FAIL (replay: {summary.replay})")
    return "\n".join(lines)
