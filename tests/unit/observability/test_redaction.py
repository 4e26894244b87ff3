"""The redaction processor: known secret values and secret-shaped patterns never pass."""

from __future__ import annotations

import pytest

from app.observability.redaction import REDACTED, Redactor
from app.security.api_keys import generate


@pytest.fixture
def redactor() -> Redactor:
    return Redactor()


def scrub(redactor: Redactor, **event: object) -> dict[str, object]:
    return dict(redactor(None, "info", dict(event)))


class TestKnownValues:
    def test_a_remembered_secret_is_replaced_wherever_it_appears(self, redactor: Redactor) -> None:
        redactor.remember("tavus-key-0123456789")
        out = scrub(
            redactor, event="calling with tavus-key-0123456789 now", key="tavus-key-0123456789"
        )
        assert out == {"event": f"calling with {REDACTED} now", "key": REDACTED}

    def test_a_secret_containing_another_is_replaced_whole(self, redactor: Redactor) -> None:
        redactor.remember("abcdefgh", "abcdefgh-ijklmnop")
        assert redactor.scrub("x abcdefgh-ijklmnop y") == f"x {REDACTED} y"

    def test_short_and_empty_values_are_not_remembered(self, redactor: Redactor) -> None:
        redactor.remember("tk", "", None)
        assert redactor.scrub("tk is a word") == "tk is a word"

    def test_values_with_regex_characters_are_matched_literally(self, redactor: Redactor) -> None:
        redactor.remember("a.b*c+d?e(f)")
        assert redactor.scrub("a.b*c+d?e(f) axbbbcdde") == f"{REDACTED} axbbbcdde"


class TestPatterns:
    def test_tenant_api_keys(self, redactor: Redactor) -> None:
        key = generate().key
        assert key not in redactor.scrub(f"invalid key {key}!")
        assert redactor.scrub("psk_short") == "psk_short"

    @pytest.mark.parametrize(
        "url",
        [
            "http://p/webhooks/tavus/1?token=AbC-123_xyz",
            "http://p/webhooks/tavus/1?x=1&token=AbC-123_xyz&y=2",
            "POST /webhooks/tavus/1?token=AbC-123_xyz HTTP/1.1",
        ],
    )
    def test_webhook_tokens_in_urls(self, redactor: Redactor, url: str) -> None:
        scrubbed = redactor.scrub(url)
        assert "AbC-123_xyz" not in scrubbed
        assert f"token={REDACTED}" in scrubbed

    @pytest.mark.parametrize(
        "text",
        [
            "x-api-key: sk-live-9876543210",
            "{'x-api-key': 'sk-live-9876543210', 'accept': 'application/json'}",
            '{"Authorization": "Bearer sk-live-9876543210"}',
            "authorization=Bearer sk-live-9876543210",
            "sent Bearer sk-live-9876543210 upstream",
            # A PAL body rendered as text (its credentials are masked in pydantic reprs).
            "{'layers': {'llm': {'api_key': 'sk-live-9876543210'}}}",
            '{"tts": {"api_key": "sk-live-9876543210"}}',
        ],
    )
    def test_credentials_in_header_spellings(self, redactor: Redactor, text: str) -> None:
        assert "sk-live-9876543210" not in redactor.scrub(text)

    def test_passwords_in_urls(self, redactor: Redactor) -> None:
        scrubbed = redactor.scrub("connect to postgresql+asyncpg://app:s3cr3t-pw@db:5432/palisade")
        assert "s3cr3t-pw" not in scrubbed
        assert "postgresql+asyncpg://app:" in scrubbed
        assert "@db:5432/palisade" in scrubbed

    def test_ordinary_text_is_left_alone(self, redactor: Redactor) -> None:
        text = "GET /sessions/4f0c?limit=10 -> 200 (http://127.0.0.1:8000/readyz)"
        assert redactor.scrub(text) == text


class TestEventShapes:
    def test_sensitive_keys_are_redacted_whatever_their_value(self, redactor: Redactor) -> None:
        out = scrub(redactor, Authorization="anything", token="t", admin_token=None, status=200)
        assert out == {
            "Authorization": REDACTED,
            "token": REDACTED,
            "admin_token": REDACTED,
            "status": 200,
        }

    def test_nested_values_are_scrubbed(self, redactor: Redactor) -> None:
        redactor.remember("nested-secret-value")
        out = scrub(
            redactor,
            headers={"x-api-key": "k", "accept": "json"},
            items=["nested-secret-value", 1, {"callback": "http://p/w?token=abcdef"}],
        )
        assert out["headers"] == {"x-api-key": REDACTED, "accept": "json"}
        assert out["items"] == [REDACTED, 1, {"callback": f"http://p/w?token={REDACTED}"}]

    def test_other_objects_are_scrubbed_through_their_text(self, redactor: Redactor) -> None:
        out = scrub(redactor, error=ValueError("bad callback http://p/w?token=abcdef"))
        assert out["error"] == f"bad callback http://p/w?token={REDACTED}"

    def test_rendered_tracebacks_are_scrubbed(self, redactor: Redactor) -> None:
        redactor.remember("traceback-secret")
        out = scrub(redactor, exception='Traceback...\nValueError: key "traceback-secret"')
        assert "traceback-secret" not in str(out["exception"])
