from __future__ import annotations

from tests.integration.simulator.conftest import API_KEY, Harness, WebhookReceiver


class TestState:
    async def test_lists_every_pal_and_conversation(self, harness: Harness) -> None:
        pal_id = await harness.create_pal()
        conversation_id = await harness.create_conversation(
            pal_id, conversation_name="Intake", callback_url="https://example.test/h"
        )
        await harness.client.post(f"/v2/conversations/{conversation_id}/end")
        await harness.client.delete(f"/v2/pals/{pal_id}")
        await harness.client.delete(f"/v2/pals/{pal_id}")

        state = (await harness.client.get("/_sim/state")).json()

        assert state["seed"] == 1234
        assert state["accounts"] == {API_KEY: {"active_conversations": 0}}
        [pal] = state["pals"]
        assert pal["pal_id"] == pal_id
        assert pal["delete_calls"] == 2
        assert pal["created_at"]
        assert pal["deleted_at"]
        [conv] = state["conversations"]
        assert conv["conversation_id"] == conversation_id
        assert conv["pal_id"] == pal_id
        assert conv["status"] == "ended"
        assert conv["shutdown_reason"] == "end_conversation_endpoint_hit"
        assert conv["callback_url"] == "https://example.test/h"
        assert conv["conversation_name"] == "Intake"
        assert conv["created_at"]
        assert conv["ended_at"]
        assert conv["deleted_at"] is None

    async def test_snapshot_is_the_same_in_process(self, harness: Harness) -> None:
        await harness.create_pal()
        over_http = (await harness.client.get("/_sim/state")).json()
        in_process = harness.sim.snapshot()
        assert over_http["pals"] == in_process["pals"]


class TestCalls:
    async def test_call_log_with_filters(self, harness: Harness) -> None:
        pal_id = await harness.create_pal()
        await harness.client.get(f"/v2/pals/{pal_id}")
        await harness.client.get("/v2/pals/p00000000000")

        everything = (await harness.client.get("/_sim/calls")).json()["data"]
        gets = (await harness.client.get("/_sim/calls?operation=pal.get")).json()["data"]
        since = (await harness.client.get("/_sim/calls?since=2")).json()["data"]

        assert [c["operation"] for c in everything] == ["pal.create", "pal.get", "pal.get"]
        assert [(c["method"], c["status"]) for c in gets] == [("GET", 200), ("GET", 400)]
        assert gets[0]["path"] == f"/v2/pals/{pal_id}"
        assert gets[0]["object_id"] == pal_id
        assert gets[0]["account"] == API_KEY
        assert gets[0]["fault"] is None
        assert gets[0]["latency_ms"] >= 0
        assert [c["seq"] for c in since] == [3]


class TestFaultRoutes:
    async def test_add_list_replace_clear(self, harness: Harness) -> None:
        added = await harness.client.post(
            "/_sim/faults/pal.create", json={"kind": "error", "preset": "unavailable", "times": 1}
        )
        replaced = await harness.client.put(
            "/_sim/faults/pal.list",
            json={"faults": [{"kind": "latency", "distribution": "fixed", "ms": 1}]},
        )
        listed = (await harness.client.get("/_sim/faults")).json()

        assert added.status_code == 201
        assert added.json()["pal.create"][0]["status"] == 503
        assert replaced.status_code == 200
        assert set(listed) == {"pal.create", "pal.list"}

        one = await harness.client.delete("/_sim/faults/pal.create")
        assert one.status_code == 204
        assert set((await harness.client.get("/_sim/faults")).json()) == {"pal.list"}
        await harness.client.delete("/_sim/faults")
        assert (await harness.client.get("/_sim/faults")).json() == {}

    async def test_invalid_rules_are_400(self, harness: Harness) -> None:
        unknown_kind = await harness.client.post("/_sim/faults/pal.get", json={"kind": "boom"})
        wrong_kind = await harness.client.post("/_sim/faults/webhook", json={"kind": "hang"})
        bad_rate = await harness.client.post(
            "/_sim/faults/pal.get", json={"kind": "error", "status": 500, "rate": 2}
        )
        unknown_op = await harness.client.post(
            "/_sim/faults/pal.patch", json={"kind": "error", "status": 500}
        )

        assert unknown_kind.status_code == 400
        assert wrong_kind.status_code == 400
        assert "does not apply" in wrong_kind.json()["error"]
        assert bad_rate.status_code == 400
        assert unknown_op.status_code == 404


