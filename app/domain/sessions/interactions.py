"""Interactions during the call: Tavus's interactions protocol, relayed to a live
conversation through the Tavus client's ``send_app_message``.

A request names one of the interactions Tavus documents, with exactly the properties
Tavus documents for it; Palisade adds the envelope (``message_type``, ``conversation_id``).
Before anything is sent, the session must be active, the interaction as Tavus would
receive it must fit Tavus's 64 KiB, and the conversation must have room in Palisade's
own allowance under Tavus's rate limit. What Tavus answered decides the reply, and every
interaction sent is logged with its size and outcome, not its words.
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal, Self

from cachetools import TTLCache
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.repositories.sessions import SessionRepository
from app.domain.accounts import TavusAccounts
from app.domain.sessions.errors import (
    InteractionOutcomeUnknown,
    InteractionRateLimited,
    InteractionTooLarge,
    SessionNotActive,
    SessionNotFound,
)
from app.domain.sessions.states import State, status_of
from app.errors import AppError, UpstreamError
from app.observability import metrics
from app.tavus.errors import (
    TavusConversationEnded,
    TavusError,
    TavusInvalidRequest,
    TavusNotFound,
    TavusPayloadTooLarge,
    TavusRateLimited,
    TavusUnauthorized,
)
from app.tavus.models import APP_MESSAGE_MAX_BYTES, Interaction
from app.tavus.operations import OperationKind
from app.tavus.retry import interaction_kind

logger = logging.getLogger(__name__)

#: Tavus's documented window for its limit of requests to one conversation.
TAVUS_RATE_WINDOW_SECONDS: Final = 60.0
# Requests sent a little apart may reach Tavus closer together; Palisade's allowance
# is spread over a slightly longer window than Tavus's so that they still fit in it.
_WINDOW_MARGIN_SECONDS: Final = 1.0
# One bucket per conversation that sent an interaction lately; beyond this many, the
# least recent is forgotten (a fresh bucket is full, which Tavus's 429 still covers).
_MAX_TRACKED_CONVERSATIONS: Final = 100_000
# A token that is there by the clock must not be missed by a float's last bit.
_ROUNDING: Final = 1e-9

Level = Literal["low", "medium", "high"]


# --- what a caller may send (Tavus's documented interactions) --------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ContextAppend(_Strict):
    #: Added to the conversation's context, on a line of its own.
    context: Annotated[str, Field(min_length=1)]
    #: Newer Tavus docs: the state of a background job the context reports on.
    job_status: str | None = None


class ContextOverwrite(_Strict):
    #: Replaces the conversation's context (``""`` clears it).
    context: str


class Respond(_Strict):
    #: Handled as if the user had said it: the PAL answers through its LLM.
    text: Annotated[str, Field(min_length=1)]


class Echo(_Strict):
    """Words the PAL says as given, without its LLM."""

    modality: Literal["text", "audio"]
    text: str | None = None
    #: Base64 audio, for ``modality: audio``.
    audio: str | None = None
    sample_rate: Annotated[int, Field(ge=8000, le=48000)] | None = None
    inference_id: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    done: bool | None = None

    @field_validator("audio")
    @classmethod
    def _base64(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise PydanticCustomError(
                    "invalid_format", "audio must be base64-encoded"
                ) from None
        return value

    @model_validator(mode="after")
    def _what_the_modality_says(self) -> Self:
        if getattr(self, self.modality) is None:
            raise PydanticCustomError(
                "missing_field",
                "modality {modality} needs properties.{modality}",
                {"modality": self.modality},
            )
        return self


class NoProperties(_Strict):
    pass


class Sensitivity(_Strict):
    """How readily the PAL treats a pause as the end of the user's turn, and how readily
    the user's speech interrupts it. At least one."""

    participant_pause_sensitivity: Level | None = None
    participant_interrupt_sensitivity: Level | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> Self:
        if self.participant_pause_sensitivity is None and (
            self.participant_interrupt_sensitivity is None
        ):
            raise PydanticCustomError(
                "missing_field",
                "send participant_pause_sensitivity, participant_interrupt_sensitivity or both",
            )
        return self


class AppendContext(_Strict):
    """Add to the conversation's context (not idempotent: never resent after a 504)."""

    event_type: Literal["conversation.append_llm_context"]
    properties: ContextAppend


