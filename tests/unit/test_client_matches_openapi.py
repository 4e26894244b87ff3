"""The API is documented with stable operation ids, and the tests' typed client
(tests/support/client.py) has one method per operation, with the document's parameters."""

from __future__ import annotations

import inspect
import re
import typing
from typing import Any, is_typeddict

import pytest

from app.main import create_app
from tests.conftest import make_settings
from tests.support.client import Operation, PalisadeClient, operations_of

OPERATION_ID = re.compile(r"^[a-z]+[A-Z][A-Za-z]*$")
TAGS = {"sessions", "tenants", "api-keys", "tenant-webhooks", "webhooks", "operations"}


def _document() -> dict[str, Any]:
    document: dict[str, Any] = create_app(
        make_settings("postgresql://palisade@127.0.0.1:9/none")
    ).openapi()
    return document


DOCUMENT = _document()
OPERATIONS = {
    operation["operationId"]: (method.upper(), path, operation)
    for path, item in DOCUMENT["paths"].items()
    for method, operation in item.items()
    if isinstance(operation, dict) and "operationId" in operation
}
CLIENT = operations_of(PalisadeClient)


def test_every_operation_has_an_explicit_camel_case_id_and_a_known_tag() -> None:
    seen: list[str] = []
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            # FastAPI's default ids are snake case with the path in them.
            assert OPERATION_ID.match(operation.get("operationId", "")), where
            assert operation.get("tags"), where
            assert set(operation["tags"]) <= TAGS, where
            seen.append(operation["operationId"])
    assert len(seen) == len(set(seen)), "operation ids must be unique"
    assert {tag["name"] for tag in DOCUMENT.get("tags", [])} == TAGS


def test_the_client_has_one_method_per_operation() -> None:
    assert set(CLIENT) == set(OPERATIONS)


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        resolved: dict[str, Any] = DOCUMENT["components"]["schemas"][
            schema["$ref"].rsplit("/", 1)[1]
        ]
        return resolved
    for option in schema.get("anyOf", []):
        if option.get("type") != "null":
            return _resolve(option)
    if "oneOf" in schema:
        # A tagged union (an interaction, by event type): one body shape whose members
        # every variant has, required where every variant requires them.
        variants = [_resolve(option) for option in schema["oneOf"]]
        keys = {frozenset(v.get("properties", {})) for v in variants}
        assert len(keys) == 1, "the variants of a body have different members"
        required = set.intersection(*(set(v.get("required", [])) for v in variants))
        return {"properties": variants[0]["properties"], "required": sorted(required)}
    return schema


def _assert_same_keys(typed: type, schema: dict[str, Any], where: str) -> None:
    hints = typing.get_type_hints(typed)
    properties = _resolve(schema).get("properties", {})
    assert set(hints) == set(properties), where
    required = set(_resolve(schema).get("required", []))
    assert required <= typed.__required_keys__, where  # type: ignore[attr-defined]
    for key, hint in hints.items():
        inner = [a for a in typing.get_args(hint) if is_typeddict(a)]
        nested = hint if is_typeddict(hint) else (inner[0] if inner else None)
        if nested is not None:
            _assert_same_keys(nested, properties[key], f"{where}.{key}")


def _wire_name(python_name: str) -> str:
    return python_name.replace("_", "-").lower()


@pytest.mark.parametrize("operation_id", sorted(OPERATIONS))
def test_the_method_sends_what_the_document_says(operation_id: str) -> None:
    method, path, documented = OPERATIONS[operation_id]
    name, declared = CLIENT[operation_id]
    assert isinstance(declared, Operation)
    assert (declared.method, declared.path) == (method, path)

    parameters = inspect.signature(getattr(PalisadeClient, name)).parameters
    positional = [
        p.name
        for p in parameters.values()
        if p.kind is p.POSITIONAL_OR_KEYWORD and p.name not in {"self", "body"}
    ]
    keyword = {_wire_name(p.name) for p in parameters.values() if p.kind is p.KEYWORD_ONLY}
    by_place: dict[str, list[str]] = {"path": [], "query": [], "header": []}
    for parameter in documented.get("parameters", []):
        by_place[parameter["in"]].append(parameter["name"])
    assert positional == re.findall(r"\{(\w+)\}", path) == by_place["path"]
    assert keyword == {_wire_name(n) for n in by_place["query"] + by_place["header"]}

    body = documented.get("requestBody")
    assert ("body" in parameters) == (body is not None)
    assert (declared.body is not None) == (body is not None)
    if body is not None:
        assert declared.body is not None
        schema = body["content"]["application/json"]["schema"]
        _assert_same_keys(declared.body, schema, operation_id)
