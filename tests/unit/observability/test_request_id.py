"""X-Request-ID: a caller's sane id is kept, anything else is replaced."""

from __future__ import annotations

import re

import pytest

from app.observability.http import request_id_from

GENERATED = re.compile(r"[0-9a-f]{32}")


@pytest.mark.parametrize(
    "header",
    [
        "abc",
        "0f8fad5b-d9cb-469f-a165-70867728950e",
        "Root=1-67891233-abcdef012345678912345678;Parent=53995c3f42cd8ad8",
        "x" * 128,
        b"trace-42",
    ],
)
def test_a_sane_token_is_kept(header: str | bytes) -> None:
    expected = header.decode() if isinstance(header, bytes) else header
    assert request_id_from(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "x" * 129,
        "has space",
        "line\nbreak",
        "tab\there",
        "caf\u00e9",
        b"\xff\xfe",
        "\x00",
    ],
)
def test_anything_else_gets_a_fresh_id(header: str | bytes | None) -> None:
    generated = request_id_from(header)
    assert GENERATED.fullmatch(generated)


def test_fresh_ids_differ() -> None:
    assert request_id_from(None) != request_id_from(None)
