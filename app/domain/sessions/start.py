"""Starting a session: admission, then a saga with a recovery point before each Tavus call.

    admitted ──create PAL──▶ pal_created ──create conversation──▶ active
        │  (reuse skips the PAL)    │
        └──────────────▶ failed ◀───┘   (the ephemeral PAL is deleted: compensation)

Each step is its own short transaction; no database lock is held during a Tavus call.
Before a create is sent, the row already holds the name tag the object will carry, so a
crash or a timeout at any point is resolved by looking the object up by that tag — never
by creating blindly a second time. The process running the saga holds a lease on the
row (``claimed_by`` / ``next_check_at``); when it dies, the lease runs out and a retry
with the same ``Idempotency-Key`` (or the reconciler) resumes from the recovery point.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import crashpoints
from app.db.models import Session
from app.db.raw import RawConnections
from app.db.repositories.idempotency import IdempotencyRepository
from app.db.repositories.sessions import SessionRepository
from app.db.repositories.tenants import TenantRepository
from app.db.session_store import (
    AdmissionGate,
    AdmissionOutcome,
    EventRecord,
    KeyClaim,
    Lease,
    SessionStore,
)
from app.domain.accounts import TavusAccounts
from app.domain.leased_loop import Backoff
from app.domain.profiles.cache import ProfileCache, StartProfile, TenantGone
from app.domain.profiles.resolution import Resolution, resolve
from app.domain.sessions import tags
from app.domain.sessions.errors import (
    IdempotencyKeyInFlight,
    IdempotencyKeyMismatch,
    ProfileChanging,
    TenantConcurrencyLimit,
)
from app.domain.sessions.moves import LeaseLost, Move, image_after, make, transition
from app.domain.sessions.schemas import SessionCreate
from app.domain.sessions.states import Cleanup, State
from app.domain.sessions.views import SessionPublic, session_view
from app.domain.sessions.webhooks import apply_stored_events
from app.domain.tenants.errors import KeyRateLimited, ProfileNotAllowed
from app.errors import (
    AppError,
    Rendered,
    Unauthorized,
    UpstreamCapacity,
    UpstreamError,
    ValidationFailed,
    json_bytes,
    problem,
)
from app.observability import metrics, tracing
from app.observability.logging import bind_session
from app.security import pal_secrets
from app.security.secret_box import SecretBox
from app.security.tokens import WebhookTokens
from app.tavus.client import TavusClient
from app.tavus.errors import TavusConcurrencyLimit, TavusError, TavusNotFound
from app.tavus.listing import TavusListIncomplete
from app.tavus.models import Conversation, ConversationCreate, Pal, PalCreate


class PalPool(Protocol):
    """PALs made ahead of time for ephemeral starts (``app.domain.pool``)."""

    async def claim(self, row: Session, instance_id: str, *, lease: timedelta) -> Session | None:
        """``row`` moved to ``pal_created`` with a pooled PAL of its exact planned body,
        or None when there is none."""

    def starting(self) -> AbstractContextManager[None]:
        """Held while a start runs in this process (the refill waits for none)."""


T = TypeVar("T")

logger = logging.getLogger(__name__)

# A tenant at its cap is told to come back after this long.
CONCURRENCY_RETRY_AFTER_SECONDS = 5
# Tavus publishes no guidance; a slot is usually free within a call's timeout.
CAPACITY_RETRY_AFTER_SECONDS = 30
# Reads of a start's profile before giving up on one that keeps changing under it.
PROFILE_READS = 3
# A start whose create outcome stays unknown is looked up again at most this far apart.
UNRESOLVED_BACKOFF_MAX = timedelta(minutes=5)


class PalBodyInvalid(ValidationFailed):
    code = "pal_body_invalid"
    title = "The PAL body built for this session would be refused by Tavus"


class ConversationBodyInvalid(ValidationFailed):
    code = "conversation_body_invalid"
    title = "The conversation body built for this session would be refused by Tavus"


@dataclass(frozen=True)
class Started:
    """The session started: it is ``active`` (201)."""

    session: SessionPublic
    answer: Rendered


@dataclass(frozen=True)
class Failed:
    """The start failed, or cannot finish now; ``answer`` is ``problem(error)``."""

    error: AppError
    answer: Rendered


@dataclass(frozen=True)
class Replayed:
    """The first answer to this Idempotency-Key, to be sent again exactly as it was."""

    answer: Rendered


StartOutcome = Started | Failed | Replayed


def started(row: Session) -> Started:
    view = session_view(row)
    return Started(view, Rendered(201, json_bytes(view.model_dump(mode="json"))))


def failed(error: AppError) -> Failed:
    return Failed(error, problem(error))


@dataclass(frozen=True)
class StartContext:
    """What the saga needs from the process: database, Tavus, secrets, settings."""

    sessionmaker: async_sessionmaker[AsyncSession]
    # Admission and the recovery points: single statements of the session store, each
    # atomic by itself (no BEGIN/COMMIT round trips).
    connections: RawConnections
    profiles: ProfileCache
    accounts: TavusAccounts
    secret_box: SecretBox
    webhook_tokens: WebhookTokens
    public_base_url: str
    instance_id: str
    start_lease: timedelta
    deadline_grace: timedelta
    idempotency_ttl: timedelta
    # When the reconciler first checks an active session on Tavus (lost webhooks).
    poll_interval: timedelta = timedelta(seconds=60)
    # PALs made ahead of time (app/domain/pool); None: every ephemeral start makes one.
    warm_pool: PalPool | None = None
    # How long after a create with an unknown outcome its absence from Tavus's listings
    # is trusted: a listing may lag behind a create.
    lookup_settle: timedelta = timedelta(seconds=10)


def request_fingerprint(request: dict[str, Any]) -> str:
    """Of the request as the client sent it (``SessionCreate.model_dump(mode="json",
    exclude_unset=True)``, also what the session row stores)."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"POST /sessions\n{canonical}".encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def _revoked() -> Unauthorized:
    return Unauthorized("invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"})


