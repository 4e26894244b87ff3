"""How long the Palisade processes take to clean up after many sessions that ended at
once: every ephemeral PAL deleted on Tavus, exactly once."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.sessions import tags
from app.domain.tenants.demo import DEMO_FACE_ID
from bench import rows
from bench.context import Bench
from bench.loadgen import PalSpec
from bench.report import progress
from bench.stack import PROFILE_NAMES, TENANT_ID

_POLL_INTERVAL_S = 0.1


@dataclass
class DrainFigures:
    sessions: int
    processes: int
    drained_s: float | None  # None: not within the bound
    pals_left: int  # never deleted on the simulator
    deleted_more_than_once: int
    palisade_cpu_s: float

    @property
    def deletes_per_second(self) -> float:
        return self.sessions / self.drained_s if self.drained_s else float("nan")

    @property
    def failed(self) -> bool:
        return self.drained_s is None or self.pals_left > 0 or self.deleted_more_than_once > 0


def run(bench: Bench) -> DrainFigures:
    stack, sizes = bench.stack, bench.options.sizes
    stack.retire_live_sessions()
    session_ids = [uuid.uuid4() for _ in range(sizes.drain_sessions)]
    # Named as Palisade names an ephemeral PAL, under Palisade's own Tavus key.
    names = [tags.pal_name("Bench voices", session_id) for session_id in session_ids]
    pal_ids = bench.loader.create_pals(
        PalSpec(stack.simulator_url, stack.tavus_api_key, tuple(names), DEMO_FACE_ID, clients=50),
        within_s=sizes.drain_seconds,
    )

    async def insert_and_wait(conn: AsyncConnection) -> float | None:
        await rows.insert_cleanup_backlog(
            conn,
            tenant_id=TENANT_ID,
            profile=PROFILE_NAMES["ephemeral"],
            session_ids=[str(s) for s in session_ids],
            pal_ids=pal_ids,
            pal_names=names,
        )
        # The processes are running and idle: the rows are due from the commit on.
        started = time.perf_counter()
        while (elapsed := time.perf_counter() - started) < sizes.drain_seconds:
            if await rows.cleanup_backlog(conn) == 0:
                return elapsed
            await asyncio.sleep(_POLL_INTERVAL_S)
        return None

    cpu_before = bench.monitor.cpu_seconds("palisade")
    drained_s = stack.sql(insert_and_wait)
    cpu = bench.monitor.cpu_seconds("palisade") - cpu_before
    calls, deleted = _delete_calls(stack.simulator_url, set(pal_ids))
    figures = DrainFigures(
        sessions=len(session_ids),
        processes=len(stack.palisade_urls),
        drained_s=drained_s,
        pals_left=len(set(pal_ids) - deleted),
        deleted_more_than_once=sum(1 for n in calls.values() if n > 1),
        palisade_cpu_s=cpu,
    )
    drained = "not drained" if drained_s is None else f"drained in {drained_s:.1f} s"
    progress(
        f"  drain: {figures.sessions} sessions {drained}, {figures.pals_left} PALs left, "
        f"{figures.deleted_more_than_once} deleted more than once"
    )
    return figures


def _delete_calls(simulator_url: str, pal_ids: set[str]) -> tuple[Counter[str], set[str]]:
    """From the simulator's call log: the DELETEs that reached each of ``pal_ids``
    (repeats included), and which of them were deleted."""
    log = httpx.get(
        f"{simulator_url}/_sim/calls", params={"operation": "pal.delete"}, timeout=120
    ).json()["data"]
    ours = [call for call in log if call["object_id"] in pal_ids]
    calls = Counter(call["object_id"] for call in ours)
    return calls, {call["object_id"] for call in ours if call["status"] == 204}
