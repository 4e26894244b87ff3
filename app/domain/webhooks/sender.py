"""The sender: delivers the outbox's events to tenants' endpoints, at least once.

It runs on ``LeasedLoop`` like the reconciler: each pass claims due deliveries with
``FOR UPDATE SKIP LOCKED`` and a lease, sends outside any transaction, and writes the
outcome (and the attempt) only while it still holds the lease. A process that dies
mid-request loses nothing: the lease runs out and another pass sends again, with the
same ``webhook-id``.

A pass does not wait for its requests: it claims as many deliveries as there are free
slots (``concurrency``), and a request that finishes wakes the loop. One endpoint has at
most ``endpoint_concurrency`` requests in flight and as many claimed deliveries waiting
for them, started as they end (while their lease still outlasts an attempt); a delivery
claimed beyond that goes back to the queue at once, so a slow receiver holds few slots
and delays only its own deliveries.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import crashpoints
from app.db.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from app.db.repositories.webhooks import (
    DELIVERED,
    FAILED,
    PENDING,
    AttemptRecord,
    WebhookRepository,
)
from app.domain.leased_loop import LoopConfig, utcnow
from app.domain.storable_text import replace_unstorable_text
from app.domain.webhooks import envelope, signing
from app.domain.webhooks.urls import UrlPolicy, check_resolved
from app.observability import metrics
from app.security.secret_box import SecretBox

logger = logging.getLogger(__name__)

# The waits before each retry (Svix's schedule): 8 attempts over about 27.6 hours.
DEFAULT_RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
# Each wait is stretched or shrunk by up to this share, so that the retries of many
# deliveries that failed together (a receiver's outage) do not come back together.
JITTER = 0.1
# How much of a receiver's answer an attempt keeps.
RESPONSE_BODY_LIMIT = 1024
# A delivery claimed for an endpoint at its bound (and with as many waiting) is due
# again after this long.
ENDPOINT_BUSY_DELAY = timedelta(milliseconds=100)
# A waiting delivery is started only while its lease outlasts an attempt by this much.
LEASE_MARGIN = timedelta(seconds=1)
USER_AGENT = "Palisade-Webhooks/1"


@dataclass(frozen=True)
class SenderConfig:
    tick: timedelta = timedelta(seconds=1)
    batch: int = 100
    concurrency: int = 100
    endpoint_concurrency: int = 10
    timeout: timedelta = timedelta(seconds=10)
    retry_schedule: tuple[timedelta, ...] = DEFAULT_RETRY_SCHEDULE
    # Deliveries made by the dev loop and tests may go to loopback over http.
    dev: bool = False
    drain_timeout: timedelta = timedelta(seconds=10)

    @property
    def lease(self) -> timedelta:
        # Longer than any attempt (the request, the address check and the write), so
        # another process never sends while one is running; short, since a process that
        # died holds its deliveries until it runs out.
        return max(self.timeout * 3, timedelta(seconds=3))

    @property
    def loop(self) -> LoopConfig:
        return LoopConfig(tick=self.tick, batch=self.batch, drain_timeout=self.drain_timeout)


@dataclass(frozen=True)
class _Work:
    row: WebhookDelivery
    event: WebhookEvent | None
    endpoint: WebhookEndpoint | None


@dataclass(frozen=True)
class _Outcome:
    status: str
    attempt: AttemptRecord | None
    error: str | None
    disable_endpoint: str | None = None


class WebhookSender:
    name = "webhook-sender"

    def __init__(
        self,
        autocommit: async_sessionmaker[AsyncSession],
        sessionmaker: async_sessionmaker[AsyncSession],
        http: httpx.AsyncClient,
        secret_box: SecretBox,
        owner: str,
        config: SenderConfig | None = None,
    ) -> None:
        self.autocommit = autocommit
        self.sessionmaker = sessionmaker
        # Its own client (runtime): receivers are untrusted, with limits and timeouts of
        # their own, and no redirects followed.
        self.http = http
        self.secret_box = secret_box
        self.owner = owner
        self.config = config or SenderConfig()
        self.wake = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._per_endpoint: Counter[uuid.UUID] = Counter()
        # Claimed deliveries waiting for one of their endpoint's requests to end.
        self._queued: dict[uuid.UUID, deque[_Work]] = {}

    # --- running (app.domain.leased_loop) ------------------------------------------------

    async def tick(self) -> int:
        room = self.config.concurrency - len(self._in_flight) - self._queued_total()
        if room <= 0:
            return 0
        now = utcnow()
        lease_until = now + self.config.lease
        async with self.autocommit.begin() as db:
            repo = WebhookRepository(db)
            rows = await repo.claim_due(
                owner=self.owner,
                now=now,
                lease_until=lease_until,
                limit=min(room, self.config.batch),
            )
            if not rows:
                return 0
            events = await repo.events_by_id({row.event_id for row in rows})
            endpoints = await repo.endpoints_by_id({row.endpoint_id for row in rows})
        bound = self.config.endpoint_concurrency
        busy: list[WebhookDelivery] = []
        for row in rows:
            work = _Work(row, events.get(row.event_id), endpoints.get(row.endpoint_id))
            waiting = self._queued.setdefault(row.endpoint_id, deque())
            if self._per_endpoint[row.endpoint_id] < bound:
                self._start(work)
            elif len(waiting) < bound:
                # Started here as soon as one of the endpoint's requests ends: no claim
                # round trip between two deliveries to a busy receiver.
                waiting.append(work)
            else:
                busy.append(row)
        if busy:
            # Back to the queue, due a little later: other endpoints' deliveries are
            # claimed first meanwhile.
            await self._put_back([(row.id, _lease(row)) for row in busy], now + ENDPOINT_BUSY_DELAY)
        # A full batch asks for the next pass at once; deferred ones do not count.
        return len(rows) - len(busy)

    async def release(self) -> None:
        """Let requests in flight finish within a bound, then hand back every lease (the
        deliveries waiting for their endpoint's turn included)."""
        self._queued.clear()
        if self._in_flight:
            _, pending = await asyncio.wait(
                set(self._in_flight), timeout=self.config.drain_timeout.total_seconds()
            )
            for task in pending:
                task.cancel()
        async with self.autocommit.begin() as db:
            released = await WebhookRepository(db).release_claims(self.owner, utcnow())
        if released:
            logger.info("released %d webhook delivery claims", released)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def _queued_total(self) -> int:
        return sum(len(waiting) for waiting in self._queued.values())

    def _start(self, work: _Work) -> None:
        self._per_endpoint[work.row.endpoint_id] += 1
        task = asyncio.create_task(self._guarded(work))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _put_back(self, claims: Sequence[tuple[uuid.UUID, datetime]], due: datetime) -> None:
        async with self.autocommit.begin() as db:
            await WebhookRepository(db).put_back(claims, owner=self.owner, due=due)

    async def _guarded(self, work: _Work) -> None:
        try:
            await self._deliver(work.row, work.event, work.endpoint)
        except Exception:
            # The lease runs out and a later pass sends again; never lose the loop.
            logger.exception("webhook delivery %s failed", work.row.id)
        finally:
            endpoint_id = work.row.endpoint_id
            self._per_endpoint[endpoint_id] -= 1
            if self._per_endpoint[endpoint_id] <= 0:
                del self._per_endpoint[endpoint_id]
            try:
                await self._next_for(endpoint_id)
            except Exception:
                # Waiting claims run out by themselves and are claimed again.
                logger.exception("starting the next delivery to endpoint %s failed", endpoint_id)
            self.wake.set()

    async def _next_for(self, endpoint_id: uuid.UUID) -> None:
        """Start the endpoint's next waiting delivery, if its lease still outlasts an
        attempt; one that waited too long goes back to the queue instead (sending it
        could race the process that takes it over)."""
        waiting = self._queued.get(endpoint_id)
        stale: list[tuple[uuid.UUID, datetime]] = []
        while waiting:
            work = waiting.popleft()
            if _lease(work.row) - utcnow() > self.config.timeout + LEASE_MARGIN:
                self._start(work)
                break
            stale.append((work.row.id, _lease(work.row)))
        if waiting is not None and not waiting:
            self._queued.pop(endpoint_id, None)
        if stale:
            await self._put_back(stale, utcnow())

    # --- one attempt -------------------------------------------------------------------

    async def _deliver(
        self,
        row: WebhookDelivery,
        event: WebhookEvent | None,
        endpoint: WebhookEndpoint | None,
    ) -> None:
        if event is None or endpoint is None or not endpoint.enabled:
            reason = "the endpoint is disabled" if endpoint is not None else "no endpoint"
            outcome = _Outcome(FAILED, None, reason)
        else:
            outcome = await self._attempt(row, event, endpoint)
        await self._write(row, outcome)

    async def _attempt(
        self, row: WebhookDelivery, event: WebhookEvent, endpoint: WebhookEndpoint
    ) -> _Outcome:
        attempts = row.attempts + 1
        policy = UrlPolicy.of(
            allow_http=endpoint.allow_http,
            allow_private=endpoint.allow_private,
            dev=self.config.dev,
        )
        now = utcnow()
        refused = await check_resolved(endpoint.url, policy)
        if refused is not None:
            attempt = AttemptRecord(now, None, 0.0, None, f"not sent: {refused}")
            return self._retry_or_fail(attempts, attempt, refused)
        payload = envelope.body(event)
        headers = signing.headers(
            envelope.message_id(event), now, payload, self._secrets(endpoint, now)
        )
        headers["content-type"] = "application/json"
        headers["user-agent"] = USER_AGENT
        started = time.perf_counter()
        try:
            async with self.http.stream(
                "POST",
                endpoint.url,
                content=payload,
                headers=headers,
                timeout=self.config.timeout.total_seconds(),
            ) as response:
                answer = await _read_start(response)
                status = response.status_code
        except httpx.HTTPError as exc:
            latency = (time.perf_counter() - started) * 1000
            error = f"{type(exc).__name__}: {exc}"[:RESPONSE_BODY_LIMIT]
            attempt = AttemptRecord(now, None, latency, None, replace_unstorable_text(error))
            return self._retry_or_fail(attempts, attempt, error)
        latency = (time.perf_counter() - started) * 1000
        crashpoints.reach("webhook.sent")
        attempt = AttemptRecord(now, status, latency, answer, None)
        if 200 <= status < 300:
            return _Outcome(DELIVERED, attempt, None)
        if status == 410:
            reason = "the receiver answered 410 Gone"
            return _Outcome(FAILED, attempt, reason, disable_endpoint=reason)
        return self._retry_or_fail(attempts, attempt, f"the receiver answered {status}")

    def _retry_or_fail(self, attempts: int, attempt: AttemptRecord, error: str) -> _Outcome:
        if attempts > len(self.config.retry_schedule):
            return _Outcome(FAILED, attempt, error)
        return _Outcome(PENDING, attempt, error)

    def _secrets(self, endpoint: WebhookEndpoint, now: datetime) -> list[str]:
        current = [self.secret_box.decrypt(endpoint.secret_encrypted)]
        if (
            endpoint.previous_secret_encrypted is not None
            and endpoint.previous_secret_expires_at is not None
            and endpoint.previous_secret_expires_at > now
        ):
            current.append(self.secret_box.decrypt(endpoint.previous_secret_encrypted))
        return current

    def retry_wait(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failed attempt, with its jitter."""
        base = self.config.retry_schedule[attempts - 1]
        return base * (1 + random.uniform(-JITTER, JITTER))

    async def _write(self, row: WebhookDelivery, outcome: _Outcome) -> None:
        attempts = row.attempts + (1 if outcome.attempt is not None else 0)
        now = utcnow()
        next_attempt = now + self.retry_wait(attempts) if outcome.status == PENDING else None
        async with self.sessionmaker.begin() as db:
            repo = WebhookRepository(db)
            if outcome.disable_endpoint is not None:
                # The endpoint first, then its deliveries: the order every disabling
                # transaction takes its locks in (two 410s at once would deadlock).
                await repo.lock_endpoint(row.endpoint_id)
            if outcome.attempt is not None:
                # What was sent happened, whoever holds the delivery now.
                await repo.record_attempt(row.id, outcome.attempt)
            held = await repo.settle(
                row.id,
                owner=self.owner,
                lease_until=_lease(row),
                status=outcome.status,
                attempts=attempts,
                attempted_at=outcome.attempt.attempted_at if outcome.attempt else None,
                next_attempt_at=next_attempt,
                error=outcome.error,
            )
            if held and outcome.disable_endpoint is not None:
                await repo.disable_endpoint(row.endpoint_id, outcome.disable_endpoint)
        if not held:
            logger.info("claim on webhook delivery %s was taken over; result dropped", row.id)
            return
        metrics.webhook_delivery(
            "retry" if outcome.status == PENDING else outcome.status,
            outcome.attempt.latency_ms / 1000 if outcome.attempt else None,
        )


def _lease(row: WebhookDelivery) -> datetime:
    # The claim set it; a claimed row always has one.
    assert row.next_check_at is not None
    return row.next_check_at


async def _read_start(response: httpx.Response) -> str | None:
    """The first ``RESPONSE_BODY_LIMIT`` characters of the answer; the rest is not read."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size >= RESPONSE_BODY_LIMIT * 4:
            break
    if not size:
        return None
    text = b"".join(chunks).decode("utf-8", errors="replace")[:RESPONSE_BODY_LIMIT]
    return replace_unstorable_text(text)
