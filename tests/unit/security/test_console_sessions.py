from __future__ import annotations

import base64
from datetime import timedelta

import pytest

from app.security.console_sessions import ConsoleSessions

SECRET = "s" * 40
ADMIN = "the-admin-token-of-this-deployment"
LIFETIME = timedelta(hours=8)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def sessions(clock: Clock, *, secret: str = SECRET, admin: str = ADMIN) -> ConsoleSessions:
    return ConsoleSessions(secret, admin, lifetime=LIFETIME, clock=clock)


class TestCookie:
    @pytest.mark.parametrize("signed_in", [True, False])
    def test_a_cookie_reads_back_as_the_session_it_was_made_for(
        self, clock: Clock, signed_in: bool
    ) -> None:
        made, cookie = sessions(clock).new(signed_in=signed_in)
        assert sessions(clock).read(cookie) == made
        assert made.signed_in is signed_in

    def test_each_session_is_new(self, clock: Clock) -> None:
        nonces = {sessions(clock).new(signed_in=True)[0].nonce for _ in range(100)}
        assert len(nonces) == 100

    def test_the_cookie_carries_neither_the_admin_token_nor_the_nonce_in_clear(
        self, clock: Clock
    ) -> None:
        made, cookie = sessions(clock).new(signed_in=True)
        decoded = base64.urlsafe_b64decode(cookie + "=" * (-len(cookie) % 4))
        for clear in (ADMIN, made.nonce, "signed_in", "true"):
            assert clear not in cookie
            assert clear.encode() not in decoded

    @pytest.mark.parametrize(
        "cookie", [None, "", "garbage", "gAAAAA" + "A" * 100, "ü" * 10, "x" * 5000]
    )
    def test_anything_but_a_cookie_it_made_reads_as_no_session(
        self, clock: Clock, cookie: str | None
    ) -> None:
        assert sessions(clock).read(cookie) is None

    def test_a_changed_cookie_reads_as_no_session(self, clock: Clock) -> None:
        _, cookie = sessions(clock).new(signed_in=True)
        for position in (10, len(cookie) // 2, len(cookie) - 5):
            flipped = "A" if cookie[position] != "A" else "B"
            forged = cookie[:position] + flipped + cookie[position + 1 :]
            assert sessions(clock).read(forged) is None

    def test_a_cookie_expires_after_its_lifetime(self, clock: Clock) -> None:
        _, cookie = sessions(clock).new(signed_in=True)
        clock.now += LIFETIME.total_seconds() - 1
        assert sessions(clock).read(cookie) is not None
        clock.now += 2
        assert sessions(clock).read(cookie) is None

    def test_another_secret_key_reads_no_session(self, clock: Clock) -> None:
        _, cookie = sessions(clock).new(signed_in=True)
        assert sessions(clock, secret="t" * 40).read(cookie) is None

    def test_a_new_admin_token_ends_every_session(self, clock: Clock) -> None:
        _, cookie = sessions(clock).new(signed_in=True)
        assert sessions(clock, admin=ADMIN + "-rotated").read(cookie) is None

    def test_the_max_age_is_the_lifetime(self, clock: Clock) -> None:
        assert sessions(clock).max_age_seconds == int(LIFETIME.total_seconds())


class TestCsrf:
    def test_the_token_of_a_session_matches_it_only(self, clock: Clock) -> None:
        console = sessions(clock)
        first, _ = console.new(signed_in=True)
        second, _ = console.new(signed_in=True)
        token = console.csrf_token(first)
        assert console.csrf_matches(first, token)
        assert not console.csrf_matches(second, token)
        assert console.csrf_token(first) == token  # stable for the session's life

    @pytest.mark.parametrize("token", [None, "", "x", "ü"])
    def test_a_missing_or_malformed_token_never_matches(
        self, clock: Clock, token: str | None
    ) -> None:
        console = sessions(clock)
        session, _ = console.new(signed_in=True)
        assert not console.csrf_matches(session, token)

    def test_the_token_is_not_the_session_nonce_and_depends_on_the_secret(
        self, clock: Clock
    ) -> None:
        session, _ = sessions(clock).new(signed_in=True)
        token = sessions(clock).csrf_token(session)
        assert session.nonce not in token
        assert sessions(clock, secret="t" * 40).csrf_token(session) != token
