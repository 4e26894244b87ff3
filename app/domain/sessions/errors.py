from __future__ import annotations

from app.errors import BadRequest, Conflict, NotFound, TooManyRequests, ValidationFailed


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