def _refuse_unlisted_profile(name: str, allowed: frozenset[str] | None) -> None:
    if allowed is not None and name not in allowed:
        raise ProfileNotAllowed(
            f"this API key may not start sessions of profile {name!r}",
            profile=name,
            allowed_profiles=sorted(allowed),
        )


def _tavus_error_summary(error: TavusError) -> dict[str, Any]:
    return {
        "tavus_operation": error.operation,
        "tavus_status": error.status,
        "tavus_error": type(error).__name__,
        "tavus_message": error.message,
    }


def _upstream_failure(error: TavusError, what: str, session_id: uuid.UUID) -> AppError:
    summary = _tavus_error_summary(error)
    if isinstance(error, TavusConcurrencyLimit):
        detail = f"Tavus refused to {what}: the account is at its concurrent conversation limit"
        return _failure(UpstreamCapacity.code, detail, session_id=str(session_id), **summary)
    return _failure(
        UpstreamError.code,
        f"Tavus failed to {what}: {error.message}",
        session_id=str(session_id),
        **summary,
    )


def _failure(code: str, detail: str, **extra: Any) -> AppError:
    """A start's failure, as first answered and as rebuilt from the session's ``error``."""
    if code == UpstreamCapacity.code:
        return UpstreamCapacity(
            detail, headers={"Retry-After": str(CAPACITY_RETRY_AFTER_SECONDS)}, **extra
        )
    return UpstreamError(detail, **extra)


