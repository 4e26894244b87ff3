"""Pool tags, and the refill's pure helpers."""

from __future__ import annotations

import uuid

from app.domain.pool.refill import _round_robin
from app.domain.sessions import tags


class TestPoolTags:
    def test_a_pool_tag_names_its_row_and_no_session(self) -> None:
        pool_id = uuid.uuid4()
        name = tags.pool_pal_name("Coach", pool_id)
        assert name == f"Coach (palisade pool {pool_id})"
        assert tags.pool_id_from_name(name) == pool_id
        assert tags.session_id_from_name(name) is None

    def test_a_session_tag_names_no_pool_row(self) -> None:
        session_id = uuid.uuid4()
        name = tags.pal_name("Coach", session_id)
        assert tags.session_id_from_name(name) == session_id
        assert tags.pool_id_from_name(name) is None

    def test_foreign_names_are_nobody_s(self) -> None:
        for name in (None, "", "Coach", "Coach (palisade pool nope)"):
            assert tags.pool_id_from_name(name) is None

    def test_the_base_name_is_shared_by_both_tags(self) -> None:
        assert tags.pal_base_name(tags.pal_name(" Coach ", uuid.uuid4())) == "Coach"
        assert tags.pal_base_name(tags.pool_pal_name(" Coach ", uuid.uuid4())) == "Coach"
        assert tags.pal_base_name(None) == tags.DEFAULT_PAL_NAME
        assert tags.pal_base_name("Plain") == "Plain"


class TestRoundRobin:
    def test_a_tight_cap_is_shared_across_keys(self) -> None:
        picks = _round_robin({("p", "a"): 3, ("p", "b"): 3}, 3)
        assert sorted(picks) == [("p", "a"), ("p", "a"), ("p", "b")]

    def test_never_more_than_each_deficit(self) -> None:
        picks = _round_robin({("p", "a"): 1, ("p", "b"): 0, ("p", "c"): -2}, 10)
        assert picks == [("p", "a")]

    def test_no_room_means_nothing(self) -> None:
        assert _round_robin({("p", "a"): 2}, 0) == []
        assert _round_robin({("p", "a"): 2}, -5) == []
