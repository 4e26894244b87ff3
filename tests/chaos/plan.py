"""Everything a run decides up front, drawn from its seed: the tenants, each start the
workload makes and when processes die. The same seed gives the same plan; only the
interleaving of real processes differs from run to run."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Literal

from tests.chaos.modes import Mode

FACE_ID = "r90bbd427f71"
PAL_TEMPLATE: dict[str, Any] = {
    "pal_name": "Chaos coach",
    "default_face_id": FACE_ID,
    "system_prompt": "You are a calm coach.",
    "layers": {"tts": {"tts_engine": "cartesia", "external_voice_id": "voice-a"}},
}
ALLOWED_OVERRIDES = ["system_prompt", "layers.tts.external_voice_id"]
# Simulated seconds; at the simulator's time scale a call lasts well under a few seconds.
CALL_DURATIONS_S = (30, 60, 120, 240)
SIMULATOR_TIME_SCALE = 60


@dataclass(frozen=True)
class TenantPlan:
    id: str
    cap: int
    # A tenant with its own Tavus key is its own account on the simulator.
    own_tavus_key: str | None


# Small caps so that admission is exercised all the time; one tenant brings its own key.
TENANTS = (
    TenantPlan("alpha", cap=2, own_tavus_key=None),
    TenantPlan("bravo", cap=3, own_tavus_key=None),
    TenantPlan("charlie", cap=4, own_tavus_key="chaos-tenant-charlie-key"),
)


# The ephemeral profile keeps PALs warm for starts without overrides and one voice, so
# pool creates, claims and retirements run under the same faults and kills.
WARM_POOL: dict[str, Any] = {
    "size": 2,
    "variants": [
        {"name": "voice-0", "overrides": {"layers": {"tts": {"external_voice_id": "voice-0"}}}}
    ],
}


def ephemeral_profile(*, warm_pool: bool) -> dict[str, Any]:
    profile: dict[str, Any] = {
        "strategy": "ephemeral",
        "pal_template": PAL_TEMPLATE,
        "allowed_overrides": ALLOWED_OVERRIDES,
    }
    if warm_pool:
        profile["warm_pool"] = WARM_POOL
    return profile


def profiles(persistent_pal: str) -> dict[str, Any]:
    """The three strategies, each as one profile of every tenant."""
    return {
        "reuse": {"strategy": "reuse", "pal_id": persistent_pal},
        "ephemeral": ephemeral_profile(warm_pool=True),
        "auto": {
            "strategy": "auto",
            "pal_id": persistent_pal,
            "pal_template": PAL_TEMPLATE,
            "allowed_overrides": ALLOWED_OVERRIDES,
        },
    }


@dataclass(frozen=True)
class StartPlan:
    index: int
    tenant_id: str
    idempotency_key: str
    body: dict[str, Any]
    # Which replica the client asks first; retries move on to the next one.
    replica: int
    # Seconds after the start when the client ends the session; None: it ends by itself.
    end_after_s: float | None
    # The client's pause before this start.
    think_s: float


def start_plan(seed: int, index: int, replicas: int) -> StartPlan:
    # One generator per start: the plan of start i does not depend on how many starts
    # the clients happened to make before it.
    rng = random.Random(f"{seed}:start:{index}")
    tenant = rng.choice(TENANTS)
    profile = rng.choices(("reuse", "ephemeral", "auto"), weights=(3, 4, 3))[0]
    body: dict[str, Any] = {
        "profile": profile,
        "external_ref": f"chaos-user-{index}",
        "conversational_context": f"Chaos session {index}.",
        "conversation": {"properties": {"max_call_duration": rng.choice(CALL_DURATIONS_S)}},
    }
    # An auto profile with overrides runs ephemeral; without, it reuses the persistent PAL.
    if profile != "reuse" and rng.random() < 0.6:
        body["overrides"] = (
            {"system_prompt": f"Answer session {index} briefly."}
            if rng.random() < 0.5
            else {"layers": {"tts": {"external_voice_id": f"voice-{rng.randrange(5)}"}}}
        )
    return StartPlan(
        index=index,
        tenant_id=tenant.id,
        idempotency_key=f"chaos-{seed}-{index}",
        body=body,
        replica=rng.randrange(replicas),
        end_after_s=rng.uniform(0.0, 1.5) if rng.random() < 0.35 else None,
        think_s=rng.uniform(0.05, 0.3),
    )


@dataclass(frozen=True)
class ChaosEvent:
    at_s: float
    action: Literal["kill", "restart_database"]
    replica: int = 0
    # How long the killed replica, or PostgreSQL, stays down before it is started again.
    down_s: float = 0.0


def chaos_schedule(seed: int, mode: Mode) -> list[ChaosEvent]:
    """SIGKILLs at random moments, and database restarts spread over the middle of the run."""
    rng = random.Random(f"{seed}:chaos")
    events: list[ChaosEvent] = []
    # Leave the last seconds free so the final kill's restart is part of the run.
    at = rng.uniform(*mode.kill_gap_s) / 2
    while at < mode.duration_s - 5:
        events.append(
            ChaosEvent(at, "kill", replica=rng.randrange(mode.replicas), down_s=rng.uniform(0, 2))
        )
        at += rng.uniform(*mode.kill_gap_s)
    for n in range(mode.database_restarts):
        share = (n + rng.uniform(0.3, 0.7)) / mode.database_restarts
        events.append(
            ChaosEvent(mode.duration_s * share, "restart_database", down_s=rng.uniform(1, 3))
        )
    return sorted(events, key=lambda event: event.at_s)


def simulator_seed(seed: int) -> int:
    return random.Random(f"{seed}:simulator").randrange(2**31)
