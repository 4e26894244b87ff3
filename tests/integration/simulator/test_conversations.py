from __future__ import annotations

import re

from tests.integration.simulator.conftest import Harness, HarnessFactory

CONVERSATION_ID = re.compile(r"^c[0-9a-f]{15}$")
TIMESTAMP_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
CONCURRENCY_BODY = {"message": "User has reached maximum concurrent conversations"}


class TestCreateConversation:
    async def test_returns_documented_fields(self, harness: Harness) -> None:
        pal_id = await harness.create_pal()

        response = await harness.client.post(
            "/v2/conversations",
            json={
                "pal_id": pal_id,
                "conversation_name": "Intake",
                "callback_url": "https://example.test/hooks",
            },
        )

        assert response.status_code == 200
        body = response.json()
        assert set(body) == {
            "conversation_id",
            "conversation_name",
            "conversation_url",
            "status",
            "callback_url",
            "created_at",
        }
        assert CONVERSATION_ID.match(body["conversation_id"])
        assert body["conversation_url"] == f"https://tavus.daily.co/{body['conversation_id']}"
        assert body["status"] == "active"
        assert body["conversation_name"] == "Intake"
        assert body["callback_url"] == "https://example.test/hooks"
        assert TIMESTAMP_Z.match(body["created_at"])

    async def test_conversation_url_uses_public_base_url(
        self, make_harness: HarnessFactory
    ) -> None:
        harness = make_harness(public_base_url="https://rooms.example.test/")
        conversation_id = await harness.create_conversation(await harness.create_pal())
        url = harness.sim.conversation(conversation_id).conversation_url
        assert url == f"https://rooms.example.test/{conversation_id}"

    async def test_require_auth_adds_a_meeting_token(self, harness: Harness) -> None:
        pal_id = await harness.create_pal()
        body = {"pal_id": pal_id, "require_auth": True}
        response = await harness.client.post("/v2/conversations", json=body)
        assert response.json()["meeting_token"].count(".") == 2

    async def test_face_id_comes_from_the_pal_or_the_request(self, harness: Harness) -> None:
        pal_id = await harness.create_pal()
        from_pal = await harness.create_conversation(pal_id)
        explicit = await harness.create_conversation(pal_id, face_id="rexplicit0001")
        assert harness.sim.conversation(from_pal).face_id == "r90bbd427f71"
        assert harness.sim.conversation(explicit).face_id == "rexplicit0001"

    async def test_face_id_required_without_a_pal_default(self, harness: Harness) -> None:
        pal_id = (await harness.client.post("/v2/personas", json={"system_prompt": "Hi."})).json()[
            "persona_id"
        ]
        response = await harness.client.post("/v2/conversations", json={"pal_id": pal_id})
        assert response.status_code == 400
        assert response.json() == {"message": "face_id is required"}

    async def test_unknown_or_deleted_pal_is_400(self, harness: Harness) -> None:
        pal_id = await harness.create_pal()
        await harness.client.delete(f"/v2/pals/{pal_id}")

        unknown = await harness.client.post("/v2/conversations", json={"pal_id": "p00000000000"})
        deleted = await harness.client.post("/v2/conversations", json={"pal_id": pal_id})
        legacy = await harness.client.post("/v2/conversations", json={"persona_id": "p00000000000"})

        assert unknown.status_code == 400
        assert unknown.json() == {"error": "Invalid pal_id"}
        assert deleted.json() == {"error": "Invalid pal_id"}
        assert legacy.json() == {"error": "Invalid persona_id"}

    async def test_validates_properties(self, harness: Harness) -> None:
        pal_id = await harness.create_pal()
        response = await harness.client.post(
            "/v2/conversations",
            json={"pal_id": pal_id, "properties": {"max_call_duration": -1}},
        )
        assert response.status_code == 400
        assert response.json() == {
            "message": "properties.max_call_duration must be a non-negative integer"
        }

    async def test_test_mode_is_born_ended_without_a_slot(
        self, make_harness: HarnessFactory
    ) -> None:
        harness = make_harness(max_concurrent_conversations=0)
        pal_id = await harness.create_pal()

        response = await harness.client.post(
            "/v2/conversations", json={"pal_id": pal_id, "test_mode": True}
        )

        assert response.status_code == 200
        assert response.json()["status"] == "ended"
        record = harness.sim.conversation(response.json()["conversation_id"])
        assert not record.holds_slot
        assert record.events == []


class TestConcurrencyLimit:
    async def test_limit_reached_then_freed_by_end(self, make_harness: HarnessFactory) -> None:
        harness = make_harness(max_concurrent_conversations=2)
        pal_id = await harness.create_pal()
        first = await harness.create_conversation(pal_id)
        await harness.create_conversation(pal_id)

        refused = await harness.client.post("/v2/conversations", json={"pal_id": pal_id})
        await harness.client.post(f"/v2/conversations/{first}/end")
        accepted = await harness.client.post("/v2/conversations", json={"pal_id": pal_id})

        assert refused.status_code == 400
        assert refused.json() == CONCURRENCY_BODY
        assert accepted.status_code == 200

    async def test_slots_are_per_account(self, make_harness: HarnessFactory) -> None:
        harness = make_harness(max_concurrent_conversations=1)
        await harness.create_conversation(await harness.create_pal())
        other = harness.client_for("second-account")
        pal = await other.post("/v2/pals", json={"default_face_id": "r1", "system_prompt": "x"})
        response = await other.post("/v2/conversations", json={"pal_id": pal.json()["pal_id"]})
        assert response.status_code == 200


