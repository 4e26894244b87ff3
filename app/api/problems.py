"""Render every error as RFC 9457 problem details with a stable ``code`` member.

This is the one place where exceptions become HTTP responses.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.db.errors import CANDIDATES, is_database_unreachable
from app.domain.profiles.errors import problem_code
from app.errors import AppError, DatabaseUnavailable, MalformedBody, ValidationFailed

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
# A restart or failover of PostgreSQL takes seconds.
DATABASE_RETRY_AFTER_SECONDS = 1

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
}


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://palisade.dev/problems/{code.replace('_', '-')}",
        "title": title,
        "status": status,
        "code": code,
    }
    if detail:
        body["detail"] = detail
    body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Input values are never echoed back: bodies may carry provider API keys.
    return [
        {
            "loc": list(error.get("loc", ())),
            "code": problem_code(str(error.get("type", ""))),
            "msg": error.get("msg"),
        }
        for error in exc.errors()
    ]


async def _app_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return problem_response(
        exc.status_code, exc.code, exc.title, exc.detail, headers=exc.headers, **exc.extra
    )


async def _request_validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _validation_errors(exc)
    if any(str(e.get("type")) == "json_invalid" for e in exc.errors()):
        malformed = MalformedBody()
        return problem_response(400, malformed.code, malformed.title, errors[0]["msg"])
    failed = ValidationFailed()
    return problem_response(422, failed.code, failed.title, "see errors", errors=errors)


async def _http_exception(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return problem_response(
        exc.status_code,
        code,
        code.replace("_", " ").capitalize(),
        str(exc.detail) if exc.detail else None,
        headers=dict(exc.headers or {}),
    )


async def _unhandled(_: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error", exc_info=exc)
    return problem_response(500, "internal_error", "Internal error")


async def _database_failure(request: Request, exc: Exception) -> JSONResponse:
    if not is_database_unreachable(exc):
        return await _unhandled(request, exc)
    # A restart or failover, not a bug: one line, no traceback; the client retries.
    logger.warning("database unreachable: %s", type(exc).__name__)
    return await _app_error(
        request,
        DatabaseUnavailable(
            "PostgreSQL cannot be reached right now; retry shortly",
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
        ),
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    for candidate in CANDIDATES:
        app.add_exception_handler(candidate, _database_failure)
    app.add_exception_handler(Exception, _unhandled)