class OverwriteContext(_Strict):
    """Replace the conversation's context (idempotent: may be resent)."""

    event_type: Literal["conversation.overwrite_llm_context"]
    properties: ContextOverwrite


class RespondTo(_Strict):
    """Text the PAL handles as the user's speech, e.g. a tool's result."""

    event_type: Literal["conversation.respond"]
    properties: Respond


class EchoWords(_Strict):
    """Words the PAL says as given."""

    event_type: Literal["conversation.echo"]
    properties: Echo


class Interrupt(_Strict):
    """Stop the PAL speaking. No properties."""

    event_type: Literal["conversation.interrupt"]
    properties: NoProperties = Field(default_factory=NoProperties)


class SetSensitivity(_Strict):
    """Change the PAL's turn-taking sensitivity (idempotent: may be resent)."""

    event_type: Literal["conversation.sensitivity"]
    properties: Sensitivity


InteractionCreate = Annotated[
    AppendContext | OverwriteContext | RespondTo | EchoWords | Interrupt | SetSensitivity,
    Field(discriminator="event_type"),
]
"""Body of ``POST /sessions/{id}/interactions``."""


class InteractionAccepted(BaseModel):
    """Tavus accepted the interaction; the PAL acts on it when it can (an interaction
    sent before the face joined waits for it)."""

    session_id: uuid.UUID
    conversation_id: str
    event_type: str
    #: The size of the interaction as Tavus received it.
    size_bytes: int
    accepted_at: datetime


# --- Palisade's own allowance per conversation -----------------------------------------


