"""Per-session webhook tokens: unguessable, derived (never stored), checked in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac

from app.security.secret_box import derive_key


class WebhookTokens:
    def __init__(self, secret_key: str) -> None:
        self._key = derive_key(secret_key, "webhook-callback-token")

    def token_for(self, session_id: str) -> str:
        digest = hmac.new(self._key, session_id.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def verify(self, session_id: str, token: str | None) -> bool:
        if not token:
            return False
        return hmac.compare_digest(self.token_for(session_id).encode(), token.encode())

    def __repr__(self) -> str:
        return "WebhookTokens(<redacted>)"


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
