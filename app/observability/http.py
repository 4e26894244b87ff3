"""The outermost ASGI layer: a request id, the HTTP metrics and one log line per request.

It wraps even Starlette's error middleware, so a 500 is counted, logged and answered
with its ``X-Request-ID`` like any other response. The log line replaces uvicorn's
access log, which prints the query string and with it the webhook tokens: here a request
is named by its route template, and its path is logged without the query.
"""

from __future__ import annotations

import functools
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable

from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability import metrics, tracing
from app.observability.logging import get_logger, request_context

logger = get_logger("palisade.http")

REQUEST_ID_HEADER = "x-request-id"
MAX_REQUEST_ID_LENGTH = 128
# A caller's id is kept only when it is a plain token: visible ASCII, no spaces or
# control characters, so that it can neither forge log lines nor break a header.
_SANE_REQUEST_ID = re.compile(rf"[\x21-\x7e]{{1,{MAX_REQUEST_ID_LENGTH}}}")
# Probes and scrapes every few seconds would drown the log at INFO.
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
METRICS_ROUTE = "/metrics"


def request_id_from(header: bytes | str | None) -> str:
    """The caller's ``X-Request-ID`` when it is a sane token, else a fresh one."""
    if isinstance(header, bytes):
        try:
            header = header.decode("ascii")
        except UnicodeDecodeError:
            header = None
    if header and _SANE_REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def route_template(scope: Scope, templates: Callable[[], Iterable[str]]) -> str:
    """The template of the route that served (or would have served) the request.

    The router records the route in the scope. A request answered before routing (a 413
    from the body limit) is matched against ``templates`` instead.
    """
    template = getattr(scope.get("route"), "path_format", None)
    if isinstance(template, str):
        return template
    path = scope["path"]
    for candidate in templates():
        if _path_regex(candidate).match(path):
            return candidate
    return metrics.UNMATCHED_ROUTE


@functools.lru_cache(maxsize=512)
def _path_regex(template: str) -> re.Pattern[str]:
    regex, _, _ = compile_path(template)
    return regex


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


class RequestObservability:
    def __init__(self, app: ASGIApp, templates: Callable[[], Iterable[str]]) -> None:
        self.app = app
        self.templates = templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(_header(scope, REQUEST_ID_HEADER.encode()))
        echoed = (REQUEST_ID_HEADER.encode(), request_id.encode())
        # Until a response starts, a failure is what the client will get: a 500.
        status = 500
        started = time.perf_counter()

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), echoed]}
            await send(message)

        method = scope["method"]
        with (
            request_context(request_id),
            tracing.server_span(method, scope["path"], scope.get("headers", ())) as span,
        ):
            if span is not None:
                span.set_attribute("palisade.request_id", request_id)
            try:
                await self.app(scope, receive, send_with_request_id)
            finally:
                route = self._record(scope, status, time.perf_counter() - started)
                if span is not None:
                    tracing.finish_server_span(span, method, route, status)

    def _record(self, scope: Scope, status: int, seconds: float) -> str:
        route = route_template(scope, self.templates)
        method = scope["method"]
        if route != METRICS_ROUTE:
            metrics.observe_http_request(method, route, status, seconds)
        client = scope.get("client")
        logger.log(
            logging.DEBUG if route in QUIET_ROUTES and status < 400 else logging.INFO,
            "request",
            method=method,
            route=route,
            path=scope["path"],
            status=status,
            duration_ms=round(seconds * 1000, 1),
            client=client[0] if client else None,
        )
        return route
