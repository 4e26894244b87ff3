"""POST /v2/conversations/{id}/send-app-message: Tavus's server-side path for the
interactions protocol (tavus-api.md §5).

The interactions the PAL acts on go to it in order; any other ``event_type`` is
relayed into the room. Interactions sent before the face joined wait for it, for
up to an hour; a 200 means accepted, not acted on.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from tavus_simulator.config import SimulatorConfig
from tavus_simulator.errors import TavusError
from tavus_simulator.records import AppMessage, ConversationRecord

APPEND_CONTEXT = "conversation.append_llm_context"
OVERWRITE_CONTEXT = "conversation.overwrite_llm_context"
RESPOND = "conversation.respond"
ECHO = "conversation.echo"
INTERRUPT = "conversation.interrupt"
SENSITIVITY = "conversation.sensitivity"
TOOL_RESULT = "conversation.tool_result"
SET_EMOTION = "conversation.set_emotion"
# The event types the Send App Message page says go to the PAL.
PAL_INTERACTIONS = frozenset(
    {
        APPEND_CONTEXT,
        OVERWRITE_CONTEXT,
        RESPOND,
        ECHO,
        INTERRUPT,
        SENSITIVITY,
        TOOL_RESULT,
        SET_EMOTION,
    }
)
SENSITIVITY_KEYS = ("participant_pause_sensitivity", "participant_interrupt_sensitivity")
SENSITIVITY_LEVELS = ("low", "medium", "high")
QUEUED_FOR_AT_MOST = timedelta(hours=1)
# Appended context goes on a line of its own.
CONTEXT_SEPARATOR = "\n"


def app_message_error(status: int, text: str) -> TavusError:
    return TavusError(status, {"error": text})


def _invalid(text: str) -> TavusError:
    return app_message_error(400, text)


def parse_interaction(raw: bytes, conversation_id: str) -> dict[str, Any]:
    """The request body as an interaction, or a 400 ``{"error": …}`` saying why not."""
    try:
        body = json.loads(raw) if raw.strip() else None
    except ValueError:
        raise _invalid("Invalid JSON body") from None
    if not isinstance(body, dict):
        raise _invalid("The body must be a JSON object (an interaction)")
    event_type = body.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        raise _invalid("event_type is required")
    if body.get("conversation_id", conversation_id) != conversation_id:
        raise _invalid("conversation_id in the body does not match the path")
    # Anything else is the room's business: relayed as it is.
    if event_type in PAL_INTERACTIONS:
        if body.get("message_type") != "conversation":
            raise _invalid(f'message_type must be "conversation" for {event_type}')
        properties = body.get("properties", {})
        if not isinstance(properties, dict):
            raise _invalid("properties must be an object")
        _check_properties(event_type, properties)
    return body


def _check_properties(event_type: str, properties: dict[str, Any]) -> None:
    if event_type in (APPEND_CONTEXT, OVERWRITE_CONTEXT):
        _require_str(properties, "context", event_type)
    elif event_type == RESPOND:
        _require_str(properties, "text", event_type)
    elif event_type == ECHO:
        modality = properties.get("modality")
        if modality not in ("text", "audio"):
            raise _invalid("properties.modality must be one of: text, audio")
        _require_str(properties, modality, f"{event_type} with modality {modality}")
    elif event_type == SENSITIVITY:
        given = [key for key in SENSITIVITY_KEYS if key in properties]
        if not given:
            raise _invalid(f"{event_type} needs {' or '.join(SENSITIVITY_KEYS)}")
        for key in given:
            if properties[key] not in SENSITIVITY_LEVELS:
                raise _invalid(f"properties.{key} must be one of: {', '.join(SENSITIVITY_LEVELS)}")
    elif event_type == TOOL_RESULT:
        _require_str(properties, "tool_call_id", event_type)
        if not isinstance(properties.get("output"), str | dict):
            raise _invalid(
                f"properties.output (a string or an object) is required for {event_type}"
            )
        if properties.get("status", "success") not in ("success", "error"):
            raise _invalid("properties.status must be one of: success, error")


def _require_str(properties: dict[str, Any], key: str, what: str) -> None:
    if not isinstance(properties.get(key), str):
        raise _invalid(f"properties.{key} (a string) is required for {what}")


def take_rate_slot(conv: ConversationRecord, now: float, config: SimulatorConfig) -> bool:
    """Count one request in the conversation's fixed window; False once it is full."""
    limit = config.app_message_rate_limit
    if limit is None:
        return True
    start = conv.app_message_window_start
    if start is None or now - start >= config.app_message_rate_window_s:
        conv.app_message_window_start = now
        conv.app_message_window_count = 0
    if conv.app_message_window_count >= limit:
        return False
    conv.app_message_window_count += 1
    return True


def accept(conv: ConversationRecord, body: dict[str, Any], now: datetime) -> AppMessage:
    event_type: str = body["event_type"]
    to_pal = event_type in PAL_INTERACTIONS
    message = AppMessage(
        seq=len(conv.app_messages) + 1,
        accepted_at=now,
        event_type=event_type,
        message=body,
        status="queued" if to_pal else "relayed",
        handled_at=None if to_pal else now,
    )
    conv.app_messages.append(message)
    if to_pal and conv.face_joined_at is not None:
        _deliver(conv, message, now)
    return message


def deliver_queued(conv: ConversationRecord, now: datetime) -> None:
    """The face joined: hand it what waited, in order; what waited too long is lost."""
    for message in conv.app_messages:
        if message.status != "queued":
            continue
        if now - message.accepted_at > QUEUED_FOR_AT_MOST:
            message.status = "dropped"
            message.handled_at = now
        else:
            _deliver(conv, message, now)


def drop_queued(conv: ConversationRecord, now: datetime) -> None:
    for message in conv.app_messages:
        if message.status == "queued":
            message.status = "dropped"
            message.handled_at = now


def _deliver(conv: ConversationRecord, message: AppMessage, now: datetime) -> None:
    message.status = "delivered"
    message.handled_at = now
    if message.event_type == APPEND_CONTEXT:
        context: str = message.message["properties"]["context"]
        if conv.conversational_context:
            context = conv.conversational_context + CONTEXT_SEPARATOR + context
        conv.conversational_context = context
    elif message.event_type == OVERWRITE_CONTEXT:
        conv.conversational_context = message.message["properties"]["context"]
