"""Render every error as RFC 9457 problem details with a stable ``code`` member.

This is the one place where exceptions become HTTP responses, and where the OpenAPI
document learns what those responses look like: routes name their error statuses in
``responses=`` with a description only, and :func:`document_problems` gives every error
response the ``application/problem+json`` schema, adding the statuses every operation
of its kind can answer (401 with credentials, 400/413/422 with a body).
"""

from __future__ import annotations

import logging
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.db.errors import CANDIDATES, is_database_unreachable
from app.domain.profiles.errors import problem_code
from app.errors import (
    PROBLEM_JSON,
    AppError,
    DatabaseUnavailable,
    MalformedBody,
    Rendered,
    ValidationFailed,
    error_for_status,
    problem,
)

logger = logging.getLogger(__name__)

# A restart or failover of PostgreSQL takes seconds.
DATABASE_RETRY_AFTER_SECONDS = 1


class ProblemFieldError(BaseModel):
    """One invalid input: where it is, a stable code, a message (the value is never echoed)."""

    loc: list[str | int]
    code: str
    msg: str


class ProblemDetails(BaseModel):
    """Every error Palisade answers: RFC 9457 problem details with a stable `code`.

    Some codes add members of their own (`errors`, `limit`, `session_id`, `tavus_status`,
    ...); clients should ignore members they do not know.
    """

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    code: str
    detail: str | None = None
    errors: list[ProblemFieldError] | None = None


def respond(rendered: Rendered) -> Response:
    """Send a rendered answer (``app.errors.problem``, or a start's stored answer)."""
    return Response(
        rendered.body,
        status_code=rendered.status,
        headers=rendered.headers,
        media_type=rendered.media_type,
    )


def problem_response(error: AppError) -> Response:
    return respond(problem(error))


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


async def _app_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    return problem_response(exc)


def validation_error(exc: RequestValidationError) -> AppError:
    """What a request FastAPI could not validate is answered with."""
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            # The decoder's reason (never the input itself): a position, or the rule broken.
            reason = (error.get("ctx") or {}).get("error") or error.get("msg")
            return MalformedBody(str(reason))
    return ValidationFailed("see errors", errors=_validation_errors(exc))


async def _request_validation(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return problem_response(validation_error(exc))


async def _http_exception(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = str(exc.detail) if exc.detail else None
    return problem_response(
        error_for_status(exc.status_code, detail, headers=dict(exc.headers or {}))
    )


async def _unhandled(_: Request, exc: Exception) -> Response:
    logger.exception("unhandled error", exc_info=exc)
    return problem_response(AppError())


async def _database_failure(request: Request, exc: Exception) -> Response:
    if not is_database_unreachable(exc):
        return await _unhandled(request, exc)
    # A restart or failover, not a bug: one line, no traceback; the client retries.
    logger.warning("database unreachable: %s", type(exc).__name__)
    return problem_response(
        DatabaseUnavailable(
            "PostgreSQL cannot be reached right now; retry shortly",
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
        )
    )


_SCHEMAS_REF: Final = "#/components/schemas/"
# FastAPI documents its own validation error shape, which Palisade never sends.
_FASTAPI_VALIDATION_SCHEMAS: Final = ("HTTPValidationError", "ValidationError")
_HTTP_METHODS: Final = frozenset({"get", "put", "post", "delete", "patch", "head", "options"})

_CREDENTIALS_PROBLEMS: Final = {
    401: "Missing or invalid credentials (`unauthorized`)",
    # Credentials are checked against the database.
    503: "PostgreSQL cannot be reached right now (`database_unavailable`, with Retry-After)",
}
_BODY_PROBLEMS: Final = {
    400: "Malformed JSON body (`malformed_json`)",
    413: "Body too large (`payload_too_large`)",
}
_VALIDATION_PROBLEM: Final = {422: "Invalid request (`validation_error`; `errors` says where)"}


def document_problems(openapi: dict[str, Any]) -> dict[str, Any]:
    """Describe every error response of the OpenAPI document as a problem document."""
    for path_item in openapi.get("paths", {}).values():
        for method, operation in path_item.items():
            if method in _HTTP_METHODS:
                _document_operation(operation)
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    problem_schema = ProblemDetails.model_json_schema(ref_template=_SCHEMAS_REF + "{model}")
    schemas.update(problem_schema.pop("$defs", {}))
    schemas["ProblemDetails"] = problem_schema
    return openapi


def _document_operation(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    implied: dict[int, str] = {}
    if operation.get("security"):
        implied.update(_CREDENTIALS_PROBLEMS)
    if "requestBody" in operation:
        implied.update(_BODY_PROBLEMS)
    if "requestBody" in operation or operation.get("parameters"):
        implied.update(_VALIDATION_PROBLEM)
    for implied_status, description in implied.items():
        responses.setdefault(str(implied_status), {"description": description})
    for status, response in responses.items():
        if not status.startswith(("4", "5")):
            continue
        if _is_fastapi_validation_error(response):
            response["description"] = _VALIDATION_PROBLEM[422]
            del response["content"]
        # An error response with a body of its own (readiness) keeps it.
        response.setdefault(
            "content", {PROBLEM_JSON: {"schema": {"$ref": f"{_SCHEMAS_REF}ProblemDetails"}}}
        )


def _is_fastapi_validation_error(response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref") == f"{_SCHEMAS_REF}HTTPValidationError")


def install(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    for candidate in CANDIDATES:
        app.add_exception_handler(candidate, _database_failure)
    app.add_exception_handler(Exception, _unhandled)
