from __future__ import annotations

from typing import Any

from tavus_simulator import ErrorFault
from tests.integration.simulator.conftest import Harness, HarnessFactory


async def scripted_run(harness: Harness) -> list[Any]:
    """A fixed sequence of calls under a 50 % error rate; returns what it observed."""
    harness.sim.add_fault("pal.get", ErrorFault(status=503, rate=0.5))
    harness.sim.add_fault("webhook", {"kind": "delay", "distribution": "uniform", "high_ms": 5})
    pal_id = await harness.create_pal()
    conversation_id = await harness.create_conversation(pal_id)
    statuses = [(await harness.client.get(f"/v2/pals/{pal_id}")).status_code for _ in range(20)]
    faults = [entry.fault for entry in harness.sim.call_log()]
    return [pal_id, conversation_id, statuses, faults]


async def test_same_seed_same_run(make_harness: HarnessFactory) -> None:
    first = await scripted_run(make_harness(seed=2024))
    second = await scripted_run(make_harness(seed=2024))

    assert first == second
    assert 503 in first[2]
    assert 200 in first[2]


async def test_other_seed_other_run(make_harness: HarnessFactory) -> None:
    assert await scripted_run(make_harness(seed=1)) != await scripted_run(make_harness(seed=2))


async def test_reset_replays_the_run(harness: Harness) -> None:
    first = await scripted_run(harness)
    harness.sim.reset()
    assert await scripted_run(harness) == first


async def test_drawn_seed_is_reported_for_replay(make_harness: HarnessFactory) -> None:
    from tavus_simulator import SimulatorConfig

    unseeded = make_harness(SimulatorConfig(seed=None))
    seed = unseeded.sim.snapshot()["seed"]
    original = await scripted_run(unseeded)

    assert await scripted_run(make_harness(seed=seed)) == original