class StartSaga:
    def __init__(self, context: StartContext) -> None:
        self.ctx = context

    # --- entry point ------------------------------------------------------------

    async def start(
        self,
        tenant_id: str,
        body: SessionCreate,
        idempotency_key: str | None,
        *,
        api_key_id: str | None = None,
        allowed_profiles: frozenset[str] | None = None,
    ) -> StartOutcome:
        """Start a session for ``tenant_id``. ``api_key_id``, the caller's key, is checked
        again under the tenant's lock: a key revoked since it was authenticated starts
        nothing, and a key with a start rate spends a token. ``allowed_profiles``: the
        profiles the key may start (None: any)."""
        pool = self.ctx.warm_pool
        with pool.starting() if pool is not None else contextlib.nullcontext():
            with tracing.span("session.admit", lambda: {"palisade.tenant_id": tenant_id}):
                admitted = await self._admit(
                    tenant_id, body, idempotency_key, api_key_id, allowed_profiles
                )
            if isinstance(admitted, StartOutcome):
                return admitted
            if isinstance(admitted, uuid.UUID):  # a crashed first attempt, resumed
                bind_session(admitted)
                return await self.drive(admitted, fresh=False)
            row, tavus_key = admitted
            bind_session(row.id)
            return await self._guarded(self._run(row, tavus_key, fresh=True))

    # --- admission (one statement) ------------------------------------------------

    async def _admit(
        self,
        tenant_id: str,
        body: SessionCreate,
        key: str | None,
        api_key_id: str | None,
        allowed_profiles: frozenset[str] | None = None,
    ) -> StartOutcome | uuid.UUID | tuple[Session, bytes | None]:
        """Admit a new session (its row, as stored, and its tenant's Tavus key), or answer
        from the key's record, or hand back the id of a crashed first attempt to resume.

        The request is resolved against its profile first (``ProfileCache``), so a request
        the profile refuses is told so (422) even when the tenant is at its cap (429).
        Then one autocommit statement locks the tenant, checks that the key and the
        profile are unchanged, claims the key, counts the live sessions and inserts the
        new one if there is room (``SessionStore.admit``).
        """
        now = _now()
        session_id = uuid.uuid4()
        lease_until = now + self.ctx.start_lease
        request = body.model_dump(mode="json", exclude_unset=True)
        fingerprint = request_fingerprint(request) if key is not None else ""
        claim = (
            KeyClaim(
                key=key,
                request_hash=fingerprint,
                session_id=session_id,
                locked_until=lease_until,
                expires_at=now + self.ctx.idempotency_ttl,
            )
            if key is not None
            else None
        )
        # A profile the key may not start is refused before its name is looked up: the
        # key learns nothing of the tenant's other profiles.
        if body.profile is not None:
            _refuse_unlisted_profile(body.profile, allowed_profiles)
        for attempt in range(PROFILE_READS):
            try:
                profile = await self.ctx.profiles.get(tenant_id, body.profile, fresh=attempt > 0)
                # The default: admission checks that it is still the default.
                _refuse_unlisted_profile(profile.name, allowed_profiles)
                values, resolution = self._admission_values(
                    profile, tenant_id, body, request, key, session_id, lease_until
                )
            except TenantGone:
                raise _revoked() from None
            except ValidationFailed:
                # A retry whose profile changed since the first attempt still gets the
                # first attempt's answer.
                if key is not None:
                    known = await self._existing_key(
                        tenant_id, key, fingerprint, now, missing_ok=True
                    )
                    if known is not None:
                        return known
                raise
            gate = AdmissionGate(
                tenant_id=tenant_id,
                api_key_id=api_key_id,
                profile=profile.name,
                profile_version=profile.version,
                profile_is_default=body.profile is None,
                claim=claim,
            )
            event = EventRecord(
                kind="transition",
                type="session.admitted",
                payload={"strategy": resolution.strategy, "reason": resolution.strategy_reason},
            )
            async with self.ctx.connections.connect() as connection:
                admission = await SessionStore(connection).admit(gate, values, event)
            match admission.outcome:
                case AdmissionOutcome.ADMITTED:
                    assert admission.created_at is not None
                    assert admission.updated_at is not None
                    # The row as stored, kept in memory: the saga needs no read before
                    # its first call.
                    row = Session(
                        **values, created_at=admission.created_at, updated_at=admission.updated_at
                    )
                    return row, admission.tavus_api_key_encrypted
                case AdmissionOutcome.PROFILE_CHANGED:
                    continue
                case AdmissionOutcome.KEY_EXISTS:
                    assert key is not None
                    known = await self._existing_key(tenant_id, key, fingerprint, now)
                    assert known is not None
                    return known
                case AdmissionOutcome.KEY_RATE_LIMITED:
                    assert admission.retry_after is not None
                    raise KeyRateLimited(
                        "this API key has used up its start rate; retry after the "
                        "Retry-After delay",
                        headers={"Retry-After": str(max(1, math.ceil(admission.retry_after)))},
                    )
                case AdmissionOutcome.FULL:
                    raise TenantConcurrencyLimit(
                        f"tenant {tenant_id!r} has {admission.live} of "
                        f"{admission.cap} concurrent sessions running",
                        headers={"Retry-After": str(CONCURRENCY_RETRY_AFTER_SECONDS)},
                        limit=admission.cap,
                    )
                case AdmissionOutcome.NO_TENANT | AdmissionOutcome.KEY_REVOKED:
                    # Deleted or revoked since the key authenticated.
                    raise _revoked()
        raise ProfileChanging(
            f"profile {body.profile or 'default'!r} changed {PROFILE_READS} times while "
            "this session was being admitted; retry",
            headers={"Retry-After": "1"},
        )

    async def _existing_key(
        self,
        tenant_id: str,
        key: str,
        fingerprint: str,
        now: datetime,
        *,
        missing_ok: bool = False,
    ) -> StartOutcome | uuid.UUID | None:
        """The answer for a key used before, from its record (locked, in a transaction of
        its own): replay, mismatch, in flight, or the id of a crashed first attempt to
        resume. With ``missing_ok``, None when the key has no record."""
        async with self.ctx.sessionmaker.begin() as db:
            keys = IdempotencyRepository(db)
            started = await keys.session_of(tenant_id, key)
            if started is not None:
                # The session before its key, the order a move takes them (session_move
                # updates the session, then stores the key's answer): the other order
                # deadlocks with a move made at the same moment.
                await SessionRepository(db).get_for_update(started)
            record = await keys.get_for_update(tenant_id, key)
            if record is None:
                if missing_ok:
                    return None
                # Pruned between our insert attempt and this read: extremely unlikely.
                raise IdempotencyKeyInFlight("retry the request")
            if record.request_hash != fingerprint:
                raise IdempotencyKeyMismatch(
                    "this Idempotency-Key was first used with a different body; use a new key"
                )
            stored = record.answer()
            if stored is not None:
                return Replayed(stored)
            if record.locked_until is not None and record.locked_until > now:
                raise IdempotencyKeyInFlight(
                    "the first request with this key is still running; retry shortly",
                    headers={"Retry-After": "1"},
                )
            if record.session_id is None:
                raise IdempotencyKeyInFlight("retry the request")
            # The first attempt's process died (its lease ran out): resume its session.
            row = await SessionRepository(db).get_for_update(record.session_id)
            if row is None:
                raise IdempotencyKeyInFlight("retry the request")
            if row.next_check_at is not None and row.next_check_at > now:
                # Held by another process, or waiting for Tavus's listings to settle
                # after a create whose outcome is unknown.
                wait = math.ceil((row.next_check_at - now).total_seconds())
                raise IdempotencyKeyInFlight(
                    "the session is being recovered; retry shortly",
                    headers={"Retry-After": str(max(1, wait))},
                )
            lease_until = now + self.ctx.start_lease
            row.claimed_by = self.ctx.instance_id
            row.next_check_at = lease_until
            await keys.extend_lock(tenant_id, key, lease_until)
            return row.id

    def _admission_values(
        self,
        profile: StartProfile,
        tenant_id: str,
        body: SessionCreate,
        request: dict[str, Any],
        key: str | None,
        session_id: uuid.UUID,
        lease_until: datetime,
    ) -> tuple[dict[str, Any], Resolution]:
        """The new session's row, with the request resolved under ``profile`` (422 when
        the profile refuses it)."""
        resolution = resolve(profile.profile, body, profile_name=profile.name, tenant_id=tenant_id)
        values: dict[str, Any] = {
            "id": session_id,
            "tenant_id": tenant_id,
            "profile": profile.name,
            "state": State.ADMITTED,
            "strategy": resolution.strategy,
            "strategy_reason": resolution.strategy_reason,
            "cleanup": Cleanup.NOT_NEEDED,
            "pal_id": resolution.pal_id,
            "pal_ephemeral": resolution.strategy == "ephemeral",
            "external_ref": body.external_ref,
            "idempotency_key": key,
            # Both hold the PAL body's credentials, if any: stored sealed.
            "request": _sealed_under(request, "overrides", self.ctx.secret_box),
            "resolved": _sealed_under(
                _plan(resolution, session_id), "pal_body", self.ctx.secret_box
            ),
            "next_check_at": lease_until,
            "claimed_by": self.ctx.instance_id,
            "attempts": 0,
        }
        return values, resolution

    # --- the saga ----------------------------------------------------------------

    async def drive(self, session_id: uuid.UUID, *, fresh: bool) -> StartOutcome:
        """Run the start from the session's recovery point to active or failed.

        ``fresh`` says nothing has been sent to Tavus yet for this session; otherwise
        each create is preceded by a lookup of what a previous attempt may have made.
        The caller holds the session's lease; if it runs out and another process takes
        over, this run stops without writing and says so.
        """
        return await self._guarded(self._drive(session_id, fresh=fresh))

    async def _guarded(self, run: Awaitable[StartOutcome]) -> StartOutcome:
        try:
            return await run
        except LeaseLost as lost:
            return failed(
                IdempotencyKeyInFlight(
                    "the session is being finished by another process; retry with the "
                    "same Idempotency-Key or read it with GET /sessions/{id}",
                    headers={"Retry-After": "1"},
                    session_id=str(lost.session_id),
                )
            )

    async def _drive(self, session_id: uuid.UUID, *, fresh: bool) -> StartOutcome:
        async with self.ctx.sessionmaker() as db:
            row = await SessionRepository(db).get(session_id)
            tenant = await TenantRepository(db).get(row.tenant_id) if row else None
        if row is None or tenant is None:
            raise AppError("session vanished during start")
        if row.state not in (State.ADMITTED, State.PAL_CREATED):
            return await self._complete_from_row(row)
        return await self._run(row, tenant.tavus_api_key_encrypted, fresh=fresh)

    async def _run(self, row: Session, tavus_key: bytes | None, *, fresh: bool) -> StartOutcome:
        tavus = self.ctx.accounts.for_key(tavus_key)
        # A conversation create is only ever sent once the PAL id is stored, so after a
        # PAL step in this run the conversation cannot exist yet.
        conversation_fresh = fresh
        try:
            if fresh and row.strategy == "ephemeral" and self.ctx.warm_pool is not None:
                # A warm-pool hit hands the row back pal_created with the pooled PAL.
                with tracing.span("session.warm_pool_claim", lambda: _traced(row)):
                    pooled = await self.ctx.warm_pool.claim(
                        row, self.ctx.instance_id, lease=self.ctx.start_lease
                    )
                row = pooled or row
            if row.state == State.ADMITTED and row.strategy == "ephemeral":
                with tracing.span("session.create_pal", lambda: _traced(row)):
                    pal_id = await self._ensure_pal(tavus, row, fresh=fresh)
                crashpoints.reach("start.pal_created_not_recorded")
                row = await self._record_pal(row, pal_id)
                conversation_fresh = True
            with tracing.span("session.create_conversation", lambda: _traced(row)):
                conversation = await self._ensure_conversation(tavus, row, fresh=conversation_fresh)
            crashpoints.reach("start.conversation_created_not_recorded")
        except _Unresolved as unresolved:
            return await self._leave_for_recovery(row, unresolved)
        except _NeverCreated as never:
            return await self._fail(row, tavus, never.failure)
        except TavusError as error:
            in_pal_step = row.state == State.ADMITTED and row.pal_ephemeral
            what = "create the PAL" if in_pal_step else "create the conversation"
            return await self._fail(row, tavus, _upstream_failure(error, what, row.id))
        return await self._record_active(row, conversation)

    async def _ensure_pal(self, tavus: TavusClient, row: Session, *, fresh: bool) -> str:
        what = "create the PAL"
        if not fresh:
            existing = await self._find_pal(tavus, row, what)
            if existing is not None:
                return existing.pal_id
            _unless_answered(row, what)
        try:
            body = pal_secrets.unseal(row.resolved["pal_body"], self.ctx.secret_box)
            created = await tavus.create_pal(PalCreate.model_validate(body))
        except TavusError as error:
            if not error.may_have_taken_effect:
                raise
            # Tavus may have made it: the tag tells if the listing shows it. A listing may
            # lag behind a create, so its absence now decides nothing: the session is
            # looked up again later, by whoever resumes it.
            existing = await self._find_pal(tavus, row, what, error)
            if existing is None:
                raise _Unresolved(error, what) from None
            return existing.pal_id
        return created.pal_id

    async def _ensure_conversation(
        self, tavus: TavusClient, row: Session, *, fresh: bool
    ) -> Conversation:
        what = "create the conversation"
        if not fresh:
            existing = await self._find_conversation(tavus, row, what)
            if existing is not None:
                return existing
            _unless_answered(row, what)
        try:
            return await tavus.create_conversation(self._conversation_body(row))
        except TavusError as error:
            if not error.may_have_taken_effect:
                raise
            found = await self._find_conversation(tavus, row, what, error)
            if found is None:
                raise _Unresolved(error, what) from None
            return found

    async def _find_pal(
        self, tavus: TavusClient, row: Session, what: str, cause: TavusError | None = None
    ) -> Pal | None:
        found = await _lookup(
            "pal",
            tavus.find_pal_by_name(row.resolved["pal_name"], created_after=row.created_at),
            what,
            cause,
        )
        return found

    async def _find_conversation(
        self, tavus: TavusClient, row: Session, what: str, cause: TavusError | None = None
    ) -> Conversation | None:
        """The session's conversation: first by the id an early webhook named (Tavus
        called back before the id was stored), then by its tag in the listings."""
        name = row.resolved["conversation_name"]
        async with self.ctx.sessionmaker() as db:
            stored = await SessionRepository(db).webhook_events(row.id)
        named = {e.payload.get("conversation_id") for e in stored} - {None}
        for conversation_id in sorted(str(i) for i in named):
            try:
                candidate = await tavus.get_conversation(conversation_id)
            except TavusNotFound:
                continue
            except TavusError as error:
                raise _Unresolved(cause or error, what) from None
            if candidate.conversation_name == name:
                metrics.tavus_lookup("conversation", "found")
                return candidate
        return await _lookup(
            "conversation",
            tavus.find_conversation_by_name(name, created_after=row.created_at),
            what,
            cause,
        )

    def _conversation_body(self, row: Session) -> ConversationCreate:
        token = self.ctx.webhook_tokens.token_for(str(row.id))
        callback = f"{self.ctx.public_base_url}/webhooks/tavus/{row.id}?token={token}"
        return ConversationCreate.model_validate(
            {
                **row.resolved["conversation_body"],
                "pal_id": row.pal_id,
                "conversation_name": row.resolved["conversation_name"],
                "callback_url": callback,
            }
        )

    # --- recovery points (one short transaction each) ---------------------------------

    async def _transition(
        self,
        row: Session,
        target: State | None,
        *,
        event: EventRecord | None = None,
        payload: dict[str, Any] | None = None,
        answer: Callable[[Session], Rendered] | None = None,
        key_locked_until: datetime | None = None,
        wait_for_disk: bool = True,
        **changes: Any,
    ) -> Session:
        """Make a move of ``row`` under this run's lease (``app.domain.sessions.moves``),
        with, once the start is decided, its ``answer`` (made from the session as the
        move leaves it) stored for its Idempotency-Key in the same statement.

        ``row`` is this run's image of the session; the image after the move is
        returned. ``wait_for_disk``: see ``SessionStore.move``.
        """
        move = transition(target, payload, **changes) if target is not None else None
        move = move or Move(None, changes, event)
        # Built once: the answer is made from it and it is the session returned.
        image = image_after(row, move) if answer is not None else None
        stored = answer(image) if answer is not None and image is not None else None
        moved = await make(
            self.ctx.connections,
            row,
            move,
            lease=Lease(self.ctx.instance_id, row.next_check_at),
            answer=stored if row.idempotency_key is not None else None,
            key_locked_until=key_locked_until,
            wait_for_disk=wait_for_disk,
            image=image,
        )
        if moved is None:
            # Our lease ran out and another process took the session over: whatever we
            # just did on Tavus, it finds by the tag; we must not write over it.
            raise LeaseLost(row.id)
        return moved

    async def _record_pal(self, row: Session, pal_id: str) -> Session:
        return await self._transition(
            row,
            State.PAL_CREATED,
            pal_id=pal_id,
            cleanup=Cleanup.PENDING,
            next_check_at=_now() + self.ctx.start_lease,
            error=None,
            payload={"pal_id": pal_id},
        )

    async def _record_active(self, row: Session, conversation: Conversation) -> StartOutcome:
        now = _now()
        conversation_id = conversation.conversation_id
        max_call = int(row.resolved["max_call_duration"])
        deadline = now + timedelta(seconds=max_call) + self.ctx.deadline_grace
        outcome: list[Started] = []

        def answer(after: Session) -> Rendered:
            # The client's answer and the one stored for its key: rendered once.
            outcome.append(started(after))
            return outcome[0].answer

        current = await self._transition(
            row,
            State.ACTIVE,
            conversation_id=conversation_id,
            conversation_url=conversation.conversation_url,
            # Tavus's own time: billing runs from it, by Tavus's clock.
            conversation_created_at=conversation.created_at,
            active_at=now,
            deadline_at=deadline,
            error=None,
            # Webhooks normally drive it from here; the reconciler still polls Tavus now
            # and then, so a lost shutdown cannot leave it active.
            next_check_at=min(deadline, now + self.ctx.poll_interval),
            claimed_by=None,
            payload={"conversation_id": conversation_id},
            # Not waiting for the disk saves a flush on every start, and it is safe: if a
            # PostgreSQL crash undid this move, the session would be back at its last
            # recovery point, leased, with its key still in flight, and whoever resumes
            # it (a retry once the lease runs out, or the reconciler) finds this same
            # conversation by its tag and makes this same move. Nothing is created twice
            # and nothing is left behind. A failure is not written this way: undoing it
            # would let a resumed start create what the client was told had failed.
            wait_for_disk=False,
            answer=answer,
        )
        metrics.session_active(current)
        if current.early_events:
            # Tavus called back before the id was stored: a shutdown among those events
            # ends the session now, not at its first poll.
            async with self.ctx.sessionmaker.begin() as db:
                await apply_stored_events(db, current.id)
        return outcome[0]

    async def _fail(self, row: Session, tavus: TavusClient, error: AppError) -> StartOutcome:
        # A create whose outcome is unknown fails a session only once the listings prove
        # it absent, so only a PAL whose id is stored can exist.
        cleanup = Cleanup.NOT_NEEDED
        if row.pal_ephemeral and row.pal_id is not None:
            cleanup = await self._delete_pal_now(tavus, row.pal_id)
        outcome = failed(error)
        await self._transition(
            row,
            State.FAILED,
            cleanup=cleanup,
            ended_at=_now(),
            end_reason="creation_failed",
            error={"code": error.code, "detail": error.detail, **_scalar_extra(error.extra)},
            next_check_at=_now() if cleanup == Cleanup.PENDING else None,
            claimed_by=None,
            payload={"code": error.code, "cleanup": cleanup},
            answer=lambda _: outcome.answer,
        )
        return outcome

    async def _delete_pal_now(self, tavus: TavusClient, pal_id: str) -> Cleanup:
        try:
            await tavus.delete_pal(pal_id)
        except TavusNotFound:
            return Cleanup.DONE
        except TavusError as error:
            logger.warning("inline PAL delete failed, left to the reconciler: %s", error.message)
            return Cleanup.PENDING
        return Cleanup.DONE

    async def _leave_for_recovery(self, row: Session, unresolved: _Unresolved) -> StartOutcome:
        """The create may or may not have happened and Tavus cannot tell us now.

        Nothing is decided: the lease is released so that a retry with the same key, or
        the reconciler, resolves it by lookup, but not before ``lookup_settle`` (doubling
        with each unresolved attempt): a listing read right after a create may not show
        it yet. The response is not stored for replay.
        """
        error, what = unresolved.error, unresolved.what
        now = _now()
        delay = Backoff(self.ctx.lookup_settle, UNRESOLVED_BACKOFF_MAX).after(row.attempts + 1)
        payload = _tavus_error_summary(error)
        if unresolved.lookup is not None:
            payload["lookup"] = unresolved.lookup
        await self._transition(
            row,
            None,
            event=EventRecord(kind="tavus", type="tavus.outcome_unknown", payload=payload),
            key_locked_until=now + delay,
            next_check_at=now + delay,
            claimed_by=None,
            attempts=row.attempts + 1,
            # Marks the start as answered "outcome unknown": if the lookup later proves
            # the object absent, the start fails instead of creating it then.
            error={"code": UpstreamError.code, **_tavus_error_summary(error)},
        )
        return failed(
            UpstreamError(
                f"Tavus did not confirm whether it managed to {what}; the session "
                "will be resolved without creating a duplicate. Retry with the same "
                "Idempotency-Key to get its outcome.",
                headers={"Retry-After": str(max(1, math.ceil(delay.total_seconds())))},
                session_id=str(row.id),
                **_tavus_error_summary(error),
            )
        )

    async def _complete_from_row(self, row: Session) -> StartOutcome:
        """A start found past its recovery points: its answer, stored for its key if the
        move that decided it did not store one (sessions started before answers were
        stored with the move)."""
        outcome = outcome_of(row)
        if row.idempotency_key is not None:
            async with self.ctx.sessionmaker.begin() as db:
                await IdempotencyRepository(db).complete_unless_answered(
                    row.tenant_id, row.idempotency_key, outcome.answer
                )
        return outcome


