"""The operator console's sessions: a cookie Palisade alone can make, and a CSRF token
per session.

Nothing is kept on the server. The cookie is a Fernet token (authenticated encryption
with its time of issue, under a key derived from ``SECRET_KEY``) of a random nonce,
whether the holder signed in, and a fingerprint of the ``ADMIN_TOKEN`` it signed in
with: it carries no credential, expires after its lifetime, and stops being accepted
when either secret changes. A session's CSRF token is an HMAC of its nonce; forms carry
it in a hidden field, and every POST is checked against the cookie's session.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from cryptography.fernet import Fernet, InvalidToken

from app.security.secret_box import derive_key

# Far longer than any cookie this makes; anything longer is not worth decrypting.
MAX_COOKIE_LENGTH: Final = 1024


@dataclass(frozen=True)
class ConsoleSession:
    nonce: str
    # False: a visitor of the sign-in page, whose form still needs a CSRF token.
    signed_in: bool


class ConsoleSessions:
    def __init__(
        self,
        secret_key: str,
        admin_token: str,
        *,
        lifetime: timedelta,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(derive_key(secret_key, "console-session")))
        self._csrf_key = derive_key(secret_key, "console-csrf")
        fingerprint_key = derive_key(secret_key, "console-admin-token")
        self._admin = hmac.new(fingerprint_key, admin_token.encode(), hashlib.sha256).hexdigest()
        self._lifetime = int(lifetime.total_seconds())
        self._clock = clock

    @property
    def max_age_seconds(self) -> int:
        return self._lifetime

    def new(self, *, signed_in: bool) -> tuple[ConsoleSession, str]:
        """A fresh session and the cookie value that carries it."""
        session = ConsoleSession(secrets.token_urlsafe(24), signed_in)
        payload = {"n": session.nonce, "s": signed_in, "a": self._admin}
        token = self._fernet.encrypt_at_time(
            json.dumps(payload, separators=(",", ":")).encode(), int(self._clock())
        )
        return session, token.decode("ascii")

    def read(self, cookie: str | None) -> ConsoleSession | None:
        """The session ``cookie`` carries; None unless this deployment made it, under
        its current secrets, less than its lifetime ago."""
        if not cookie or len(cookie) > MAX_COOKIE_LENGTH:
            return None
        try:
            raw = self._fernet.decrypt_at_time(
                cookie.encode("ascii"), self._lifetime, int(self._clock())
            )
            payload: Any = json.loads(raw)
        except (InvalidToken, UnicodeEncodeError, binascii.Error, ValueError):
            return None
        if not (
            isinstance(payload, dict)
            and isinstance(payload.get("n"), str)
            and isinstance(payload.get("s"), bool)
            and isinstance(payload.get("a"), str)
        ):
            return None
        if not hmac.compare_digest(payload["a"], self._admin):
            return None  # signed in with an admin token that has since changed
        return ConsoleSession(payload["n"], payload["s"])

    def csrf_token(self, session: ConsoleSession) -> str:
        digest = hmac.new(self._csrf_key, session.nonce.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def csrf_matches(self, session: ConsoleSession, token: str | None) -> bool:
        if not token:
            return False
        return hmac.compare_digest(self.csrf_token(session).encode(), token.encode())

    def __repr__(self) -> str:
        return "ConsoleSessions(<redacted>)"
