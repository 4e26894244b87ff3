"""Process faults on the run's schedule: SIGKILLs of replicas (each started again after a
moment) and restarts of PostgreSQL, after which every replica must be ready again by
itself."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx

from tests.chaos.plan import ChaosEvent
from tests.chaos.stack import Replica, Stack
from tests.support.wait import ConditionTimeout, until

# A replica whose pool still held dead connections would stay unready well past this.
RECOVERY_WITHIN_S = 30.0


@dataclass(frozen=True)
class Kill:
    at_s: float
    replica: int
    pid: int


@dataclass(frozen=True)
class DatabaseRestart:
    at_s: float
    down_s: float
    # Seconds from PostgreSQL being back to every replica answering /readyz.
    recovered_after_s: float | None


@dataclass
class ChaosLog:
    kills: list[Kill] = field(default_factory=list)
    restarts: int = 0
    database_restarts: list[DatabaseRestart] = field(default_factory=list)
    # What did not recover by itself: each is reported as a violation.
    problems: list[str] = field(default_factory=list)


class Monkey:
    def __init__(self, stack: Stack, schedule: list[ChaosEvent]) -> None:
        self._stack = stack
        self._schedule = schedule
        self.log = ChaosLog()

    async def run(self, started_at: float, ends_at: float) -> None:
        """Apply each event at its moment; one at a time, so a replica is never started
        against a stopped database."""
        for event in self._schedule:
            due = started_at + event.at_s
            if due >= ends_at:
                return
            # Pacing by the schedule, not waiting for a condition.
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if event.action == "kill":
                await self._kill(self._stack.replicas[event.replica], event, started_at)
            else:
                await self._restart_database(event, started_at)

    async def bring_back(self) -> None:
        """Start every replica that is down (a failed restart, or an interrupted one)."""
        for replica in self._stack.replicas:
            if not replica.up:
                await self._start(replica)

    async def _kill(self, replica: Replica, event: ChaosEvent, started_at: float) -> None:
        if not replica.up:
            return
        pid = await asyncio.to_thread(replica.kill)
        self.log.kills.append(Kill(time.monotonic() - started_at, replica.index, pid))
        await asyncio.sleep(event.down_s)
        await self._start(replica)

    async def _start(self, replica: Replica) -> None:
        try:
            await asyncio.to_thread(replica.start)
        except AssertionError as error:  # wait_ready: exited early or never ready
            # The message carries the process's whole log; its end says why.
            self.log.problems.append(
                f"replica {replica.index} did not start again: ...{str(error)[-1500:]}"
            )
            return
        self.log.restarts += 1

    async def _restart_database(self, event: ChaosEvent, started_at: float) -> None:
        at = time.monotonic() - started_at
        down = await asyncio.to_thread(self._stack.restart_database, event.down_s)
        back = time.monotonic()
        recovered: float | None = None
        try:
            await until(self._all_ready, within=RECOVERY_WITHIN_S, interval=0.2)
            recovered = time.monotonic() - back
        except ConditionTimeout:
            states = await self._readiness()
            logs = "\n".join(
                f"replica {replica.index} log:\n{replica.log_tail()}"
                for replica in self._stack.replicas
                if not states[replica.index].startswith("200")
            )
            self.log.problems.append(
                f"replicas not ready {RECOVERY_WITHIN_S:.0f} s after the PostgreSQL "
                f"restart: {states}\n{logs}"
            )
        self.log.database_restarts.append(DatabaseRestart(at, down, recovered))

    async def _readiness(self) -> dict[int, str]:
        states = {}
        async with httpx.AsyncClient(timeout=2) as http:
            for replica in self._stack.replicas:
                try:
                    response = await http.get(f"{replica.url}/readyz")
                    states[replica.index] = f"{response.status_code} {response.text[:200]}"
                except httpx.HTTPError as error:
                    states[replica.index] = type(error).__name__
        return states

    async def _all_ready(self) -> bool:
        states = await self._readiness()
        return all(state.startswith("200") for state in states.values())
