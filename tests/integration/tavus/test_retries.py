"""Retries and unknown outcomes, counted in the simulator's call log.

The policy (docs/tavus-client.md): reads and idempotent writes are retried on
unreachable, lost answers, 429 and 5xx; creates only when Tavus provably did not act
(unreachable, 429). Every test here checks the exact number of calls the simulator
saw, so a retry too many (a second billed conversation) fails as loudly as one too few.
"""

from __future__ import annotations

import time

import httpx
import pytest

from app.tavus.client import TavusClient
from app.tavus.errors import (
    TavusNotFound,
    TavusOutcomeUnknown,
    TavusRateLimited,
    TavusServerError,
    TavusUnreachable,
)
from app.tavus.retry import NO_RETRY
from tavus_simulator import ErrorFault, HangFault, SucceedThenDropFault
from tests.integration.tavus.conftest import (
    RETRY,
    ClientFactory,
    Wire,
    conversation_body,
    pal_body,
    statuses,
)
from tests.support.processes import free_port
from tests.support.stack import SimulatorHandle
from tests.support.wait import until

ATTEMPTS = RETRY.attempts
# Shorter than the 1 s default so that waiting out a hang stays cheap.
SHORT_READ = httpx.Timeout(0.25, connect=1.0)


async def _logged(simulator: SimulatorHandle, operation: str, count: int) -> list[int | None]:
    # A cut connection is logged when the server notices, which can be after the
    # client has already moved on.
    async def probe() -> bool:
        return len(simulator.sim.call_log(operation)) >= count

    await until(probe, within=5, message=f"{count} {operation} calls logged")
    return statuses(simulator.sim.call_log(operation))


# --- 429 -------------------------------------------------------------------------------


