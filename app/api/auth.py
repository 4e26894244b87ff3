"""Who is calling: the operator (admin token) or a tenant's frontend (tenant API key)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.api.deps import RuntimeDep
from app.domain.tenants import service as tenant_service
from app.domain.tenants.service import TenantCredentials
from app.errors import Unauthorized
from app.security.tokens import constant_time_equals

_admin_bearer = HTTPBearer(
    scheme_name="AdminToken", description="The operator's ADMIN_TOKEN.", auto_error=False
)
_tenant_bearer = HTTPBearer(
    scheme_name="TenantApiKey", description="A tenant API key (psk_...).", auto_error=False
)

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
    # Its own short session, returned to the pool before the handler runs: a handler
    # that opens units of work of its own (the start saga) must never wait for a second
    # connection while holding one, or a burst exhausts the pool. One read: autocommit
    # spares it a BEGIN and a ROLLBACK.
    async with runtime.autocommit() as session:
        found = await tenant_service.authenticate(session, credentials.credentials)
    if found is None:
        raise _unauthorized("invalid or revoked API key")
    if found.last_used_stale:
        async with runtime.sessionmaker.begin() as side:
            await tenant_service.record_key_use(side, found.key_id)
    return found


AdminOnly = Depends(require_admin)
CurrentTenant = Annotated[TenantCredentials, Depends(current_tenant)]
