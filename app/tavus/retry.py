"""Bounded, operation-aware retries for Tavus calls, run by stamina."""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import stamina

from app.tavus.errors import (
    TavusError,
    TavusNotDelivered,
    TavusOutcomeUnknown,
    TavusRateLimited,
    TavusServerError,
    TavusUnreachable,
)
from app.tavus.operations import OperationKind

T = TypeVar("T")

_ANY_TRANSIENT: tuple[type[TavusError], ...] = (
    TavusUnreachable,
    TavusOutcomeUnknown,
    TavusRateLimited,
    TavusServerError,
)

RETRY_ON: Mapping[OperationKind, tuple[type[TavusError], ...]] = {
    OperationKind.READ: _ANY_TRANSIENT,
    OperationKind.IDEMPOTENT_WRITE: _ANY_TRANSIENT,
    # A create is repeated only when Tavus provably did not act on it: the request never
    # left (unreachable) or Tavus refused it outright (429). A timeout or a 5xx may have
    # created a billed object, so those go back to the caller to resolve by lookup.
    OperationKind.CREATE: (TavusUnreachable, TavusRateLimited),
    # Likewise for a message Tavus acts on each time: its 502 says nothing was delivered,
    # but a 504, another 5xx or a lost answer may mean it was, and it is not sent twice.
    OperationKind.AT_MOST_ONCE: (TavusUnreachable, TavusRateLimited, TavusNotDelivered),
}
"""Which errors are retried, by kind of operation. Everything else is raised at once."""

# Interactions that set a state rather than add to it: delivered twice, they leave the
# conversation as once. Every other event type, known or not, is sent at most once
# (docs/tavus-client.md says why for each).
_RESENDABLE_INTERACTIONS = frozenset(
    {"conversation.overwrite_llm_context", "conversation.sensitivity"}
)


def interaction_kind(event_type: str) -> OperationKind:
    """How an interaction of ``event_type`` may be retried."""
    if event_type in _RESENDABLE_INTERACTIONS:
        return OperationKind.IDEMPOTENT_WRITE
    return OperationKind.AT_MOST_ONCE


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Limits for retrying one Tavus call.

    ``attempts`` counts the first try. ``timeout`` is the total budget in seconds, checked
    before each retry; a ``Retry-After`` that would overrun it ends the retries early.
    Backoff is exponential from ``wait_initial`` up to ``wait_max`` plus up to
    ``wait_jitter`` of random jitter; a ``Retry-After`` is honoured up to
    ``retry_after_cap``, plus up to ``retry_after_jitter`` so that callers told the same
    time do not all come back at once.
    """

    attempts: int = 4
    timeout: float = 45.0
    wait_initial: float = 0.5
    wait_max: float = 8.0
    wait_jitter: float = 1.0
    retry_after_cap: float = 30.0
    retry_after_jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        for name in (
            "timeout",
            "wait_initial",
            "wait_max",
            "wait_jitter",
            "retry_after_cap",
            "retry_after_jitter",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")

    def decide(
        self, kind: OperationKind, error: BaseException, *, elapsed: float = 0.0
    ) -> bool | float:
        """Return False to give up, True to back off normally, or the seconds to wait."""
        if not isinstance(error, RETRY_ON[kind]):
            return False
        if isinstance(error, TavusRateLimited) and error.retry_after is not None:
            wait = min(error.retry_after, self.retry_after_cap)
            if elapsed + wait > self.timeout:
                return False
            return min(wait + self.jitter(), self.timeout - elapsed)
        return True

    def jitter(self) -> float:
        """Seconds added to a ``Retry-After`` wait (a method of its own for tests)."""
        if self.retry_after_jitter == 0:
            return 0.0
        return random.uniform(0.0, self.retry_after_jitter)

    async def run(self, kind: OperationKind, call: Callable[[], Awaitable[T]]) -> T:
        """Await ``call`` under this policy; the last error is re-raised when retries end."""
        started = time.monotonic()

        def on_error(exc: Exception) -> bool | float:
            return self.decide(kind, exc, elapsed=time.monotonic() - started)

        caller = stamina.AsyncRetryingCaller(
            attempts=self.attempts,
            timeout=self.timeout,
            wait_initial=self.wait_initial,
            wait_max=self.wait_max,
            wait_jitter=self.wait_jitter,
        )
        return await caller(on_error, call)


DEFAULT_RETRY_POLICY = RetryPolicy()
NO_RETRY = RetryPolicy(attempts=1)
