"""Who may use the console: an operator signed in with the admin token.

A page without a signed-in session redirects to the sign-in page (``SignInRequired``,
turned into a redirect by the console's route class); every POST also needs the
session's CSRF token in its form.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Final
from urllib.parse import urlencode

from fastapi import Depends, Request
from starlette.responses import Response

from app.api.deps import RuntimeDep
from app.console.errors import CsrfTokenInvalid
from app.console.forms import read_form
from app.security.console_sessions import ConsoleSession, ConsoleSessions

COOKIE: Final = "palisade_console"
PREFIX: Final = "/console"
SIGN_IN_PATH: Final = f"{PREFIX}/login"
CSRF_FIELD: Final = "csrf_token"


class SignInRequired(Exception):
    """The request has no signed-in session: send the browser to the sign-in page,
    back to ``then`` afterwards."""

    def __init__(self, then: str) -> None:
        super().__init__(then)
        self.then = then


def sign_in_url(then: str | None = None) -> str:
    return f"{SIGN_IN_PATH}?{urlencode({'next': then})}" if then else SIGN_IN_PATH


def safe_next(candidate: str | None) -> str:
    """Where to go after signing in: a console page of this origin, nothing else."""
    if (
        candidate
        and (candidate == PREFIX or candidate.startswith((f"{PREFIX}/", f"{PREFIX}?")))
        and not candidate.startswith(SIGN_IN_PATH)
        and "//" not in candidate
        and "\\" not in candidate
        and candidate.isprintable()
    ):
        return candidate
    return PREFIX


def current_session(request: Request, sessions: ConsoleSessions) -> ConsoleSession | None:
    return sessions.read(request.cookies.get(COOKIE))


def set_session_cookie(
    response: Response, request: Request, sessions: ConsoleSessions, value: str
) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=sessions.max_age_seconds,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        # Behind a TLS-terminating proxy the scheme comes from X-Forwarded-Proto, which
        # uvicorn trusts from FORWARDED_ALLOW_IPS.
        secure=request.url.scheme == "https",
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        COOKIE,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


async def signed_in(request: Request, runtime: RuntimeDep) -> ConsoleSession:
    session = current_session(request, runtime.console_sessions)
    if session is None or not session.signed_in:
        then = request.url.path
        if request.method == "GET" and request.url.query:
            then = f"{then}?{request.url.query}"
        raise SignInRequired(then if request.method == "GET" else PREFIX)
    return session


Operator = Annotated[ConsoleSession, Depends(signed_in)]


async def checked_form(
    request: Request, session: Operator, runtime: RuntimeDep
) -> Mapping[str, str]:
    """A signed-in operator's form, with the session's CSRF token."""
    form = await read_form(request)
    if not runtime.console_sessions.csrf_matches(session, form.get(CSRF_FIELD)):
        raise CsrfTokenInvalid("reload the page and submit the form again")
    return form


CheckedForm = Annotated[Mapping[str, str], Depends(checked_form)]
