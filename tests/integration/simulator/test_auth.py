from __future__ import annotations

import pytest

from tests.integration.simulator.conftest import Harness, HarnessFactory

INVALID_TOKEN = {"message": "Invalid access token"}
ENDPOINTS = [
    ("POST", "/v2/pals"),
    ("GET", "/v2/pals"),
    ("GET", "/v2/pals/p00000000000"),
    ("DELETE", "/v2/pals/p00000000000"),
    ("GET", "/v2/personas"),
    ("POST", "/v2/conversations"),
    ("GET", "/v2/conversations"),
    ("GET", "/v2/conversations/c000000000000000"),
    ("POST", "/v2/conversations/c000000000000000/end"),
    ("DELETE", "/v2/conversations/c000000000000000"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
async def test_every_endpoint_needs_an_api_key(harness: Harness, method: str, path: str) -> None:
    response = await harness.client_for(None).request(method, path)
    assert response.status_code == 401
    assert response.json() == INVALID_TOKEN


async def test_empty_key_is_rejected(harness: Harness) -> None:
    response = await harness.client_for("").get("/v2/pals")
    assert response.status_code == 401


async def test_configured_keys_are_the_only_ones_accepted(make_harness: HarnessFactory) -> None:
    harness = make_harness(api_keys={"good-key"})

    good = await harness.client_for("good-key").get("/v2/pals")
    bad = await harness.client_for("other-key").get("/v2/pals")

    assert good.status_code == 200
    assert bad.status_code == 401
    assert bad.json() == INVALID_TOKEN


async def test_auth_is_checked_before_validation(harness: Harness) -> None:
    response = await harness.client_for("").post("/v2/pals", content=b"not json")
    assert response.json() == INVALID_TOKEN


async def test_control_api_needs_no_key(harness: Harness) -> None:
    response = await harness.client_for(None).get("/_sim/state")
    assert response.status_code == 200
