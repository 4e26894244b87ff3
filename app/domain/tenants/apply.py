"""Config as code: make the tenants in the database match a file kept in the integrator's repo.

Applying the same file twice changes nothing the second time: each tenant is compared with
what is stored and only differences are written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories.tenants import TenantRepository
from app.domain.profiles.validation import validate_profile
from app.domain.tenants import service
from app.domain.tenants.schemas import (
    CorsOrigins,
    MaxConcurrentSessions,
    ProfileName,
    TenantCreate,
    TenantId,
    TenantUpdate,
)
from app.errors import ValidationFailed
from app.security import pal_secrets
from app.security.secret_box import SecretBox, SecretBoxError


class TenantSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: TenantId
    name: Annotated[str, Field(min_length=1, max_length=200)]
    max_concurrent_sessions: MaxConcurrentSessions = 10
    # Secrets do not belong in a repository: name the environment variable that holds it.
    tavus_api_key_env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = None
    profiles: dict[ProfileName, dict[str, Any]] = Field(default_factory=dict)
    default_profile: ProfileName | None = None
    cors_origins: CorsOrigins = Field(default_factory=list)


class TenantsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenants: list[TenantSpec]

    @model_validator(mode="after")
    def _one_entry_per_tenant(self) -> TenantsFile:
        # A second entry would silently overwrite the first within the same run.
        ids = [spec.id for spec in self.tenants]
        repeated = sorted({tenant_id for tenant_id in ids if ids.count(tenant_id) > 1})
        if repeated:
            raise ValueError(f"tenants listed more than once: {', '.join(repeated)}")
        return self


class MissingEnvironmentVariable(ValidationFailed):
    code = "missing_environment_variable"
    title = "An environment variable named by the file is not set"


@dataclass
class ApplyResult:
    tenant_id: str
    action: Literal["created", "updated", "unchanged"]
    changes: list[str] = field(default_factory=list)


def _tavus_key(spec: TenantSpec) -> str | None:
    if spec.tavus_api_key_env is None:
        return None
    value = os.environ.get(spec.tavus_api_key_env)
    if not value:
        raise MissingEnvironmentVariable(
            f"tenant {spec.id!r}: {spec.tavus_api_key_env} is not set",
            variable=spec.tavus_api_key_env,
        )
    return value


def _stored_key_differs(box: SecretBox, encrypted: bytes | None, wanted: str | None) -> bool:
    if encrypted is None:
        return wanted is not None
    try:
        return box.decrypt(encrypted) != wanted
    except SecretBoxError:
        # Sealed under an earlier SECRET_KEY: the file's key is stored again under the
        # current one (or, if the file names none, the unreadable one is dropped).
        return True


def _readable_config(box: SecretBox, config: dict[str, Any]) -> dict[str, Any] | None:
    """A stored profile with its credentials in clear, to compare with the file's; None
    when they were sealed under an earlier SECRET_KEY (the file's profile is stored
    again under the current one)."""
    try:
        return pal_secrets.unseal_profile(config, box)
    except SecretBoxError:
        return None


def tavus_keys(document: TenantsFile) -> dict[str, str | None]:
    """Each tenant's own Tavus key, read from the variable the file names.

    Raises ``MissingEnvironmentVariable`` for the first variable that is unset or empty.
    """
    return {spec.id: _tavus_key(spec) for spec in document.tenants}


async def apply_tenants(
    session: AsyncSession,
    document: TenantsFile,
    *,
    box: SecretBox,
    pals: service.PalDirectory,
    prune_profiles: bool = False,
) -> list[ApplyResult]:
    results = []
    repo = TenantRepository(session)
    # Every named variable is read first: a missing one stops the run before any Tavus
    # call or database write.
    own_keys = tavus_keys(document)
    for spec in document.tenants:
        own_key = own_keys[spec.id]
        desired = TenantCreate.model_validate(
            {
                "id": spec.id,
                "name": spec.name,
                "max_concurrent_sessions": spec.max_concurrent_sessions,
                "tavus_api_key": own_key,
                "profiles": spec.profiles,
                "default_profile": spec.default_profile,
                "cors_origins": spec.cors_origins,
            }
        )
        current = await repo.get(spec.id)
        if current is None:
            await service.create_tenant(session, desired, box=box, pals=pals)
            results.append(ApplyResult(spec.id, "created"))
            continue
        patch: dict[str, Any] = {}
        changes: list[str] = []
        if current.name != spec.name:
            patch["name"] = spec.name
        if current.max_concurrent_sessions != spec.max_concurrent_sessions:
            patch["max_concurrent_sessions"] = spec.max_concurrent_sessions
        if _stored_key_differs(box, current.tavus_api_key_encrypted, own_key):
            patch["tavus_api_key"] = own_key
        if current.cors_origins != spec.cors_origins:
            patch["cors_origins"] = spec.cors_origins
        stored_profiles = {
            p.name: _readable_config(box, p.config) for p in await repo.profiles(spec.id)
        }
        wanted_profiles = {
            name: validate_profile(name, data).model_dump(mode="json")
            for name, data in spec.profiles.items()
        }
        profile_patch: dict[str, dict[str, Any] | None] = {
            name: config
            for name, config in wanted_profiles.items()
            if stored_profiles.get(name) != config
        }
        if prune_profiles:
            profile_patch.update({n: None for n in stored_profiles if n not in wanted_profiles})
        if profile_patch:
            patch["profiles"] = profile_patch
            changes += [f"profiles.{name}" for name in sorted(profile_patch)]
        if spec.default_profile is not None and current.default_profile != spec.default_profile:
            patch["default_profile"] = spec.default_profile
        changes = sorted({*changes, *(k for k in patch if k != "profiles")})
        if not patch:
            results.append(ApplyResult(spec.id, "unchanged"))
            continue
        await service.update_tenant(
            session,
            spec.id,
            TenantUpdate.model_validate(patch),
            box=box,
            pals=pals,
        )
        results.append(ApplyResult(spec.id, "updated", changes))
    return results
