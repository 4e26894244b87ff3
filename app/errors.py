"""The one error tree of Palisade's own API, and the one place it becomes a document.

Every error a client can see is an :class:`AppError` subclass carrying its HTTP
status and a stable machine-readable ``code``. :func:`problem` renders one as an RFC 9457
problem document (``application/problem+json``, with the extra ``code`` member), as
bytes: the exception handlers (``app.api.problems``), the body-size middleware and a
start's stored answer (replayed byte for byte) all send what it returns. Services raise
errors and never build HTTP responses themselves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

PROBLEM_JSON: Final = "application/problem+json"
APPLICATION_JSON: Final = "application/json"
PROBLEM_TYPE_BASE: Final = "https://palisade.dev/problems/"


@dataclass(frozen=True)
class Rendered:
    """An HTTP answer as it is sent: what a replay sends again, byte for byte."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def media_type(self) -> str:
        return PROBLEM_JSON if self.status >= 400 else APPLICATION_JSON


def json_bytes(payload: Any) -> bytes:
    """JSON as Palisade sends it (Starlette's ``JSONResponse`` encoding)."""
    return json.dumps(
        payload, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")


def problem(error: AppError) -> Rendered:
    """``error`` as the problem document Palisade answers with."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + error.code.replace("_", "-"),
        "title": error.title,
        "status": error.status_code,
        "code": error.code,
        "detail": error.detail,
        **error.extra,
    }
    return Rendered(error.status_code, json_bytes(body), dict(error.headers))


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


class MethodNotAllowed(AppError):
    status_code = 405
    code = "method_not_allowed"
    title = "Method not allowed"


class NotAcceptable(AppError):
    status_code = 406
    code = "not_acceptable"
    title = "Not acceptable"


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


# The errors Starlette raises by status (routing, body limits), as Palisade's own.
_BY_STATUS: Final[dict[int, type[AppError]]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    406: NotAcceptable,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: ValidationFailed,
    429: TooManyRequests,
    503: ServiceUnavailable,
}


def error_for_status(
    status: int, detail: str | None = None, headers: dict[str, str] | None = None
) -> AppError:
    """The Palisade error for an HTTP status the framework raised."""
    known = _BY_STATUS.get(status)
    if known is None:
        known = type("HttpError", (AppError,), {"status_code": status, "code": "http_error"})
    return known(detail, headers=headers)