class TestDriving:
    async def test_join_leave_and_advance_over_http(
        self, harness: Harness, receiver: WebhookReceiver
    ) -> None:
        token, url = receiver.new_url()
        conversation_id = await harness.create_conversation(
            await harness.create_pal(),
            callback_url=url,
            properties={"participant_left_timeout": 30},
        )
        base = f"/_sim/conversations/{conversation_id}"

        joined = await harness.client.post(f"{base}/join", json={"participant_id": "ann"})
        left = await harness.client.post(f"{base}/leave", json={})
        advanced = await harness.client.post("/_sim/clock/advance", json={"seconds": 30})
        drained = await harness.client.post("/_sim/webhooks/drain", json={"timeout_s": 5})

        assert joined.json() == {"participant_id": "ann"}
        assert left.json() == {"participant_id": "ann"}
        assert advanced.json()["sim_time_s"] >= 30
        assert drained.json() == {"pending": 0}
        assert harness.sim.conversation(conversation_id).shutdown_reason == (
            "participant_left_timeout reached"
        )
        assert receiver.event_types(token) == [
            "system.replica_joined",
            "system.shutdown",
            "application.transcription_ready",
        ]

    async def test_face_join_and_forced_shutdown(self, harness: Harness) -> None:
        conversation_id = await harness.create_conversation(await harness.create_pal())
        base = f"/_sim/conversations/{conversation_id}"

        face = await harness.client.post(f"{base}/face/join")
        shutdown = await harness.client.post(
            f"{base}/shutdown", json={"reason": "bot_could_not_join_meeting_it_was_probably_ended"}
        )
        again = await harness.client.post(f"{base}/shutdown", json={"reason": "x"})

        assert face.status_code == 200
        assert shutdown.json()["shutdown_reason"] == (
            "bot_could_not_join_meeting_it_was_probably_ended"
        )
        assert again.status_code == 409

    async def test_errors_are_json(self, harness: Harness) -> None:
        unknown = await harness.client.post("/_sim/conversations/cnope/join")
        no_reason = await harness.client.post("/_sim/conversations/cnope/shutdown", json={})
        bad_seconds = await harness.client.post("/_sim/clock/advance", json={"seconds": "x"})
        backwards = await harness.client.post("/_sim/clock/advance", json={"seconds": -1})

        assert unknown.status_code == 404
        assert unknown.json() == {"error": "unknown conversation cnope"}
        assert no_reason.status_code == 400
        assert bad_seconds.status_code == 400
        assert backwards.status_code == 400


class TestConfigAndReset:
    async def test_patch_config_then_reset_restores_it(self, harness: Harness) -> None:
        patched = await harness.client.patch(
            "/_sim/config", json={"max_concurrent_conversations": 0, "pal_get_shape": "wrapped"}
        )
        refused = await harness.client.patch("/_sim/config", json={"seed": 3})
        invalid = await harness.client.patch("/_sim/config", json={"time_scale": 0})

        assert patched.json()["max_concurrent_conversations"] == 0
        assert refused.status_code == 400
        assert invalid.status_code == 400

        await harness.create_pal()
        harness.sim.add_fault("pal.get", {"kind": "error", "status": 500})
        reset = await harness.client.post("/_sim/reset", json={"seed": 42})

        assert reset.json() == {"seed": 42}
        state = harness.sim.snapshot()
        assert state["pals"] == []
        assert state["faults"] == {}
        assert state["config"]["max_concurrent_conversations"] is None
        assert state["config"]["pal_get_shape"] == "flat"
        assert harness.sim.call_log() == []

    async def test_healthz(self, harness: Harness) -> None:
        assert (await harness.client.get("/_sim/healthz")).json() == {"status": "ok"}
