"""Reading the simulator's state: its scaled timestamps become real time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.chaos.ground_truth import real_time_of, tavus_objects

START = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _state(**extra: Any) -> dict[str, Any]:
    # Two real minutes at 60x: the simulated clock reads two hours.
    return {
        "config": {"time_scale": 60.0},
        "sim_time_s": 7200.0,
        "wall_time": "2026-11-24T14:00:00.000000Z",
        "pals": [],
        "conversations": [],
        **extra,
    }


def test_simulated_instants_map_back_to_real_time() -> None:
    real = real_time_of(_state())
    assert real("2026-11-24T12:00:00.000000Z") == START
    assert real("2026-11-24T13:00:00.000000Z") == START + timedelta(minutes=1)
    # PAL timestamps have no zone; they are UTC too.
    assert real("2026-11-24T14:00:00.000000") == START + timedelta(minutes=2)


def test_objects_keep_what_the_checks_need() -> None:
    state = _state(
        pals=[
            {
                "pal_id": "p1",
                "pal_name": "Coach",
                "pal_type": "user",
                "deleted_at": "2026-11-24T12:06:00.000000",
                "delete_calls": 2,
            }
        ],
        conversations=[
            {
                "conversation_id": "c1",
                "conversation_name": "Talk",
                "pal_id": "p1",
                "status": "ended",
                "created_at": "2026-11-24T12:00:00.000000Z",
                "ended_at": "2026-11-24T12:03:00.000000Z",
                "properties": {"max_call_duration": 300},
            },
            {
                "conversation_id": "c2",
                "conversation_name": None,
                "pal_id": "p1",
                "status": "active",
                "created_at": "2026-11-24T12:03:00.000000Z",
                "ended_at": None,
                "properties": {"max_call_duration": 60},
            },
        ],
    )
    (pal,), (ended, active) = tavus_objects(state)
    assert (pal.deleted_at, pal.delete_calls, pal.user) == (START + timedelta(seconds=6), 2, True)
    assert ended.ended_at == START + timedelta(seconds=3)
    assert ended.max_call_duration_s == 300
    assert active.ended_at is None
