"""How the console answers: Jinja2 templates, its error page, and the headers every
console response carries."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app.api.problems import problem_response, validation_error
from app.console.auth import CSRF_FIELD, SignInRequired, sign_in_url
from app.domain.sessions.states import status_of
from app.errors import AppError
from app.security.console_sessions import ConsoleSession

logger = logging.getLogger(__name__)

# Pages name operators' data: never cached, never framed, nothing loaded from elsewhere,
# no inline script or style.
SECURITY_HEADERS: Final = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def _when(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ago(value: datetime | None, now: datetime | None = None) -> str:
    if value is None:
        return "-"
    seconds = int(((now or datetime.now(UTC)) - value).total_seconds())
    future = seconds < 0
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            amount = f"{seconds // size} {unit}"
            break
    else:
        amount = f"{seconds} s"
    return f"in {amount}" if future else f"{amount} ago"


def _pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("app.console", "templates"),
        autoescape=select_autoescape(["html"]),
        # A name missing from a page's context is a bug, not an empty string.
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["when"] = _when
    environment.filters["ago"] = _ago
    environment.filters["pretty_json"] = _pretty_json
    # A session's API status, from its internal state.
    environment.globals["status_of"] = status_of
    return environment


templates = Jinja2Templates(env=_environment())


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    *,
    session: ConsoleSession | None,
    csrf_token: str | None = None,
    status_code: int = 200,
) -> Response:
    """A page. A signed-in session shows the navigation, and its forms carry
    ``csrf_token``."""
    page: dict[str, Any] = {
        "signed_in": session is not None and session.signed_in,
        "csrf_field": CSRF_FIELD,
        "csrf_token": csrf_token,
        "notice": None,
        "page": None,
        **context,
    }
    return templates.TemplateResponse(request, template, page, status_code=status_code)


def _wants_html(request: Request) -> bool:
    # A browser navigating asks for text/html; a script or a client asking for anything
    # gets the problem document, whose `code` it can read.
    return "text/html" in request.headers.get("accept", "")


def error_page(request: Request, error: AppError) -> Response:
    """``error`` as a page for a browser, as a problem document for anything else."""
    if not _wants_html(request):
        return problem_response(error)
    page = {"error": error, "page": None}
    response = render(request, "error.html", page, session=None, status_code=error.status_code)
    response.headers.update(error.headers)
    return response


class ConsoleRoute(APIRoute):
    """Console routes answer errors with a page, send a browser without a session to
    the sign-in page, and carry :data:`SECURITY_HEADERS`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except SignInRequired as required:
                response = RedirectResponse(sign_in_url(required.then), status_code=303)
            except RequestValidationError as invalid:
                response = error_page(request, validation_error(invalid))
            except AppError as error:
                response = error_page(request, error)
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return console_handler
