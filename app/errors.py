"""The one error tree of Palisade's own API.

Every error a client can see is an :class:`AppError` subclass carrying its HTTP
status and a stable machine-readable ``code``. One handler (``app.api.problems``)
renders them as RFC 9457 problem details; services raise them and never build
HTTP responses themselves.
"""

from __future__ import annotations

from typing import Any, ClassVar


class AppError(Exception):
    """Base of every error Palisade reports to an API client."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = headers or {}
        # Extra members are added to the problem document (e.g. the offending path).
        self.extra = extra


# 400-range: the caller's fault -------------------------------------------------


class BadRequest(AppError):
    status_code = 400
    code = "bad_request"
    title = "Bad request"


class MalformedBody(BadRequest):
    code = "malformed_json"
    title = "Request body is not valid JSON"


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"
    title = "Missing or invalid credentials"


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"
    title = "Not allowed"


class NotFound(AppError):
    status_code = 404
    code = "not_found"
    title = "Not found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"
    title = "Conflict"


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"
    title = "Request body too large"


class UnsupportedMediaType(AppError):
    status_code = 415
    code = "unsupported_media_type"
    title = "Request body must be application/json"


class ValidationFailed(AppError):
    status_code = 422
    code = "validation_error"
    title = "Request failed validation"


class TooManyRequests(AppError):
    status_code = 429
    code = "too_many_requests"
    title = "Too many requests"


# 500-range: ours or upstream's --------------------------------------------------


class ServiceUnavailable(AppError):
    status_code = 503
    code = "service_unavailable"
    title = "Service unavailable"


class DatabaseUnavailable(ServiceUnavailable):
    code = "database_unavailable"
    title = "The database cannot be reached right now"


class UpstreamError(AppError):
    status_code = 502
    code = "upstream_error"
    title = "Tavus request failed"


class UpstreamCapacity(AppError):
    status_code = 503
    code = "upstream_capacity"
    title = "Tavus account is at its concurrent conversation limit"