def _traced(row: Session) -> dict[str, str]:
    return {"palisade.session_id": str(row.id), "palisade.strategy": row.strategy}


def outcome_of(row: Session) -> Started | Failed:
    """The answer to the start of a session that got past its recovery points: the one
    its first answer was, rebuilt from the row."""
    if row.state != State.FAILED:
        return started(row)
    error = dict(row.error or {})
    code = str(error.pop("code", UpstreamError.code))
    detail = str(error.pop("detail", "Session creation failed"))
    return failed(_failure(code, detail, **error))


class _NeverCreated(Exception):
    """A create the client was told had an unknown outcome turned out never to have
    happened: the start fails with ``failure`` rather than creating it now."""

    def __init__(self, failure: AppError) -> None:
        super().__init__(failure.detail)
        self.failure = failure


def _unless_answered(row: Session, what: str) -> None:
    """Before a resumed start creates what its lookup did not find: if an earlier
    attempt's create failed with an unknown outcome (``row.error`` says so, see
    ``_leave_for_recovery``), the client has its answer (retry for the outcome) and the
    start fails now instead, as it would have had Tavus answered at once."""
    unresolved = row.error
    if unresolved is None:
        return
    summary = {k: v for k, v in unresolved.items() if k.startswith("tavus_")}
    raise _NeverCreated(
        UpstreamError(
            f"Tavus failed to {what}: {summary.get('tavus_message') or 'no answer'}; "
            "it was not created",
            **summary,
        )
    )


