"""Schemathesis against Palisade's own OpenAPI document, on the live stack.

Each operation of `/openapi.json` gets schema-valid and schema-invalid requests, sent
over a real socket to Palisade on a real PostgreSQL, talking to the Tavus simulator, as
the admin and as a tenant. Every answer must be: no 5xx, a documented status, the
documented content type and body (problem documents included), and a 4xx for invalid
input. Half the requests name objects that exist (the tenant, a live session with its
webhook token), so they reach the code behind the lookups.

Hypothesis is synchronous and the stack lives on the test's event loop: the requests
are sent from a worker thread while the loop serves them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import GenerationMode

from app.main import create_app
from app.settings import DEV_ADMIN_TOKEN
from tests.conftest import make_settings
from tests.fuzz import budget
from tests.integration.api.test_sessions import setup_tenant, start
from tests.support.stack import Palisade, SimulatorHandle

Operation = schemathesis.APIOperation[Any, Any, Any, Any]
GeneratedCase = schemathesis.Case[Operation]

_DOCUMENT = create_app(make_settings(None)).openapi()
OPERATIONS = [
    (method.upper(), path) for path, item in _DOCUMENT["paths"].items() for method in item
]


def _config(tenant_key: str) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "auth": {
                "openapi": {
                    "AdminToken": {"bearer": DEV_ADMIN_TOKEN},
                    "TenantApiKey": {"bearer": tenant_key},
                }
            },
            # Credentials stay valid in generated requests: ignored_auth probes the missing and
            # wrong ones itself, and invalid data is then aimed at the parameters and body.
            "generation": {"with-security-parameters": False},
            "checks": {
                # A schema-valid body can still break a rule no JSON Schema states (a
                # default_profile naming one of the tenant's profiles, a persistent PAL
                # that must exist on Tavus): those 422s are the API working, not failing.
                "positive_data_acceptance": {"enabled": False},
            },
        }
    )


def _has_inputs(operation: Operation) -> bool:
    definition = operation.definition.raw
    return bool(definition.get("parameters") or definition.get("requestBody"))


def _cases(operation: Operation, known: dict[str, str]) -> st.SearchStrategy[GeneratedCase]:
    """Generated requests, free and aimed at the objects that exist."""
    parameters = operation.definition.raw.get("parameters", [])
    in_path = {p["name"] for p in parameters if p["in"] == "path"}
    in_query = {p["name"] for p in parameters if p["in"] == "query"}
    pinned = {name: value for name, value in known.items() if name in in_path}
    query = {name: value for name, value in known.items() if name in in_query} or None
    modes = [GenerationMode.POSITIVE]
    if _has_inputs(operation):
        modes.append(GenerationMode.NEGATIVE)
    strategies = [operation.as_strategy(mode) for mode in modes]
    if pinned:
        strategies += [
            operation.as_strategy(mode, path_parameters=pinned, query=query) for mode in modes
        ]
    return st.one_of(strategies)


def _fuzz(
    palisade: Palisade, method: str, path: str, tenant_key: str, known: dict[str, str]
) -> None:
    """The synchronous half: load the live document, generate, send, validate."""
    schema = schemathesis.openapi.from_url(
        f"{palisade.url}/openapi.json", config=_config(tenant_key)
    )
    operation = schema[path][method]

    with requests.Session() as http:

        @budget.seeded
        @budget.hypothesis_settings(max_examples=budget.examples_per_operation())
        @given(case=_cases(operation, known))
        def conforms(case: GeneratedCase) -> None:
            case.call_and_validate(base_url=palisade.url, session=http)

        conforms()


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
async def test_operation_conforms_to_its_documentation(
    method: str, path: str, palisade: Palisade, simulator: SimulatorHandle
) -> None:
    tenant_key, _ = await setup_tenant(palisade, cap=1000)
    session = await start(palisade, tenant_key, {"profile": "voices"})
    assert session.status_code == 201, session.text
    session_id: str = session.json()["id"]
    keys = (await palisade.admin("GET", "/tenants/acme/api-keys")).json()["items"]
    known = {
        "tenant_id": "acme",
        "name": "voices",
        "key_id": keys[0]["id"],
        "session_id": session_id,
        "token": palisade.runtime.webhook_tokens.token_for(session_id),
    }
    await asyncio.to_thread(_fuzz, palisade, method, path, tenant_key, known)
