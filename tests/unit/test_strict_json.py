from __future__ import annotations

import json
import math
from datetime import date
from typing import Any

import pytest
import yaml

from app.domain.strict_json import MAX_JSON_DEPTH, StrictJsonError, first_violation, loads


def nested(depth: int) -> str:
    """``depth`` levels of arrays and objects, alternating, around a 0."""
    text = "0"
    for level in range(depth):
        text = f"[{text}]" if level % 2 else f'{{"k": {text}}}'
    return text


class TestLoads:
    @pytest.mark.parametrize(
        "document",
        [
            '{"a": [1, 2.5, -3e-7, "x", true, false, null]}',
            '"\\ud800 and \\u0000 decode; storing them is another rule"',
            "1e308",
            "-0.0",
            str(10**400),
            '{"emoji": "\U0001f600", "rtl": "\u202e"}',
        ],
    )
    def test_what_the_standard_library_reads_the_same_way(self, document: str) -> None:
        assert loads(document.encode()) == json.loads(document)
        assert loads(document) == json.loads(document)

    @pytest.mark.parametrize(
        "document",
        [
            b"NaN",
            b"[Infinity]",
            b'{"a": -Infinity}',
            b"1e999",
            b"-1e999",
            b"[" + b"9" * 400 + b".5]",
            b'"caf\xc3"',
            b'"\xc0\xaf"',
            b'"\xed\xa0\x80"',  # a surrogate encoded in UTF-8
            '"x"'.encode("utf-16"),
            b"\xef\xbb\xbf{}",  # a UTF-8 byte-order mark
            b"1" * 5000,
            b"[" * 100_000 + b"]" * 100_000,
            b'{"a": 1,}',
            b"",
            b'"tab\tinside"',
        ],
    )
    def test_refused(self, document: bytes) -> None:
        with pytest.raises(StrictJsonError):
            loads(document)

    def test_refusals_are_json_decode_errors(self) -> None:
        with pytest.raises(json.JSONDecodeError, match="NaN"):
            loads(b"[NaN]")

    def test_the_limit_is_accepted_and_one_more_level_is_not(self) -> None:
        assert loads(nested(MAX_JSON_DEPTH)) == json.loads(nested(MAX_JSON_DEPTH))
        with pytest.raises(StrictJsonError, match=f"deeper than {MAX_JSON_DEPTH}"):
            loads(nested(MAX_JSON_DEPTH + 1))

    def test_many_brackets_that_do_not_nest_are_fine(self) -> None:
        wide = json.dumps({"items": [[i] for i in range(500)], "text": "[[[[{{{{" * 50})
        assert loads(wide) == json.loads(wide)


class TestFirstViolation:
    def test_json_values_pass(self) -> None:
        assert first_violation(json.loads(nested(MAX_JSON_DEPTH))) is None
        assert first_violation({"a": [1, 2.5, "x", None, True]}) is None

    @pytest.mark.parametrize(
        ("value", "where"),
        [
            ({"a": [1, math.nan]}, ["a", 1]),
            ({"t": {"temperature": math.inf}}, ["t", "temperature"]),
            ({"when": date(2026, 1, 1)}, ["when"]),
            ({1: "x"}, ["1"]),
            ({"b": b"bytes"}, ["b"]),
        ],
    )
    def test_where_and_why(self, value: Any, where: list[str | int]) -> None:
        found = first_violation(value)
        assert found is not None
        assert found[0] == where

    def test_too_deep(self) -> None:
        found = first_violation(json.loads(nested(MAX_JSON_DEPTH + 1)))
        assert found is not None
        assert "deeper" in found[1]

    def test_yaml_special_floats_and_self_reference(self) -> None:
        assert first_violation(yaml.safe_load("a: .nan")) is not None
        assert first_violation(yaml.safe_load("a: [-.inf]")) is not None
        # An alias inside its own anchor: a value that contains itself.
        looped = yaml.safe_load("a: &x [*x]")
        found = first_violation(looped)
        assert found is not None
        assert "deeper" in found[1]