class _Unresolved(Exception):
    """Tavus may have created the object and cannot tell us now whether it did."""

    def __init__(self, error: TavusError, what: str, *, lookup: str | None = None) -> None:
        super().__init__(what)
        self.error = error
        self.what = what
        # Why the lookup could not tell, when it was the listing that failed.
        self.lookup = lookup


async def _lookup(
    obj: str, found: Awaitable[T | None], what: str, cause: TavusError | None = None
) -> T | None:
    """A lookup's answer, counted; a lookup that cannot tell leaves the start unresolved."""
    try:
        result = await found
    except TavusListIncomplete as error:
        metrics.tavus_lookup(obj, "incomplete")
        raise _Unresolved(cause or error, what, lookup=error.message) from None
    except TavusError as error:
        raise _Unresolved(cause or error, what) from None
    metrics.tavus_lookup(obj, "absent" if result is None else "found")
    return result


def _scalar_extra(extra: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in extra.items() if isinstance(v, str | int | float | bool | None)}


def _plan(resolution: Resolution, session_id: uuid.UUID) -> dict[str, Any]:
    """What the session will send to Tavus, fixed at admission (and validated now, so a
    body Tavus would refuse is a 422 before anything is created)."""
    plan: dict[str, Any] = resolution.model_dump(mode="json")
    plan["conversation_name"] = tags.conversation_name(
        resolution.conversation_body.get("conversation_name"), session_id
    )
    conversation_probe = {
        **resolution.conversation_body,
        "conversation_name": plan["conversation_name"],
        "pal_id": resolution.pal_id or "p0",
    }
    try:
        ConversationCreate.model_validate(conversation_probe)
    except ValidationError as exc:
        raise ConversationBodyInvalid(
            "the conversation body is not valid for Tavus", errors=_problems(exc)
        ) from None
    if resolution.pal_body is not None:
        plan["pal_name"] = tags.pal_name(resolution.pal_body.get("pal_name"), session_id)
        plan["pal_body"] = {**resolution.pal_body, "pal_name": plan["pal_name"]}
        try:
            PalCreate.model_validate(plan["pal_body"])
        except ValidationError as exc:
            raise PalBodyInvalid(
                "the PAL body is not valid for Tavus", errors=_problems(exc)
            ) from None
    return plan


def _sealed_under(values: dict[str, Any], key: str, box: SecretBox) -> dict[str, Any]:
    body = values.get(key)
    if not isinstance(body, dict):
        return values
    sealed = pal_secrets.seal(body, box)
    return values if sealed is body else {**values, key: sealed}


def _problems(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": list(e["loc"]), "code": e["type"], "msg": e["msg"]}
        for e in exc.errors(include_url=False, include_input=False)
    ]