async def test_a_read_waits_out_retry_after_then_succeeds(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    await tavus.create_pal(pal_body())
    simulator.sim.add_fault(
        "pal.list", ErrorFault(preset="rate_limited", retry_after_s=0.3, times=1)
    )

    started = time.monotonic()
    page = await tavus.list_pals(pal_type="user")
    elapsed = time.monotonic() - started

    assert len(page.data) == 1
    assert statuses(simulator.sim.call_log("pal.list")) == [429, 200]
    # The policy's own backoff is 10 ms; only Retry-After explains the wait.
    assert elapsed >= 0.3


async def test_a_pal_create_refused_with_429_is_sent_again(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    simulator.sim.add_fault(
        "pal.create", ErrorFault(preset="rate_limited", retry_after_s=0.05, times=1)
    )

    started = time.monotonic()
    created = await tavus.create_pal(pal_body("After 429"))
    elapsed = time.monotonic() - started

    assert [p["pal_id"] for p in simulator.live_pals()] == [created.pal_id]
    assert statuses(simulator.sim.call_log("pal.create")) == [429, 200]
    assert elapsed >= 0.05


async def test_a_conversation_create_refused_with_429_is_sent_again(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    pal_id = (await tavus.create_pal(pal_body())).pal_id
    simulator.sim.add_fault(
        "conversation.create", ErrorFault(preset="rate_limited", retry_after_s=0.05, times=1)
    )

    started = time.monotonic()
    created = await tavus.create_conversation(conversation_body(pal_id, "after-429"))
    elapsed = time.monotonic() - started

    assert [c["conversation_id"] for c in simulator.conversations()] == [created.conversation_id]
    assert statuses(simulator.sim.call_log("conversation.create")) == [429, 200]
    assert elapsed >= 0.05


async def test_persistent_429_gives_up_after_the_attempts(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    simulator.sim.add_fault(
        "conversation.get", ErrorFault(preset="rate_limited", retry_after_s=0.02)
    )

    with pytest.raises(TavusRateLimited) as caught:
        await tavus.get_conversation("c0123456789abcde")

    assert caught.value.retry_after == pytest.approx(0.02)
    assert statuses(simulator.sim.call_log("conversation.get")) == [429] * ATTEMPTS


async def test_retry_after_beyond_the_budget_is_not_waited_for(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    # 30 s is past the policy's 5 s total: waiting would only fail later.
    simulator.sim.add_fault("pal.get", ErrorFault(preset="rate_limited", retry_after_s=30))

    started = time.monotonic()
    with pytest.raises(TavusRateLimited) as caught:
        await tavus.get_pal("p0123456789a")

    assert time.monotonic() - started < 2
    assert caught.value.retry_after == 30
    assert statuses(simulator.sim.call_log("pal.get")) == [429]


# --- 5xx -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "preset", ["server_error", "bad_gateway", "unavailable", "gateway_timeout"]
)
async def test_reads_retry_5xx_then_give_up(
    tavus: TavusClient, simulator: SimulatorHandle, preset: str
) -> None:
    simulator.sim.add_fault("pal.list", ErrorFault(preset=preset))

    with pytest.raises(TavusServerError) as caught:
        await tavus.list_pals()

    assert not caught.value.may_have_taken_effect
    assert len(simulator.sim.call_log("pal.list")) == ATTEMPTS


async def test_a_read_recovers_within_the_attempts(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    conversation_id = (
        await tavus.create_conversation(
            conversation_body((await tavus.create_pal(pal_body())).pal_id)
        )
    ).conversation_id
    simulator.sim.add_fault(
        "conversation.get", ErrorFault(preset="unavailable", times=ATTEMPTS - 1)
    )

    fetched = await tavus.get_conversation(conversation_id)

    assert fetched.conversation_id == conversation_id
    assert statuses(simulator.sim.call_log("conversation.get")) == [503] * (ATTEMPTS - 1) + [200]


async def test_a_narrower_policy_view_retries_nothing(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    simulator.sim.add_fault("pal.list", ErrorFault(preset="unavailable"))

    with pytest.raises(TavusServerError):
        await tavus.with_retry_policy(NO_RETRY).list_pals()

    assert len(simulator.sim.call_log("pal.list")) == 1
    assert tavus.retry_policy == RETRY


async def test_idempotent_writes_retry_5xx(tavus: TavusClient, simulator: SimulatorHandle) -> None:
    pal_id = (await tavus.create_pal(pal_body())).pal_id
    conversation_id = (await tavus.create_conversation(conversation_body(pal_id))).conversation_id
    simulator.sim.add_fault("conversation.end", ErrorFault(preset="bad_gateway", times=1))
    simulator.sim.add_fault("pal.delete", ErrorFault(preset="server_error", times=1))

    await tavus.end_conversation(conversation_id)
    await tavus.delete_pal(pal_id)

    assert statuses(simulator.sim.call_log("conversation.end")) == [502, 200]
    assert statuses(simulator.sim.call_log("pal.delete")) == [500, 204]
    assert simulator.sim.conversation(conversation_id).status == "ended"
    assert simulator.sim.pal(pal_id).deleted_at is not None


async def test_a_create_answered_with_5xx_is_not_retried(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    pal_id = (await tavus.create_pal(pal_body())).pal_id
    simulator.sim.add_fault("pal.create", ErrorFault(preset="server_error"))
    simulator.sim.add_fault("conversation.create", ErrorFault(preset="unavailable"))

    with pytest.raises(TavusServerError) as pal_error:
        await tavus.create_pal(pal_body("Second"))
    with pytest.raises(TavusServerError) as conversation_error:
        await tavus.create_conversation(conversation_body(pal_id))

    # Tavus may have acted before failing, so the caller must resolve it by lookup.
    assert pal_error.value.may_have_taken_effect
    assert conversation_error.value.may_have_taken_effect
    assert statuses(simulator.sim.call_log("pal.create")) == [200, 500]
    assert statuses(simulator.sim.call_log("conversation.create")) == [503]


# --- outcome unknown ----------------------------------------------------------------------


async def test_a_pal_created_but_unanswered_is_found_by_name(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    simulator.sim.add_fault("pal.create", SucceedThenDropFault(times=1))

    with pytest.raises(TavusOutcomeUnknown) as caught:
        await tavus.create_pal(pal_body("session-7-pal"))

    assert caught.value.may_have_taken_effect
    assert caught.value.status is None
    log = simulator.sim.call_log("pal.create")
    assert len(log) == 1
    assert log[0].status is None
    created_id = log[0].object_id
    assert created_id is not None
    assert simulator.sim.pal(created_id).pal_name == "session-7-pal"

    found = await tavus.find_pal_by_name("session-7-pal")

    assert found is not None
    assert found.pal_id == created_id
    assert len(simulator.sim.call_log("pal.create")) == 1


async def test_a_conversation_created_but_unanswered_is_found_by_name(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    pal_id = (await tavus.create_pal(pal_body())).pal_id
    simulator.sim.add_fault("conversation.create", SucceedThenDropFault(times=1))

    with pytest.raises(TavusOutcomeUnknown) as caught:
        await tavus.create_conversation(conversation_body(pal_id, "session-7"))

    assert caught.value.may_have_taken_effect
    log = simulator.sim.call_log("conversation.create")
    assert len(log) == 1
    created_id = log[0].object_id
    assert created_id is not None
    # It exists and is billing: exactly what a blind second create would double.
    assert simulator.sim.conversation(created_id).holds_slot

    found = await tavus.find_conversation_by_name("session-7")
    assert found is not None
    assert found.conversation_id == created_id
    await tavus.end_conversation(found.conversation_id)

    assert simulator.sim.conversation(created_id).status == "ended"
    assert len(simulator.sim.call_log("conversation.create")) == 1


async def test_a_pal_create_that_hangs_past_the_timeout_is_unknown_and_not_retried(
    make_client: ClientFactory, simulator: SimulatorHandle
) -> None:
    tavus = make_client(timeout=SHORT_READ)
    simulator.sim.add_fault("pal.create", HangFault(seconds=5, times=1))

    with pytest.raises(TavusOutcomeUnknown) as caught:
        await tavus.create_pal(pal_body("hung"))

    assert caught.value.may_have_taken_effect
    assert "ReadTimeout" in caught.value.message
    assert await _logged(simulator, "pal.create", 1) == [None]
    # The hang never ran the create: the lookup says so, so creating again is safe.
    assert await tavus.find_pal_by_name("hung") is None
    await tavus.create_pal(pal_body("hung"))
    assert [p["pal_name"] for p in simulator.live_pals()] == ["hung"]
    assert statuses(simulator.sim.call_log("pal.create")) == [None, 200]


async def test_a_conversation_create_that_hangs_past_the_timeout_is_unknown_and_not_retried(
    make_client: ClientFactory, simulator: SimulatorHandle
) -> None:
    tavus = make_client(timeout=SHORT_READ)
    pal_id = (await tavus.create_pal(pal_body())).pal_id
    simulator.sim.add_fault("conversation.create", HangFault(seconds=5, times=1))

    with pytest.raises(TavusOutcomeUnknown) as caught:
        await tavus.create_conversation(conversation_body(pal_id, "hung"))

    assert caught.value.may_have_taken_effect
    assert "ReadTimeout" in caught.value.message
    assert await _logged(simulator, "conversation.create", 1) == [None]
    assert await tavus.find_conversation_by_name("hung") is None
    await tavus.create_conversation(conversation_body(pal_id, "hung"))
    assert [c["conversation_name"] for c in simulator.conversations()] == ["hung"]
    assert statuses(simulator.sim.call_log("conversation.create")) == [None, 200]


async def test_a_read_that_hangs_is_retried(
    make_client: ClientFactory, simulator: SimulatorHandle
) -> None:
    tavus = make_client(timeout=SHORT_READ)
    pal_id = (await tavus.create_pal(pal_body())).pal_id
    simulator.sim.add_fault("pal.get", HangFault(seconds=5, times=1))

    fetched = await tavus.get_pal(pal_id)

    assert fetched.pal_id == pal_id
    assert sorted(await _logged(simulator, "pal.get", 2), key=str) == [200, None]


async def test_a_read_whose_answer_is_cut_is_retried(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    pal_id = (await tavus.create_pal(pal_body())).pal_id
    simulator.sim.add_fault("pal.get", SucceedThenDropFault(times=1))

    fetched = await tavus.get_pal(pal_id)

    assert fetched.pal_id == pal_id
    assert statuses(simulator.sim.call_log("pal.get")) == [None, 200]


async def test_a_delete_whose_answer_is_cut_is_retried_and_finds_it_gone(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    pal_id = (await tavus.create_pal(pal_body())).pal_id
    simulator.sim.add_fault("pal.delete", SucceedThenDropFault(times=1))

    # The retry finds the PAL already deleted; callers treat not-found as done.
    with pytest.raises(TavusNotFound):
        await tavus.delete_pal(pal_id)

    assert statuses(simulator.sim.call_log("pal.delete")) == [None, 400]
    assert simulator.sim.pal(pal_id).deleted_at is not None


async def test_an_end_whose_answer_is_cut_is_retried(
    tavus: TavusClient, simulator: SimulatorHandle
) -> None:
    pal_id = (await tavus.create_pal(pal_body())).pal_id
    conversation_id = (await tavus.create_conversation(conversation_body(pal_id))).conversation_id
    simulator.sim.add_fault("conversation.end", SucceedThenDropFault(times=1))

    await tavus.end_conversation(conversation_id)

    assert statuses(simulator.sim.call_log("conversation.end")) == [None, 200]
    conversation = simulator.sim.conversation(conversation_id)
    assert conversation.end_calls == 2
    assert [e["event_type"] for e in conversation.events].count("system.shutdown") == 1


# --- unreachable ------------------------------------------------------------------------


async def test_an_unreachable_tavus_is_retried_for_every_kind_of_call(
    make_client: ClientFactory, simulator: SimulatorHandle, wire: Wire
) -> None:
    # Nothing listens on a freshly freed port, so every connect is refused.
    tavus = make_client(base_url=f"http://127.0.0.1:{free_port()}")

    with pytest.raises(TavusUnreachable) as creating:
        await tavus.create_pal(pal_body())
    with pytest.raises(TavusUnreachable) as reading:
        await tavus.get_conversation("c0123456789abcde")
    with pytest.raises(TavusUnreachable):
        await tavus.end_conversation("c0123456789abcde")

    # The request never left, so even a create is safe to send again.
    assert not creating.value.may_have_taken_effect
    assert not reading.value.may_have_taken_effect
    assert creating.value.status is None
    assert "ConnectError" in creating.value.message
    assert wire.count("POST", "/v2/pals") == ATTEMPTS
    assert wire.count("GET", "/v2/conversations/c0123456789abcde") == ATTEMPTS
    assert wire.count("POST", "/v2/conversations/c0123456789abcde/end") == ATTEMPTS
    assert simulator.sim.call_log() == []
