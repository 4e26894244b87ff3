"""Tenant API: start, read, list and end sessions. Thin: parse, call the domain, return."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, status
from fastapi.responses import Response

from app.api.auth import SessionEnder, SessionInteractor, SessionReader, SessionStarter
from app.api.deps import DbSession, RuntimeDep
from app.api.problems import respond
from app.api.routing import StrictJsonRoute
from app.domain.sessions import service as session_service
from app.domain.sessions.artifacts import Transcript
from app.domain.sessions.errors import InvalidIdempotencyKey
from app.domain.sessions.interactions import InteractionAccepted, InteractionCreate
from app.domain.sessions.schemas import SessionCreate
from app.domain.sessions.start import Failed, Replayed, Started
from app.domain.sessions.states import Status
from app.domain.sessions.views import SessionEventList, SessionPage, SessionPublic
from app.domain.storable_text import StorableStr
from app.observability.logging import bind_session

REPLAYED = "Idempotent-Replayed"

router = APIRouter(route_class=StrictJsonRoute, prefix="/sessions", tags=["sessions"])

_IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
_IDEMPOTENCY_KEY = re.compile(_IDEMPOTENCY_KEY_PATTERN)

_AUTH: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid API key"},
    403: {
        "description": "`insufficient_scope`: the key lacks the scope this operation needs "
        "(`required_scope` names it)"
    },
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such session for this tenant (`session_not_found`)"}
}
_BAD_CURSOR: dict[int | str, dict[str, Any]] = {
    400: {"description": "Not a `next_cursor` of a previous page (`invalid_cursor`)"}
}
# A session's log is a few dozen events; one page holds it whole.
DEFAULT_EVENTS_PER_PAGE = 100
MAX_EVENTS_PER_PAGE = 500
_START_ERRORS: dict[int | str, dict[str, Any]] = {
    **_AUTH,
    400: {
        "description": "Malformed JSON (`malformed_json`) or Idempotency-Key "
        "(`invalid_idempotency_key`)"
    },
    403: {
        "description": "`insufficient_scope`: the key lacks `sessions:start`; "
        "`profile_not_allowed`: the key may not start this profile"
    },
    409: {
        "description": "`idempotency_key_in_flight`: the first request is still running; "
        "`profile_changing`: the profile kept changing during admission"
    },
    413: {"description": "Body too large (`payload_too_large`)"},
    422: {
        "description": "Invalid request: `unknown_profile`, `override_not_allowed`, "
        "`overrides_not_allowed`, `property_cap_exceeded`, `idempotency_key_mismatch`, ..."
    },
    429: {
        "description": "`tenant_concurrency_limit`: the tenant is at its cap; "
        "`key_rate_limited`: the key has used up its `start_rate`. Both with Retry-After"
    },
    502: {"description": "`upstream_error`: Tavus failed; nothing was left behind"},
    503: {"description": "`upstream_capacity`: the Tavus account is at its concurrency limit"},
}


@router.post(
    "",
    operation_id="startSession",
    status_code=status.HTTP_201_CREATED,
    response_model=SessionPublic,
    responses=_START_ERRORS,
)
async def start_session(
    body: SessionCreate,
    tenant: SessionStarter,
    runtime: RuntimeDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Makes the request safe to retry: the first result is replayed.",
            # Documented, not enforced here: a bad key is `invalid_idempotency_key` (400),
            # not a generic validation error.
            json_schema_extra={"pattern": _IDEMPOTENCY_KEY_PATTERN},
        ),
    ] = None,
) -> Response:
    """Start a conversation for one of the tenant's users, reusing a persistent PAL or
    creating an ephemeral one per the profile's strategy. Needs `sessions:start`, and a
    profile the key may start."""
    if idempotency_key is not None and not _IDEMPOTENCY_KEY.match(idempotency_key):
        raise InvalidIdempotencyKey()
    outcome = await runtime.start_saga.start(
        tenant.tenant_id,
        body,
        idempotency_key,
        api_key_id=tenant.key_id,
        allowed_profiles=tenant.profiles,
    )
    match outcome:
        case Replayed(answer):
            # The first answer, byte for byte; only this header tells them apart.
            return respond(replace(answer, headers={**answer.headers, REPLAYED: "true"}))
        case Started(answer=answer) | Failed(answer=answer):
            return respond(answer)


@router.get("", operation_id="listSessions", responses={**_AUTH, **_BAD_CURSOR})
async def list_sessions(
    tenant: SessionReader,
    db: DbSession,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    external_ref: Annotated[StorableStr | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> SessionPage:
    """The tenant's sessions, newest first, a page at a time (pass `next_cursor` back).
    Needs `sessions:read`."""
    return await session_service.list_sessions(
        db,
        tenant.tenant_id,
        status=status_,
        external_ref=external_ref,
        limit=limit,
        cursor=cursor,
    )


@router.get("/{session_id}", operation_id="getSession", responses={**_AUTH, **_NOT_FOUND})
async def get_session(session_id: str, tenant: SessionReader, db: DbSession) -> SessionPublic:
    """One session. Needs `sessions:read`."""
    parsed = session_service.parse_session_id(session_id)
    bind_session(parsed)
    return await session_service.get_session(db, tenant.tenant_id, parsed)


@router.post(
    "/{session_id}/end",
    operation_id="endSession",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        **_AUTH,
        **_NOT_FOUND,
        409: {"description": "`session_not_endable`: still being created"},
    },
)
async def end_session(session_id: str, tenant: SessionEnder, runtime: RuntimeDep) -> SessionPublic:
    """End the conversation (idempotent). The session moves to `ending`; the shutdown
    webhook or the reconciler finishes it and deletes an ephemeral PAL. Needs
    `sessions:end`."""
    parsed = session_service.parse_session_id(session_id)
    bind_session(parsed)
    return await session_service.end_session(
        runtime.sessionmaker,
        runtime.connections,
        runtime.accounts,
        tenant.tenant_id,
        parsed,
        confirm_after=runtime.settings.end_recheck,
    )


@router.get(
    "/{session_id}/events",
    operation_id="listSessionEvents",
    responses={**_AUTH, **_NOT_FOUND, **_BAD_CURSOR},
)
async def list_events(
    session_id: str,
    tenant: SessionReader,
    db: DbSession,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENTS_PER_PAGE)] = DEFAULT_EVENTS_PER_PAGE,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> SessionEventList:
    """The session's append-only event log, oldest first, a page at a time (pass
    `next_cursor` back): transitions, Tavus outcomes, raw webhooks (without the webhook
    token). Needs `sessions:read`."""
    parsed = session_service.parse_session_id(session_id)
    bind_session(parsed)
    return await session_service.list_events(
        db, tenant.tenant_id, parsed, limit=limit, cursor=cursor
    )


@router.get(
    "/{session_id}/transcript",
    operation_id="getTranscript",
    responses={
        **_AUTH,
        404: {
            "description": "No such session for this tenant (`session_not_found`), or Tavus "
            "has not sent its transcript yet (`transcript_not_available`)"
        },
    },
)
async def get_transcript(session_id: str, tenant: SessionReader, db: DbSession) -> Transcript:
    """The conversation's transcript, as Tavus sent it after the call
    (`application.transcription_ready`): its turns in order, the system prompt left out,
    each with the fields Tavus gives it. `complete` once the session has ended and every
    entry could be read. Needs `sessions:read`."""
    parsed = session_service.parse_session_id(session_id)
    bind_session(parsed)
    return await session_service.get_transcript(db, tenant.tenant_id, parsed)


@router.post(
    "/{session_id}/interactions",
    operation_id="sendInteraction",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        **_AUTH,
        **_NOT_FOUND,
        409: {
            "description": "`session_not_active`: the session is not active (`status_now` "
            "says what it is), or Tavus reports its conversation over"
        },
        413: {
            "description": "`payload_too_large`: the interaction as Tavus would receive it "
            "is over Tavus's 65,536 bytes (`limit`, `size`); nothing was sent"
        },
        422: {
            "description": "`validation_error`: an event type or a property Tavus does not "
            "document for it (`errors` says where: `unknown_field`, `missing_field`, ...)"
        },
        429: {
            "description": "`interaction_rate_limited`: the conversation is at Tavus's limit "
            "of 120 interactions a minute, by Palisade's count or Tavus's; Retry-After"
        },
        502: {
            "description": "`upstream_error`: Tavus did not deliver the interaction "
            "(`delivered: false`); sending it again is safe"
        },
        504: {
            "description": "`interaction_outcome_unknown`: Tavus may or may not have "
            "delivered it (its 504, or no answer). `resend_safe` says whether sending it "
            "again is harmless (overwrite, sensitivity); for the others, decide from the call"
        },
    },
)
async def send_interaction(
    session_id: str,
    tenant: SessionInteractor,
    runtime: RuntimeDep,
    body: Annotated[InteractionCreate, Body()],
) -> InteractionAccepted:
    """Relay one of Tavus's interactions to the session's live conversation (Tavus's
    send-app-message): add to or replace the LLM's context, have the PAL respond to or
    say a text, interrupt it, or change its turn-taking sensitivity. Palisade adds
    `message_type` and `conversation_id`. 202 means Tavus accepted it; the PAL acts on it
    when it can (one sent before the face joins waits for it). Each interaction sent is
    logged in the session's events with its size and outcome, not its text. Needs
    `sessions:interact`."""
    parsed = session_service.parse_session_id(session_id)
    bind_session(parsed)
    return await runtime.interactions.relay(tenant.tenant_id, parsed, body)
