"""Who is calling: the operator (admin token) or a tenant's frontend (tenant API key)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.api.deps import RuntimeDep
from app.domain.tenants.authentication import TenantCredentials
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


async def current_tenant(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_tenant_bearer)],
) -> TenantCredentials:
    if credentials is None:
        raise _unauthorized("send Authorization: Bearer <tenant API key>")
    found = await runtime.api_keys.authenticate(credentials.credentials)
    if found is None:
        raise _unauthorized("invalid or revoked API key")
    return found


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
CurrentTenant = Annotated[TenantCredentials, Depends(current_tenant)]
