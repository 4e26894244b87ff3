"""Admin API bodies for tenants and their API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from app.domain.profiles.schemas import PROFILE_NAME_PATTERN
from app.domain.storable_text import refuse_unstorable

TenantId = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$",
        description="Stable identifier: 1-64 of a-z, 0-9, '-' and '_'.",
        examples=["acme"],
    ),
]
ProfileName = Annotated[str, Field(pattern=PROFILE_NAME_PATTERN, examples=["coach"])]
MaxConcurrentSessions = Annotated[int, Field(ge=0, le=100_000)]
TavusApiKey = Annotated[SecretStr, Field(min_length=1, max_length=256)]

PROFILE_DESCRIPTION = (
    "Profiles by name; see docs/profiles.md for the format (strategy, pal_id, pal_template, "
    "allowed_overrides, conversation, caps, warm_pool)."
)
MAX_PROFILES = 100


class _Body(BaseModel):
    # strict: "10" is not 10 and true is not 1, as in profiles and session bodies.
    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        # Names, labels and whole profiles are stored as text and jsonb.
        return refuse_unstorable(data)


class TenantCreate(_Body):
    id: TenantId
    name: Annotated[str, Field(min_length=1, max_length=200)]
    max_concurrent_sessions: MaxConcurrentSessions = 10
    tavus_api_key: Annotated[
        TavusApiKey | None,
        Field(description="The tenant's own Tavus key; write-only, stored encrypted."),
    ] = None
    profiles: Annotated[
        dict[ProfileName, dict[str, Any]],
        Field(description=PROFILE_DESCRIPTION, max_length=MAX_PROFILES),
    ] = Field(default_factory=dict)
    default_profile: ProfileName | None = None


class TenantUpdate(_Body):
    """A merge patch: absent fields are kept; ``profiles.<name>: null`` removes a profile,
    ``tavus_api_key: null`` removes the tenant's own key."""

    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    max_concurrent_sessions: MaxConcurrentSessions | None = None
    tavus_api_key: TavusApiKey | None = None
    profiles: (
        Annotated[
            dict[ProfileName, dict[str, Any] | None],
            Field(description=PROFILE_DESCRIPTION, max_length=MAX_PROFILES),
        ]
        | None
    ) = None
    default_profile: ProfileName | None = None


class TenantPublic(BaseModel):
    id: str
    name: str
    max_concurrent_sessions: int
    default_profile: str | None
    profiles: dict[str, dict[str, Any]]
    has_tavus_api_key: bool
    created_at: datetime
    updated_at: datetime


class TenantPage(BaseModel):
    items: list[TenantPublic]
    next_cursor: str | None


class ApiKeyCreate(_Body):
    label: Annotated[str, Field(max_length=200)] | None = None


class ApiKeyCreated(BaseModel):
    id: str
    key: Annotated[str, Field(description="Shown once; only a hash is stored.")]
    prefix: str
    label: str | None
    created_at: datetime


class ApiKeyPublic(BaseModel):
    id: str
    prefix: str
    label: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyPage(BaseModel):
    items: list[ApiKeyPublic]
    next_cursor: Annotated[
        str | None, Field(description="Pass it back as `cursor` for the next page.")
    ]
