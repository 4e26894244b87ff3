"""Tenant use cases. Services flush but never commit: the caller's unit of work does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Profile as ProfileRow
from app.db.models import Tenant, TenantApiKey
from app.db.repositories.tenants import ApiKeyRepository, TenantRepository
from app.domain.profiles.schemas import Profile
from app.domain.profiles.validation import validate_profile
from app.domain.tenants import errors
from app.domain.tenants.access import ALL_SCOPES, Scope, StartRate
from app.domain.tenants.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPage,
    ApiKeyPublic,
    TenantCreate,
    TenantPage,
    TenantPublic,
    TenantUpdate,
)
from app.security import api_keys, pal_secrets
from app.security.secret_box import SecretBox, SecretBoxError


class PalDirectory(Protocol):
    """What tenant validation needs from Tavus: does this PAL exist for this account?"""

    async def pal_exists(self, pal_id: str, *, api_key: str | None) -> bool: ...


def _profile_config(profile: Profile) -> dict[str, Any]:
    return profile.model_dump(mode="json")


def _stored_as(row: ProfileRow, profile: Profile, config: dict[str, Any], box: SecretBox) -> bool:
    # Sealing the same credential twice gives two ciphertexts: compared in clear, an
    # unchanged profile keeps its row (and its version, which every process caches).
    if row.strategy != profile.strategy:
        return False
    try:
        return pal_secrets.unseal_profile(row.config, box) == config
    except SecretBoxError:
        return False  # sealed under an earlier SECRET_KEY: stored again under this one


def _validate_profiles(raw: Mapping[str, Mapping[str, Any] | None]) -> dict[str, Profile]:
    return {name: validate_profile(name, data) for name, data in raw.items() if data is not None}


async def _verify_persistent_pals(
    profiles: Mapping[str, Profile], pals: PalDirectory, api_key: str | None
) -> None:
    for name, profile in profiles.items():
        if profile.strategy == "ephemeral" or profile.pal_id is None:
            continue
        if not await pals.pal_exists(profile.pal_id, api_key=api_key):
            raise errors.PalNotFoundOnTavus(
                f"profile {name!r}: PAL {profile.pal_id!r} does not exist on Tavus",
                profile=name,
                pal_id=profile.pal_id,
            )


def _check_default(default: str | None, names: Sequence[str]) -> str | None:
    if default is None:
        # One profile is the obvious default; with several, sessions must choose.
        return names[0] if len(names) == 1 else None
    if default not in names:
        raise errors.DefaultProfileUnknown(
            f"default_profile {default!r} is not one of the tenant's profiles",
            profile=default,
            profiles=sorted(names),
        )
    return default


def view(tenant: Tenant, profiles: Sequence[ProfileRow]) -> TenantPublic:
    return TenantPublic(
        id=tenant.id,
        name=tenant.name,
        max_concurrent_sessions=tenant.max_concurrent_sessions,
        default_profile=tenant.default_profile,
        # Credentials are write-only: a view marks where one is set.
        profiles={p.name: pal_secrets.redact_profile(p.config) for p in profiles},
        cors_origins=list(tenant.cors_origins),
        has_tavus_api_key=tenant.tavus_api_key_encrypted is not None,
        created_at=tenant.created_at,
        updated_at=tenant.updated_at,
    )


async def create_tenant(
    session: AsyncSession, body: TenantCreate, *, box: SecretBox, pals: PalDirectory
) -> TenantPublic:
    repo = TenantRepository(session)
    profiles = _validate_profiles(body.profiles)
    default = _check_default(body.default_profile, sorted(profiles))
    if await repo.get(body.id) is not None:
        raise errors.TenantExists(f"tenant {body.id!r} already exists", tenant_id=body.id)
    own_key = body.tavus_api_key.get_secret_value() if body.tavus_api_key else None
    await _verify_persistent_pals(profiles, pals, own_key)
    tenant = Tenant(
        id=body.id,
        name=body.name,
        max_concurrent_sessions=body.max_concurrent_sessions,
        default_profile=default,
        tavus_api_key_encrypted=box.encrypt(own_key) if own_key else None,
        cors_origins=body.cors_origins,
    )
    try:
        await repo.add(tenant)
    except IntegrityError:
        raise errors.TenantExists(f"tenant {body.id!r} already exists", tenant_id=body.id) from None
    for name, profile in profiles.items():
        config = pal_secrets.seal_profile(_profile_config(profile), box)
        await repo.upsert_profile(tenant.id, name, profile.strategy, config)
    await session.refresh(tenant)
    return view(tenant, await repo.profiles(tenant.id))


async def update_tenant(
    session: AsyncSession,
    tenant_id: str,
    patch: TenantUpdate,
    *,
    box: SecretBox,
    pals: PalDirectory,
) -> TenantPublic:
    repo = TenantRepository(session)
    tenant = await repo.get_for_update(tenant_id)
    if tenant is None:
        raise errors.TenantNotFound(f"tenant {tenant_id!r} does not exist")
    given = patch.model_fields_set

    if "tavus_api_key" in given:
        key = patch.tavus_api_key
        tenant.tavus_api_key_encrypted = box.encrypt(key.get_secret_value()) if key else None
    if patch.name is not None:
        tenant.name = patch.name
    if patch.max_concurrent_sessions is not None:
        tenant.max_concurrent_sessions = patch.max_concurrent_sessions
    if "cors_origins" in given and (patch.cors_origins or []) != tenant.cors_origins:
        tenant.cors_origins = patch.cors_origins or []  # null, as merge patches go, clears

    stored = {p.name: p for p in await repo.profiles(tenant_id)}
    existing = set(stored)
    changed = _validate_profiles(patch.profiles or {})
    removed = {name for name, data in (patch.profiles or {}).items() if data is None}
    names = sorted((existing | set(changed)) - removed)
    own_key = (
        box.decrypt(tenant.tavus_api_key_encrypted) if tenant.tavus_api_key_encrypted else None
    )
    await _verify_persistent_pals(changed, pals, own_key)

    if "default_profile" in given:
        tenant.default_profile = _check_default(patch.default_profile, names)
    elif tenant.default_profile in removed or tenant.default_profile is None:
        tenant.default_profile = _check_default(None, names)

    for name in sorted(removed & existing):
        await repo.delete_profile(tenant_id, name)
    for name, profile in changed.items():
        config = _profile_config(profile)
        if name in stored and _stored_as(stored[name], profile, config, box):
            continue
        sealed = pal_secrets.seal_profile(config, box)
        await repo.upsert_profile(tenant_id, name, profile.strategy, sealed)
    await session.flush()
    await session.refresh(tenant)
    return view(tenant, await repo.profiles(tenant_id))


async def get_tenant(session: AsyncSession, tenant_id: str) -> TenantPublic:
    repo = TenantRepository(session)
    tenant = await repo.get(tenant_id)
    if tenant is None:
        raise errors.TenantNotFound(f"tenant {tenant_id!r} does not exist")
    return view(tenant, await repo.profiles(tenant_id))


async def list_tenants(session: AsyncSession, *, limit: int, cursor: str | None) -> TenantPage:
    repo = TenantRepository(session)
    tenants = await repo.page(limit=limit + 1, after=cursor)
    page, more = tenants[:limit], len(tenants) > limit
    profiles = await repo.profiles_of([t.id for t in page])
    return TenantPage(
        items=[view(t, profiles[t.id]) for t in page],
        next_cursor=page[-1].id if more and page else None,
    )


def _restrictions(row: TenantApiKey) -> dict[str, Any]:
    """What a key may do, as the API shows it."""
    rate = (
        StartRate(row.start_rate_count, row.start_rate_seconds, row.start_burst or 1)
        if row.start_rate_count is not None and row.start_rate_seconds is not None
        else None
    )
    scopes: list[Scope] = [s for s in ALL_SCOPES if row.scopes is None or s in row.scopes]
    return {
        "scopes": scopes,
        "profiles": row.profiles,
        "start_rate": str(rate) if rate else None,
        "start_burst": rate.burst if rate else None,
    }


async def create_api_key(
    session: AsyncSession,
    tenant_id: str,
    *,
    label: str | None,
    restrictions: ApiKeyCreate | None = None,
) -> ApiKeyCreated:
    """Issue a key; ``restrictions`` (its ``label`` aside) limit what it may do."""
    repo = TenantRepository(session)
    if await repo.get(tenant_id) is None:
        raise errors.TenantNotFound(f"tenant {tenant_id!r} does not exist")
    wanted = restrictions or ApiKeyCreate()
    if wanted.profiles is not None:
        known = {p.name for p in await repo.profiles(tenant_id)}
        unknown = sorted(set(wanted.profiles) - known)
        if unknown:
            raise errors.KeyProfileUnknown(
                f"tenant {tenant_id!r} has no profile {unknown[0]!r}",
                profiles=unknown,
            )
    rate = StartRate.parse(wanted.start_rate, wanted.start_burst) if wanted.start_rate else None
    new = api_keys.generate()
    row = TenantApiKey(
        id=new.id,
        tenant_id=tenant_id,
        prefix=new.display_prefix,
        key_hash=new.key_hash,
        label=label,
        scopes=sorted(set(wanted.scopes)) if wanted.scopes is not None else None,
        profiles=sorted(set(wanted.profiles)) if wanted.profiles is not None else None,
        start_rate_count=rate.count if rate else None,
        start_rate_seconds=rate.seconds if rate else None,
        start_burst=rate.burst if rate else None,
    )
    await ApiKeyRepository(session).add(row)
    await session.refresh(row)
    return ApiKeyCreated(
        id=row.id,
        key=new.key,
        prefix=row.prefix,
        label=row.label,
        created_at=row.created_at,
        **_restrictions(row),
    )


async def list_api_keys(
    session: AsyncSession, tenant_id: str, *, limit: int, cursor: str | None
) -> ApiKeyPage:
    if await TenantRepository(session).get(tenant_id) is None:
        raise errors.TenantNotFound(f"tenant {tenant_id!r} does not exist")
    rows = await ApiKeyRepository(session).page_for_tenant(tenant_id, limit=limit + 1, after=cursor)
    if rows is None:
        raise errors.InvalidKeyCursor(
            "pass back the next_cursor of a previous page of this tenant's keys unchanged"
        )
    page, more = rows[:limit], len(rows) > limit
    return ApiKeyPage(
        items=[
            ApiKeyPublic(
                id=r.id,
                prefix=r.prefix,
                label=r.label,
                created_at=r.created_at,
                last_used_at=r.last_used_at,
                revoked_at=r.revoked_at,
                **_restrictions(r),
            )
            for r in page
        ],
        next_cursor=page[-1].id if more and page else None,
    )


async def revoke_api_key(session: AsyncSession, tenant_id: str, key_id: str) -> None:
    if not await ApiKeyRepository(session).revoke(tenant_id, key_id):
        raise errors.ApiKeyNotFound(f"API key {key_id!r} does not exist for tenant {tenant_id!r}")
