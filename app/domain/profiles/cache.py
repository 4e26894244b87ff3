"""The profiles sessions start under, kept in each process.

A start needs its profile, validated, before it is admitted: the request is resolved
against it so that a request the profile refuses is told so (422) before anything is
claimed or counted. Reading and validating the profile on every start cost a round trip
and a pydantic validation; here each is done once per profile version.

An entry may be stale (the profile was edited through another process): admission
compares the version the request was resolved under (a hash of the stored config) with
the profile's, under the tenant's lock, and answers
``profile_changed`` when it differs. The start then reads the profile again. A stale
entry therefore costs one retry, never a session started under an old profile.
"""

from __future__ import annotations

from dataclasses import dataclass

from cachetools import LRUCache
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.repositories.tenants import TenantRepository
from app.domain.profiles.errors import ProfileRequired, UnknownProfile
from app.domain.profiles.schemas import Profile
from app.security import pal_secrets
from app.security.secret_box import SecretBox

# Entries are small (a validated profile); the bound only keeps deleted tenants' and
# profiles' entries from piling up.
DEFAULT_ENTRIES = 4096


class TenantGone(Exception):
    """The tenant was deleted after its API key was accepted."""


@dataclass(frozen=True)
class StartProfile:
    """A profile, validated, with its version (a hash of its stored config)."""

    name: str
    version: str
    profile: Profile


class ProfileCache:
    def __init__(
        self,
        autocommit: async_sessionmaker[AsyncSession],
        secret_box: SecretBox,
        entries: int = DEFAULT_ENTRIES,
    ) -> None:
        self._autocommit = autocommit
        # Profiles are stored with their credentials sealed; entries hold them in clear.
        self._secret_box = secret_box
        self._entries: LRUCache[tuple[str, str | None], StartProfile] = LRUCache(entries)

    async def get(self, tenant_id: str, name: str | None, *, fresh: bool = False) -> StartProfile:
        """The profile ``name`` of the tenant (its default when None): from memory, or
        read when absent or when ``fresh``. Raises ``ProfileRequired``/``UnknownProfile``
        (422) or ``TenantGone``."""
        key = (tenant_id, name)
        if not fresh and (entry := self._entries.get(key)) is not None:
            return entry
        async with self._autocommit() as db:
            row = await TenantRepository(db).profile_for_start(tenant_id, name)
        # Read afresh: whatever was remembered is replaced, or dropped if it is gone.
        self._entries.pop(key, None)
        if row is None:
            raise TenantGone(tenant_id)
        if row.name is None:
            raise ProfileRequired(
                "the request names no profile and the tenant has no default_profile"
            )
        if row.config is None or row.version is None:
            raise UnknownProfile(f"unknown profile {row.name!r}", profile=row.name)
        entry = StartProfile(
            name=row.name,
            version=row.version,
            profile=Profile.model_validate(
                pal_secrets.unseal_profile(row.config, self._secret_box)
            ),
        )
        self._entries[key] = entry
        return entry

    def __len__(self) -> int:
        return len(self._entries)
