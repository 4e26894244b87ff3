"""Tavus request bodies and responses, both tolerant of what Tavus adds.

Request models type the fields Palisade itself reads or sets and pass every other field
through unchanged: Tavus adds PAL and conversation fields often (``layers.conferencing``,
perception tools, ...), and refusing them here would refuse a body Tavus accepts. What a
tenant may put in a PAL body is decided earlier, by the profile catalog
(``app.domain.profiles.paths``). Response models ignore unknown keys, accept the legacy
persona/replica names and parse timestamps leniently, because Tavus's own examples
disagree on shapes and formats; an unreadable event in a verbose conversation is
skipped and counted, never fatal.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Generic, Literal, TypeVar

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    PlainSerializer,
    SecretStr,
    ValidationError,
    model_validator,
)


def _reveal(secret: SecretStr) -> str:
    return secret.get_secret_value()


# Third-party keys inside a PAL body are masked in reprs but sent in full as JSON.
SecretText = Annotated[SecretStr, PlainSerializer(_reveal, return_type=str, when_used="json")]

Level = Literal["low", "medium", "high"]
JsonObject = dict[str, JsonValue]


class _Body(BaseModel):
    # Unknown keys are kept and sent as given (see the module docstring).
    model_config = ConfigDict(extra="allow")


# --- POST /v2/pals -----------------------------------------------------------------


class LLMLayer(_Body):
    model: str | None = None
    base_url: str | None = None
    api_key: SecretText | None = None
    # Open-ended objects in Tavus's docs; headers often carry credentials.
    headers: dict[str, str] | None = Field(default=None, repr=False)
    extra_body: JsonObject | None = None
    default_query: JsonObject | None = None
    speculative_inference: bool | None = None
    tools: list[JsonObject] | None = None


class VoiceSettings(_Body):
    speed: float | None = None
    emotion: list[str] | None = None
    stability: float | None = None
    similarity_boost: float | None = None
    style: float | None = None
    use_speaker_boost: bool | None = None


class TTSLayer(_Body):
    tts_engine: str | None = None
    api_key: SecretText | None = None
    external_voice_id: str | None = None
    tts_model_name: str | None = None
    tts_emotion_control: bool | None = None
    voice_settings: VoiceSettings | None = None
    pronunciation_dictionary_id: str | None = None
    voice_id: str | None = None


class STTLayer(_Body):
    stt_engine: str | None = None
    hotwords: str | None = None


class PerceptionLayer(_Body):
    perception_model: str | None = None
    visual_awareness_queries: list[str] | None = None
    perception_analysis_queries: list[str] | None = None
    visual_tool_prompt: str | None = None
    emotion_recognition: Literal["full", "limited", "auto"] | None = None


class ConversationalFlowLayer(_Body):
    turn_detection_model: str | None = None
    turn_taking_patience: Level | None = None
    pal_interruptibility: Level | None = None
    voice_isolation: str | bool | None = None
    idle_engagement: str | bool | None = None


class TransportLayer(_Body):
    transport_type: str | None = None


class PalLayers(_Body):
    perception: PerceptionLayer | None = None
    stt: STTLayer | None = None
    conversational_flow: ConversationalFlowLayer | None = None
    llm: LLMLayer | None = None
    tts: TTSLayer | None = None
    transport: TransportLayer | None = None


class PalCreate(_Body):
    """Body of ``POST /v2/pals``."""

    default_face_id: str
    pal_name: str | None = None
    system_prompt: str | None = None
    pipeline_mode: Literal["full", "echo"] | None = None
    context: str | None = None
    document_ids: list[str] | None = None
    document_tags: list[str] | None = None
    objectives_id: str | None = None
    guardrails_id: str | None = None
    languages: list[str] | None = None
    disclosure_type: Literal["always", "auto", "off"] | None = None
    verbal_disclosure: str | bool | None = None
    visual_disclosure: str | bool | None = None
    layers: PalLayers | None = None

    @model_validator(mode="after")
    def _prompt_unless_echo(self) -> PalCreate:
        if self.pipeline_mode != "echo" and not self.system_prompt:
            raise ValueError("system_prompt is required unless pipeline_mode is 'echo'")
        return self


# --- POST /v2/conversations --------------------------------------------------------


class ConversationProperties(_Body):
    max_call_duration: int | None = Field(default=None, ge=1)
    participant_left_timeout: int | None = Field(default=None, ge=0)
    participant_absent_timeout: int | None = Field(default=None, ge=0)
    enable_recording: bool | None = None
    enable_closed_captions: bool | None = None
    apply_greenscreen: bool | None = None
    language: str | None = None
    languages: list[str] | None = None
    # Provider-specific storage settings; Tavus documents it only as an object.
    recording_storage: JsonObject | None = None
    daily_room: str | None = None


class ConversationCreate(_Body):
    """Body of ``POST /v2/conversations``."""

    pal_id: str | None = None
    face_id: str | None = None
    # Palisade's callback URLs carry a per-session secret token.
    callback_url: str | None = Field(default=None, repr=False)
    conversation_name: str | None = None
    conversational_context: str | None = None
    custom_greeting: str | None = None
    enable_dynamic_greeting: bool | None = None
    audio_only: bool | None = None
    memory_stores: list[str] | None = None
    document_ids: list[str] | None = None
    document_tags: list[str] | None = None
    document_retrieval_strategy: Literal["speed", "quality", "balanced"] | None = None
    test_mode: bool | None = None
    require_auth: bool | None = None
    max_participants: int | None = Field(default=None, ge=2)
    policy: Literal["eu"] | None = None
    properties: ConversationProperties | None = None


# --- POST /v2/conversations/{id}/send-app-message ----------------------------------

#: The largest send-app-message body Tavus accepts (its 413 above).
APP_MESSAGE_MAX_BYTES: Final = 65_536


class Interaction(BaseModel):
    """One interaction of Tavus's protocol (``conversation.append_llm_context``, ...)
    with its properties; :meth:`app_message` puts it in Tavus's envelope."""

    model_config = ConfigDict(frozen=True)

    event_type: str
    properties: JsonObject = Field(default_factory=dict)

    def app_message(self, conversation_id: str) -> bytes:
        """The send-app-message body for ``conversation_id``, encoded exactly as it is
        sent: what Tavus's size limit counts."""
        envelope = {
            "message_type": "conversation",
            "event_type": self.event_type,
            "conversation_id": conversation_id,
            "properties": self.properties,
        }
        return json.dumps(
            envelope, ensure_ascii=False, allow_nan=False, separators=(",", ":")
        ).encode("utf-8")


