from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest

from tavus_simulator.clock import SimClock
from tavus_simulator.config import SimulatorConfig
from tavus_simulator.listing import IndexLog, Listing, page_window

T0 = datetime(2026, 1, 1)


@dataclass(eq=False)
class Item:
    seq: int
    created_at: datetime


def items(count: int, *, start: int = 0) -> list[Item]:
    return [Item(n, T0 + timedelta(seconds=n)) for n in range(start, start + count)]


class TestListing:
    def test_pages_from_either_end(self) -> None:
        listing: Listing[Item] = Listing()
        made = items(5)
        for item in made:
            listing.add(item)

        assert listing.page(0, 2, newest_first=True) == [made[4], made[3]]
        assert listing.page(4, 2, newest_first=True) == [made[0]]
        assert listing.page(4, 2, newest_first=False) == [made[4]]
        assert listing.page(5, 2, newest_first=True) == []

    def test_discard_finds_the_item_among_equal_timestamps(self) -> None:
        listing: Listing[Item] = Listing()
        same = [Item(n, T0) for n in range(4)]
        for item in same:
            listing.add(item)

        listing.discard(same[2])
        listing.discard(Item(9, T0))

        assert listing.page(0, 10, newest_first=False) == [same[0], same[1], same[3]]

    def test_merge_puts_older_objects_first(self) -> None:
        listing: Listing[Item] = Listing()
        recent = items(2, start=100)
        for item in recent:
            listing.add(item)
        older = items(3)

        listing.merge(older)

        assert listing.page(0, 10, newest_first=False) == [*older, *recent]
        assert len(listing) == 5


class TestPageWindow:
    @pytest.mark.parametrize(
        ("fields", "page", "limit", "window"),
        [
            ({}, 3, 10, (20, 10)),
            ({"list_max_limit": 4}, 3, 10, (8, 4)),
            ({"list_max_limit": 4}, 3, 2, (4, 2)),
            ({"list_page_ignored_after": 2}, 2, 10, (10, 10)),
            ({"list_page_ignored_after": 2}, 3, 10, (0, 10)),
            ({"list_page_ignored_after": 0}, 1, 10, (0, 10)),
        ],
    )
    def test_cap_and_ignored_pages(
        self, fields: dict[str, int], page: int, limit: int, window: tuple[int, int]
    ) -> None:
        assert page_window(SimulatorConfig(**fields), page, limit) == window


class TestIndexLog:
    def test_changes_apply_after_the_lag_in_order(self) -> None:
        now = [0.0]
        clock = SimClock(1.0, real=lambda: now[0])
        config = SimulatorConfig(list_lag_s=10)
        log = IndexLog(clock, lambda: config)
        applied: list[str] = []

        log.submit(lambda: applied.append("create"))
        config = SimulatorConfig(list_lag_s=0)
        log.submit(lambda: applied.append("delete"))
        log.catch_up()
        early = list(applied)
        now[0] = 10.0
        log.catch_up()

        assert early == []
        assert applied == ["create", "delete"]

    def test_without_lag_a_change_applies_at_once(self) -> None:
        log = IndexLog(SimClock(1.0), SimulatorConfig)
        applied: list[str] = []

        log.submit(lambda: applied.append("create"))

        assert applied == ["create"]
