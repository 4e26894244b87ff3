"""One chaos run from start to verdict:

1. start PostgreSQL, the simulator and the replicas, and create the tenants;
2. chaos phase: the workload runs while the simulator injects faults and the monkey
   kills replicas and restarts PostgreSQL;
3. faults and kills stop; the workload's starts and ends already under way finish;
4. wait (polling, with a deadline) until every session is settled on both sides;
5. read Tavus's ground truth and the database, check the invariants, report.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from app.db.engine import create_engine
from tests.chaos import faults
from tests.chaos.ground_truth import (
    CallLog,
    Recorded,
    pending_deliveries,
    pooled_pals,
    read_database,
    real_time_of,
    tavus_objects,
    unsettled_sessions,
)
from tests.chaos.invariants import Violation, World, check
from tests.chaos.modes import Mode
from tests.chaos.monkey import ChaosLog, Monkey
from tests.chaos.plan import chaos_schedule
from tests.chaos.report import RunSummary, render
from tests.chaos.stack import REPLICA_ENV, Stack, running_stack
from tests.chaos.tenants import Tenants, provision, retire_warm_pools
from tests.chaos.workload import Tally, Workload
from tests.support.wait import ConditionTimeout, until


@dataclass
class Observed:
    tally: Tally
    chaos: ChaosLog
    calls: list[dict[str, Any]]
    state: dict[str, Any]
    recorded: Recorded
    phases: dict[str, float]
    problems: list[str]


def run(mode: Mode, seed: int, *, replay: str, keep: bool, out: Callable[[str], None]) -> int:
    """Returns the process exit status: 0 when no invariant was violated."""
    began = time.monotonic()
    with ExitStack() as cleanup:
        workdir = Path(tempfile.mkdtemp(prefix="palisade-chaos-"))
        if keep:
            out(f"work directory (kept): {workdir}")
        else:
            cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)
        out(f"starting PostgreSQL, the simulator and {mode.replicas} replicas (seed {seed})")
        stack = cleanup.enter_context(running_stack(workdir, mode, seed))
        tenants = provision(stack)
        setup_s = time.monotonic() - began
        out(f"running {mode.duration_s:.0f} s of chaos")
        observed = asyncio.run(_observe(stack, mode, seed, tenants))
    verdicts = check(_world(observed, tenants))
    verdicts["recovered_by_itself"] = [
        Violation("recovered_by_itself", problem)
        for problem in observed.chaos.problems + observed.problems
    ]
    summary = RunSummary(
        seed=seed,
        mode=mode,
        replay=replay,
        phases={"setup": setup_s, **observed.phases, "total": time.monotonic() - began},
        tally=observed.tally,
        recorded=observed.recorded,
        calls=observed.calls,
        chaos=observed.chaos,
        verdicts=verdicts,
    )
    out(render(summary))
    return 1 if summary.violations else 0


def _world(observed: Observed, tenants: Tenants) -> World:
    pals, conversations = tavus_objects(observed.state)
    grace = float(REPLICA_ENV["PALISADE_DEADLINE_GRACE_SECONDS"])
    return World(
        # The moment of the simulator's snapshot: what was active then is still active.
        checked_at=real_time_of(observed.state)(observed.state["wall_time"]),
        deadline_grace=timedelta(seconds=grace),
        pals=pals,
        conversations=conversations,
        sessions=observed.recorded.sessions,
        transitions=observed.recorded.transitions,
        caps=observed.recorded.caps,
        persistent_pals=tenants.persistent_pals,
        client_starts=tuple(record.client_start() for record in observed.tally.starts),
        outbox=observed.recorded.outbox,
        artifacts=observed.recorded.artifacts,
        deliveries=observed.recorded.deliveries,
    )


async def _observe(stack: Stack, mode: Mode, seed: int, tenants: Tenants) -> Observed:
    monkey = Monkey(stack, chaos_schedule(seed, mode))
    workload = Workload(
        [replica.url for replica in stack.replicas],
        tenants.api_keys,
        seed=seed,
        clients=mode.clients,
        start_budget_s=mode.start_budget_s,
    )
    calls = CallLog(stack.simulator_url)
    problems: list[str] = []
    phases: dict[str, float] = {}
    async with httpx.AsyncClient(base_url=stack.simulator_url, timeout=30) as simulator:
        for operation, rules in faults.RULES.items():
            response = await simulator.put(f"/_sim/faults/{operation}", json={"faults": rules})
            response.raise_for_status()
        stop_following = asyncio.Event()
        following = asyncio.create_task(calls.follow(simulator, stop_following))
        started = time.monotonic()
        ends = started + mode.duration_s
        work = asyncio.create_task(workload.run(stop_starting_at=ends))
        try:
            await monkey.run(started, ends)
            # Faults and kills end together with the chaos phase.
            await asyncio.sleep(max(0.0, ends - time.monotonic()))
            (await simulator.delete("/_sim/faults")).raise_for_status()
            await monkey.bring_back()
            phases["chaos"] = time.monotonic() - started
            await work
            phases["drain"] = time.monotonic() - started - phases["chaos"]
            settling = time.monotonic()
            await asyncio.to_thread(retire_warm_pools, stack)
            problem = await _settle(stack, simulator, mode.settle_within_s)
            if problem:
                problems.append(problem)
            phases["settle"] = time.monotonic() - settling
        finally:
            work.cancel()
            stop_following.set()
            await asyncio.gather(work, following, return_exceptions=True)
        await calls.fetch(simulator)
        state: dict[str, Any] = (await simulator.get("/_sim/state")).raise_for_status().json()
    recorded = await read_database(stack.database_url)
    return Observed(workload.tally, monkey.log, calls.calls, state, recorded, phases, problems)


async def _settle(stack: Stack, simulator: httpx.AsyncClient, within: float) -> str | None:
    """Poll until no session needs anything, no conversation is active on Tavus, no
    webhook is in flight either way (Tavus's to Palisade, Palisade's to the tenants'
    receiver); a description of what was left when the deadline passes."""
    engine = create_engine(stack.database_url)
    left: dict[str, int] = {}

    async def settled() -> bool:
        async with engine.connect() as connection:
            left["unsettled sessions"] = await unsettled_sessions(connection)
            left["pooled PALs"] = await pooled_pals(connection)
            left["webhook deliveries pending"] = await pending_deliveries(connection)
        state = (await simulator.get("/_sim/state")).raise_for_status().json()
        left["active conversations"] = sum(
            account["active_conversations"] for account in state["accounts"].values()
        )
        left["webhooks in flight"] = state["webhooks_pending"]
        return not any(left.values())

    try:
        await until(settled, within=within, interval=0.5, message="settled")
    except ConditionTimeout:
        return f"not settled within {within:.0f} s: " + ", ".join(
            f"{what} {count}" for what, count in left.items()
        )
    finally:
        await engine.dispose()
    return None
