"""CORS for the tenant routes, whose allowed origins are data: each tenant's ``cors_origins``.

Starlette's ``CORSMiddleware`` knows the rules (which methods and headers a preflight may
ask for, ``Access-Control-Max-Age``, ``Vary``); what it cannot know is the origins, which
depend on the tenant, and a preflight names no tenant. So:

* a preflight on a tenant route is answered by Starlette's rules for an origin that some
  tenant lists (``ListedOrigins``), and refused with 403 ``cors_origin_not_allowed`` and
  no CORS header for any other;
* the response to an actual request carries ``Access-Control-Allow-Origin`` only when the
  tenant of the request's API key lists the origin (``app.api.auth`` leaves the tenant in
  the request's state): a page on one tenant's origin cannot read what another tenant's
  key gets.

No other route speaks CORS: the admin API, webhooks and probes are never called from a
browser.
"""

from __future__ import annotations

from typing import Final

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.auth import TENANT_STATE
from app.api.problems import problem_response
from app.domain.tenants.authentication import TenantCredentials
from app.domain.tenants.errors import CorsOriginNotAllowed, CorsPreflightRefused
from app.runtime import Runtime

TENANT_ROUTE_PREFIXES: Final = ("/sessions",)
ALLOWED_METHODS: Final = ("GET", "POST")
ALLOWED_HEADERS: Final = ("Authorization", "Content-Type", "Idempotency-Key")
# What a page may read of a response besides the CORS-safelisted headers.
EXPOSED_HEADERS: Final = ("Retry-After", "Idempotent-Replayed")
# How long a browser may reuse a preflight's answer. A removed origin may still preflight
# successfully for this long, but its responses are unreadable at once (see above).
PREFLIGHT_MAX_AGE_SECONDS: Final = 600


class _ListedOriginRules(CORSMiddleware):
    """Starlette's preflight and response rules, for an origin already found listed."""

    def is_allowed_origin(self, origin: str) -> bool:
        return True


def _is_tenant_route(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in TENANT_ROUTE_PREFIXES)


class TenantCors:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._rules = _ListedOriginRules(
            app,
            allow_methods=ALLOWED_METHODS,
            allow_headers=ALLOWED_HEADERS,
            expose_headers=EXPOSED_HEADERS,
            max_age=PREFLIGHT_MAX_AGE_SECONDS,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_tenant_route(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            response = await self._preflight(scope, origin, headers)
            await response(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._answer_for_tenant(scope, message, origin)
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, scope: Scope, origin: str, headers: Headers) -> Response:
        runtime: Runtime = Request(scope).app.state.runtime
        if not await runtime.cors_origins.lists(origin):
            return problem_response(
                CorsOriginNotAllowed(
                    f"no tenant lists the origin {origin!r} in its cors_origins",
                    headers={"Vary": "Origin"},
                )
            )
        answer = self._rules.preflight_response(request_headers=headers)
        if answer.status_code >= 400:
            # An allowed origin asking for a method or header the tenant routes do not
            # take: Starlette's reason, as a problem document.
            return problem_response(
                CorsPreflightRefused(
                    bytes(answer.body).decode(),
                    headers={
                        name: value
                        for name, value in answer.headers.items()
                        if name.startswith("access-control-") or name == "vary"
                    },
                    allowed_methods=list(ALLOWED_METHODS),
                    allowed_headers=list(ALLOWED_HEADERS),
                )
            )
        return answer

    def _answer_for_tenant(self, scope: Scope, message: Message, origin: str) -> None:
        headers = MutableHeaders(scope=message)
        tenant = scope.get("state", {}).get(TENANT_STATE)
        if isinstance(tenant, TenantCredentials) and origin in tenant.cors_origins:
            headers.update(self._rules.simple_headers)
            CORSMiddleware.allow_explicit_origin(headers, origin)
        else:
            headers.add_vary_header("Origin")
