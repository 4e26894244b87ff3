from __future__ import annotations

import re

from tavus_simulator import DelayFault, DropFault, DuplicateFault, ReorderFault
from tests.integration.simulator.conftest import (
    Harness,
    HarnessFactory,
    WebhookReceiver,
    eventually,
    free_port,
)

TIMESTAMP_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
FULL_RUN = ["system.replica_joined", "system.shutdown", "application.transcription_ready"]


async def run_conversation(harness: Harness, callback_url: str) -> str:
    """Create a conversation, let the face join, then end it via the API."""
    conversation_id = await harness.create_conversation(
        await harness.create_pal(), callback_url=callback_url
    )
    harness.sim.advance(1.0)
    await harness.client.post(f"/v2/conversations/{conversation_id}/end")
    return conversation_id


class TestDelivery:
    async def test_envelopes_posted_in_order(
        self, harness: Harness, receiver: WebhookReceiver
    ) -> None:
        token, url = receiver.new_url()

        conversation_id = await run_conversation(harness, url)

        await eventually(lambda: len(receiver.bodies(token)) == 3)
        bodies = receiver.bodies(token)
        assert [b["event_type"] for b in bodies] == FULL_RUN
        for body in bodies:
            assert set(body) == {
                "properties",
                "conversation_id",
                "webhook_url",
                "event_type",
                "message_type",
                "timestamp",
            }
            assert body["conversation_id"] == conversation_id
            assert body["webhook_url"] == url
            assert TIMESTAMP_Z.match(body["timestamp"])
        joined, shutdown, ready = bodies
        assert joined["message_type"] == "system"
        assert joined["properties"] == {"replica_id": "r90bbd427f71"}
        assert shutdown["properties"] == {
            "replica_id": "r90bbd427f71",
            "shutdown_reason": "end_conversation_endpoint_hit",
        }
        assert ready["message_type"] == "application"
        assert ready["properties"]["transcript"][0] == {
            "role": "system",
            "content": "You are a calm life coach.",
        }

    async def test_verbose_events_match_the_webhooks(
        self, harness: Harness, receiver: WebhookReceiver
    ) -> None:
        token, url = receiver.new_url()
        conversation_id = await run_conversation(harness, url)
        await eventually(lambda: len(receiver.bodies(token)) == 3)

        verbose = await harness.client.get(f"/v2/conversations/{conversation_id}?verbose=true")

        assert verbose.json()["events"] == receiver.bodies(token)

    async def test_deliveries_are_in_the_call_log(
        self, harness: Harness, receiver: WebhookReceiver
    ) -> None:
        _, url = receiver.new_url()
        conversation_id = await run_conversation(harness, url)
        await harness.sim.webhooks.drain()

        entries = harness.sim.call_log("webhook")

        assert [e.event_type for e in entries] == FULL_RUN
        assert {(e.status, e.path, e.object_id) for e in entries} == {(200, url, conversation_id)}

    async def test_unreachable_receiver_is_logged_not_retried(self, harness: Harness) -> None:
        url = f"http://127.0.0.1:{free_port()}/nobody-listens"
        await run_conversation(harness, url)
        await harness.sim.webhooks.drain()

        entries = harness.sim.call_log("webhook")

        assert len(entries) == 3
        assert all(e.status is None and e.error for e in entries)


class TestWebhookFaults:
    async def test_drop(self, harness: Harness, receiver: WebhookReceiver) -> None:
        token, url = receiver.new_url()
        harness.sim.add_fault("webhook", DropFault(times=1))

        await run_conversation(harness, url)
        await harness.sim.webhooks.drain()

        assert receiver.event_types(token) == FULL_RUN[1:]
        dropped = harness.sim.call_log("webhook")[0]
        assert (dropped.fault, dropped.status, dropped.event_type) == (
            "drop",
            None,
            "system.replica_joined",
        )

    async def test_duplicate(self, harness: Harness, receiver: WebhookReceiver) -> None:
        token, url = receiver.new_url()
        harness.sim.add_fault("webhook", DuplicateFault(copies=2, times=1))

        await run_conversation(harness, url)
        await harness.sim.webhooks.drain()

        assert receiver.event_types(token) == [FULL_RUN[0]] * 3 + FULL_RUN[1:]
        first, second, third = receiver.bodies(token)[:3]
        assert first == second == third

    async def test_delay_lets_later_events_overtake(
        self, harness: Harness, receiver: WebhookReceiver
    ) -> None:
        token, url = receiver.new_url()
        harness.sim.add_fault("webhook", DelayFault(ms=300, times=1))

        await run_conversation(harness, url)
        await eventually(lambda: len(receiver.bodies(token)) == 2)
        assert receiver.event_types(token) == FULL_RUN[1:]
        await harness.sim.webhooks.drain()

        assert receiver.event_types(token) == [*FULL_RUN[1:], FULL_RUN[0]]
        delayed = next(e for e in harness.sim.call_log("webhook") if e.fault)
        assert delayed.fault == "delay:300ms"

    async def test_reorder_swaps_with_the_next_event(
        self, harness: Harness, receiver: WebhookReceiver
    ) -> None:
        token, url = receiver.new_url()
        conversation_id = await harness.create_conversation(
            await harness.create_pal(), callback_url=url
        )
        harness.sim.advance(1.0)
        await eventually(lambda: receiver.event_types(token) == FULL_RUN[:1])
        harness.sim.add_fault("webhook", ReorderFault(times=1))

        await harness.client.post(f"/v2/conversations/{conversation_id}/end")
        await harness.sim.webhooks.drain()

        assert receiver.event_types(token) == [FULL_RUN[0], FULL_RUN[2], FULL_RUN[1]]

    async def test_reorder_without_a_next_event_releases_after_max_hold(
        self, make_harness: HarnessFactory, receiver: WebhookReceiver
    ) -> None:
        harness = make_harness(replica_join_delay_s=0.0)
        token, url = receiver.new_url()
        harness.sim.add_fault("webhook", ReorderFault(max_hold_ms=50, times=1))

        await harness.create_conversation(await harness.create_pal(), callback_url=url)
        harness.sim.advance(0.0)

        await eventually(lambda: receiver.event_types(token) == FULL_RUN[:1])

    async def test_partial_rate_only_hits_some_events(
        self, make_harness: HarnessFactory, receiver: WebhookReceiver
    ) -> None:
        harness = make_harness(seed=5)
        token, url = receiver.new_url()
        harness.sim.add_fault("webhook", DropFault(rate=0.5))
        for _ in range(6):
            await run_conversation(harness, url)
        await harness.sim.webhooks.drain()

        dropped = [e for e in harness.sim.call_log("webhook") if e.fault == "drop"]
        assert 0 < len(dropped) < 18
        assert len(receiver.bodies(token)) == 18 - len(dropped)
