"""Tavus → Palisade: the callback URL of each conversation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from app.api.deps import RuntimeDep
from app.api.routing import StrictJsonRoute
from app.domain.sessions.service import parse_session_id
from app.domain.sessions.webhooks import apply_webhook, parse_event
from app.errors import Unauthorized
from app.observability.logging import bind_session, get_logger

router = APIRouter(route_class=StrictJsonRoute, prefix="/webhooks", tags=["webhooks"])
logger = get_logger(__name__)


# What parse_event accepts: Tavus's envelope, documented here because the route reads the
# raw body itself (its bytes are the deduplication key).
_EVENT_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["event_type", "conversation_id"],
                "properties": {
                    "event_type": {"type": "string", "minLength": 1},
                    "conversation_id": {"type": "string", "minLength": 1},
                    "message_type": {"type": "string"},
                    "timestamp": {"type": "string"},
                    "webhook_url": {"type": "string"},
                    "properties": {"type": "object"},
                },
            }
        }
    },
}


class InvalidWebhookToken(Unauthorized):
    code = "invalid_webhook_token"
    title = "Missing or invalid webhook token"


@router.post(
    "/tavus/{session_id}",
    operation_id="receiveTavusWebhook",
    responses={
        400: {
            "description": "Not JSON Palisade accepts (`malformed_json`), or not a Tavus event "
            "(`invalid_webhook`)"
        },
        401: {"description": "Missing or wrong token (`invalid_webhook_token`)"},
        404: {"description": "Unknown session, or another conversation (`conversation_mismatch`)"},
    },
    openapi_extra={"requestBody": _EVENT_BODY},
)
async def tavus_webhook(
    session_id: str,
    request: Request,
    runtime: RuntimeDep,
    token: Annotated[str | None, Query(max_length=128)] = None,
) -> dict[str, str]:
    """Receive one Tavus event for a session: stored raw, deduplicated, applied."""
    # The token is checked before anything touches the database.
    if token is None or not runtime.webhook_tokens.verify(session_id, token):
        raise InvalidWebhookToken()
    parsed_id = parse_session_id(session_id)
    bind_session(parsed_id)
    raw = await request.body()
    event = parse_event(raw, token=token)
    async with runtime.sessionmaker.begin() as db:
        result = await apply_webhook(db, parsed_id, raw, event)
    logger.info("tavus webhook", event_type=event["event_type"][:64], duplicate=result.duplicate)
    if result.check_due and runtime.reconciler is not None:
        runtime.reconciler.spawn_check(parsed_id)
    return {"status": "duplicate" if result.duplicate else "ok"}
