from __future__ import annotations

import itertools
from collections import deque

from tavus_simulator.clock import SimClock
from tavus_simulator.records import CallRecord


class CallLog:
    """The most recent API calls and webhook deliveries, oldest first."""

    def __init__(self, clock: SimClock, limit: int) -> None:
        self._clock = clock
        self._entries: deque[CallRecord] = deque(maxlen=limit)
        self._seq = itertools.count(1)

    def record(
        self,
        operation: str,
        method: str,
        path: str,
        status: int | None,
        latency_ms: float,
        fault: str | None,
        *,
        account: str | None = None,
        object_id: str | None = None,
        event_type: str | None = None,
        error: str | None = None,
        traceparent: str | None = None,
    ) -> CallRecord:
        entry = CallRecord(
            seq=next(self._seq),
            at=self._clock.wall(),
            operation=operation,
            method=method,
            path=path,
            status=status,
            latency_ms=latency_ms,
            fault=fault,
            account=account,
            object_id=object_id,
            event_type=event_type,
            error=error,
            traceparent=traceparent,
        )
        self._entries.append(entry)
        return entry

    def entries(self, operation: str | None = None, since_seq: int = 0) -> list[CallRecord]:
        return [
            entry
            for entry in self._entries
            if entry.seq > since_seq and (operation is None or entry.operation == operation)
        ]

    def clear(self) -> None:
        self._entries.clear()
        self._seq = itertools.count(1)
