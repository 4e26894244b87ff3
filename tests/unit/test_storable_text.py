from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from app.domain.storable_text import (
    StorableStr,
    replace_unstorable,
    unstorable_location,
)


class TestLocation:
    @pytest.mark.parametrize(
        ("value", "location"),
        [
            ("plain", None),
            ("emoji \U0001f600 and accents é", None),
            ({"a": [1, True, None, 2.5]}, None),
            ("a\x00b", []),
            ("\ud800", []),
            ("low \udfff alone", []),
            ({"a": {"b": ["ok", "bad\x00"]}}, ["a", "b", 1]),
            ({"ok": 1, "k\x00": "v"}, ["k\ufffd"]),
            ([{"x": "\udc00"}], [0, "x"]),
        ],
    )
    def test_finds_the_first_character_postgresql_refuses(
        self, value: Any, location: list[str | int] | None
    ) -> None:
        assert unstorable_location(value) == location


class TestReplace:
    def test_replaces_in_keys_and_strings_and_keeps_the_rest(self) -> None:
        value = {"k\x00": ["a\ud800", 1, None, {"x": "ok"}]}
        assert replace_unstorable(value) == {"k\ufffd": ["a\ufffd", 1, None, {"x": "ok"}]}

    def test_the_result_has_nothing_left_to_refuse(self) -> None:
        assert unstorable_location(replace_unstorable({"a": "\x00\ud800\udfff"})) is None


class TestDeepValues:
    """Values nested far deeper than Python recurses (whatever a decoder lets through)."""

    LEVELS = 20_000

    def deep(self, leaf: Any) -> Any:
        value = leaf
        for level in range(self.LEVELS):
            value = [value] if level % 2 else {"k": value}
        return value

    def leaf_of(self, value: Any) -> Any:
        for _ in range(self.LEVELS):
            value = value[0] if isinstance(value, list) else value["k"]
        return value

    def test_location(self) -> None:
        assert unstorable_location(self.deep("fine")) is None
        location = unstorable_location(self.deep("bad\x00"))
        assert location is not None
        assert len(location) == self.LEVELS

    def test_replace(self) -> None:
        replaced = replace_unstorable(self.deep("bad\x00"))
        assert self.leaf_of(replaced) == "bad\ufffd"

    def test_the_first_in_document_order_is_found(self) -> None:
        value = {"a": [{"x": "ok"}, {"y": "\x00"}], "b\x00": "v", "c": "\ud800"}
        assert unstorable_location(value) == ["a", 1, "y"]
        assert unstorable_location({"a": "ok", "b\x00": {"c": "\x00"}}) == ["b\ufffd"]


class TestStorableStr:
    def test_accepts_text_postgresql_stores(self) -> None:
        assert TypeAdapter(StorableStr).validate_python("acme") == "acme"

    def test_refuses_a_nul_with_a_stable_code(self) -> None:
        with pytest.raises(ValidationError) as caught:
            TypeAdapter(StorableStr).validate_python("ac\x00me")
        [error] = caught.value.errors()
        assert error["type"] == "invalid_character"
