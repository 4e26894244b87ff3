"""Config as code: make the tenants in the database match a file kept in the integrator's repo.

Applying the same file twice changes nothing the second time: each tenant is compared with
what is stored and only differences are written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories.tenants import TenantRepository
from app.db.repositories.webhooks import WebhookRepository
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
from app.domain.webhooks import service as webhook_service
from app.domain.webhooks import signing
from app.domain.webhooks.schemas import EventType, WebhookEndpointCreate
from app.errors import ValidationFailed
from app.security import pal_secrets
from app.security.secret_box import SecretBox, SecretBoxError

EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class WebhookEndpointSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Annotated[str, Field(min_length=1, max_length=2048)]
    events: list[EventType] | None = None
    # The `whsec_` secret the receiver verifies with, from the environment like the keys.
    secret_env: EnvName
    allow_http: bool = False
    allow_private: bool = False


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
    # Absent: the tenant's endpoints are left as they are. Listed: exactly these, by URL.
    webhook_endpoints: list[WebhookEndpointSpec] | None = None

    @model_validator(mode="after")
    def _one_endpoint_per_url(self) -> TenantSpec:
        urls = [e.url for e in self.webhook_endpoints or []]
        if len(set(urls)) != len(urls):
            raise ValueError("webhook_endpoints lists a URL more than once")
        return self


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


class InvalidWebhookSecret(ValidationFailed):
    code = "invalid_webhook_secret"
    title = "A webhook secret named by the file is not a whsec_ secret"


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


def webhook_secrets(document: TenantsFile) -> dict[tuple[str, str], str]:
    """Each listed endpoint's secret by (tenant, URL), read from the variable the file
    names; raises for the first one unset, empty or not a ``whsec_`` secret."""
    found: dict[tuple[str, str], str] = {}
    for spec in document.tenants:
        for endpoint in spec.webhook_endpoints or []:
            value = os.environ.get(endpoint.secret_env)
            if not value:
                raise MissingEnvironmentVariable(
                    f"tenant {spec.id!r}: {endpoint.secret_env} is not set",
                    variable=endpoint.secret_env,
                )
            if not signing.is_secret(value):
                raise InvalidWebhookSecret(
                    f"tenant {spec.id!r}: {endpoint.secret_env} is not a whsec_ secret "
                    f"of {signing.MIN_SECRET_BYTES} to {signing.MAX_SECRET_BYTES} bytes",
                    variable=endpoint.secret_env,
                )
            found[(spec.id, endpoint.url)] = value
    return found


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
    dev: bool = False,
    secret_overlap: timedelta = timedelta(hours=24),
) -> list[ApplyResult]:
    results = []
    repo = TenantRepository(session)
    # Every named variable is read first: a missing one stops the run before any Tavus
    # call or database write.
    own_keys = tavus_keys(document)
    endpoint_secrets = webhook_secrets(document)
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
            await _apply_endpoints(
                session, spec, endpoint_secrets, box=box, dev=dev, overlap=secret_overlap
            )
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
        if patch:
            await service.update_tenant(
                session,
                spec.id,
                TenantUpdate.model_validate(patch),
                box=box,
                pals=pals,
            )
        changes += await _apply_endpoints(
            session, spec, endpoint_secrets, box=box, dev=dev, overlap=secret_overlap
        )
        if not changes:
            results.append(ApplyResult(spec.id, "unchanged"))
            continue
        results.append(ApplyResult(spec.id, "updated", changes))
    return results


async def _apply_endpoints(
    session: AsyncSession,
    spec: TenantSpec,
    secrets: dict[tuple[str, str], str],
    *,
    box: SecretBox,
    dev: bool,
    overlap: timedelta,
) -> list[str]:
    """Make the tenant's webhook endpoints those the file lists (matched by URL); what
    changed, as ``webhook_endpoints[url]`` entries."""
    if spec.webhook_endpoints is None:
        return []
    repo = WebhookRepository(session)
    stored = {row.url: row for row in await repo.endpoints(spec.id)}
    changes: list[str] = []
    for wanted in spec.webhook_endpoints:
        secret = secrets[(spec.id, wanted.url)]
        body = WebhookEndpointCreate(
            url=wanted.url,
            events=wanted.events,
            allow_http=wanted.allow_http,
            allow_private=wanted.allow_private,
        )
        row = stored.pop(wanted.url, None)
        if row is None:
            await webhook_service.create_endpoint(
                session, spec.id, body, box=box, dev=dev, secret=secret
            )
            changes.append(f"webhook_endpoints[{wanted.url}]")
            continue
        if await webhook_service.update_endpoint(
            session, row, body, secret, box=box, dev=dev, overlap=overlap
        ):
            changes.append(f"webhook_endpoints[{wanted.url}]")
    for url, row in stored.items():
        await repo.delete_endpoint(spec.id, row.id)
        changes.append(f"webhook_endpoints[{url}]")
    return changes