# --- responses ---------------------------------------------------------------------


def _lenient_timestamp(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    text = value.strip()
    # Docs show "<string>" as a placeholder; other garbage is treated the same way.
    if not text or text.startswith("<"):
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    # Tavus omits the zone on some fields; everything it sends is UTC.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


Timestamp = Annotated[datetime | None, BeforeValidator(_lenient_timestamp)]


def _none_as_empty(value: object) -> object:
    return {} if value is None else value


def _unwrap_data(value: Any, id_keys: tuple[str, ...]) -> Any:
    # GET /v2/pals/{id} is documented as {"data": [pal]} but observed flat.
    if (
        isinstance(value, dict)
        and not any(key in value for key in id_keys)
        and isinstance(value.get("data"), list)
        and value["data"]
        and isinstance(value["data"][0], dict)
    ):
        return value["data"][0]
    return value


class _Reply(BaseModel):
    model_config = ConfigDict(extra="ignore", validate_by_name=True, validate_by_alias=True)


class Pal(_Reply):
    """A PAL as Tavus reports it (flat or wrapped in ``data``; persona names accepted)."""

    pal_id: str = Field(validation_alias=AliasChoices("pal_id", "persona_id"))
    pal_name: str | None = Field(
        default=None, validation_alias=AliasChoices("pal_name", "persona_name")
    )
    default_face_id: str | None = Field(
        default=None, validation_alias=AliasChoices("default_face_id", "default_replica_id")
    )
    pal_type: str | None = Field(
        default=None, validation_alias=AliasChoices("pal_type", "persona_type")
    )
    system_prompt: str | None = None
    context: str | None = None
    pipeline_mode: str | None = None
    conferencing_email: str | None = None
    document_ids: list[str] | None = None
    document_tags: list[str] | None = None
    objectives_id: str | None = None
    guardrails_id: str | None = None
    # Kept raw: Tavus may echo third-party keys back inside layers.
    layers: JsonObject | None = Field(default=None, repr=False)
    created_at: Timestamp = None
    updated_at: Timestamp = None

    @model_validator(mode="before")
    @classmethod
    def _unwrap(cls, value: Any) -> Any:
        return _unwrap_data(value, ("pal_id", "persona_id"))


class ConversationStatus(StrEnum):
    """Statuses Tavus is known to report; ``Conversation.status`` stays an open string."""

    ACTIVE = "active"
    ENDED = "ended"
    ERROR = "error"


class ConversationEvent(_Reply):
    event_type: str
    timestamp: Timestamp = None
    message_type: str | None = None
    properties: Annotated[JsonObject, BeforeValidator(_none_as_empty)] = Field(default_factory=dict)


class Conversation(_Reply):
    """A conversation as Tavus reports it; ``events`` only on a verbose GET."""

    conversation_id: str
    conversation_name: str | None = None
    conversation_url: str | None = None
    status: str | None = None
    callback_url: str | None = Field(default=None, repr=False)
    pal_id: str | None = Field(default=None, validation_alias=AliasChoices("pal_id", "persona_id"))
    face_id: str | None = Field(
        default=None, validation_alias=AliasChoices("face_id", "replica_id")
    )
    meeting_token: str | None = Field(default=None, repr=False)
    created_at: Timestamp = None
    updated_at: Timestamp = None
    events: list[ConversationEvent] | None = None
    # Events of a verbose read that could not be read as events (left out of ``events``).
    skipped_events: int = 0

    @property
    def is_active(self) -> bool:
        return self.status == ConversationStatus.ACTIVE

    @property
    def is_terminal(self) -> bool:
        """True once Tavus reports the conversation ended or failed."""
        return self.status in (ConversationStatus.ENDED, ConversationStatus.ERROR)

    @model_validator(mode="before")
    @classmethod
    def _unwrap(cls, value: Any) -> Any:
        value = _unwrap_data(value, ("conversation_id",))
        if isinstance(value, dict) and value.get("events") is not None:
            events, skipped = _readable_events(value["events"])
            value = {**value, "events": events, "skipped_events": skipped}
        return value


def _readable_events(raw: object) -> tuple[list[ConversationEvent], int]:
    """The events that read as events, and how many did not. Integrators disagree on
    the shape of verbose events; one odd event must not hide the others (a shutdown
    among them) nor make the whole conversation unreadable."""
    if not isinstance(raw, list):
        return [], 1
    events: list[ConversationEvent] = []
    for item in raw:
        try:
            events.append(ConversationEvent.model_validate(item))
        except ValidationError:
            continue
    return events, len(raw) - len(events)


ItemT = TypeVar("ItemT", Pal, Conversation)


class Page(BaseModel, Generic[ItemT]):
    """One page of a Tavus list endpoint."""

    data: list[ItemT]
    total_count: int | None = None
    page: int
    limit: int
    # Rows of this page that could not be read as an ItemT (left out of ``data``).
    skipped: int = 0
