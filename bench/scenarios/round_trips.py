"""Database round trips per start, counted by Palisade itself
(``PALISADE_COUNT_DB_ROUND_TRIPS``, app/db/instrumentation.py) in processes of their own."""

from __future__ import annotations

import json
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from app.db.instrumentation import ENV_VAR as COUNT_ENV_VAR
from bench.context import Bench
from bench.report import progress
from bench.stack import HOST
from bench.workload import Workload, start_sessions
from tests.support.processes import free_port, palisade, running, wait_ready

PROFILES = ("reuse", "ephemeral")
KINDS = ("ping", "begin", "statement", "commit", "rollback")


@dataclass(frozen=True)
class RoundTripFigures:
    profile: str
    starts: int
    per_start: dict[str, float]  # by kind, see KINDS
    ping_round_trips: int  # what one pool pre-ping costs
    connects: int  # new connections over all the starts

    @property
    def round_trips_per_start(self) -> float:
        pings = self.per_start["ping"] * self.ping_round_trips
        return pings + sum(self.per_start[kind] for kind in KINDS if kind != "ping")


def run(bench: Bench, workloads: dict[str, Workload]) -> list[RoundTripFigures]:
    stack, starts = bench.stack, bench.options.sizes.round_trip_starts
    counted: dict[str, tuple[str, Path]] = {}
    # Each process writes its totals when it stops, so each counts one profile alone.
    with ExitStack() as exits:
        waits = []
        for profile in PROFILES:
            port = free_port()
            url = f"http://{HOST}:{port}"
            totals = stack.workdir / f"round-trips-{profile}.json"
            env = {
                **stack.env,
                COUNT_ENV_VAR: str(totals),
                # Only the starts are counted: the reconciler's ticks would add their own.
                "PALISADE_RECONCILER": "false",
                "PUBLIC_BASE_URL": url,
            }
            log = stack.workdir / f"palisade-count-{profile}.log"
            command = palisade("serve", "--host", HOST, "--port", str(port))
            process = exits.enter_context(running(command, env, stack.workdir, log))
            counted[profile] = (url, totals)
            waits.append((url, process, log))
        for url, process, log in waits:
            # /healthz, not /readyz: a readiness probe would be counted with the starts.
            wait_ready(f"{url}/healthz", process, log)
        for profile, (url, _) in counted.items():
            start_sessions([url], workloads[profile].palisade[0], starts, concurrency=1)
    stack.retire_live_sessions()
    figures = [_figures(profile, totals, starts) for profile, (_, totals) in counted.items()]
    for f in figures:
        progress(f"  round trips per {f.profile} start: {f.round_trips_per_start:.1f}")
    return figures


def _figures(profile: str, totals_file: Path, starts: int) -> RoundTripFigures:
    totals = json.loads(totals_file.read_text())
    return RoundTripFigures(
        profile=profile,
        starts=starts,
        per_start={kind: totals[kind] / starts for kind in KINDS},
        ping_round_trips=totals["ping_round_trips"],
        connects=totals["connects"],
    )
