"""How long and how hard a chaos run pushes: the short mode CI runs, the long one on demand."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mode:
    name: str
    # The chaos phase: workload, Tavus faults, kills and database restarts all run in it.
    duration_s: float
    replicas: int
    # Concurrent workload clients, each starting one session after another.
    clients: int
    # Seconds between two SIGKILLs, drawn uniformly from this range.
    kill_gap_s: tuple[float, float]
    database_restarts: int
    # How long the system gets to converge once faults and kills stop.
    settle_within_s: float
    # How long a client keeps retrying one start (same Idempotency-Key) before giving up.
    start_budget_s: float


# Two cores run three replicas, PostgreSQL, the simulator and the clients: the short
# mode keeps the whole run, set-up and teardown included, within about two minutes.
SHORT = Mode(
    name="short",
    duration_s=60,
    replicas=3,
    clients=10,
    kill_gap_s=(5, 10),
    database_restarts=1,
    settle_within_s=90,
    start_budget_s=40,
)
LONG = Mode(
    name="long",
    duration_s=600,
    replicas=3,
    clients=12,
    kill_gap_s=(4, 12),
    database_restarts=4,
    settle_within_s=180,
    start_budget_s=60,
)
