"""Admin API bodies for tenants and their API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, model_validator

from app.domain.profiles.schemas import PROFILE_NAME_PATTERN
from app.domain.storable_text import refuse_unstorable
from app.domain.tenants.access import START_RATE_PATTERN, Scope
from app.domain.tenants.origins import MAX_ORIGINS, normalise_origin, normalise_origins

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

CORS_ORIGINS_DESCRIPTION = (
    "The exact origins (`scheme://host[:port]`) the tenant's browser frontends call "
    "from; stored as browsers send them (lower case, no default port). No wildcards; "
    "`http://` for loopback hosts only. See docs/frontends.md."
)
CorsOrigins = Annotated[
    list[Annotated[str, AfterValidator(normalise_origin)]],
    AfterValidator(normalise_origins),
    Field(
        max_length=MAX_ORIGINS,
        description=CORS_ORIGINS_DESCRIPTION,
        examples=[["https://app.example.com"]],
    ),
]


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
    cors_origins: CorsOrigins = Field(default_factory=list)


class TenantUpdate(_Body):
    """A merge patch: absent fields are kept; ``profiles.<name>: null`` removes a profile,
    ``tavus_api_key: null`` removes the tenant's own key; ``cors_origins`` replaces the
    list."""

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
    cors_origins: CorsOrigins | None = None


class TenantPublic(BaseModel):
    id: str
    name: str
    max_concurrent_sessions: int
    default_profile: str | None
    profiles: dict[str, dict[str, Any]]
    cors_origins: list[str]
    has_tavus_api_key: bool
    created_at: datetime
    updated_at: datetime


class TenantPage(BaseModel):
    items: list[TenantPublic]
    next_cursor: str | None


StartRateText = Annotated[
    str,
    Field(
        pattern=START_RATE_PATTERN,
        description="Most sessions the key may start: `<count>/<second|minute|hour|day>`.",
        examples=["10/minute"],
    ),
]


class ApiKeyCreate(_Body):
    """A key's restrictions are fixed when it is issued: for others, issue a new key."""

    label: Annotated[str, Field(max_length=200)] | None = None
    scopes: (
        Annotated[
            list[Scope],
            Field(
                min_length=1,
                max_length=4,
                description="What the key may do; absent: everything, including scopes "
                "added later. A browser key holds `sessions:start` only.",
                examples=[["sessions:start"]],
            ),
        ]
        | None
    ) = None
    profiles: (
        Annotated[
            list[ProfileName],
            Field(
                min_length=1,
                max_length=MAX_PROFILES,
                description="The profiles the key may start; absent: any of the tenant's.",
            ),
        ]
        | None
    ) = None
    start_rate: StartRateText | None = None
    start_burst: (
        Annotated[
            int,
            Field(
                ge=1,
                le=100_000,
                description="Starts the key may make at once before `start_rate` applies; "
                "absent: the rate's count.",
            ),
        ]
        | None
    ) = None

    @model_validator(mode="after")
    def _burst_needs_a_rate(self) -> ApiKeyCreate:
        if self.start_burst is not None and self.start_rate is None:
            raise ValueError("start_burst needs a start_rate")
        return self


class ApiKeyCreated(BaseModel):
    id: str
    key: Annotated[str, Field(description="Shown once; only a hash is stored.")]
    prefix: str
    label: str | None
    scopes: list[Scope]
    profiles: list[str] | None
    start_rate: str | None
    start_burst: int | None
    created_at: datetime


class ApiKeyPublic(BaseModel):
    id: str
    prefix: str
    label: str | None
    scopes: list[Scope]
    profiles: list[str] | None
    start_rate: str | None
    start_burst: int | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyPage(BaseModel):
    items: list[ApiKeyPublic]
    next_cursor: Annotated[
        str | None, Field(description="Pass it back as `cursor` for the next page.")
    ]
