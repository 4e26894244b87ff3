"""The reconciler: level-triggered background work that converges every session.

Whatever webhooks were lost and whichever process died, a session that still needs
something has ``next_check_at`` set; replicas claim due rows with ``FOR UPDATE SKIP
LOCKED`` and a lease, act on Tavus outside any transaction, then write the result only
if they still hold the lease. What each state needs:

* ``admitted`` / ``pal_created`` (a start whose process died): resume the saga, which
  looks up what may already exist on Tavus before creating anything;
* ``active``: poll the conversation (verbose events) so a lost ``system.shutdown`` still
  ends the session, and end it on Tavus once ``deadline_at`` is past, whatever the read
  said; a shutdown webhook's claim is confirmed here before the session ends;
* ``ending``: confirm the end on Tavus, asking again if needed;
* ``ended`` / ``failed`` with ``cleanup = pending``: delete the ephemeral PAL, retried
  with backoff until Tavus confirms (an already-gone PAL counts as done).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import crashpoints
from app.db.models import Session
from app.db.models.session import SHUTDOWN_UNCONFIRMED_EVENT
from app.db.raw import RawConnections
from app.db.repositories.sessions import SessionRepository
from app.db.session_store import EventRecord, Lease
from app.domain.accounts import TavusAccounts
from app.domain.leased_loop import Backoff, LoopConfig, utcnow
from app.domain.sessions.lifecycle import ended, ending, normalise_shutdown_reason
from app.domain.sessions.moves import Move, make
from app.domain.sessions.start import StartSaga
from app.domain.sessions.states import Cleanup, State
from app.domain.sessions.webhooks import JOINED_EVENTS, SHUTDOWN_EVENT
from app.observability import metrics
from app.observability.logging import session_context
from app.tavus.client import TavusClient
from app.tavus.errors import TavusError, TavusNotFound
from app.tavus.models import Conversation

logger = logging.getLogger(__name__)

# Tavus says the conversation is over without saying why.
UNSPECIFIED_END = "tavus:ended"


@dataclass(frozen=True)
class ReconcilerConfig:
    tick: timedelta = timedelta(seconds=1)
    batch: int = 50
    concurrency: int = 10
    lease: timedelta = timedelta(seconds=60)
    # How often an active session is checked on Tavus when no webhook says it ended.
    poll_interval: timedelta = timedelta(seconds=60)
    end_recheck: timedelta = timedelta(seconds=15)
    backoff_base: timedelta = timedelta(seconds=2)
    backoff_max: timedelta = timedelta(minutes=5)
    # A shutdown webhook is confirmed with Tavus, asked again after this long (doubling
    # each time) while it reports the conversation live, for at most ``claim_window``.
    claim_recheck: timedelta = timedelta(milliseconds=500)
    claim_window: timedelta = timedelta(seconds=30)
    # How long in-flight work may take to finish on shutdown.
    drain_timeout: timedelta = timedelta(seconds=10)

    @property
    def loop(self) -> LoopConfig:
        return LoopConfig(tick=self.tick, batch=self.batch, drain_timeout=self.drain_timeout)


_now = utcnow


class Reconciler:
    name = "reconciler"

    def __init__(
        self,
        connections: RawConnections,
        accounts: TavusAccounts,
        start_saga: StartSaga,
        owner: str,
        config: ReconcilerConfig | None = None,
        *,
        autocommit: async_sessionmaker[AsyncSession],
    ) -> None:
        # Every write is a move of the session store, one statement under the lease.
        self.connections = connections
        # For the claims and reads, each a single statement: one round trip instead of
        # three (BEGIN, the statement, COMMIT; ``begin()`` on it sends neither). A tick
        # runs every second in every process: it is most of what an idle process does.
        self.autocommit = autocommit
        self.accounts = accounts
        self.start_saga = start_saga
        self.owner = owner
        self.config = config or ReconcilerConfig()
        self.backoff = Backoff(self.config.backoff_base, self.config.backoff_max)
        self._semaphore = asyncio.Semaphore(self.config.concurrency)
        self._in_flight: set[asyncio.Task[None]] = set()
        self.last_success: datetime | None = None

    # --- running (app.domain.leased_loop) ------------------------------------------------

    @metrics.reconciler_cycle
    async def tick(self) -> int:
        now = _now()
        async with self.autocommit.begin() as db:
            rows = await SessionRepository(db).claim_due(
                owner=self.owner,
                now=now,
                lease_until=now + self.config.lease,
                limit=self.config.batch,
            )
        if rows:
            await asyncio.gather(*(self._guarded(row) for row in rows))
        self.last_success = _now()
        return len(rows)

    def spawn_check(self, session_id: uuid.UUID) -> None:
        """Handle a session now, in the background (e.g. a shutdown webhook to confirm)."""
        task = asyncio.create_task(self.handle_now(session_id))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    @property
    def checks_running(self) -> int:
        """Checks started by ``spawn_check`` that have not finished yet."""
        return len(self._in_flight)

    async def handle_now(self, session_id: uuid.UUID) -> None:
        # A confirmed shutdown leaves the PAL's deletion due at once: it is done in this
        # same call rather than at the next tick.
        for _ in range(2):
            now = _now()
            async with self.autocommit.begin() as db:
                row = await SessionRepository(db).claim(
                    session_id, owner=self.owner, now=now, lease_until=now + self.config.lease
                )
            if row is None:
                return
            await self._guarded(row)

    async def release(self) -> None:
        """Let checks started outside a pass finish within a bound, then hand back every
        lease."""
        if self._in_flight:
            _, pending = await asyncio.wait(
                set(self._in_flight), timeout=self.config.drain_timeout.total_seconds()
            )
            for task in pending:
                task.cancel()
        async with self.autocommit.begin() as db:
            released = await SessionRepository(db).release_claims(self.owner, _now())
        if released:
            logger.info("released %d session claims", released)

    async def _guarded(self, row: Session) -> None:
        async with self._semaphore:
            with session_context(row.id):
                logger.debug("reconciling a session in state %s", row.state)
                try:
                    await self.handle(row)
                except Exception:
                    # The lease runs out and another pass retries; never lose the loop.
                    logger.exception("reconciling session %s failed", row.id)

    # --- dispatch ----------------------------------------------------------------------

    async def handle(self, row: Session) -> None:
        if row.state in (State.ADMITTED, State.PAL_CREATED):
            await self.start_saga.drive(row.id, fresh=False)
            return
        tavus = await self.accounts.for_tenant(row.tenant_id)
        if row.state == State.ACTIVE:
            move = await self._check_active(tavus, row)
        elif row.state == State.ENDING:
            move = await self._check_ending(tavus, row)
        elif row.cleanup == Cleanup.PENDING:
            move = await self._cleanup(tavus, row)
        else:
            move = NOTHING_LEFT
        await self._write(row, move)

    async def _write(self, row: Session, move: Move) -> None:
        """Make ``move`` and hand the lease back, only while the claim is still ours."""
        # A claim is ours only while both the owner and the lease expiry it set are
        # unchanged: this process may itself have claimed the row again meanwhile (a
        # webhook's immediate check during a poll), and the older claim must then
        # neither apply its outcome nor release the newer one.
        lease = Lease(self.owner, row.next_check_at)
        released = move.with_changes(claimed_by=None)
        if await make(self.connections, row, released, lease=lease) is None:
            logger.info("claim on session %s was taken over; result dropped", row.id)

    # --- handlers (Tavus calls happen here, outside transactions) ---------------------

    async def _read(self, tavus: TavusClient, row: Session) -> Conversation | TavusError:
        """The conversation as Tavus reports it now, or why it could not be read."""
        assert row.conversation_id is not None
        try:
            conversation = await tavus.get_conversation(row.conversation_id, verbose=True)
        except TavusError as error:
            return error
        metrics.tavus_events_skipped(conversation.skipped_events)
        return conversation

    async def _if_over(self, row: Session, status: Conversation | TavusError) -> Move | None:
        """The session's end, when Tavus says the conversation is over."""
        if isinstance(status, TavusNotFound):
            return await self._ended(row, "tavus:conversation_not_found", "poll")
        if isinstance(status, Conversation) and status.is_terminal:
            reason, at, joined_at = UNSPECIFIED_END, None, None
            for event in status.events or []:
                if event.event_type == SHUTDOWN_EVENT:
                    reason = normalise_shutdown_reason(event.properties.get("shutdown_reason"))
                    at = event.timestamp
                elif event.event_type in JOINED_EVENTS:
                    joined_at = joined_at or event.timestamp
            # Without a shutdown event, an ended conversation's last change is its end.
            return await self._ended(
                row, reason, "poll", at or status.updated_at, joined_at, status.created_at
            )
        return None

    async def _ended(
        self,
        row: Session,
        reason: str,
        source: str,
        at: datetime | None = None,
        joined_at: datetime | None = None,
        created_at: datetime | None = None,
    ) -> Move:
        """The end, with ``at`` and ``created_at`` as Tavus reported them, if it did."""
        if row.shutdown_claimed_at is not None:
            # Tavus confirmed a shutdown webhook; its reason and time are the end's when
            # Tavus's own reading does not name them.
            source = "webhook"
            async with self.autocommit() as db:
                claim = await SessionRepository(db).latest_webhook(row.id, SHUTDOWN_EVENT)
            if claim is not None:
                at = at or claim.occurred_at
                if reason == UNSPECIFIED_END:
                    reason = normalise_shutdown_reason(
                        (claim.payload.get("properties") or {}).get("shutdown_reason")
                    )
        now = _now()
        return ended(
            row,
            reason=reason,
            at=at or now,
            source=source,
            now=now,
            joined_at=joined_at,
            tavus_ended_at=at,
            tavus_created_at=created_at,
        )

    async def _check_active(self, tavus: TavusClient, row: Session) -> Move:
        status = await self._read(tavus, row)
        over = await self._if_over(row, status)
        if over is not None:
            return over
        assert row.conversation_id is not None
        now = _now()
        if row.deadline_at is not None and now >= row.deadline_at:
            # Whatever the read said (still running, unreadable, refused): past its
            # deadline the conversation is ended.
            try:
                await tavus.end_conversation(row.conversation_id)
            except TavusNotFound:
                return await self._ended(row, "tavus:conversation_not_found", "deadline")
            except TavusError as error:
                logger.warning("ending a conversation past its deadline failed: %s", error)
            return ending("deadline_exceeded", now=now, recheck_at=now + self.config.end_recheck)
        if row.shutdown_claimed_at is not None:
            return self._claim_still_open(row, status, now)
        if isinstance(status, TavusError):
            return self._retry_later(row, status)
        next_check = now + self.config.poll_interval
        if row.deadline_at is not None:
            next_check = min(next_check, row.deadline_at)
        return _recheck_at(next_check)

    async def _check_ending(self, tavus: TavusClient, row: Session) -> Move:
        status = await self._read(tavus, row)
        over = await self._if_over(row, status)
        if over is not None:
            return over
        assert row.conversation_id is not None
        now = _now()
        if isinstance(status, TavusError):
            if row.shutdown_claimed_at is not None:
                return self._claim_still_open(row, status, now)
            return self._retry_later(row, status)
        try:
            await tavus.end_conversation(row.conversation_id)
        except TavusNotFound:
            return await self._ended(row, "tavus:conversation_not_found", "poll")
        except TavusError as error:
            return self._retry_later(row, error)
        if row.shutdown_claimed_at is not None:
            return self._claim_still_open(row, status, now, then=now + self.config.end_recheck)
        return _recheck_at(now + self.config.end_recheck)

    def _claim_still_open(
        self,
        row: Session,
        status: Conversation | TavusError,
        now: datetime,
        *,
        then: datetime | None = None,
    ) -> Move:
        """A shutdown was claimed and Tavus does not (yet) say the conversation is over.

        Tavus may report the end a little after its webhook, so it is asked again soon,
        more slowly each time, until the claim's window has passed; then the claim is
        recorded as unconfirmed and nothing else changes: the session is next checked
        ``then`` (by default, at its next poll).
        """
        assert row.shutdown_claimed_at is not None
        gives_up = row.shutdown_claimed_at + self.config.claim_window
        if now >= gives_up:
            next_check = then or now + self.config.poll_interval
            if row.deadline_at is not None:
                next_check = min(next_check, row.deadline_at)
            reading = "unreadable" if isinstance(status, TavusError) else status.status
            return _claim_unconfirmed(row, next_check, reading)
        delay = self.config.claim_recheck * (2 ** min(row.attempts, 16))
        return Move(
            None, {"next_check_at": min(now + delay, gives_up), "attempts": row.attempts + 1}
        )

    async def _cleanup(self, tavus: TavusClient, row: Session) -> Move:
        if not row.pal_ephemeral:
            # A persistent PAL is never deleted, whatever the row says.
            return _cleanup_done("persistent PAL kept")
        pal_id = row.pal_id
        if pal_id is None:
            # The create's outcome was unknown: the tag tells whether the PAL exists.
            try:
                found = await tavus.find_pal_by_name(row.resolved.get("pal_name", ""))
            except TavusError as error:
                return self._retry_later(row, error)
            if found is None:
                return _cleanup_done("no PAL was created")
            pal_id = found.pal_id
        crashpoints.reach("cleanup.before_delete")
        try:
            await tavus.delete_pal(pal_id)
        except TavusNotFound:
            return _cleanup_done("PAL already gone", pal_id)
        except TavusError as error:
            return self._retry_later(row, error, event="cleanup.retry")
        crashpoints.reach("cleanup.pal_deleted_not_recorded")
        return _cleanup_done("PAL deleted", pal_id)

    def _retry_later(self, row: Session, error: TavusError, *, event: str = "tavus.error") -> Move:
        attempts = row.attempts + 1
        return Move(
            None,
            {"attempts": attempts, "next_check_at": _now() + self.backoff.after(attempts)},
            EventRecord(
                kind="tavus",
                type=event,
                payload={
                    "operation": error.operation,
                    "status": error.status,
                    "error": type(error).__name__,
                    "attempts": attempts,
                },
            ),
        )


# --- moves that keep the state -------------------------------------------------------------

NOTHING_LEFT = Move(None, {"next_check_at": None})


def _recheck_at(when: datetime) -> Move:
    return Move(None, {"next_check_at": when, "attempts": 0})


def _claim_unconfirmed(row: Session, next_check: datetime, tavus_status: str | None) -> Move:
    claimed_at = row.shutdown_claimed_at

    def counted(_: Session) -> None:
        metrics.shutdown_claim(confirmed=False)
        logger.warning("a shutdown webhook was not confirmed by Tavus; the session goes on")

    return Move(
        None,
        {"shutdown_claimed_at": None, "next_check_at": next_check, "attempts": 0},
        EventRecord(
            kind="tavus",
            type=SHUTDOWN_UNCONFIRMED_EVENT,
            payload={
                "claimed_at": claimed_at.isoformat() if claimed_at else None,
                "tavus_status": tavus_status,
            },
        ),
        counted,
    )


def _cleanup_done(note: str, pal_id: str | None = None) -> Move:
    return Move(
        None,
        {"cleanup": Cleanup.DONE, "next_check_at": None, "attempts": 0},
        EventRecord(kind="cleanup", type="cleanup.done", payload={"pal_id": pal_id, "note": note}),
    )