class ConversationAllowance:
    """A token bucket per conversation, in this process: Palisade does not send what
    Tavus would refuse with its 429.

    With ``limit`` requests per window, ``burst`` interactions may go at once and the rest
    refill evenly; ``burst`` plus a window's refill is ``limit``, so no window of Tavus's
    ever sees more than ``limit`` from this process. A small burst keeps the steady rate
    close to the limit (a tenth: about 106 a minute of Tavus's 120). ``limit`` 0 turns it
    off.
    """

    def __init__(self, limit: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.burst = max(1, limit // 10)
        window = TAVUS_RATE_WINDOW_SECONDS + _WINDOW_MARGIN_SECONDS
        self.per_second = max(limit - self.burst, 1) / window
        self._clock = clock
        # An idle bucket is full again well within a window, so forgetting one that
        # was left alone that long changes nothing.
        self._buckets: TTLCache[str, tuple[float, float]] = TTLCache(
            maxsize=_MAX_TRACKED_CONVERSATIONS, ttl=window
        )

    def take(self, conversation_id: str) -> float:
        """Take one token: 0 when taken, else the seconds until one is there."""
        if self.limit == 0:
            return 0.0
        now = self._clock()
        tokens, at = self._buckets.get(conversation_id, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.per_second)
        if tokens < 1.0 - _ROUNDING:
            self._buckets[conversation_id] = (tokens, now)
            return (1.0 - tokens) / self.per_second
        self._buckets[conversation_id] = (max(tokens - 1.0, 0.0), now)
        return 0.0


def retry_after(seconds: float) -> str:
    """A ``Retry-After`` for a wait of ``seconds``, with up to a second of jitter so that
    callers refused together do not come back together."""
    return str(max(1, math.ceil(seconds + random.uniform(0.0, 1.0))))


# --- relaying ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Outcome:
    """What became of one interaction sent to Tavus, as logged and counted."""

    name: str
    tavus_status: int | None
    error: AppError | None = None


class InteractionRelay:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        accounts: TavusAccounts,
        allowance: ConversationAllowance,
        *,
        autocommit: async_sessionmaker[AsyncSession],
    ) -> None:
        self.sessionmaker = sessionmaker
        # The session is read with one statement, no BEGIN/COMMIT around it.
        self.autocommit = autocommit
        self.accounts = accounts
        self.allowance = allowance

    async def relay(
        self, tenant_id: str, session_id: uuid.UUID, request: InteractionCreate
    ) -> InteractionAccepted:
        """Send ``request`` to the session's live conversation. Raises the error its
        outcome calls for (``app.domain.sessions.errors``; 502 ``upstream_error`` when
        nothing was delivered)."""
        async with self.autocommit() as db:
            row = await SessionRepository(db).get_for_tenant(tenant_id, session_id)
        if row is None:
            raise SessionNotFound(f"session {session_id} does not exist")
        if row.state != State.ACTIVE or row.conversation_id is None:
            status = status_of(row.state)
            raise SessionNotActive(
                f"interactions go to active sessions; this one is {status}", status_now=status
            )
        event_type = request.event_type
        interaction = Interaction(
            event_type=event_type,
            properties=request.properties.model_dump(mode="json", exclude_none=True),
        )
        size = len(interaction.app_message(row.conversation_id))
        if size > APP_MESSAGE_MAX_BYTES:
            raise InteractionTooLarge(
                f"the interaction is {size} bytes as Tavus would receive it; Tavus takes "
                f"at most {APP_MESSAGE_MAX_BYTES}",
                limit=APP_MESSAGE_MAX_BYTES,
                size=size,
            )
        wait = self.allowance.take(row.conversation_id)
        if wait > 0:
            metrics.interaction(event_type, "throttled")
            raise InteractionRateLimited(
                "this conversation is at Tavus's rate limit; retry later",
                headers={"Retry-After": retry_after(wait)},
            )
        tavus = await self.accounts.for_tenant(tenant_id)
        try:
            await tavus.send_app_message(row.conversation_id, interaction)
        except TavusError as error:
            outcome = _failed(error, event_type)
        else:
            outcome = _Outcome("accepted", 200)
        metrics.interaction(event_type, outcome.name)
        await self._record(session_id, event_type, size, outcome)
        if outcome.error is not None:
            raise outcome.error
        return InteractionAccepted(
            session_id=session_id,
            conversation_id=row.conversation_id,
            event_type=event_type,
            size_bytes=size,
            accepted_at=datetime.now(UTC),
        )

    async def _record(
        self, session_id: uuid.UUID, event_type: str, size: int, outcome: _Outcome
    ) -> None:
        # The words may be personal (a user's details in a context, a reply to say):
        # the log keeps what an operator needs to follow the call, not them.
        payload: dict[str, Any] = {
            "size_bytes": size,
            "outcome": outcome.name,
            "tavus_status": outcome.tavus_status,
        }
        async with self.sessionmaker.begin() as db:
            repo = SessionRepository(db)
            await repo.add_event(session_id, kind="interaction", type=event_type, payload=payload)
            if outcome.name == "conversation_ended":
                # Tavus says the conversation is over: the reconciler confirms it now
                # rather than at its next poll.
                await repo.make_due(session_id, datetime.now(UTC))


def _failed(error: TavusError, event_type: str) -> _Outcome:
    status = error.status
    if isinstance(error, TavusConversationEnded | TavusNotFound):
        return _Outcome(
            "conversation_ended",
            status,
            SessionNotActive(
                "Tavus reports this session's conversation is over; the session is ending",
                status_now="active",
            ),
        )
    if isinstance(error, TavusPayloadTooLarge):
        return _Outcome(
            "refused",
            status,
            InteractionTooLarge(
                "Tavus refused the interaction as too large",
                limit=APP_MESSAGE_MAX_BYTES,
            ),
        )
    if isinstance(error, TavusRateLimited):
        wait = error.retry_after if error.retry_after is not None else TAVUS_RATE_WINDOW_SECONDS / 4
        return _Outcome(
            "rate_limited",
            status,
            InteractionRateLimited(
                "Tavus is rate-limiting this conversation; retry later",
                headers={"Retry-After": retry_after(wait)},
            ),
        )
    if error.may_have_taken_effect:
        resend_safe = interaction_kind(event_type) is OperationKind.IDEMPOTENT_WRITE
        advice = (
            "sending it again is safe for this event type"
            if resend_safe
            else "sending it again may deliver it twice: decide from what the call shows"
        )
        return _Outcome(
            "outcome_unknown",
            status,
            InteractionOutcomeUnknown(
                f"Tavus may or may not have delivered the interaction ({error.message}); " + advice,
                resend_safe=resend_safe,
                tavus_status=status,
            ),
        )
    logger.warning("relaying an interaction failed: %s", error)
    if isinstance(error, TavusInvalidRequest | TavusUnauthorized):
        return _Outcome(
            "refused",
            status,
            UpstreamError(
                f"Tavus refused the interaction ({error.message})",
                delivered=False,
                tavus_status=status,
            ),
        )
    return _Outcome(
        "not_delivered",
        status,
        UpstreamError(
            f"Tavus did not deliver the interaction ({error.message}); it is safe to resend",
            delivered=False,
            tavus_status=status,
        ),
    )
