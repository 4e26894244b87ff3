"""How hard the fuzzers try: small and reproducible by default, deeper on request.

| variable | meaning | default |
|---|---|---|
| `PALISADE_FUZZ_EXAMPLES` | generated requests per API operation (schemathesis) | 25 |
| `PALISADE_FUZZ_HOSTILE_EXAMPLES` | hostile requests per API operation | 100 |
| `PALISADE_FUZZ_RUNS` | runs of the session state machine | 30 |
| `PALISADE_FUZZ_STEPS` | at most this many steps per run | 30 |
| `PALISADE_FUZZ_SEED` | explore from this seed instead of the fixed one | unset |

Without `PALISADE_FUZZ_SEED` every run draws the same inputs (Hypothesis' derandomised
mode), so a failure in CI reproduces locally with the same command.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, seed, settings

TestFunc = TypeVar("TestFunc", bound=Callable[..., Any])


def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = int(raw)
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, not {raw!r}")
    return value


def examples_per_operation() -> int:
    return _positive_int("PALISADE_FUZZ_EXAMPLES", 25)


def hostile_examples_per_operation() -> int:
    return _positive_int("PALISADE_FUZZ_HOSTILE_EXAMPLES", 100)


def machine_runs() -> int:
    return _positive_int("PALISADE_FUZZ_RUNS", 30)


def steps_per_run() -> int:
    return _positive_int("PALISADE_FUZZ_STEPS", 30)


def _explicit_seed() -> int | None:
    raw = os.environ.get("PALISADE_FUZZ_SEED")
    return int(raw) if raw else None


def hypothesis_settings(*, max_examples: int) -> settings:
    """Settings shared by both fuzzers: no example database and no deadline, since every
    example goes through a real server and PostgreSQL."""
    return settings(
        max_examples=max_examples,
        derandomize=_explicit_seed() is None,
        database=None,
        deadline=None,
        # Real I/O makes every example "slow" by Hypothesis' in-memory standards.
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        print_blob=False,
    )


def seeded(test: TestFunc) -> TestFunc:
    """Apply `PALISADE_FUZZ_SEED` to a Hypothesis test (or a state machine factory)."""
    chosen = _explicit_seed()
    return test if chosen is None else seed(chosen)(test)
