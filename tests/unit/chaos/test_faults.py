"""Counting the faults a run injected from the simulator's call log."""

from __future__ import annotations

from typing import Any

from tests.chaos.faults import count_faults, fault_kinds


def test_labels_name_the_kinds_a_run_injects() -> None:
    assert fault_kinds(None) == []
    assert fault_kinds("error:503") == ["5xx"]
    assert fault_kinds("error:429") == ["rate_limited"]
    assert fault_kinds("error:400") == ["concurrency_limit"]
    assert fault_kinds("latency:80ms+succeed_then_drop") == ["latency", "succeed_then_drop"]
    assert fault_kinds("duplicate:2+delay:120ms") == ["duplicate", "delay"]


def _webhook(seq: int, conversation: str, fault: str | None) -> dict[str, Any]:
    return {
        "seq": seq,
        "operation": "webhook",
        "object_id": conversation,
        "event_type": "system.shutdown",
        "fault": fault,
    }


def test_a_duplicated_webhook_counts_once() -> None:
    calls = [
        {"seq": 1, "operation": "pal.create", "fault": "hang"},
        {"seq": 2, "operation": "pal.create", "fault": None},
        # The simulator logs every copy of a duplicated event with the same label.
        _webhook(3, "c1", "duplicate:2"),
        _webhook(4, "c1", "duplicate:2"),
        _webhook(5, "c1", "duplicate:2"),
        _webhook(6, "c2", "duplicate:2+reorder"),
    ]
    assert count_faults(calls) == {
        ("pal.create", "hang"): 1,
        ("webhook", "duplicate"): 2,
        ("webhook", "reorder"): 1,
    }
