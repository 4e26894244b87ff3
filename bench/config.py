"""What a run measures and how much of it: the options of ``python -m bench.run``, and
the sizes of a full run and of a ``--quick`` one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    warmup: int  # closed-loop starts per profile and path before anything is measured
    closed_requests: int  # starts per closed-loop phase
    rounds: int  # direct/Palisade pairs per profile and mode; the second runs reversed
    phase_seconds: float  # time bound of a closed-loop phase
    paced_seconds: float  # length of a paced phase
    webhook_sessions: int
    webhook_warmup: int
    webhook_events: int
    webhook_seconds: float  # time bound of the measured webhook phase
    drain_sessions: int
    drain_seconds: float  # time bound of the drain
    history_rows: int
    round_trip_starts: int  # sequential starts per profile while counting round trips


FULL = Sizes(
    warmup=200,
    closed_requests=2_000,
    rounds=2,
    phase_seconds=30.0,
    paced_seconds=20.0,
    webhook_sessions=200,
    webhook_warmup=500,
    webhook_events=10_000,
    webhook_seconds=60.0,
    drain_sessions=10_000,
    drain_seconds=300.0,
    history_rows=1_000_000,
    round_trip_starts=100,
)

QUICK = Sizes(
    warmup=10,
    closed_requests=40,
    rounds=1,
    phase_seconds=5.0,
    paced_seconds=1.0,
    webhook_sessions=10,
    webhook_warmup=20,
    webhook_events=200,
    webhook_seconds=10.0,
    drain_sessions=200,
    drain_seconds=60.0,
    history_rows=10_000,
    round_trip_starts=5,
)


@dataclass(frozen=True)
class Options:
    processes: int  # Palisade processes, all on one database
    clients: int  # concurrent clients of the load generator
    rate: float  # aggregate starts/s offered in the paced phases
    sim_latency_ms: float  # latency the simulator adds to every Tavus operation
    quick: bool
    sizes: Sizes
