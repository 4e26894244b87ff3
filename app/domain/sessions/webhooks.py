"""Tavus's webhooks for a session: stored raw and deduplicated, applied idempotently.

Tavus documents no retries, ordering or signature. Each callback URL carries a token
derived from the session id, and the payload must name the session's conversation.
Duplicates are recognised by a hash of the raw body; any order is safe because every
event only ever moves a session forward (a transcript after the end changes nothing, a
shutdown before the join ends the session and the join is then only recorded). A
shutdown is only a claim until Tavus confirms it (``apply_event``); an event that arrives
before the session knows its conversation id is applied once it does. The artifacts
Tavus sends after the call are applied whenever they come, after the end included
(``apply_artifact``).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Session
from app.db.repositories.sessions import SessionRepository
from app.domain import strict_json
from app.domain.sessions.artifacts import ARTIFACT_OF_EVENT, Artifact, is_newer, summary_of
from app.domain.sessions.lifecycle import billing, normalise_shutdown_reason, within
from app.domain.sessions.states import State
from app.domain.storable_text import map_text, replace_unstorable_text
from app.errors import BadRequest, MalformedBody, NotFound
from app.observability import metrics

#: Webhook timestamps before this are not times of a Palisade session: the event is kept
#: without a time. (PostgreSQL and the driver refuse some of them outright.)
EARLIEST_EVENT_TIME: Final = datetime(2020, 1, 1, tzinfo=UTC)
#: How far ahead of Palisade's clock a webhook timestamp may be and still be used.
EVENT_CLOCK_SKEW: Final = timedelta(days=1)
#: The query parameter of a callback URL that carries the session's token.
_TOKEN_NAME: Final = "token"
CALLBACK_TOKEN_PARAMETER: Final = f"{_TOKEN_NAME}="
REDACTED: Final = "[redacted]"
# A URL's query: from its "?" to the fragment, or to whatever cannot be part of a URL.
_QUERY: Final = re.compile(r"\?([^#\s\"'<>\\]*)")
JOINED_EVENTS = frozenset({"system.replica_joined", "system.pal_joined"})
SHUTDOWN_EVENT = "system.shutdown"


class InvalidWebhook(BadRequest):
    code = "invalid_webhook"
    title = "Webhook body is not a Tavus event"


class WebhookConversationMismatch(NotFound):
    code = "conversation_mismatch"
    title = "The event is not about this session's conversation"


@dataclass(frozen=True)
class WebhookResult:
    duplicate: bool
    # The session must be checked on Tavus now (a shutdown to confirm), not at a tick.
    check_due: bool
    # The artifact the event gave the session (a transcript, ...), if it did.
    artifact: Artifact | None = None


@dataclass(frozen=True)
class Applied:
    """What one event did to its session."""

    check_due: bool = False
    artifact: Artifact | None = None


def parse_event(raw: bytes, *, token: str) -> dict[str, Any]:
    """The event in ``raw``, ready to store: U+0000 and unpaired surrogates replaced (jsonb
    cannot hold them), and the session's webhook ``token`` gone from it (see
    :func:`without_token`)."""
    try:
        event = strict_json.loads(raw)
    except strict_json.StrictJsonError as exc:
        raise MalformedBody(exc.msg) from None
    if not isinstance(event, dict):
        raise InvalidWebhook("body is not a JSON object")
    if not isinstance(event.get("event_type"), str) or not event["event_type"]:
        raise InvalidWebhook("event_type is missing")
    conversation_id = event.get("conversation_id")
    if not isinstance(conversation_id, str) or not conversation_id:
        raise InvalidWebhook("conversation_id is missing")
    if "properties" in event and not isinstance(event["properties"], dict):
        raise InvalidWebhook("properties must be an object")
    # Kept rather than refused: Tavus does not resend, and jsonb cannot hold every string.
    sanitized: dict[str, Any] = map_text(
        event, lambda text: without_token(replace_unstorable_text(text), token)
    )
    return sanitized


def without_token(text: str, token: str) -> str:
    """``text`` with every ``token`` query parameter removed from the URLs in it (Tavus
    echoes the callback URL as ``webhook_url``), and the session's ``token`` itself
    redacted wherever else it appears: a webhook token is never stored."""
    if CALLBACK_TOKEN_PARAMETER in text:
        text = _QUERY.sub(_drop_token_parameters, text)
    if token in text:
        text = text.replace(token, REDACTED)
    return text


def _drop_token_parameters(query: re.Match[str]) -> str:
    parameters = query.group(1).split("&")
    kept = [p for p in parameters if p.partition("=")[0] != _TOKEN_NAME]
    if len(kept) == len(parameters):
        return query.group(0)
    return f"?{'&'.join(kept)}" if kept else ""


def event_time(event: dict[str, Any], *, now: datetime | None = None) -> datetime | None:
    """When the event happened by Tavus's clock, in UTC; None when its ``timestamp`` is
    missing or not a time Palisade can use (see :data:`EARLIEST_EVENT_TIME` and
    :data:`EVENT_CLOCK_SKEW`): the event is still stored, raw, and the time it was
    received stands in."""
    raw = event.get("timestamp")
    if not isinstance(raw, str):
        return None
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        # Near year 1 or 9999 an offset can leave no UTC equivalent at all.
        at = parsed.astimezone(UTC)
    except OverflowError:
        return None
    latest = (now or datetime.now(UTC)) + EVENT_CLOCK_SKEW
    return at if EARLIEST_EVENT_TIME <= at <= latest else None


async def apply_webhook(
    db: AsyncSession, session_id: uuid.UUID, raw: bytes, event: dict[str, Any]
) -> WebhookResult:
    repo = SessionRepository(db)
    row = await repo.get_for_update(session_id)
    if row is None:
        raise NotFound("no such session")
    if row.conversation_id is not None and event["conversation_id"] != row.conversation_id:
        raise WebhookConversationMismatch("conversation_id does not match the session")
    event_type: str = event["event_type"]
    occurred_at = event_time(event)
    metrics.webhook_received(event_type, occurred_at)
    event_id = await repo.add_event(
        row.id,
        kind="webhook",
        type=event_type[:64],
        payload=event,
        dedupe_key=hashlib.sha256(raw).hexdigest(),
        occurred_at=occurred_at,
    )
    if event_id is None:
        return WebhookResult(duplicate=True, check_due=False)
    if row.conversation_id is None:
        # Tavus can be faster than our own write of the conversation id: the event is
        # kept, and whoever writes the id applies it (``apply_stored_events``).
        row.early_events = True
        return WebhookResult(duplicate=False, check_due=False)
    applied = apply_event(row, event, datetime.now(UTC), event_id=event_id)
    return WebhookResult(duplicate=False, check_due=applied.check_due, artifact=applied.artifact)


def apply_event(row: Session, event: dict[str, Any], now: datetime, *, event_id: int) -> Applied:
    """Apply one Tavus event of the session's own conversation (stored as ``event_id``):
    whether the session is now due for a check on Tavus, and the artifact it gave.

    A shutdown is a claim, not a fact: whoever holds the callback URL can send one, and
    ending on its word would free the tenant's slot and delete the PAL of a conversation
    Tavus may still be running. It is recorded and the session made due at once; the
    reconciler asks Tavus and ends the session only if Tavus confirms.
    """
    event_type = event["event_type"]
    if event_type in JOINED_EVENTS and row.joined_at is None:
        row.joined_at = within(event_time(event) or now, row.created_at, now)
        metrics.face_joined(row)
    elif event_type == SHUTDOWN_EVENT and row.state in (State.ACTIVE, State.ENDING):
        row.shutdown_claimed_at = row.shutdown_claimed_at or now
        # Any claim the reconciler holds is superseded: its result is dropped.
        row.claimed_by = None
        row.next_check_at = now
        return Applied(check_due=True)
    elif event_type == SHUTDOWN_EVENT and row.state == State.ENDED:
        _bill_late(row, event)
    elif event_type in ARTIFACT_OF_EVENT:
        return Applied(artifact=apply_artifact(row, event, now, event_id=event_id))
    return Applied()


def _bill_late(row: Session, event: dict[str, Any]) -> None:
    """A shutdown that arrives after Palisade ended the session without Tavus's time of
    the end (the conversation was gone when it looked) makes its cost known."""
    properties = event.get("properties") or {}
    reason = normalise_shutdown_reason(properties.get("shutdown_reason"))
    cost = billing(row, reason=reason, ended_at=event_time(event))
    if cost:
        for column, value in cost.items():
            setattr(row, column, value)
        metrics.session_billed(row)


def apply_artifact(
    row: Session, event: dict[str, Any], now: datetime, *, event_id: int
) -> Artifact | None:
    """Apply an artifact Tavus sent after the call (the one place this happens): the
    session keeps a summary of the latest of each kind. In any state: a transcript
    comes after the end, maybe late, maybe twice. The artifact when the session now has
    a new one of its kind; None when the event was older than the one it has."""
    artifact = ARTIFACT_OF_EVENT[event["event_type"]]
    at = event_time(event) or now
    summary = summary_of(artifact, event, event_id=event_id, at=at, received=now)
    kept = dict(row.artifacts or {})
    if not is_newer(summary, kept.get(artifact)):
        return None
    kept[artifact] = summary
    # A new dict: the ORM sees the column change (it does not track edits inside one).
    row.artifacts = kept
    return artifact


async def apply_stored_events(db: AsyncSession, session_id: uuid.UUID) -> bool:
    """Apply, in arrival order, the webhooks stored before the session's conversation id
    was; True when the session is now due for a check on Tavus. Events about another
    conversation stay in the log, unapplied."""
    repo = SessionRepository(db)
    row = await repo.get_for_update(session_id)
    if row is None or not row.early_events:
        return False
    row.early_events = False
    if row.conversation_id is None:
        return False
    now = datetime.now(UTC)
    due = False
    for stored in await repo.webhook_events(session_id):
        if stored.payload.get("conversation_id") == row.conversation_id:
            due = apply_event(row, stored.payload, now, event_id=stored.id).check_due or due
    return due
