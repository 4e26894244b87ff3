"""The profile: a tenant's named recipe for running sessions on Tavus.

A profile is validated completely when it is saved, so that a session can never fail
on a defect of the profile itself. :meth:`Profile.model_validate` raises a pydantic
``ValidationError`` whose error ``type`` values are stable codes (see
:mod:`app.domain.profiles.errors`);
:func:`~app.domain.profiles.validation.validate_profile` wraps that in
:class:`~app.domain.profiles.errors.InvalidProfile` for callers that want an
``AppError`` directly.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from app.domain.profiles import errors, memory
from app.domain.profiles.fields import (
    CAPPED_PROPERTIES,
    PROPERTY_RANGES,
    FaceId,
    Language,
    MaxCallDuration,
    PalId,
    ParticipantAbsentTimeout,
    ParticipantLeftTimeout,
)
from app.domain.profiles.paths import check_pal_body, is_known_path
from app.security import pal_secrets

Strategy = Literal["reuse", "ephemeral", "auto"]

#: Profile names: lowercase letters, digits, ``-`` and ``_``; 1 to 64 characters.
PROFILE_NAME_PATTERN: Final = r"^[a-z0-9][a-z0-9_-]{0,63}$"
ProfileName = Annotated[str, StringConstraints(pattern=PROFILE_NAME_PATTERN)]

# Money-protecting defaults: Tavus bills from creation until the room closes, so every
# conversation gets explicit timeouts and a bounded duration.
DEFAULT_MAX_CALL_DURATION: Final = 1800
DEFAULT_PARTICIPANT_LEFT_TIMEOUT: Final = 60
DEFAULT_PARTICIPANT_ABSENT_TIMEOUT: Final = 180
DEFAULT_CAP_MAX_CALL_DURATION: Final = 3600
DEFAULT_CAP_PARTICIPANT_LEFT_TIMEOUT: Final = 600
DEFAULT_CAP_PARTICIPANT_ABSENT_TIMEOUT: Final = 600


_BUILT_IN_DEFAULTS: Final = {
    "max_call_duration": DEFAULT_MAX_CALL_DURATION,
    "participant_left_timeout": DEFAULT_PARTICIPANT_LEFT_TIMEOUT,
    "participant_absent_timeout": DEFAULT_PARTICIPANT_ABSENT_TIMEOUT,
}


# Views show credentials as this mark; a profile read from one and sent back would
# otherwise replace the real credential with it.
_REDACTED_MESSAGE: Final = (
    "this credential is the mark views show in its place; send the credential itself"
)


class _Model(BaseModel):
    # strict: "60" is not 60 and true is not 1; a policy should say exactly what it means.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ConversationProperties(_Model):
    """Default ``properties`` of every conversation created under the profile.

    The three timeouts are always sent to Tavus (never left to Tavus's defaults); the
    other fields are sent only when set.
    """

    max_call_duration: MaxCallDuration = DEFAULT_MAX_CALL_DURATION
    participant_left_timeout: ParticipantLeftTimeout = DEFAULT_PARTICIPANT_LEFT_TIMEOUT
    participant_absent_timeout: ParticipantAbsentTimeout = DEFAULT_PARTICIPANT_ABSENT_TIMEOUT
    enable_recording: bool | None = None
    enable_closed_captions: bool | None = None
    apply_greenscreen: bool | None = None
    language: Language | None = None


class PropertyCaps(_Model):
    """The highest value a session may request for each numeric property."""

    max_call_duration: MaxCallDuration = DEFAULT_CAP_MAX_CALL_DURATION
    participant_left_timeout: ParticipantLeftTimeout = DEFAULT_CAP_PARTICIPANT_LEFT_TIMEOUT
    participant_absent_timeout: ParticipantAbsentTimeout = DEFAULT_CAP_PARTICIPANT_ABSENT_TIMEOUT


#: Memory-store templates per profile, and the length of each.
MAX_MEMORY_STORES: Final = 10
MAX_MEMORY_STORE_TEMPLATE: Final = 200
MemoryStoreTemplate = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_MEMORY_STORE_TEMPLATE)
]


class ProfileConversation(_Model):
    """Conversation defaults applied to every session of the profile."""

    #: Face for the conversation; when unset (here and in the request) the PAL's
    #: ``default_face_id`` applies.
    face_id: FaceId | None = None
    audio_only: bool | None = None
    properties: ConversationProperties = Field(default_factory=ConversationProperties)
    #: Templates of the conversation's ``memory_stores`` (``app.domain.profiles.memory``):
    #: ``"{tenant_id}-{external_ref}"`` gives a user the same memories in every session.
    memory_stores: (
        Annotated[list[MemoryStoreTemplate], Field(max_length=MAX_MEMORY_STORES)] | None
    ) = None

    @model_serializer(mode="wrap")
    def _without_absent_memory(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Profiles without memory stores are stored exactly as before they existed.
        data: dict[str, Any] = handler(self)
        if self.memory_stores is None:
            data.pop("memory_stores", None)
        return data

    @field_validator("memory_stores")
    @classmethod
    def _templates_fill(cls, value: list[str] | None) -> list[str] | None:
        lines: list[InitErrorDetails] = []
        for index, template in enumerate(value or []):
            try:
                memory.check(template)
            except memory.TemplateProblem as problem:
                lines.append(_line(problem.code, (index,), "{detail}", {"detail": problem.message}))
        if lines:
            raise _validation_error(cls.__name__, lines)
        return value


#: PALs kept ready per pool key (the template, each variant).
WARM_POOL_MAX_SIZE: Final = 20
#: Declared override variants per profile.
WARM_POOL_MAX_VARIANTS: Final = 20
#: Accepted range (inclusive, seconds) of a pooled PAL's lifetime.
WARM_POOL_TTL_RANGE: Final = (60, 86_400)
DEFAULT_WARM_POOL_SIZE: Final = 1
DEFAULT_WARM_POOL_TTL: Final = 3600

PoolSize = Annotated[int, Field(ge=0, le=WARM_POOL_MAX_SIZE)]
PoolTtl = Annotated[int, Field(ge=WARM_POOL_TTL_RANGE[0], le=WARM_POOL_TTL_RANGE[1])]


class WarmPoolVariant(_Model):
    """A set of overrides a product sends often (one of its voices, say), kept warm too.

    ``overrides`` is exactly what a session would send; the pooled PAL's body is resolved
    from it by the same code as a session's (:func:`~app.domain.profiles.resolution.
    resolve`), so a session sending these overrides finds it.
    """

    name: ProfileName
    overrides: dict[str, Any]
    #: PALs kept ready for this variant; the pool's ``size`` when unset.
    size: PoolSize | None = None

    @field_validator("overrides")
    @classmethod
    def _no_redaction_mark(cls, value: dict[str, Any]) -> dict[str, Any]:
        lines = [
            _line(errors.WARM_POOL_VARIANT_INVALID, path, _REDACTED_MESSAGE, {})
            for path in pal_secrets.redacted_credentials(value)
        ]
        if lines:
            raise _validation_error(cls.__name__, lines)
        return value


class WarmPool(_Model):
    """PALs created ahead of time, so that an ephemeral start only creates the
    conversation. Ignored under ``reuse``.

    Under ``ephemeral`` the template itself is a pool key, kept at ``size``; under
    ``auto`` it is not (a session without overrides reuses ``pal_id``). Each variant is
    a key of its own.
    """

    size: PoolSize = DEFAULT_WARM_POOL_SIZE
    #: A pooled PAL unused for this long is deleted (and replaced).
    ttl_seconds: PoolTtl = DEFAULT_WARM_POOL_TTL
    variants: Annotated[list[WarmPoolVariant], Field(max_length=WARM_POOL_MAX_VARIANTS)] = Field(
        default_factory=list
    )


class Profile(_Model):
    """A tenant's policy for running sessions: which strategy, which PAL, what may vary.

    * ``reuse`` needs ``pal_id``; sessions may not send overrides.
    * ``ephemeral`` needs ``pal_template``; each session gets a PAL built from the
      template plus its allowed overrides, deleted when the session ends.
    * ``auto`` needs both: sessions without overrides reuse ``pal_id``, sessions with
      overrides get an ephemeral PAL.

    ``allowed_overrides`` is ignored under ``reuse`` and ``pal_id`` under ``ephemeral``,
    so a profile can switch strategy without other edits. A conversation default left
    unset follows a cap set below it; an explicit default above its cap is refused.
    """

    strategy: Strategy
    pal_id: PalId | None = None
    #: The full ``POST /v2/pals`` body used for ephemeral PALs.
    pal_template: dict[str, Any] | None = None
    #: Dotted PAL paths a session may override; each covers everything below it.
    allowed_overrides: list[str] = Field(default_factory=list)
    conversation: ProfileConversation = Field(default_factory=ProfileConversation)
    caps: PropertyCaps = Field(default_factory=PropertyCaps)
    #: Optional: ephemeral PALs kept ready ahead of sessions (docs/profiles.md §8).
    warm_pool: WarmPool | None = None

    @model_serializer(mode="wrap")
    def _without_absent_pool(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A profile without a pool is stored exactly as before pools existed, so that
        # re-applying an unchanged tenants file still changes nothing.
        data: dict[str, Any] = handler(self)
        if self.warm_pool is None:
            data.pop("warm_pool", None)
        return data

    @model_validator(mode="before")
    @classmethod
    def _unset_defaults_follow_lower_caps(cls, data: Any) -> Any:
        # `caps: {max_call_duration: 600}` alone should just work: a default the admin
        # did not set is lowered to the cap instead of failing as "above its cap".
        if not isinstance(data, dict) or not isinstance(data.get("caps"), dict):
            return data
        conversation = data.get("conversation", {})
        if not isinstance(conversation, dict):
            return data
        properties = conversation.get("properties", {})
        if not isinstance(properties, dict):
            return data
        lowered = {}
        for name in CAPPED_PROPERTIES:
            cap = data["caps"].get(name)
            if name in properties or type(cap) is not int:
                continue
            low, _ = PROPERTY_RANGES[name]
            if low <= cap < _BUILT_IN_DEFAULTS[name]:
                lowered[name] = cap
        if not lowered:
            return data
        return {**data, "conversation": {**conversation, "properties": {**properties, **lowered}}}

    @field_validator("pal_template")
    @classmethod
    def _template_is_a_valid_pal_body(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return value
        lines = [
            _line(
                errors.PAL_TEMPLATE_INVALID,
                p.path,
                "{path}: {detail}",
                {"path": p.dotted or "(body)", "reason": p.reason, "detail": p.message},
            )
            for p in check_pal_body(value, complete=True)
        ]
        lines += [
            _line(
                errors.PAL_TEMPLATE_INVALID,
                path,
                _REDACTED_MESSAGE,
                {"reason": "redacted_credential"},
            )
            for path in pal_secrets.redacted_credentials(value)
        ]
        if lines:
            raise _validation_error(cls.__name__, lines)
        return value

    @field_validator("allowed_overrides")
    @classmethod
    def _paths_are_catalogued(cls, value: list[str]) -> list[str]:
        lines = [
            _line(
                errors.UNKNOWN_OVERRIDE_PATH,
                (index,),
                "'{path}' is not a PAL field that can be overridden",
                {"path": path},
            )
            for index, path in enumerate(value)
            if not is_known_path(path)
        ]
        if lines:
            raise _validation_error(cls.__name__, lines)
        return value

    @model_validator(mode="after")
    def _strategy_has_what_it_needs(self) -> Self:
        lines: list[InitErrorDetails] = []
        if self.strategy in ("reuse", "auto") and self.pal_id is None:
            lines.append(
                _line(
                    errors.PAL_ID_REQUIRED,
                    ("pal_id",),
                    "strategy '{strategy}' needs pal_id (the persistent PAL)",
                    {"strategy": self.strategy},
                )
            )
        if self.strategy in ("ephemeral", "auto") and self.pal_template is None:
            lines.append(
                _line(
                    errors.PAL_TEMPLATE_REQUIRED,
                    ("pal_template",),
                    "strategy '{strategy}' needs pal_template (the POST /v2/pals body)",
                    {"strategy": self.strategy},
                )
            )
        for name in CAPPED_PROPERTIES:
            default: int = getattr(self.conversation.properties, name)
            cap: int = getattr(self.caps, name)
            if default > cap:
                lines.append(
                    _line(
                        errors.PROPERTY_CAP_EXCEEDED,
                        ("conversation", "properties", name),
                        "default {name}={value} is above its cap caps.{name}={cap}",
                        {"name": name, "value": default, "cap": cap},
                    )
                )
        if lines:
            raise _validation_error(type(self).__name__, lines)
        return self


def _line(
    code: str, loc: tuple[str | int, ...], template: str, context: dict[str, Any]
) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError(code, template, context), loc=loc, input=None)


def _validation_error(title: str, lines: list[InitErrorDetails]) -> ValidationError:
    # Raising a ValidationError inside a validator makes pydantic splice these errors
    # into the outer one under the field's location, so one validator reports them all.
    return ValidationError.from_exception_data(title, lines)
