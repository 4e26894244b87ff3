from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Text, bindparam, cast, delete, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Profile, Tenant, TenantApiKey

# last_used_at is advisory; writing it on every request would make one hot row per key.
LAST_USED_RESOLUTION = timedelta(minutes=1)

# Every tenant request runs it: built once, so each execution only binds the hash. With
# the key, what it may do and where its tenant's browser frontends call from.
_FIND_ACTIVE_KEY = (
    select(
        TenantApiKey.id,
        TenantApiKey.tenant_id,
        TenantApiKey.last_used_at,
        TenantApiKey.scopes,
        TenantApiKey.profiles,
        Tenant.cors_origins,
    )
    .join(Tenant, Tenant.id == TenantApiKey.tenant_id)
    .where(
        TenantApiKey.key_hash == bindparam("p_key_hash", type_=TenantApiKey.key_hash.type),
        TenantApiKey.revoked_at.is_(None),
    )
)

_LISTED_ORIGINS = select(func.unnest(Tenant.cors_origins)).distinct()


# The profile a start runs under: the one named, else the tenant's default; with a hash
# of its config, which admission compares again (session_admission_gate). The content,
# not the row's version: a request resolved under this config is resolved right for as
# long as the config is the same, which needs no version column, and re-applying an
# unchanged profile keeps every process's cache.
_WANTED_PROFILE = func.coalesce(
    bindparam("p_profile", type_=Profile.name.type), Tenant.default_profile
)
_PROFILE_FOR_START = (
    select(
        _WANTED_PROFILE.label("name"),
        Profile.config,
        func.encode(func.sha256(func.convert_to(cast(Profile.config, Text), "UTF8")), "hex").label(
            "version"
        ),
    )
    .select_from(Tenant)
    .outerjoin(Profile, (Profile.tenant_id == Tenant.id) & (Profile.name == _WANTED_PROFILE))
    .where(Tenant.id == bindparam("p_tenant_id", type_=Tenant.id.type))
)


@dataclass(frozen=True)
class ProfileRow:
    """A start's profile as stored: ``name`` is None when the request named none and the
    tenant has no default; ``config`` and ``version`` are None when no such profile
    exists."""

    name: str | None
    config: dict[str, Any] | None
    version: str | None


@dataclass(frozen=True)
class ActiveKey:
    id: str
    tenant_id: str
    last_used_at: datetime | None
    # None: every scope; any profile.
    scopes: list[str] | None
    profiles: list[str] | None
    tenant_cors_origins: list[str]


class TenantRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, tenant_id: str) -> Tenant | None:
        return await self.session.get(Tenant, tenant_id)

    async def tavus_key(self, tenant_id: str) -> bytes | None:
        """The tenant's own Tavus key, encrypted (None: the global key, or no tenant)."""
        query = select(Tenant.tavus_api_key_encrypted).where(Tenant.id == tenant_id)
        key: bytes | None = (await self.session.execute(query)).scalar_one_or_none()
        return key

    async def persistent_pal_ids(self) -> set[str]:
        """Every PAL some profile uses as its persistent PAL."""
        rows = await self.session.scalars(select(Profile.config["pal_id"].astext))
        return {pal_id for pal_id in rows if pal_id}

    async def tavus_keys(self) -> list[tuple[str, bytes]]:
        """Every tenant that has its own Tavus key, with the key (encrypted)."""
        query = select(Tenant.id, Tenant.tavus_api_key_encrypted).where(
            Tenant.tavus_api_key_encrypted.isnot(None)
        )
        return [(tenant_id, key) for tenant_id, key in await self.session.execute(query) if key]

    async def get_for_update(self, tenant_id: str) -> Tenant | None:
        result = await self.session.execute(
            select(Tenant)
            .where(Tenant.id == tenant_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()

    async def page(self, *, limit: int, after: str | None = None) -> Sequence[Tenant]:
        query = select(Tenant).order_by(Tenant.id).limit(limit)
        if after is not None:
            query = query.where(Tenant.id > after)
        return (await self.session.scalars(query)).all()

    async def list_all(self) -> Sequence[Tenant]:
        return (await self.session.scalars(select(Tenant).order_by(Tenant.id))).all()

    async def listed_origins(self) -> frozenset[str]:
        """Every origin some tenant lists for CORS."""
        return frozenset((await self.session.scalars(_LISTED_ORIGINS)).all())

    async def add(self, tenant: Tenant) -> None:
        self.session.add(tenant)
        await self.session.flush()

    async def profiles(self, tenant_id: str) -> Sequence[Profile]:
        query = select(Profile).where(Profile.tenant_id == tenant_id).order_by(Profile.name)
        return (await self.session.scalars(query)).all()

    async def profiles_of(self, tenant_ids: Sequence[str]) -> dict[str, list[Profile]]:
        found: dict[str, list[Profile]] = {tenant_id: [] for tenant_id in tenant_ids}
        if not tenant_ids:
            return found
        query = (
            select(Profile)
            .where(Profile.tenant_id.in_(tenant_ids))
            .order_by(Profile.tenant_id, Profile.name)
        )
        for profile in await self.session.scalars(query):
            found[profile.tenant_id].append(profile)
        return found

    async def profile_for_start(self, tenant_id: str, name: str | None) -> ProfileRow | None:
        """The profile named ``name``, or the tenant's default; None if the tenant is gone."""
        found = (
            await self.session.execute(
                _PROFILE_FOR_START, {"p_tenant_id": tenant_id, "p_profile": name}
            )
        ).first()
        return ProfileRow(found.name, found.config, found.version) if found else None

    async def get_profile(self, tenant_id: str, name: str) -> Profile | None:
        return await self.session.get(Profile, (tenant_id, name))

    async def upsert_profile(
        self, tenant_id: str, name: str, strategy: str, config: dict[str, Any]
    ) -> None:
        statement = insert(Profile).values(
            tenant_id=tenant_id, name=name, strategy=strategy, config=config
        )
        statement = statement.on_conflict_do_update(
            index_elements=[Profile.tenant_id, Profile.name],
            set_={"strategy": strategy, "config": config, "updated_at": func.now()},
            # An unchanged profile keeps its updated_at: re-applying a file is a no-op.
            where=(Profile.config != statement.excluded.config)
            | (Profile.strategy != statement.excluded.strategy),
        )
        await self.session.execute(statement)

    async def delete_profile(self, tenant_id: str, name: str) -> None:
        await self.session.execute(
            delete(Profile).where(Profile.tenant_id == tenant_id, Profile.name == name)
        )


class ApiKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, key: TenantApiKey) -> None:
        self.session.add(key)
        await self.session.flush()

    async def find_active(self, key_hash: bytes) -> ActiveKey | None:
        found = (await self.session.execute(_FIND_ACTIVE_KEY, {"p_key_hash": key_hash})).first()
        if found is None:
            return None
        return ActiveKey(
            id=found.id,
            tenant_id=found.tenant_id,
            last_used_at=found.last_used_at,
            scopes=found.scopes,
            profiles=found.profiles,
            tenant_cors_origins=found.cors_origins,
        )

    async def page_for_tenant(
        self, tenant_id: str, *, limit: int, after: str | None
    ) -> Sequence[TenantApiKey] | None:
        """Up to ``limit`` keys in the order they were issued, those after the key ``after``
        when given; None when the tenant has no key ``after``."""
        query = select(TenantApiKey).where(TenantApiKey.tenant_id == tenant_id)
        if after is not None:
            issued = await self.session.scalar(
                select(TenantApiKey.created_at).where(
                    TenantApiKey.tenant_id == tenant_id, TenantApiKey.id == after
                )
            )
            if issued is None:
                return None
            query = query.where(
                tuple_(TenantApiKey.created_at, TenantApiKey.id) > tuple_(issued, after)
            )
        query = query.order_by(TenantApiKey.created_at, TenantApiKey.id).limit(limit)
        return (await self.session.scalars(query)).all()

    async def revoke(self, tenant_id: str, key_id: str) -> bool:
        """Revoke a key; True if it exists for this tenant (revoking twice is fine)."""
        result = await self.session.execute(
            update(TenantApiKey)
            .where(TenantApiKey.tenant_id == tenant_id, TenantApiKey.id == key_id)
            .values(revoked_at=func.coalesce(TenantApiKey.revoked_at, func.now()))
            .returning(TenantApiKey.id)
        )
        return result.first() is not None

    async def revoke_labelled(self, tenant_id: str, label: str) -> int:
        """Revoke every active key of the tenant carrying ``label``; how many there were."""
        result = await self.session.execute(
            update(TenantApiKey)
            .where(
                TenantApiKey.tenant_id == tenant_id,
                TenantApiKey.label == label,
                TenantApiKey.revoked_at.is_(None),
            )
            .values(revoked_at=func.now())
            .returning(TenantApiKey.id)
        )
        return len(result.all())

    async def touch(self, key_id: str, now: datetime) -> None:
        await self.session.execute(
            update(TenantApiKey)
            .where(
                TenantApiKey.id == key_id,
                (TenantApiKey.last_used_at.is_(None))
                | (TenantApiKey.last_used_at < now - LAST_USED_RESOLUTION),
            )
            .values(last_used_at=now)
        )
