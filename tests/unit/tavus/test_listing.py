"""A lookup never reads "not there" into a listing it could not read whole.

Each server below behaves as Tavus's docs allow (no documented order, cap on ``limit`` or
promise that ``page`` is honoured, and objects created or deleted between page reads);
the pager must either find the object or say it cannot tell.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from app.tavus.listing import TavusListIncomplete, find_one
from app.tavus.models import Page, Pal
from app.tavus.operations import Operation

T0 = datetime(2026, 12, 1, tzinfo=UTC)
TARGET = "target"


@dataclass
class Listing:
    """An account's PALs as a list endpoint serves them, page by page."""

    names: list[str]
    newest_first: bool = True
    max_limit: int | None = None
    ignore_page: bool = False
    total_count: bool = True
    # Called before each page is served (page number), to change the account meanwhile.
    between_pages: Callable[[Listing, int], None] | None = None
    requests: list[tuple[int, int]] = field(default_factory=list)
    _created: int = 0

    def __post_init__(self) -> None:
        self.pals = [self._pal(name) for name in self.names]

    def _pal(self, name: str) -> Pal:
        self._created += 1
        return Pal(
            pal_id=f"p{self._created:05d}",
            pal_name=name,
            created_at=T0 + timedelta(seconds=self._created),
        )

    def create(self, name: str) -> None:
        self.pals.append(self._pal(name))

    def delete_oldest(self, count: int = 1) -> None:
        del self.pals[:count]

    async def fetch(self, page: int, limit: int = 100) -> Page[Pal]:
        self.requests.append((page, limit))
        if self.between_pages is not None:
            self.between_pages(self, page)
        served = min(limit, self.max_limit or limit)
        page_served = 1 if self.ignore_page else page
        ordered = sorted(self.pals, key=lambda p: p.created_at or T0, reverse=self.newest_first)
        window = ordered[(page_served - 1) * served : page_served * served]
        total = len(self.pals) if self.total_count else None
        return Page[Pal](data=window, total_count=total, page=page, limit=limit)


async def lookup(
    listing: Listing, *, max_pages: int = 100, created_after: datetime | None = None
) -> Pal | None:
    found, _ = await find_one(
        Operation.LIST_PALS,
        listing.fetch,
        key=lambda pal: pal.pal_id,
        wanted=lambda pal: pal.pal_name == TARGET,
        created=lambda pal: pal.created_at,
        max_pages=max_pages,
        created_after=created_after,
    )
    return found


def names(count: int, *, target_at: int | None = None) -> list[str]:
    return [TARGET if i == target_at else f"old-{i}" for i in range(count)]


class TestFound:
    @pytest.mark.parametrize("newest_first", [True, False])
    async def test_on_a_later_page(self, newest_first: bool) -> None:
        listing = Listing(names(250, target_at=120), newest_first=newest_first)

        found = await lookup(listing)

        assert found is not None
        assert found.pal_name == TARGET

    async def test_stops_at_the_first_match(self) -> None:
        listing = Listing(names(500, target_at=499))

        await lookup(listing)

        assert len(listing.requests) == 1

    async def test_under_a_capped_limit(self) -> None:
        listing = Listing(names(35, target_at=2), newest_first=True, max_limit=10)

        found = await lookup(listing)

        assert found is not None
        assert len(listing.requests) == 4


class TestAbsent:
    async def test_one_page_is_one_answer(self) -> None:
        listing = Listing(names(30))

        assert await lookup(listing) is None
        assert len(listing.requests) == 1

    async def test_several_pages_are_read_twice(self) -> None:
        listing = Listing(names(250))

        assert await lookup(listing) is None
        assert len(listing.requests) == 6

    async def test_capped_limit_is_not_taken_for_the_end(self) -> None:
        # A page shorter than asked is a cap here, not the last page.
        listing = Listing(names(35), max_limit=10)

        assert await lookup(listing) is None
        assert [page for page, _ in listing.requests] == [1, 2, 3, 4, 1, 2, 3, 4]

    async def test_without_a_count_the_empty_page_ends_it(self) -> None:
        listing = Listing(names(30), total_count=False)

        assert await lookup(listing) is None
        assert [page for page, _ in listing.requests] == [1, 2, 1, 2]

    async def test_newest_first_stops_below_the_session(self) -> None:
        # 5,000 earlier objects, all older than the session: one page tells.
        listing = Listing(names(5000))

        assert await lookup(listing, created_after=T0 + timedelta(hours=2)) is None
        assert len(listing.requests) == 1


class TestCannotTell:
    async def test_a_server_ignoring_page(self) -> None:
        # (a) every page is page 1.
        listing = Listing(names(250, target_at=5), newest_first=True, ignore_page=True)

        with pytest.raises(TavusListIncomplete, match="repeated"):
            await lookup(listing)

    async def test_oldest_first_with_deletions_mid_scan(self) -> None:
        # (b) Palisade's own cleanup deletes PALs while the scan reads; each deletion
        # moves the next page's first object onto a page already read.
        def delete(listing: Listing, page: int) -> None:
            if page > 1:
                listing.delete_oldest(1)

        listing = Listing(names(300, target_at=100), newest_first=False, between_pages=delete)

        with pytest.raises(TavusListIncomplete, match="count changed"):
            await lookup(listing)

    async def test_oldest_first_with_a_deletion_and_a_creation(self) -> None:
        # The count is the same after each page, yet one object was skipped over: only a
        # second scan can tell.
        def churn(listing: Listing, page: int) -> None:
            if page == 2 and len(listing.requests) == 2:
                listing.delete_oldest(1)
                listing.create("fresh")

        listing = Listing(names(300, target_at=100), newest_first=False, between_pages=churn)

        found = await lookup(listing)

        # The second scan, on a quiet listing, finds what the first skipped.
        assert found is not None

    async def test_a_capped_limit_below_the_page_bound(self) -> None:
        # (c) a cap makes more pages than a lookup may read.
        listing = Listing(names(500), max_limit=10)

        with pytest.raises(TavusListIncomplete, match="more than 20 pages"):
            await lookup(listing, max_pages=20)

    async def test_newest_first_with_creations_between_pages(self) -> None:
        # (d) 100 objects created between two page reads push page 1 onto page 2.
        def create(listing: Listing, page: int) -> None:
            if page == 2:
                for i in range(100):
                    listing.create(f"new-{i}")

        listing = Listing(names(250, target_at=10), newest_first=True, between_pages=create)

        with pytest.raises(TavusListIncomplete):
            await lookup(listing)

    async def test_fewer_objects_than_counted(self) -> None:
        class Liar(Listing):
            async def fetch(self, page: int, limit: int = 100) -> Page[Pal]:
                served = await super().fetch(page, limit)
                return served.model_copy(update={"total_count": 999})

        with pytest.raises(TavusListIncomplete, match=r"count|of 999"):
            await lookup(Liar(names(30), total_count=True))

    async def test_a_row_it_could_not_read_still_counts(self) -> None:
        class Skips(Listing):
            async def fetch(self, page: int, limit: int = 100) -> Page[Pal]:
                served = await super().fetch(page, limit)
                total = len(self.pals) + 1
                return served.model_copy(
                    update={"skipped": 1 if page == 1 else 0, "total_count": total}
                )

        # 30 readable rows and one the client could not read: 31 as the server counts.
        assert await lookup(Skips(names(30))) is None
