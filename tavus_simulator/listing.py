"""What GET /v2/pals and GET /v2/conversations serve: per-filter orders kept as the
objects change, and the paging rules a server may apply to them.

Tavus documents ``limit``, ``page`` and ``total_count`` but no order, no maximum
``limit`` and no promise that ``page`` is honoured (tavus-api.md §5b). Each page is
cut from the live state at the moment of the request, so objects created or
deleted between two page requests shift the pages after them, as on any server
that pages by offset.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from tavus_simulator.clock import SimClock
from tavus_simulator.config import SimulatorConfig


class Listed(Protocol):
    @property
    def created_at(self) -> datetime: ...

    @property
    def seq(self) -> int: ...


T = TypeVar("T", bound=Listed)


def _order(item: Listed) -> tuple[datetime, int]:
    return (item.created_at, item.seq)


class Listing(Generic[T]):
    """One filter's objects, oldest first; a page is a slice, never a scan."""

    def __init__(self) -> None:
        self._items: list[T] = []

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: T) -> None:
        # New objects are the newest, so this is an append in all but prefills.
        bisect.insort(self._items, item, key=_order)

    def discard(self, item: T) -> None:
        index = bisect.bisect_left(self._items, _order(item), key=_order)
        if index < len(self._items) and self._items[index] is item:
            del self._items[index]

    def merge(self, items: Iterable[T]) -> None:
        # Both runs are sorted already: Timsort merges them in linear time.
        self._items = sorted([*self._items, *items], key=_order)

    def page(self, offset: int, limit: int, newest_first: bool) -> list[T]:
        size = len(self._items)
        if offset >= size:
            return []
        if newest_first:
            stop = size - offset
            return self._items[max(stop - limit, 0) : stop][::-1]
        return self._items[offset : offset + limit]


def page_window(config: SimulatorConfig, page: int, limit: int) -> tuple[int, int]:
    """The (offset, limit) a server with ``config``'s paging rules serves for a
    request of ``page`` and ``limit``: a capped limit is silent and counts for the
    offset too, and an ignored page is page 1."""
    if config.list_max_limit is not None:
        limit = min(limit, config.list_max_limit)
    if config.list_page_ignored_after is not None and page > config.list_page_ignored_after:
        page = 1
    return (page - 1) * limit, limit


class IndexLog:
    """Changes on their way to the listings, ``list_lag_s`` behind the objects.

    A change is due ``list_lag_s`` after it happened, and never before the change
    queued ahead of it, so the listings replay the objects' history in order even
    when the lag shrinks (an object's deletion cannot overtake its creation).
    """

    def __init__(self, clock: SimClock, config: Callable[[], SimulatorConfig]) -> None:
        self._clock = clock
        self._config = config
        self._pending: deque[tuple[float, Callable[[], None]]] = deque()

    def clear(self) -> None:
        self._pending.clear()

    def submit(self, change: Callable[[], None]) -> None:
        now = self._clock.now()
        due = now + self._config().list_lag_s
        if self._pending:
            due = max(due, self._pending[-1][0])
        elif due <= now:
            change()
            return
        self._pending.append((due, change))

    def catch_up(self) -> None:
        now = self._clock.now()
        while self._pending and self._pending[0][0] <= now:
            self._pending.popleft()[1]()