class TestGetConversation:
    async def test_documented_fields(self, harness: Harness) -> None:
        pal_id = await harness.create_pal()
        conversation_id = await harness.create_conversation(pal_id, conversation_name="n")

        body = (await harness.client.get(f"/v2/conversations/{conversation_id}")).json()

        assert body["conversation_id"] == conversation_id
        assert body["status"] == "active"
        assert body["replica_id"] == "r90bbd427f71"
        assert body["persona_id"] == pal_id
        assert body["pal_id"] == pal_id
        assert TIMESTAMP_Z.match(body["updated_at"])
        assert "events" not in body

    async def test_verbose_adds_events(self, harness: Harness) -> None:
        conversation_id = await harness.create_conversation(await harness.create_pal())
        harness.sim.advance(1.0)  # the face joins after replica_join_delay_s

        body = (
            await harness.client.get(f"/v2/conversations/{conversation_id}?verbose=true")
        ).json()

        assert [e["event_type"] for e in body["events"]] == ["system.replica_joined"]
        assert body["events"][0]["properties"] == {"replica_id": "r90bbd427f71"}

    async def test_unknown_id_is_400(self, harness: Harness) -> None:
        response = await harness.client.get("/v2/conversations/c000000000000000")
        assert response.status_code == 400
        assert response.json() == {"error": "Invalid conversation_id"}

    async def test_wrapped_shape_when_configured(self, harness: Harness) -> None:
        conversation_id = await harness.create_conversation(await harness.create_pal())
        harness.sim.configure(conversation_get_shape="wrapped")

        plain = (await harness.client.get(f"/v2/conversations/{conversation_id}")).json()
        verbose = (
            await harness.client.get(f"/v2/conversations/{conversation_id}?verbose=true")
        ).json()

        assert list(plain) == ["data"]
        assert plain["data"][0]["conversation_id"] == conversation_id
        assert "events" in verbose["data"][0]

    async def test_create_context_is_kept(self, harness: Harness) -> None:
        pal_id = await harness.create_pal()
        conversation_id = await harness.create_conversation(
            pal_id, conversational_context="The caller is Anna."
        )

        state = (await harness.client.get(f"/_sim/conversations/{conversation_id}")).json()

        assert state["conversational_context"] == "The caller is Anna."
        assert state["app_messages"] == []


class TestListConversations:
    async def test_filters_by_status_and_pages(self, harness: Harness) -> None:
        pal_id = await harness.create_pal()
        ids = [await harness.create_conversation(pal_id) for _ in range(3)]
        await harness.client.post(f"/v2/conversations/{ids[0]}/end")

        active = (await harness.client.get("/v2/conversations?status=active")).json()
        ended = (await harness.client.get("/v2/conversations?status=ended")).json()
        page = (await harness.client.get("/v2/conversations?limit=1&page=2")).json()

        assert active["total_count"] == 2
        assert [c["conversation_id"] for c in active["data"]] == [ids[2], ids[1]]
        assert [c["conversation_id"] for c in ended["data"]] == [ids[0]]
        assert page["total_count"] == 3
        assert [c["conversation_id"] for c in page["data"]] == [ids[1]]

    async def test_rejects_unknown_status(self, harness: Harness) -> None:
        response = await harness.client.get("/v2/conversations?status=paused")
        assert response.status_code == 400


class TestEndConversation:
    async def test_ends_with_empty_200_and_is_idempotent(self, harness: Harness) -> None:
        conversation_id = await harness.create_conversation(await harness.create_pal())

        first = await harness.client.post(f"/v2/conversations/{conversation_id}/end")
        second = await harness.client.post(f"/v2/conversations/{conversation_id}/end")

        assert (first.status_code, first.content) == (200, b"")
        assert second.status_code == 200
        record = harness.sim.conversation(conversation_id)
        assert record.status == "ended"
        assert record.shutdown_reason == "end_conversation_endpoint_hit"
        assert record.end_calls == 2
        assert [e["event_type"] for e in record.events].count("system.shutdown") == 1

    async def test_unknown_id_is_400(self, harness: Harness) -> None:
        response = await harness.client.post("/v2/conversations/c000000000000000/end")
        assert response.status_code == 400
        assert response.json() == {"error": "Invalid conversation_id"}


class TestDeleteConversation:
    async def test_204_then_gone_then_400(self, harness: Harness) -> None:
        conversation_id = await harness.create_conversation(await harness.create_pal())

        first = await harness.client.delete(f"/v2/conversations/{conversation_id}?hard=true")
        got = await harness.client.get(f"/v2/conversations/{conversation_id}")
        second = await harness.client.delete(f"/v2/conversations/{conversation_id}")

        assert (first.status_code, first.content) == (204, b"")
        assert got.json() == {"error": "Invalid conversation_id"}
        assert second.status_code == 400
        assert second.json() == {"error": "Invalid conversation_id"}
        record = harness.sim.conversation(conversation_id)
        assert record.shutdown_reason == "daily_room_has_been_deleted"
        assert record.delete_calls == 2
        assert not record.holds_slot


class TestRouting:
    async def test_unknown_path_and_method(self, harness: Harness) -> None:
        missing = await harness.client.get("/v2/replicas")
        wrong_method = await harness.client.put("/v2/pals")
        unknown_action = await harness.client.post("/v2/conversations/c1/pause")
        wrong_action_method = await harness.client.get("/v2/conversations/c1/send-app-message")
        assert missing.status_code == 404
        assert wrong_method.status_code == 405
        assert unknown_action.status_code == 404
        assert wrong_action_method.status_code == 405
