"""Every error response in the OpenAPI document is the problem document Palisade sends."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.api.problems import ProblemDetails, problem_response
from app.errors import PROBLEM_JSON, ValidationFailed
from app.main import create_app
from app.settings import Mode, Settings

DOCUMENT = create_app(
    Settings.model_validate({"DATABASE_URL": None, "PALISADE_MODE": Mode.DEV})
).openapi()
OPERATIONS = [
    (method.upper(), path, operation)
    for path, item in DOCUMENT["paths"].items()
    for method, operation in item.items()
]
PROBLEM = {"$ref": "#/components/schemas/ProblemDetails"}


def _errors(operation: dict[str, Any]) -> dict[str, Any]:
    return {s: r for s, r in operation["responses"].items() if s.startswith(("4", "5"))}


@pytest.mark.parametrize(
    ("method", "path", "operation"), OPERATIONS, ids=[f"{m} {p}" for m, p, _ in OPERATIONS]
)
def test_error_responses_are_problem_documents(
    method: str, path: str, operation: dict[str, Any]
) -> None:
    for status, response in _errors(operation).items():
        if (method, path, status) == ("GET", "/readyz", "503"):
            continue  # the readiness report, not an error of a request
        assert response["content"] == {PROBLEM_JSON: {"schema": PROBLEM}}, (status, response)


@pytest.mark.parametrize(
    ("method", "path", "operation"), OPERATIONS, ids=[f"{m} {p}" for m, p, _ in OPERATIONS]
)
def test_statuses_every_operation_of_its_kind_can_answer_are_documented(
    method: str, path: str, operation: dict[str, Any]
) -> None:
    documented = set(_errors(operation))
    if operation.get("security"):
        assert "401" in documented
    if "requestBody" in operation:
        assert {"400", "413", "422"} <= documented
    if operation.get("parameters"):
        assert "422" in documented


def test_fastapis_own_validation_error_shape_is_gone() -> None:
    schemas = DOCUMENT["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert "ValidationError" not in schemas
    assert "HTTPValidationError" not in json.dumps(DOCUMENT)


def test_the_documented_shape_is_what_palisade_sends() -> None:
    error = {"loc": ["body", "name"], "code": "too_long", "msg": "String should be shorter"}
    response = problem_response(ValidationFailed("Invalid", errors=[error], limit=3))
    sent = json.loads(bytes(response.body))
    problem = ProblemDetails.model_validate(sent)
    assert problem.errors is not None
    assert problem.errors[0].loc == ["body", "name"]
    assert problem.model_extra == {"limit": 3}
