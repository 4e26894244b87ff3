"""Prometheus metrics: their definitions, the one-line hooks domain code calls, the scrape.

Names and labels are a contract with dashboards and alert rules (docs/observability.md);
change them only together. Labels stay bounded: tenants and profiles are configured by
the operator, everything else comes from fixed sets. Session, conversation and PAL ids,
and raw paths, never become labels.

Several ``palisade serve`` workers share one set of figures through prometheus-client's
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set by the CLI before the workers
start). The session gauges are read from the database just before a scrape is rendered,
by whichever worker answers it, and exposed as that latest read: they never add up
across workers.
"""

from __future__ import annotations

import functools
import math
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ParamSpec, Protocol, TypeVar

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from app.observability.logging import get_logger
from app.tavus.errors import TavusError
from app.tavus.operations import Operation

if TYPE_CHECKING:
    from app.db.models import Session

P = ParamSpec("P")
T = TypeVar("T")

logger = get_logger(__name__)

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

# `_created` series double the output and no dashboard reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

# --- HTTP --------------------------------------------------------------------------------

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"

HTTP_REQUEST_DURATION = Histogram(
    "palisade_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and status code.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)


def observe_http_request(method: str, route: str, status: int, seconds: float) -> None:
    label = method if method in HTTP_METHODS else "other"
    HTTP_REQUEST_DURATION.labels(label, route, str(status)).observe(seconds)


# --- sessions ----------------------------------------------------------------------------

SESSIONS_STARTED = Counter(
    "palisade_sessions_started",
    "Sessions that became active.",
    ["tenant", "profile", "strategy"],
)
SESSION_START_DURATION = Histogram(
    "palisade_session_start_duration_seconds",
    "From the start request's admission to the session being active.",
    ["strategy"],
    buckets=(0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0, 60.0, 120.0),
)
TIME_TO_FACE = Histogram(
    "palisade_time_to_face_seconds",
    "From the session being active to the face joining the room.",
    ["strategy"],
    buckets=(1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 300.0),
)


def session_active(row: Session) -> None:
    """Count a session that just became active, and how long its start took."""
    SESSIONS_STARTED.labels(row.tenant_id, row.profile, row.strategy).inc()
    if row.active_at is not None:
        SESSION_START_DURATION.labels(row.strategy).observe(_seconds(row.created_at, row.active_at))


def face_joined(row: Session) -> None:
    """Record the time to face of a session whose ``joined_at`` was just set."""
    if row.active_at is not None and row.joined_at is not None:
        TIME_TO_FACE.labels(row.strategy).observe(_seconds(row.active_at, row.joined_at))


SESSION_BILLED_SECONDS = Histogram(
    "palisade_session_billed_seconds",
    "What a session's conversation ran on Tavus, from its creation to its end (Tavus's "
    "times): what it cost. Observed once per session, when it becomes known.",
    ["tenant", "profile", "strategy"],
    buckets=(30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 2700.0, 3600.0, 7200.0),
)


def session_billed(row: Session) -> None:
    """Record what a session cost, once its ``billed_seconds`` is known."""
    if row.billed_seconds is not None:
        SESSION_BILLED_SECONDS.labels(row.tenant_id, row.profile, row.strategy).observe(
            row.billed_seconds
        )


# The interactions a caller may relay (DESIGN §4); anything else is counted as `other`.
INTERACTION_EVENT_TYPES = frozenset(
    {
        "conversation.append_llm_context",
        "conversation.overwrite_llm_context",
        "conversation.respond",
        "conversation.interrupt",
        "conversation.echo",
        "conversation.sensitivity",
    }
)
INTERACTION_OUTCOMES = frozenset(
    {
        "accepted",
        "throttled",
        "rate_limited",
        "not_delivered",
        "outcome_unknown",
        "conversation_ended",
        "refused",
    }
)

INTERACTIONS = Counter(
    "palisade_interactions",
    "Interactions relayed to live conversations, by event type and outcome: accepted, "
    "throttled (held back by Palisade's own allowance, not sent), rate_limited (Tavus's "
    "429 outlasted the retries), not_delivered, outcome_unknown (Tavus may have delivered "
    "it), conversation_ended, refused.",
    ["event_type", "outcome"],
)


def interaction(event_type: str, outcome: str) -> None:
    label = event_type if event_type in INTERACTION_EVENT_TYPES else "other"
    INTERACTIONS.labels(label, outcome if outcome in INTERACTION_OUTCOMES else "other").inc()


def _seconds(start: datetime, end: datetime) -> float:
    # Timestamps come from different clocks (database, Palisade, Tavus): never negative.
    return max((end - start).total_seconds(), 0.0)


# --- Tavus -------------------------------------------------------------------------------

TAVUS_OPERATIONS: Mapping[Operation, str] = {
    Operation.CREATE_PAL: "pal.create",
    Operation.GET_PAL: "pal.get",
    Operation.LIST_PALS: "pal.list",
    Operation.DELETE_PAL: "pal.delete",
    Operation.CREATE_CONVERSATION: "conversation.create",
    Operation.GET_CONVERSATION: "conversation.get",
    Operation.LIST_CONVERSATIONS: "conversation.list",
    Operation.END_CONVERSATION: "conversation.end",
    Operation.SEND_APP_MESSAGE: "conversation.send_app_message",
}

TAVUS_REQUEST_DURATION = Histogram(
    "palisade_tavus_request_duration_seconds",
    "One HTTP exchange with Tavus (each retry counts), by outcome: ok or the error class.",
    ["operation", "outcome"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0),
)
TAVUS_ERRORS = Counter(
    "palisade_tavus_errors",
    "Failed HTTP exchanges with Tavus, by error class.",
    ["operation", "error_class"],
)


async def tavus_attempt(operation: Operation, exchange: Awaitable[T]) -> T:
    """Await one Tavus exchange, timing it and counting its outcome."""
    label = TAVUS_OPERATIONS[operation]
    started = time.perf_counter()
    try:
        result = await exchange
    except TavusError as error:
        outcome = type(error).__name__
        TAVUS_REQUEST_DURATION.labels(label, outcome).observe(time.perf_counter() - started)
        TAVUS_ERRORS.labels(label, outcome).inc()
        raise
    TAVUS_REQUEST_DURATION.labels(label, "ok").observe(time.perf_counter() - started)
    return result


# --- webhooks ----------------------------------------------------------------------------

# Tavus's documented conversation callbacks; anything else is counted as `other`.
WEBHOOK_EVENT_TYPES = frozenset(
    {
        "system.replica_joined",
        "system.pal_joined",
        "system.shutdown",
        "application.transcription_ready",
        "application.recording_ready",
        "application.recording_copy_failed",
        "application.perception_analysis",
        "application.perception_unavailable",
        "application.post_call_action_executed",
    }
)

WEBHOOK_LAG = Histogram(
    "palisade_webhook_lag_seconds",
    "From a Tavus event's timestamp to its receipt by Palisade.",
    ["event_type"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0),
)


def webhook_received(event_type: str, occurred_at: datetime | None) -> None:
    """Record how late a webhook arrived (events without a timestamp are not timed)."""
    if occurred_at is None:
        return
    label = event_type if event_type in WEBHOOK_EVENT_TYPES else "other"
    WEBHOOK_LAG.labels(label).observe(_seconds(occurred_at, datetime.now(UTC)))


SHUTDOWN_CLAIMS = Counter(
    "palisade_shutdown_claims",
    "Shutdown webhooks checked with Tavus: confirmed (the session ended) or unconfirmed "
    "(Tavus kept reporting the conversation live; nothing changed).",
    ["outcome"],
)


def shutdown_claim(*, confirmed: bool) -> None:
    SHUTDOWN_CLAIMS.labels("confirmed" if confirmed else "unconfirmed").inc()


TAVUS_LOOKUPS = Counter(
    "palisade_tavus_lookups",
    "Lookups of a PAL or conversation whose create had an unknown outcome, by result: "
    "found, absent (the listing proved it), or incomplete (the listing could not be read "
    "whole; the session stays unresolved and is retried).",
    ["object", "outcome"],
)


def tavus_lookup(obj: str, outcome: str) -> None:
    TAVUS_LOOKUPS.labels(obj, outcome).inc()


TAVUS_EVENTS_SKIPPED = Counter(
    "palisade_tavus_events_skipped",
    "Events in Tavus's verbose conversation reads that could not be read and were skipped.",
)


def tavus_events_skipped(count: int) -> None:
    if count:
        TAVUS_EVENTS_SKIPPED.inc(count)


# --- background work ---------------------------------------------------------------------

SWEEP_KINDS = ("pal", "conversation")
SWEEP_ORPHANS_FOUND = Counter(
    "palisade_sweep_orphans_found",
    "Tavus objects the orphan sweep attributed to no live session (dry runs included).",
    ["kind"],
)
SWEEP_ORPHANS_REMOVED = Counter(
    "palisade_sweep_orphans_removed",
    "Orphaned Tavus objects the sweep deleted (PALs) or ended (conversations).",
    ["kind"],
)
for _kind in SWEEP_KINDS:
    # Present from the start, so that increase() sees the first orphan.
    SWEEP_ORPHANS_FOUND.labels(_kind)
    SWEEP_ORPHANS_REMOVED.labels(_kind)


class SweepAction(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def done(self) -> bool: ...


def sweep_orphans(orphans: Iterable[SweepAction]) -> None:
    """Count the orphans a sweep decided to remove, and those it did remove."""
    for orphan in orphans:
        SWEEP_ORPHANS_FOUND.labels(orphan.kind).inc()
        if orphan.done:
            SWEEP_ORPHANS_REMOVED.labels(orphan.kind).inc()


RECONCILER_CYCLE_DURATION = Histogram(
    "palisade_reconciler_cycle_duration_seconds",
    "One reconciler pass: claiming due sessions and handling them.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
RECONCILER_LAST_SUCCESS = Gauge(
    "palisade_reconciler_last_success_timestamp_seconds",
    "When a reconciler pass last completed (Unix time; the latest of any process).",
    multiprocess_mode="max",
)


def reconciler_cycle(tick: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Time each pass of ``tick``; a pass that returns is a success."""

    @functools.wraps(tick)
    async def timed(*args: P.args, **kwargs: P.kwargs) -> T:
        with RECONCILER_CYCLE_DURATION.time():
            result = await tick(*args, **kwargs)
        RECONCILER_LAST_SUCCESS.set_to_current_time()
        return result

    return timed


# --- warm pool -----------------------------------------------------------------------------

WARM_POOL_CLAIMS = Counter(
    "palisade_warm_pool_claims",
    "Ephemeral starts under a profile with a warm pool: hit (a pooled PAL was taken) or "
    "miss (none matched; the start created its own PAL).",
    ["tenant", "profile", "outcome"],
)
WARM_POOL_REFILL_DURATION = Histogram(
    "palisade_warm_pool_refill_duration_seconds",
    "One pooled PAL made: from sending its create to Tavus to recording it ready.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0),
)


def warm_pool_claim(tenant: str, profile: str, *, hit: bool) -> None:
    """Count one start under a pooled profile: did it take a pooled PAL?"""
    WARM_POOL_CLAIMS.labels(tenant, profile, "hit" if hit else "miss").inc()


def warm_pool_refilled(seconds: float) -> None:
    WARM_POOL_REFILL_DURATION.observe(seconds)


# --- tenant webhooks ------------------------------------------------------------------

WEBHOOK_DELIVERIES = Counter(
    "palisade_webhook_attempts_total",
    "Attempts to deliver a tenant webhook, by outcome: delivered (2xx), retry (to be sent "
    "again), failed (retries exhausted, a 410, or the endpoint disabled).",
    ["outcome"],
)
WEBHOOK_ATTEMPT_DURATION = Histogram(
    "palisade_webhook_attempt_duration_seconds",
    "Time from sending a tenant webhook to its receiver's answer (or the failure).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def webhook_delivery(outcome: str, seconds: float | None) -> None:
    WEBHOOK_DELIVERIES.labels(outcome).inc()
    if seconds is not None:
        WEBHOOK_ATTEMPT_DURATION.observe(seconds)


# --- read from the database at scrape time (app.domain.gauges) ----------------------------


# Refreshed from the database just before each scrape is rendered. With several workers,
# "mostrecent" exposes the value of the latest read (by whichever worker answered the
# scrape) instead of one value per worker or their sum.
SESSIONS = Gauge(
    "palisade_sessions",
    "Sessions by status: live ones now, ended and failed ones over the last 24 hours.",
    ["status"],
    multiprocess_mode="mostrecent",
)
CLEANUP_BACKLOG = Gauge(
    "palisade_cleanup_backlog",
    "Ended or failed sessions whose ephemeral PAL is not yet confirmed deleted.",
    multiprocess_mode="mostrecent",
)
CLEANUP_OLDEST_PENDING = Gauge(
    "palisade_cleanup_oldest_pending_seconds",
    "Age of the oldest owed PAL cleanup, since its session ended (0 when none).",
    multiprocess_mode="mostrecent",
)


WARM_POOL_PALS = Gauge(
    "palisade_warm_pool_pals",
    "Warm-pool PALs by tenant, profile and state: creating, ready (what starts can take) "
    "and deleting (expired or no longer wanted, until Tavus confirms).",
    ["tenant", "profile", "state"],
    multiprocess_mode="mostrecent",
)
# Series this process has written: one that disappears (a pool removed) is set to 0.
_pool_series: set[tuple[str, str, str]] = set()


def set_pool_gauges(current: Mapping[tuple[str, str, str], int] | None) -> None:
    """Set the pool gauge to ``current`` counts (tenant, profile, state); None: unknown
    now (NaN), so that a stale count is never mistaken for a current one."""
    if current is None:
        for series in _pool_series:
            WARM_POOL_PALS.labels(*series).set(math.nan)
        return
    for series in _pool_series - set(current):
        WARM_POOL_PALS.labels(*series).set(0)
    for series, count in current.items():
        WARM_POOL_PALS.labels(*series).set(count)
    _pool_series.update(current)


def set_session_gauges(
    by_status: Mapping[str, float], backlog: float, oldest_pending: float
) -> None:
    """Set the session gauges (NaN for a figure unknown now)."""
    for status, count in by_status.items():
        SESSIONS.labels(status).set(count)
    CLEANUP_BACKLOG.set(backlog)
    CLEANUP_OLDEST_PENDING.set(oldest_pending)


WEBHOOK_PENDING = Gauge(
    "palisade_webhook_deliveries_pending",
    "Tenant webhook deliveries not yet delivered nor failed.",
    multiprocess_mode="mostrecent",
)
WEBHOOK_OLDEST_PENDING = Gauge(
    "palisade_webhook_oldest_pending_seconds",
    "Age of the oldest pending tenant webhook delivery, since its event (0 when none).",
    multiprocess_mode="mostrecent",
)


def set_webhook_gauges(pending: float, oldest_pending: float) -> None:
    """Set the webhook gauges (NaN for a figure unknown now)."""
    WEBHOOK_PENDING.set(pending)
    WEBHOOK_OLDEST_PENDING.set(oldest_pending)


def multiprocess_enabled() -> bool:
    return MULTIPROCESS_ENV in os.environ


def render() -> bytes:
    """The Prometheus text exposition: this process's figures, or all workers' together."""
    if not multiprocess_enabled():
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


@contextmanager
def multiprocess_directory() -> Iterator[str]:
    """A fresh directory for the workers' metric files, set in the environment they
    inherit and removed afterwards: stale files of an earlier run would count twice."""
    previous = os.environ.get(MULTIPROCESS_ENV)
    path = tempfile.mkdtemp(prefix="palisade-metrics-")
    os.environ[MULTIPROCESS_ENV] = path
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(MULTIPROCESS_ENV, None)
        else:
            os.environ[MULTIPROCESS_ENV] = previous
        shutil.rmtree(path, ignore_errors=True)
