"""How the client maps what the simulator answers onto the error tree.

The simulator answers with Tavus's exact bodies (401 ``Invalid access token``, 400
``Invalid pal_id``, the concurrency text, 402 credits); fault rules stand in for what
Tavus's edge could send (proxies' 5xx pages, redirects, unreadable 2xx bodies).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from app.tavus.client import TavusClient
from app.tavus.errors import (
    TavusConcurrencyLimit,
    TavusError,
    TavusInvalidRequest,
    TavusNotFound,
    TavusOutOfCredits,
    TavusRateLimited,
    TavusServerError,
    TavusUnauthorized,
    TavusUnexpectedResponse,
)
from app.tavus.models import PalCreate
from app.tavus.retry import NO_RETRY
from tavus_simulator import ErrorFault
from tests.integration.tavus.conftest import (
    API_KEY,
    ClientFactory,
    conversation_body,
    pal_body,
    statuses,
)
from tests.support.stack import FACE_ID, SimulatorHandle

SOME_PAL = "p0123456789a"
SOME_CONVERSATION = "c0123456789abcde"

ClientCall = Callable[[TavusClient], Awaitable[object]]


async def _drain(items: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in items]


# Every public method of the client, with the simulator operation it calls.
METHODS: dict[str, tuple[str, ClientCall]] = {
    "create_pal": ("pal.create", lambda c: c.create_pal(pal_body())),
    "get_pal": ("pal.get", lambda c: c.get_pal(SOME_PAL)),
    "list_pals": ("pal.list", lambda c: c.list_pals()),
    "iter_pals": ("pal.list", lambda c: _drain(c.iter_pals())),
    "find_pal_by_name": ("pal.list", lambda c: c.find_pal_by_name("Coach")),
    "delete_pal": ("pal.delete", lambda c: c.delete_pal(SOME_PAL)),
    "create_conversation": (
        "conversation.create",
        lambda c: c.create_conversation(conversation_body(SOME_PAL)),
    ),
    "get_conversation": (
        "conversation.get",
        lambda c: c.get_conversation(SOME_CONVERSATION, verbose=True),
    ),
    "list_conversations": ("conversation.list", lambda c: c.list_conversations()),
    "iter_conversations": ("conversation.list", lambda c: _drain(c.iter_conversations())),
    "find_conversation_by_name": (
        "conversation.list",
        lambda c: c.find_conversation_by_name("session"),
    ),
    "end_conversation": ("conversation.end", lambda c: c.end_conversation(SOME_CONVERSATION)),
}


@pytest.mark.parametrize("method", sorted(METHODS))
async def test_a_refused_key_is_unauthorized_everywhere_and_never_retried(
    make_client: ClientFactory, simulator: SimulatorHandle, method: str
) -> None:
    simulator.sim.configure(api_keys={API_KEY})
    operation, call = METHODS[method]
    wrong_key = "not-an-accepted-key"

    with pytest.raises(TavusUnauthorized) as caught:
        await call(make_client(api_key=wrong_key))

    error = caught.value
    assert (error.status, error.message) == (401, "Invalid access token")
    assert not error.may_have_taken_effect
    assert statuses(simulator.sim.call_log(operation)) == [401]
    # The key is in the request headers only; nothing about the error may carry it.
    assert error.__cause__ is None
    for text in (str(error), repr(error), error.body or ""):
        assert wrong_key not in text


@pytest.mark.parametrize("method", sorted(METHODS))
async def test_out_of_credits_is_raised_at_once_everywhere(
    tavus: TavusClient, simulator: SimulatorHandle, method: str
) -> None:
    operation, call = METHODS[method]
    simulator.sim.add_fault(operation, ErrorFault(preset="out_of_credits"))

    with pytest.raises(TavusOutOfCredits) as caught:
        await call(tavus)

    assert caught.value.status == 402
    assert caught.value.message == "The user is out of conversational credits"
    assert statuses(simulator.sim.call_log(operation)) == [402]


async def test_an_accepted_key_passes_when_keys_are_restricted(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    simulator.sim.configure(api_keys={API_KEY})

    pal = await tavus.create_pal(pal_body())

    assert simulator.sim.pal(pal.pal_id).account == API_KEY


async def test_concurrency_limit_from_the_account_slots(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    simulator.sim.configure(max_concurrent_conversations=2)
    pal_id = (await tavus.create_pal(pal_body())).pal_id
    for n in range(2):
        await tavus.create_conversation(conversation_body(pal_id, f"slot-{n}"))

    with pytest.raises(TavusConcurrencyLimit) as caught:
        await tavus.create_conversation(conversation_body(pal_id, "one-too-many"))

    error = caught.value
    assert error.status == 400
    assert error.message == "User has reached maximum concurrent conversations"
    assert not error.may_have_taken_effect
    assert statuses(simulator.sim.call_log("conversation.create")) == [200, 200, 400]
    assert len(simulator.conversations()) == 2
    assert simulator.sim.snapshot()["accounts"][API_KEY] == {"active_conversations": 2}


async def test_the_simulators_validation_is_an_invalid_request(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    # The client's own model refuses this body, so bypass it to see Tavus's answer.
    body = PalCreate.model_construct(default_face_id=FACE_ID, pal_name="No prompt")

    with pytest.raises(TavusInvalidRequest) as caught:
        await tavus.create_pal(body)

    assert (caught.value.status, caught.value.message) == (400, "system_prompt is required")
    assert not caught.value.may_have_taken_effect
    assert statuses(simulator.sim.call_log("pal.create")) == [400]
    assert simulator.live_pals() == []


@pytest.mark.parametrize(
    ("fault", "expected", "message"),
    [
        pytest.param(
            ErrorFault(status=403, body={"message": "Forbidden"}),
            TavusUnauthorized,
            "Forbidden",
            id="403-ip-restricted-key",
        ),
        pytest.param(
            ErrorFault(status=404, body={"message": "Not Found"}),
            TavusNotFound,
            "Not Found",
            id="404",
        ),
        pytest.param(
            ErrorFault(
                status=429, body={"message": "User has reached maximum concurrent conversations"}
            ),
            TavusConcurrencyLimit,
            "User has reached maximum concurrent conversations",
            id="concurrency-text-on-a-429",
        ),
        pytest.param(
            ErrorFault(preset="concurrency_limit"),
            TavusConcurrencyLimit,
            "User has reached maximum concurrent conversations",
            id="concurrency-preset",
        ),
        pytest.param(
            ErrorFault(status=400, body={"error": "The user is out of conversational credits"}),
            TavusOutOfCredits,
            "The user is out of conversational credits",
            id="credits-text-on-a-400",
        ),
        pytest.param(
            ErrorFault(status=422, body={"message": "Invalid JSON patch format"}),
            TavusInvalidRequest,
            "Invalid JSON patch format",
            id="422",
        ),
        pytest.param(
            ErrorFault(preset="rate_limited"), TavusRateLimited, "Too Many Requests", id="429"
        ),
        pytest.param(
            ErrorFault(preset="server_error"),
            TavusServerError,
            "Internal Server Error",
            id="500",
        ),
        pytest.param(ErrorFault(preset="bad_gateway"), TavusServerError, "Bad Gateway", id="502"),
        pytest.param(
            ErrorFault(preset="unavailable"),
            TavusServerError,
            "Service Unavailable",
            id="503",
        ),
        pytest.param(
            ErrorFault(preset="gateway_timeout"),
            TavusServerError,
            "Gateway Timeout",
            id="504",
        ),
        pytest.param(
            ErrorFault(status=502, body="<html>\n<body>Bad   gateway</body></html>"),
            TavusServerError,
            "<html> <body>Bad gateway</body></html>",
            id="proxy-html-page",
        ),
        pytest.param(
            ErrorFault(status=200, body="this is not json"),
            TavusUnexpectedResponse,
            "response body is not JSON",
            id="2xx-not-json",
        ),
        pytest.param(
            ErrorFault(status=200, body={"unexpected": True}),
            TavusUnexpectedResponse,
            "response is not a valid Pal (pal_id)",
            id="2xx-without-id",
        ),
        pytest.param(
            ErrorFault(status=302, headers={"location": "https://elsewhere.example/"}),
            TavusUnexpectedResponse,
            "Found",
            id="redirect",
        ),
    ],
)
async def test_edge_answers_map_onto_the_error_tree(
    tavus: TavusClient,
    simulator: SimulatorHandle,
    fault: ErrorFault,
    expected: type[TavusError],
    message: str,
) -> None:
    simulator.sim.add_fault("pal.get", fault)

    with pytest.raises(TavusError) as caught:
        await tavus.with_retry_policy(NO_RETRY).get_pal(SOME_PAL)

    error = caught.value
    assert type(error) is expected
    assert error.status == fault.status
    assert error.message == message
    assert error.operation == "get_pal"
    # A read changes nothing, whatever came back.
    assert not error.may_have_taken_effect
    assert len(simulator.sim.call_log("pal.get")) == 1


async def test_errors_keep_the_body_and_the_request_id(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    simulator.sim.add_fault(
        "pal.create",
        ErrorFault(status=503, body={"message": "down"}, headers={"x-request-id": "req-7f3a"}),
    )

    with pytest.raises(TavusServerError) as caught:
        await tavus.create_pal(pal_body())

    error = caught.value
    assert error.request_id == "req-7f3a"
    assert error.body == '{"message":"down"}'
    assert "req-7f3a" in str(error)
    assert "HTTP 503" in str(error)


async def test_retry_after_is_parsed_onto_the_error(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    simulator.sim.add_fault("conversation.list", ErrorFault(preset="rate_limited", retry_after_s=7))

    with pytest.raises(TavusRateLimited) as caught:
        await tavus.with_retry_policy(NO_RETRY).list_conversations()

    assert caught.value.retry_after == 7.0
    assert not caught.value.may_have_taken_effect
