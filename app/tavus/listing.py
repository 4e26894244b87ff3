"""Finding one object in a Tavus listing without ever mistaking "not read" for "absent".

Tavus's list endpoints take ``page`` and ``limit`` and answer ``{data, total_count}``;
its docs promise no sort order, no maximum ``limit``, no name filter and nothing about
pages read while the account changes. A server may cap ``limit``, ignore ``page``, list
oldest or newest first, and shift every later page when an object is created or deleted
between two reads. A pager that stops at the first short or repeated page can then
report "not there" for an object that exists; the saga would take that as "never
created" and leak a PAL or bill a second conversation.

So a lookup stops at the first exact match, and otherwise says one of two things:

* ``absent``, only when it read the whole listing: pages until an empty one or until it
  had seen as many objects as ``total_count`` says; no page repeated an object already
  read (a server ignoring ``page``, or objects created in front of the scan); the count
  never changed during the scan (an object created or deleted meanwhile) and equals what
  was read. A scan of more than one page is not one answer from the server, so its
  absence is confirmed by a second scan that must see the same objects (a creation and a
  deletion between two page reads keep the count and can hide one object).
* ``incomplete`` (:class:`TavusListIncomplete`) in every other case, including more pages
  than ``max_pages``. The caller keeps its question open and asks again later.

With ``created_after``, a scan may also end early on a listing that reads newest first:
once a whole page is older than that instant, nothing further down can be the object.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Final, Generic

from app.tavus.errors import TavusError
from app.tavus.models import ItemT, Page
from app.tavus.operations import Operation

# Tavus's clock and ours disagree by some amount; an object is judged "older than the
# session" only with this much room.
CLOCK_SKEW: Final = timedelta(minutes=5)


class TavusListIncomplete(TavusError):
    """A lookup could not read the whole listing, so it cannot say the object is absent."""

    def __init__(self, operation: Operation, *, message: str, pages: int) -> None:
        self.pages = pages
        super().__init__(operation, message=message)


@dataclass(frozen=True)
class _Read(Generic[ItemT]):
    """One scan's outcome: the match, or everything it read when there was none."""

    match: ItemT | None
    ids: frozenset[str]
    total: int | None
    pages: int


class _Scan(Generic[ItemT]):
    def __init__(
        self,
        operation: Operation,
        fetch: Callable[[int], Awaitable[Page[ItemT]]],
        key: Callable[[ItemT], str],
        wanted: Callable[[ItemT], bool],
        created: Callable[[ItemT], datetime | None],
        *,
        max_pages: int,
        created_after: datetime | None,
    ) -> None:
        self.operation = operation
        self.fetch: Callable[[int], Awaitable[Page[ItemT]]] = fetch
        self.key: Callable[[ItemT], str] = key
        self.wanted: Callable[[ItemT], bool] = wanted
        self.created: Callable[[ItemT], datetime | None] = created
        self.max_pages = max_pages
        self.cutoff = None if created_after is None else created_after - CLOCK_SKEW

    def _incomplete(self, reason: str, pages: int) -> TavusListIncomplete:
        return TavusListIncomplete(
            self.operation, message=f"listing read incompletely: {reason}", pages=pages
        )

    async def run(self) -> _Read[ItemT]:
        seen: set[str] = set()
        skipped = 0
        totals: set[int] = set()
        newest_first = True
        previous_oldest: datetime | None = None
        page_number = 0
        while True:
            page_number += 1
            if page_number > self.max_pages:
                raise self._incomplete(f"more than {self.max_pages} pages", page_number - 1)
            page = await self.fetch(page_number)
            for item in page.data:
                if self.wanted(item):
                    return _Read(item, frozenset(), None, page_number)
            keys = [self.key(item) for item in page.data]
            if len(set(keys)) != len(keys) or not seen.isdisjoint(keys):
                raise self._incomplete(
                    "a page repeated objects already read (page ignored, or objects "
                    "created ahead of the scan)",
                    page_number,
                )
            seen.update(keys)
            skipped += page.skipped
            if page.total_count is not None:
                totals.add(page.total_count)
            if len(totals) > 1:
                raise self._incomplete("the count changed during the scan", page_number)
            read = len(seen) + skipped
            if not page.data and page.skipped == 0:
                break
            total = next(iter(totals), None)
            if total is not None and read >= total:
                break
            # A short page may be a server's cap on ``limit``, not the end: only an empty
            # page or the count says the listing is over.
            stamps = [self.created(item) for item in page.data]
            newest_first, previous_oldest = _still_newest_first(
                stamps, newest_first, previous_oldest
            )
            if (
                self.cutoff is not None
                and newest_first
                and stamps
                and all(stamp is not None and stamp < self.cutoff for stamp in stamps)
            ):
                return _Read(None, frozenset(seen), None, page_number)
        total = next(iter(totals), None)
        if total is not None and len(seen) + skipped != total:
            raise self._incomplete(f"read {len(seen) + skipped} of {total} objects", page_number)
        return _Read(None, frozenset(seen), total, page_number)


def _still_newest_first(
    stamps: list[datetime | None], so_far: bool, previous_oldest: datetime | None
) -> tuple[bool, datetime | None]:
    """Whether every page read so far lists newest first, judged by creation times."""
    if not so_far or any(stamp is None for stamp in stamps):
        return False, previous_oldest
    known = [stamp for stamp in stamps if stamp is not None]
    if not known:
        return so_far, previous_oldest
    ordered = all(a >= b for a, b in pairwise(known))
    if previous_oldest is not None and known[0] > previous_oldest:
        ordered = False
    return ordered, known[-1]


async def find_one(
    operation: Operation,
    fetch: Callable[[int], Awaitable[Page[ItemT]]],
    *,
    key: Callable[[ItemT], str],
    wanted: Callable[[ItemT], bool],
    created: Callable[[ItemT], datetime | None],
    max_pages: int,
    created_after: datetime | None = None,
) -> tuple[ItemT | None, int]:
    """The first object ``wanted`` accepts, or None when the listing proves there is none;
    with the number of pages read. Raises :class:`TavusListIncomplete` otherwise."""
    scan = _Scan(
        operation,
        fetch,
        key,
        wanted,
        created,
        max_pages=max_pages,
        created_after=created_after,
    )
    first = await scan.run()
    if first.match is not None or first.pages <= 1:
        return first.match, first.pages
    second = await scan.run()
    pages = first.pages + second.pages
    if second.match is not None:
        return second.match, pages
    if second.ids != first.ids or second.total != first.total:
        raise TavusListIncomplete(
            operation,
            message="listing read incompletely: two scans saw different objects",
            pages=pages,
        )
    return None, pages
