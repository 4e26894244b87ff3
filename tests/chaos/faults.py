"""The Tavus faults a run injects (docs/simulator.md "Fault model"), and how the
simulator's call log is read back into counts by kind."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

# Longer than Palisade's Tavus timeout (2 s in the replicas), so a hang is a timeout
# whose outcome Palisade must resolve by lookup.
HANG_S = 3.0

_CREATE_FAULTS: list[dict[str, Any]] = [
    {"kind": "error", "preset": "unavailable", "rate": 0.05},
    {"kind": "error", "preset": "bad_gateway", "rate": 0.03},
    {"kind": "hang", "seconds": HANG_S, "rate": 0.03},
    {"kind": "succeed_then_drop", "rate": 0.06},
    {"kind": "error", "preset": "rate_limited", "retry_after_s": 0.2, "rate": 0.05},
]

RULES: Mapping[str, list[dict[str, Any]]] = {
    "pal.create": _CREATE_FAULTS,
    "conversation.create": [
        *_CREATE_FAULTS,
        {"kind": "error", "preset": "concurrency_limit", "rate": 0.04},
    ],
    "webhook": [
        {"kind": "drop", "rate": 0.15},
        {"kind": "duplicate", "copies": 2, "rate": 0.2},
        {"kind": "reorder", "max_hold_ms": 300, "rate": 0.15},
        {"kind": "delay", "distribution": "uniform", "low_ms": 10, "high_ms": 500, "rate": 0.15},
    ],
}

# The simulator labels a fired error rule with its status; name the ones a run injects.
_ERROR_KINDS = {
    "error:400": "concurrency_limit",
    "error:429": "rate_limited",
    "error:500": "5xx",
    "error:502": "5xx",
    "error:503": "5xx",
    "error:504": "5xx",
}


def fault_kinds(label: str | None) -> list[str]:
    """The kinds of fault named by one call-log ``fault`` label, e.g.
    ``latency:80ms+error:503`` or ``duplicate:2+reorder``."""
    if not label:
        return []
    kinds = []
    for part in label.split("+"):
        if part.startswith("error:"):
            kinds.append(_ERROR_KINDS.get(part, part))
        else:
            kinds.append(part.split(":", 1)[0])
    return kinds


def count_faults(calls: Iterable[Mapping[str, Any]]) -> Counter[tuple[str, str]]:
    """Faults that fired, by (operation, kind), from the simulator's call log.

    A duplicated webhook is logged once per copy; each copy carries the label, so
    deliveries are counted once per event, on the first copy."""
    counts: Counter[tuple[str, str]] = Counter()
    seen_webhooks: set[tuple[Any, Any, Any]] = set()
    for call in calls:
        operation = str(call["operation"])
        if operation == "webhook":
            event = (call.get("object_id"), call.get("event_type"), call.get("fault"))
            if event in seen_webhooks:
                continue
            seen_webhooks.add(event)
        for kind in fault_kinds(call.get("fault")):
            counts[(operation, kind)] += 1
    return counts
