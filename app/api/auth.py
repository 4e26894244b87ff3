"""Who is calling: the operator (admin token) or a tenant's frontend (tenant API key).

A tenant route names the scope it needs (``SessionReader``, ..., or ``requires(scope)``);
``current_tenant`` is the one place that checks it. The scope also shows in the route's
OpenAPI security requirement.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes

from app.api.deps import RuntimeDep
from app.domain.tenants import access
from app.domain.tenants.authentication import TenantCredentials
from app.domain.tenants.errors import InsufficientScope
from app.errors import NotFound, Unauthorized
from app.security.tokens import constant_time_equals

_admin_bearer = HTTPBearer(
    scheme_name="AdminToken", description="The operator's ADMIN_TOKEN.", auto_error=False
)
_tenant_bearer = HTTPBearer(
    scheme_name="TenantApiKey", description="A tenant API key (psk_...).", auto_error=False
)

_metrics_bearer = HTTPBearer(auto_error=False)

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def _unauthorized(detail: str) -> Unauthorized:
    return Unauthorized(detail, headers=_CHALLENGE)


async def require_admin(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_admin_bearer)],
) -> None:
    if credentials is None:
        raise _unauthorized("send Authorization: Bearer <ADMIN_TOKEN>")
    if not constant_time_equals(credentials.credentials, runtime.settings.admin_token_value):
        raise _unauthorized("invalid admin token")


# Where the request's tenant is left for the CORS middleware (app.api.cors), which
# answers for the tenant's origins once the response starts.
TENANT_STATE = "tenant"


async def current_tenant(
    request: Request,
    security_scopes: SecurityScopes,
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_tenant_bearer)],
) -> TenantCredentials:
    if credentials is None:
        raise _unauthorized("send Authorization: Bearer <tenant API key>")
    found = await runtime.api_keys.authenticate(credentials.credentials)
    if found is None:
        raise _unauthorized("invalid or revoked API key")
    # Before the scope check: a browser may read the refusal.
    setattr(request.state, TENANT_STATE, found)
    for scope in security_scopes.scopes:
        if scope not in found.scopes:
            raise InsufficientScope(scope)
    return found


def requires(scope: access.Scope) -> Any:
    """A tenant route's caller, whose key must have ``scope``:
    ``Annotated[TenantCredentials, requires(scope)]``."""
    return Security(current_tenant, scopes=[scope])


async def require_metrics_token(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_metrics_bearer)],
) -> None:
    """With PALISADE_METRICS_TOKEN set, a scrape must present it. Unset, anyone may scrape
    in dev mode (which serves loopback only), and nobody in production: the metrics name
    every tenant, and each scrape reads the database."""
    expected = runtime.settings.metrics_token
    if expected is None:
        if runtime.settings.is_dev:
            return
        raise NotFound("metrics are off: set PALISADE_METRICS_TOKEN to scrape them")
    if credentials is None:
        raise _unauthorized("send Authorization: Bearer <PALISADE_METRICS_TOKEN>")
    if not constant_time_equals(credentials.credentials, expected.get_secret_value()):
        raise _unauthorized("invalid metrics token")


AdminOnly = Depends(require_admin)
MetricsScraper = Depends(require_metrics_token)
SessionStarter = Annotated[TenantCredentials, requires(access.START)]
SessionReader = Annotated[TenantCredentials, requires(access.READ)]
SessionEnder = Annotated[TenantCredentials, requires(access.END)]
SessionInteractor = Annotated[TenantCredentials, requires(access.INTERACT)]
