from __future__ import annotations

from app.errors import (
    AppError,
    BadRequest,
    Conflict,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    ValidationFailed,
)


class SessionNotFound(NotFound):
    code = "session_not_found"
    title = "Session not found"


class TenantConcurrencyLimit(TooManyRequests):
    code = "tenant_concurrency_limit"
    title = "The tenant is at its limit of concurrent sessions"


class IdempotencyKeyMismatch(ValidationFailed):
    code = "idempotency_key_mismatch"
    title = "This Idempotency-Key was used with a different request body"


class IdempotencyKeyInFlight(Conflict):
    code = "idempotency_key_in_flight"
    title = "A request with this Idempotency-Key is still being processed"


class InvalidIdempotencyKey(BadRequest):
    code = "invalid_idempotency_key"
    title = "Idempotency-Key must be 1-255 printable ASCII characters"


class SessionNotEndable(Conflict):
    code = "session_not_endable"
    title = "The session cannot be ended in its current state"


class InvalidCursor(BadRequest):
    code = "invalid_cursor"
    title = "The pagination cursor is malformed"


class ProfileChanging(Conflict):
    code = "profile_changing"
    title = "The session's profile kept changing while the session was being admitted"


class SessionNotActive(Conflict):
    code = "session_not_active"
    title = "The session is not active"


class InteractionTooLarge(PayloadTooLarge):
    """Over Tavus's size limit as Tavus would receive it (the same code as any body
    too large)."""


class InteractionRateLimited(TooManyRequests):
    code = "interaction_rate_limited"
    title = "The conversation is at Tavus's rate limit for interactions"


class InteractionOutcomeUnknown(AppError):
    status_code = 504
    code = "interaction_outcome_unknown"
    title = "Tavus may or may not have delivered the interaction"


class TranscriptNotAvailable(NotFound):
    code = "transcript_not_available"
    title = "Tavus has not sent this session's transcript"
