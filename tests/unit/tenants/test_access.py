"""Key restrictions and browser origins, as written by operators and sent by browsers."""

from __future__ import annotations

import pytest
from pydantic_core import PydanticCustomError

from app.domain.tenants.access import ALL_SCOPES, StartRate, effective_scopes
from app.domain.tenants.origins import normalise_origin, normalise_origins


class TestStartRate:
    @pytest.mark.parametrize(
        ("text", "burst", "expected"),
        [
            ("10/minute", None, StartRate(10, 60, 10)),
            ("1/second", 5, StartRate(1, 1, 5)),
            ("100/hour", None, StartRate(100, 3600, 100)),
            ("3/day", 1, StartRate(3, 86400, 1)),
        ],
    )
    def test_parse_and_show(self, text: str, burst: int | None, expected: StartRate) -> None:
        rate = StartRate.parse(text, burst)
        assert rate == expected
        assert str(rate) == text


def test_a_key_without_scopes_has_every_scope() -> None:
    assert effective_scopes(None) == frozenset(ALL_SCOPES)
    assert effective_scopes(["sessions:start"]) == {"sessions:start"}


class TestOrigins:
    @pytest.mark.parametrize(
        ("written", "sent_by_browsers"),
        [
            ("https://app.example.com", "https://app.example.com"),
            ("HTTPS://App.Example.COM", "https://app.example.com"),
            ("https://app.example.com:443", "https://app.example.com"),
            ("https://app.example.com:8443", "https://app.example.com:8443"),
            ("http://localhost:5173", "http://localhost:5173"),
            ("http://127.0.0.1:5500", "http://127.0.0.1:5500"),
            ("http://[::1]:8080", "http://[::1]:8080"),
            ("http://app.localhost", "http://app.localhost"),
            ("https://xn--bcher-kva.example", "https://xn--bcher-kva.example"),
        ],
    )
    def test_written_as_browsers_send_them(self, written: str, sent_by_browsers: str) -> None:
        assert normalise_origin(written) == sent_by_browsers

    @pytest.mark.parametrize(
        ("written", "reason"),
        [
            ("*", "list each origin"),
            ("null", "list each origin"),
            ("https://*.example.com", "wildcards"),
            ("https://app.example.com/", "no path"),
            ("https://app.example.com/app", "no path"),
            ("https://app.example.com?x=1", "no path"),
            ("https://app.example.com#top", "no path"),
            ("http://app.example.com", "loopback hosts only"),
            ("ws://app.example.com", "must start with https://"),
            ("//app.example.com", "must start with https://"),
            ("https://user:pw@app.example.com", "user name"),
            ("https://app.example.com:0", "port"),
            ("https://app.example.com:70000", "port"),
            ("https://app_example.com", "DNS name"),
            ("https://-app.example.com", "DNS name"),
            ("https://[::g]", "IPv6"),
            ("https://bücher.example", "ASCII"),
            ("https://app.example.com ", "ASCII"),
            ("https://", "no host"),
        ],
    )
    def test_what_is_not_an_origin(self, written: str, reason: str) -> None:
        with pytest.raises(PydanticCustomError, match=reason) as refused:
            normalise_origin(written)
        assert refused.value.type == "invalid_origin"

    def test_a_list_is_kept_once_each_and_sorted(self) -> None:
        assert normalise_origins(
            ["https://b.example", "https://A.example", "https://a.example:443"]
        ) == ["https://a.example", "https://b.example"]
