"""POST /v2/conversations/{id}/send-app-message over real sockets: every documented
status, the conversation's context, and the 502/504 delivery semantics."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tavus_simulator import ErrorFault
from tests.integration.simulator.conftest import PAL_BODY, Harness, Served

KEY = "app-message-key"
ACTIVE_ONLY = {"error": "App messages can only be sent to active conversations."}
ROOM_GONE = {"error": "The conversation's room is no longer available."}
TOO_LARGE = {"error": "Request body exceeds 65536 bytes"}
TOO_MANY = {"error": "Too many requests"}
NOT_DELIVERED = {"error": "The app message could not be delivered. Please retry."}
MAYBE_DELIVERED = {"error": "The app message may have been delivered; check before retrying."}


def interaction(conversation_id: str, event_type: str, **properties: Any) -> dict[str, Any]:
    return {
        "message_type": "conversation",
        "event_type": event_type,
        "conversation_id": conversation_id,
        "properties": properties,
    }


class Room:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def start(self, *, face_joined: bool = True, **body: Any) -> str:
        pal = await self.client.post("/v2/pals", json=PAL_BODY)
        created = await self.client.post(
            "/v2/conversations", json={"pal_id": pal.json()["pal_id"], **body}
        )
        assert created.status_code == 200, created.text
        conversation_id: str = created.json()["conversation_id"]
        if face_joined:
            joined = await self.client.post(f"/_sim/conversations/{conversation_id}/face/join")
            assert joined.status_code == 200, joined.text
        return conversation_id

    async def send(self, conversation_id: str, body: Any) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return await self.client.post(
            f"/v2/conversations/{conversation_id}/send-app-message",
            content=content,
            headers={"content-type": "application/json"},
        )

    async def state(self, conversation_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/_sim/conversations/{conversation_id}")
        assert response.status_code == 200, response.text
        state: dict[str, Any] = response.json()
        return state


@pytest.fixture
async def room(served: Served) -> Any:
    async with served.client(headers={"x-api-key": KEY}, timeout=10) as client:
        # The face joins only when a test says so.
        await client.patch("/_sim/config", json={"replica_join_delay_s": None})
        yield Room(client)


class TestAccepted:
    async def test_append_then_overwrite_the_context(self, room: Room) -> None:
        conversation_id = await room.start(conversational_context="The caller is Anna.")

        appended = await room.send(
            conversation_id,
            interaction(conversation_id, "conversation.append_llm_context", context="She is 7."),
        )
        after_append = await room.state(conversation_id)
        overwritten = await room.send(
            conversation_id,
            interaction(conversation_id, "conversation.overwrite_llm_context", context="Fresh."),
        )
        after_overwrite = await room.state(conversation_id)

        assert (appended.status_code, appended.content) == (200, b"")
        assert overwritten.status_code == 200
        assert after_append["conversational_context"] == "The caller is Anna.\nShe is 7."
        assert after_overwrite["conversational_context"] == "Fresh."
        log = after_overwrite["app_messages"]
        assert [m["event_type"] for m in log] == [
            "conversation.append_llm_context",
            "conversation.overwrite_llm_context",
        ]
        assert [m["status"] for m in log] == ["delivered", "delivered"]
        assert log[0]["message"]["properties"] == {"context": "She is 7."}

    async def test_append_without_a_context_becomes_it(self, room: Room) -> None:
        conversation_id = await room.start()

        await room.send(
            conversation_id,
            interaction(conversation_id, "conversation.append_llm_context", context="Hello."),
        )

        assert (await room.state(conversation_id))["conversational_context"] == "Hello."

    @pytest.mark.parametrize(
        ("event_type", "properties"),
        [
            ("conversation.respond", {"text": "What are your opening hours?"}),
            ("conversation.echo", {"modality": "text", "text": "Hello!"}),
            ("conversation.echo", {"modality": "audio", "audio": "AAAA", "sample_rate": 24000}),
            ("conversation.interrupt", {}),
            (
                "conversation.sensitivity",
                {
                    "participant_pause_sensitivity": "low",
                    "participant_interrupt_sensitivity": "high",
                },
            ),
            ("conversation.tool_result", {"tool_call_id": "t1", "output": {"ok": True}}),
            ("conversation.set_emotion", {"emotion": "happiness"}),
        ],
    )
    async def test_each_documented_interaction_is_accepted(
        self, room: Room, event_type: str, properties: dict[str, Any]
    ) -> None:
        conversation_id = await room.start()

        response = await room.send(
            conversation_id, interaction(conversation_id, event_type, **properties)
        )

        assert response.status_code == 200, response.text
        [logged] = (await room.state(conversation_id))["app_messages"]
        assert (logged["event_type"], logged["status"]) == (event_type, "delivered")

    async def test_conversation_id_may_be_left_out_of_the_body(self, room: Room) -> None:
        conversation_id = await room.start()
        body = interaction(conversation_id, "conversation.interrupt")
        del body["conversation_id"]

        assert (await room.send(conversation_id, body)).status_code == 200

    async def test_other_event_types_are_relayed_into_the_room(self, room: Room) -> None:
        conversation_id = await room.start(conversational_context="Kept.")

        response = await room.send(
            conversation_id,
            {"message_type": "app", "event_type": "app.highlight", "properties": [1, 2]},
        )

        assert response.status_code == 200
        state = await room.state(conversation_id)
        assert [m["status"] for m in state["app_messages"]] == ["relayed"]
        assert state["conversational_context"] == "Kept."

    async def test_queued_until_the_face_joins_then_delivered_in_order(self, room: Room) -> None:
        conversation_id = await room.start(face_joined=False)
        for text in ("one", "two"):
            response = await room.send(
                conversation_id,
                interaction(conversation_id, "conversation.append_llm_context", context=text),
            )
            assert response.status_code == 200

        queued = await room.state(conversation_id)
        await room.client.post(f"/_sim/conversations/{conversation_id}/face/join")
        delivered = await room.state(conversation_id)

        assert [m["status"] for m in queued["app_messages"]] == ["queued", "queued"]
        assert queued["conversational_context"] is None
        assert [m["status"] for m in delivered["app_messages"]] == ["delivered", "delivered"]
        assert delivered["conversational_context"] == "one\ntwo"

    async def test_messages_queued_over_an_hour_are_dropped(self, room: Room) -> None:
        conversation_id = await room.start(
            face_joined=False, properties={"participant_absent_timeout": 7200}
        )
        await room.send(
            conversation_id,
            interaction(conversation_id, "conversation.append_llm_context", context="stale"),
        )
        await room.client.post("/_sim/clock/advance", json={"seconds": 3601})
        await room.client.post(f"/_sim/conversations/{conversation_id}/face/join")

        state = await room.state(conversation_id)

        assert [m["status"] for m in state["app_messages"]] == ["dropped"]
        assert state["conversational_context"] is None

    async def test_messages_still_queued_when_the_call_ends_are_dropped(self, room: Room) -> None:
        conversation_id = await room.start(face_joined=False)
        await room.send(conversation_id, interaction(conversation_id, "conversation.interrupt"))
        await room.client.post(f"/v2/conversations/{conversation_id}/end")

        state = await room.state(conversation_id)

        assert [m["status"] for m in state["app_messages"]] == ["dropped"]
        assert state["app_messages"][0]["handled_at"] == state["ended_at"]


class TestRefused:
    async def test_unknown_conversation_is_400_invalid_id(self, room: Room) -> None:
        response = await room.send(
            "c000000000000000", interaction("c000000000000000", "conversation.interrupt")
        )

        assert response.status_code == 400
        assert response.json() == {"error": "Invalid conversation_id"}

    async def test_ended_conversation_is_400(self, room: Room) -> None:
        conversation_id = await room.start()
        await room.client.post(f"/v2/conversations/{conversation_id}/end")

        response = await room.send(
            conversation_id, interaction(conversation_id, "conversation.interrupt")
        )

        assert response.status_code == 400
        assert response.json() == ACTIVE_ONLY

    async def test_a_deleted_room_is_410(self, room: Room) -> None:
        conversation_id = await room.start()
        await room.client.post(
            f"/_sim/conversations/{conversation_id}/shutdown",
            json={"reason": "daily_room_has_been_deleted"},
        )

        response = await room.send(
            conversation_id, interaction(conversation_id, "conversation.interrupt")
        )

        assert response.status_code == 410
        assert response.json() == ROOM_GONE

    async def test_body_above_64_kib_is_413(self, room: Room) -> None:
        conversation_id = await room.start()
        base = interaction(conversation_id, "conversation.respond", text="")
        padding = 65536 - len(json.dumps(base).encode())
        at_limit = interaction(conversation_id, "conversation.respond", text="x" * padding)
        over = interaction(conversation_id, "conversation.respond", text="x" * (padding + 1))

        accepted = await room.send(conversation_id, at_limit)
        refused = await room.send(conversation_id, over)

        assert len(json.dumps(at_limit).encode()) == 65536
        assert accepted.status_code == 200
        assert refused.status_code == 413
        assert refused.json() == TOO_LARGE
        assert len((await room.state(conversation_id))["app_messages"]) == 1

    async def test_over_120_requests_a_window_is_429_per_conversation(self, room: Room) -> None:
        busy = await room.start()
        quiet = await room.start()
        message = interaction(busy, "conversation.interrupt")

        statuses = [(await room.send(busy, message)).status_code for _ in range(121)]
        limited = await room.send(busy, message)
        other = await room.send(quiet, interaction(quiet, "conversation.interrupt"))
        await room.client.post("/_sim/clock/advance", json={"seconds": 60})
        next_window = await room.send(busy, message)

        assert statuses[:120] == [200] * 120
        assert statuses[120] == 429
        assert limited.json() == TOO_MANY
        assert other.status_code == 200
        assert next_window.status_code == 200
        assert len((await room.state(busy))["app_messages"]) == 121

    async def test_limit_and_window_are_settings(self, room: Room) -> None:
        await room.client.patch(
            "/_sim/config", json={"app_message_rate_limit": 2, "app_message_rate_window_s": 10}
        )
        conversation_id = await room.start()
        message = interaction(conversation_id, "conversation.interrupt")

        statuses = [(await room.send(conversation_id, message)).status_code for _ in range(3)]

        assert statuses == [200, 200, 429]

    @pytest.mark.parametrize(
        ("mutate", "error"),
        [
            (lambda b: b.update(conversation_id="c999999999999999"), "conversation_id"),
            (lambda b: b.update(message_type="system"), "message_type"),
            (lambda b: b.pop("event_type"), "event_type"),
            (lambda b: b.update(properties={}), "context"),
            (lambda b: b.update(properties={"context": 7}), "context"),
            (lambda b: b.update(properties="context"), "properties"),
        ],
    )
    async def test_malformed_interactions_are_400(
        self, room: Room, mutate: Any, error: str
    ) -> None:
        conversation_id = await room.start()
        body = interaction(conversation_id, "conversation.append_llm_context", context="x")
        mutate(body)

        response = await room.send(conversation_id, body)

        assert response.status_code == 400
        assert error in response.json()["error"]
        assert (await room.state(conversation_id))["app_messages"] == []

    @pytest.mark.parametrize(
        ("event_type", "properties", "error"),
        [
            ("conversation.respond", {}, "text"),
            ("conversation.echo", {"modality": "video"}, "modality"),
            ("conversation.echo", {"modality": "audio"}, "audio"),
            ("conversation.sensitivity", {"participant_pause_sensitivity": "max"}, "low"),
            ("conversation.sensitivity", {}, "sensitivity"),
            ("conversation.tool_result", {"output": "x"}, "tool_call_id"),
            ("conversation.tool_result", {"tool_call_id": "t", "output": 3}, "output"),
        ],
    )
    async def test_documented_properties_are_checked(
        self, room: Room, event_type: str, properties: dict[str, Any], error: str
    ) -> None:
        conversation_id = await room.start()

        response = await room.send(
            conversation_id, interaction(conversation_id, event_type, **properties)
        )

        assert response.status_code == 400
        assert error in response.json()["error"]

    async def test_body_that_is_not_a_json_object_is_400(self, room: Room) -> None:
        conversation_id = await room.start()

        broken = await room.send(conversation_id, b"{nope")
        listed = await room.send(conversation_id, [1])

        assert broken.status_code == 400
        assert listed.status_code == 400
        assert "error" in broken.json()


class TestFaults:
    async def test_bad_gateway_delivers_nothing(self, room: Room) -> None:
        conversation_id = await room.start()
        await room.client.post(
            "/_sim/faults/conversation.send_app_message",
            json={"kind": "error", "preset": "bad_gateway", "times": 1},
        )

        response = await room.send(
            conversation_id,
            interaction(conversation_id, "conversation.append_llm_context", context="x"),
        )

        assert response.status_code == 502
        assert response.json() == NOT_DELIVERED
        state = await room.state(conversation_id)
        assert state["app_messages"] == []
        assert state["conversational_context"] is None

    async def test_gateway_timeout_before_delivery_applies_nothing(self, room: Room) -> None:
        conversation_id = await room.start()
        await room.client.post(
            "/_sim/faults/conversation.send_app_message",
            json={"kind": "error", "preset": "gateway_timeout", "times": 1},
        )

        response = await room.send(
            conversation_id,
            interaction(conversation_id, "conversation.append_llm_context", context="x"),
        )

        assert response.status_code == 504
        assert response.json() == MAYBE_DELIVERED
        assert (await room.state(conversation_id))["conversational_context"] is None

    async def test_gateway_timeout_after_delivery_applies_the_message(self, room: Room) -> None:
        conversation_id = await room.start()
        await room.client.post(
            "/_sim/faults/conversation.send_app_message",
            json={
                "kind": "error",
                "preset": "gateway_timeout",
                "apply_before_error": True,
                "times": 1,
            },
        )
        message = interaction(conversation_id, "conversation.append_llm_context", context="x")

        timed_out = await room.send(conversation_id, message)
        resent = await room.send(conversation_id, message)

        assert timed_out.status_code == 504
        assert timed_out.json() == MAYBE_DELIVERED
        # The blind resend doubles the append: what a client must not do after a 504.
        assert (await room.state(conversation_id))["conversational_context"] == "x\nx"
        assert resent.status_code == 200
        calls = await room.client.get("/_sim/calls?operation=conversation.send_app_message")
        first = calls.json()["data"][0]
        assert (first["status"], first["fault"]) == (504, "error:504")
        assert first["event_type"] == "conversation.append_llm_context"
        assert "200" in first["error"]

    async def test_rate_limited_preset_uses_the_endpoints_body(self, room: Room) -> None:
        conversation_id = await room.start()
        await room.client.post(
            "/_sim/faults/conversation.send_app_message",
            json={"kind": "error", "preset": "rate_limited", "times": 1},
        )

        response = await room.send(
            conversation_id, interaction(conversation_id, "conversation.interrupt")
        )

        assert response.status_code == 429
        assert response.json() == TOO_MANY


class TestApplyBeforeErrorElsewhere:
    async def test_a_create_that_times_out_after_creating(self, harness: Harness) -> None:
        pal_id = await harness.create_pal()
        harness.sim.add_fault(
            "conversation.create",
            ErrorFault(preset="gateway_timeout", apply_before_error=True, times=1),
        )

        response = await harness.client.post("/v2/conversations", json={"pal_id": pal_id})

        assert response.status_code == 504
        assert response.json() == {"message": "Gateway Timeout"}
        [conversation] = harness.sim.store.conversations.values()
        assert conversation.status == "active"
        [call] = harness.sim.call_log("conversation.create")
        assert call.object_id == conversation.conversation_id
