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


class TestStorableStr:
    def test_accepts_text_postgresql_stores(self) -> None:
        assert TypeAdapter(StorableStr).validate_python("acme") == "acme"

    def test_refuses_a_nul_with_a_stable_code(self) -> None:
        with pytest.raises(ValidationError) as caught:
            TypeAdapter(StorableStr).validate_python("ac\x00me")
        [error] = caught.value.errors()
        assert error["type"] == "invalid_character"
