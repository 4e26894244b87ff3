"""Request schema of ``POST /sessions``.

Every object refuses unknown fields, and every free-text field has a documented cap:

==========================  ==========  ==========================================
field                       max chars   notes
==========================  ==========  ==========================================
``profile``                 64          tenant's ``default_profile`` when absent
``external_ref``            200         the caller's own id for the session
``conversational_context``  20,000      ``""`` is treated as absent
``custom_greeting``         1,000       ``""`` is treated as absent
``conversation_name``       200
``face_id``                 128         overrides the profile's and the PAL's face
``properties.language``     64
==========================  ==========  ==========================================

``overrides`` is a JSON object of PAL fields (nested like the ``POST /v2/pals`` body,
at most 32 levels deep); which of them a session may send is decided by the profile
at resolution time, not here.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from app.domain.profiles import errors
from app.domain.profiles.fields import (
    FaceId,
    Language,
    MaxCallDuration,
    ParticipantAbsentTimeout,
    ParticipantLeftTimeout,
)
from app.domain.profiles.paths import MAX_DEPTH, nesting_depth
from app.domain.storable_text import refuse_unstorable

MAX_PROFILE_NAME: Final = 64
MAX_EXTERNAL_REF: Final = 200
MAX_CONVERSATIONAL_CONTEXT: Final = 20_000
MAX_CUSTOM_GREETING: Final = 1_000
MAX_CONVERSATION_NAME: Final = 200


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        # Everything in the body is stored (the request and the plan are jsonb).
        return refuse_unstorable(data)


class SessionProperties(_Model):
    """Conversation properties a session asks for; unset fields take the profile's.

    Numeric properties must stay within Tavus's range (``property_out_of_range``) and,
    at resolution, within the profile's caps (``property_cap_exceeded``).
    """

    max_call_duration: MaxCallDuration | None = None
    participant_left_timeout: ParticipantLeftTimeout | None = None
    participant_absent_timeout: ParticipantAbsentTimeout | None = None
    enable_recording: bool | None = None
    enable_closed_captions: bool | None = None
    apply_greenscreen: bool | None = None
    language: Language | None = None


class SessionConversation(_Model):
    """Conversation-level options of a session."""

    conversation_name: (
        Annotated[str, StringConstraints(min_length=1, max_length=MAX_CONVERSATION_NAME)] | None
    ) = None
    face_id: FaceId | None = None
    audio_only: bool | None = None
    properties: SessionProperties = Field(default_factory=SessionProperties)


class SessionCreate(_Model):
    """Body of ``POST /sessions``."""

    profile: Annotated[str, StringConstraints(min_length=1, max_length=MAX_PROFILE_NAME)] | None = (
        None
    )
    external_ref: (
        Annotated[str, StringConstraints(min_length=1, max_length=MAX_EXTERNAL_REF)] | None
    ) = None
    conversational_context: (
        Annotated[str, StringConstraints(max_length=MAX_CONVERSATIONAL_CONTEXT)] | None
    ) = None
    custom_greeting: Annotated[str, StringConstraints(max_length=MAX_CUSTOM_GREETING)] | None = None
    #: PAL fields to change for this session, shaped like the ``POST /v2/pals`` body.
    overrides: dict[str, Any] = Field(default_factory=dict)
    conversation: SessionConversation = Field(default_factory=SessionConversation)

    @field_validator("overrides")
    @classmethod
    def _bounded_depth(cls, value: dict[str, Any]) -> dict[str, Any]:
        if nesting_depth(value) > MAX_DEPTH:
            raise PydanticCustomError(
                errors.OVERRIDES_TOO_DEEP,
                "overrides nest deeper than {limit} levels",
                {"limit": MAX_DEPTH},
            )
        return value
