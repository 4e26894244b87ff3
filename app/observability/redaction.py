"""Scrub secrets from log events: the last line of defence, not the first.

No code is meant to log a secret. This catches the ones that slip through anyway: a
Tavus error message quoting a callback URL, an exception whose text holds a DSN, a
header dict logged while debugging. Two nets: the exact values of secrets this process
knows (Tavus keys, the admin token, the secret key), and patterns for the secrets it
cannot list (tenant API keys, per-session webhook tokens, credentials in URLs and
headers).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Any

from structlog.typing import EventDict, WrappedLogger

REDACTED = "[REDACTED]"

# Shorter values would redact ordinary words (a test key such as "tk", say).
MIN_SECRET_LENGTH = 8

# Event keys whose value is a secret whatever it looks like.
SENSITIVE_KEYS = frozenset(
    {
        "authorization",
        "x-api-key",
        "api_key",
        "apikey",
        "tavus_api_key",
        "admin_token",
        "secret_key",
        "token",
        "password",
        "cookie",
        "set-cookie",
    }
)

# Every secret shape in one pattern, so that a string is scanned once. Each branch names
# the group that is kept in front of the redaction mark.
_SECRET_SHAPES = re.compile(
    # Tenant API keys (app.security.api_keys: "psk_" + 43 url-safe characters).
    r"(?P<api_key>psk_)[A-Za-z0-9_-]{20,}"
    # Webhook tokens ride in the callback URL's query string; so may other credentials.
    r"|(?P<query>[?&;](?:token|access_token|api_key|apikey|key|secret)=)[^&#\s\"'<>]+"
    # Header-like spellings: "x-api-key: v", "'authorization': 'Bearer v'", "x-api-key=v",
    # and a PAL body's "'api_key': 'v'" rendered as text.
    r"|(?P<header>(?:x-api-key|api_key|authorization)[\"']?\s*[:=]\s*[\"']?)"
    r"(?:bearer\s+|basic\s+)?[^\s\"',;}\]]+"
    r"|(?P<bearer>\bbearer\s+)[A-Za-z0-9._~+/=-]{8,}"
    # A password in a DSN or any URL's user-info.
    r"|(?P<userinfo>\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s/]+(?=@)",
    re.IGNORECASE,
)


def _redact_shape(match: re.Match[str]) -> str:
    kept = match.group(match.lastgroup) if match.lastgroup else ""
    return f"{kept}{REDACTED}"


class Redactor:
    """Known secret values plus patterns; ``scrub`` is safe to call from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: frozenset[str] = frozenset()
        self._known_pattern: re.Pattern[str] | None = None

    def remember(self, *values: str | None) -> None:
        """Add secret values to scrub wherever they appear (short or empty ones are ignored)."""
        fresh = {v for v in values if v and len(v) >= MIN_SECRET_LENGTH} - self._known
        if not fresh:
            return
        with self._lock:
            known = self._known | fresh
            # Longest first, so a secret containing another is replaced whole.
            alternatives = sorted(known, key=len, reverse=True)
            self._known_pattern = re.compile("|".join(re.escape(v) for v in alternatives))
            self._known = known

    def forget_all(self) -> None:
        with self._lock:
            self._known = frozenset()
            self._known_pattern = None

    def scrub(self, text: str) -> str:
        known = self._known_pattern
        if known is not None:
            text = known.sub(REDACTED, text)
        return _SECRET_SHAPES.sub(_redact_shape, text)

    def scrub_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.scrub(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, Mapping):
            return self.scrub_mapping(value)
        if isinstance(value, list | tuple | set | frozenset):
            return [self.scrub_value(item) for item in value]
        # Anything else is rendered through its text anyway (exceptions, URLs, ids):
        # scrub that text rather than trust a renderer's repr.
        return self.scrub(str(value))

    def scrub_mapping(self, mapping: Mapping[Any, Any]) -> dict[Any, Any]:
        return {
            key: REDACTED
            if isinstance(key, str) and key.lower() in SENSITIVE_KEYS
            else self.scrub_value(value)
            for key, value in mapping.items()
        }

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        """The structlog processor: every key and value of the event, scrubbed."""
        return self.scrub_mapping(event_dict)


redactor = Redactor()
"""The process's one redactor: the logging pipeline uses it, secrets are added to it."""


def remember_secret(*values: str | None) -> None:
    redactor.remember(*values)
