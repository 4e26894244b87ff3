"""Admin API: tenants, their profiles and API keys. Thin: parse, call the service, return."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Query, Response, status

from app.api.auth import AdminOnly
from app.api.deps import DbSession, RuntimeDep
from app.api.routing import StrictJsonRoute
from app.domain.storable_text import StorableStr
from app.domain.tenants import check as profile_check
from app.domain.tenants import service as tenant_service
from app.domain.tenants.check import ProfileCheck
from app.domain.tenants.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPage,
    TenantCreate,
    TenantPage,
    TenantPublic,
    TenantUpdate,
)
from app.domain.tenants.usage import TenantUsage, tenant_usage

router = APIRouter(route_class=StrictJsonRoute, prefix="/tenants", dependencies=[AdminOnly])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid admin token"},
    422: {"description": "Invalid tenant or profile (`code` says which rule)"},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such tenant (`tenant_not_found`)"}
}


@router.post(
    "",
    operation_id="createTenant",
    tags=["tenants"],
    status_code=status.HTTP_201_CREATED,
    responses={**_ERRORS, 409: {}},
)
async def create_tenant(
    body: TenantCreate, session: DbSession, runtime: RuntimeDep, after_commit: BackgroundTasks
) -> TenantPublic:
    """Create a tenant with its profiles."""
    created = await tenant_service.create_tenant(
        session, body, box=runtime.secret_box, pals=runtime.pals
    )
    if created.cors_origins:
        after_commit.add_task(runtime.cors_origins.forget_after_commit)
    return created


@router.get("", operation_id="listTenants", tags=["tenants"], responses=_ERRORS)
async def list_tenants(
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[StorableStr | None, Query(max_length=64)] = None,
) -> TenantPage:
    """List tenants by id, a page at a time."""
    return await tenant_service.list_tenants(session, limit=limit, cursor=cursor)


@router.get(
    "/{tenant_id}", operation_id="getTenant", tags=["tenants"], responses={**_ERRORS, **_NOT_FOUND}
)
async def get_tenant(tenant_id: StorableStr, session: DbSession) -> TenantPublic:
    """Read a tenant with its profiles (never its Tavus key)."""
    return await tenant_service.get_tenant(session, tenant_id)


@router.patch(
    "/{tenant_id}",
    operation_id="updateTenant",
    tags=["tenants"],
    responses={**_ERRORS, **_NOT_FOUND},
)
async def update_tenant(
    tenant_id: StorableStr,
    body: TenantUpdate,
    session: DbSession,
    runtime: RuntimeDep,
    after_commit: BackgroundTasks,
) -> TenantPublic:
    """Merge-patch a tenant; changed profiles apply to new sessions only, changed
    `cors_origins` within `PALISADE_API_KEY_CACHE_SECONDS` on every replica."""
    updated = await tenant_service.update_tenant(
        session, tenant_id, body, box=runtime.secret_box, pals=runtime.pals
    )
    if "cors_origins" in body.model_fields_set:
        # Once committed (background tasks run after the response): this process answers
        # for the new origins at once.
        after_commit.add_task(runtime.cors_origins.forget_after_commit)
        after_commit.add_task(runtime.api_keys.forget_tenant_after_commit, tenant_id)
    return updated


@router.post(
    "/{tenant_id}/api-keys",
    operation_id="createApiKey",
    tags=["api-keys"],
    status_code=status.HTTP_201_CREATED,
    responses={
        **_ERRORS,
        **_NOT_FOUND,
        422: {"description": "Invalid key (`unknown_profile`, `validation_error`)"},
    },
)
async def create_api_key(
    tenant_id: StorableStr, session: DbSession, body: ApiKeyCreate | None = None
) -> ApiKeyCreated:
    """Issue an API key for the tenant's frontends. The key is shown only in this response.
    Without restrictions it may do everything; a browser's key holds `sessions:start`
    only, for some `profiles`, at a `start_rate` (docs/frontends.md)."""
    return await tenant_service.create_api_key(
        session, tenant_id, label=body.label if body else None, restrictions=body
    )


@router.get(
    "/{tenant_id}/api-keys",
    operation_id="listApiKeys",
    tags=["api-keys"],
    responses={
        **_ERRORS,
        **_NOT_FOUND,
        400: {"description": "Not a `next_cursor` of a previous page (`invalid_cursor`)"},
    },
)
async def list_api_keys(
    tenant_id: StorableStr,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[StorableStr | None, Query(max_length=64)] = None,
) -> ApiKeyPage:
    """List the tenant's keys in the order they were issued, revoked ones included
    (prefixes only), a page at a time (pass `next_cursor` back)."""
    return await tenant_service.list_api_keys(session, tenant_id, limit=limit, cursor=cursor)


@router.delete(
    "/{tenant_id}/api-keys/{key_id}",
    operation_id="revokeApiKey",
    tags=["api-keys"],
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**_ERRORS, 404: {"description": "No such key (`api_key_not_found`)"}},
)
async def revoke_api_key(
    tenant_id: StorableStr,
    key_id: StorableStr,
    session: DbSession,
    runtime: RuntimeDep,
    after_commit: BackgroundTasks,
) -> Response:
    """Revoke a key: it starts no session from now on, and is refused everywhere within
    `PALISADE_API_KEY_CACHE_SECONDS` (at once by the process that revokes it); revoking
    twice is fine."""
    await tenant_service.revoke_api_key(session, tenant_id, key_id)
    runtime.api_keys.forget(key_id)
    # Again once the revocation has committed (background tasks run after the response):
    # a concurrent request may have looked the key up, still active, in between.
    after_commit.add_task(runtime.api_keys.forget_after_commit, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{tenant_id}/profiles/{name}/check",
    operation_id="checkProfile",
    tags=["tenants"],
    responses={
        401: _ERRORS[401],
        404: {
            "description": "No such tenant (`tenant_not_found`) or profile (`profile_not_found`)"
        },
        502: {"description": "Tavus could not be reached for the first step (`upstream_error`)"},
    },
)
async def check_profile(
    tenant_id: StorableStr, name: StorableStr, runtime: RuntimeDep
) -> ProfileCheck:
    """Try a profile on Tavus without cost: a PAL from its template (deleted again) and a
    `test_mode` conversation on each PAL it uses. 200 whenever the check ran; `ok` and the
    steps say what Tavus accepted."""
    # The Tavus calls take seconds: the profile is read in a session of its own so that no
    # database connection waits on Tavus.
    async with runtime.sessionmaker() as session:
        target = await profile_check.load_target(session, tenant_id, name, box=runtime.secret_box)
    return await profile_check.run_check(target, accounts=runtime.accounts)


@router.get(
    "/{tenant_id}/usage",
    operation_id="getTenantUsage",
    tags=["tenants"],
    responses={
        **_ERRORS,
        **_NOT_FOUND,
        422: {"description": "`invalid_period`: `since` is not before `until`"},
    },
)
async def get_tenant_usage(
    tenant_id: StorableStr,
    session: DbSession,
    since: Annotated[
        datetime | None,
        Query(
            description="Start of the period (ISO 8601; UTC without a zone). Default: "
            "30 days before `until`."
        ),
    ] = None,
    until: Annotated[
        datetime | None,
        Query(description="End of the period, excluded. Default: now."),
    ] = None,
) -> TenantUsage:
    """What the tenant's sessions cost: those whose conversation ended in the period,
    with their billed seconds (conversation created to ended on Tavus) and idle seconds,
    in total and by profile. Sessions whose cost Tavus never told count in `sessions`
    but not in `billed_sessions`."""
    return await tenant_usage(session, tenant_id, since, until)
