"""What Tavus sends after the call: the transcript, the recording's location and the
perception analysis, applied whenever they come (after the end, twice, out of order)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tavus_simulator import DropFault
from tests.integration.api.test_key_scopes import assert_needs_scope, assert_problem, issue
from tests.integration.api.test_sessions import setup_tenant, start
from tests.support.client import PalisadeClient
from tests.support.stack import Palisade, SimulatorHandle
from tests.support.wait import until

SYSTEM_PROMPT = "You are a calm coach."


async def ended_session(
    palisade: Palisade,
    simulator: SimulatorHandle,
    *,
    drop_webhooks: bool = False,
    before_start: Callable[[], Awaitable[object]] | None = None,
) -> tuple[PalisadeClient, dict[str, Any]]:
    """A session whose conversation ran (face and a user joined) and ended.
    ``before_start``: run once the tenant exists, before its session starts."""
    key, _ = await setup_tenant(palisade)
    if before_start is not None:
        await before_start()
    api = palisade.api_as(key)
    session = (await start(palisade, key, {"profile": "voices"})).json()
    conversation_id = session["conversation_id"]
    simulator.sim.join_face(conversation_id)
    simulator.sim.join_participant(conversation_id)
    if drop_webhooks:
        # Tavus's own webhooks are lost; a copy of its shutdown alone tells Palisade.
        simulator.sim.add_fault("webhook", DropFault())
    simulator.sim.shutdown_conversation(conversation_id, "participant_left_timeout reached")
    if drop_webhooks:
        await post_event(
            palisade, session, "system.shutdown", shutdown_reason="participant_left_timeout"
        )
    await wait_for(api, session["id"], lambda s: s["status"] == "ended", "ended")
    return api, session


async def wait_for(
    api: PalisadeClient, session_id: str, condition: Any, what: str
) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        session: dict[str, Any] = (await api.get_session(session_id)).json()
        return session if condition(session) else None

    return await until(probe, within=10, message=what)


async def post_event(
    palisade: Palisade, session: dict[str, Any], event_type: str, **properties: Any
) -> None:
    timestamp = properties.pop("timestamp", "2026-12-06T10:00:00.000000Z")
    token = palisade.runtime.webhook_tokens.token_for(session["id"])
    response = await palisade.client.post(
        f"/webhooks/tavus/{session['id']}",
        params={"token": token},
        json={
            "conversation_id": session["conversation_id"],
            "event_type": event_type,
            "message_type": "application",
            "timestamp": timestamp,
            "properties": properties,
        },
    )
    assert response.status_code == 200, response.text


class TestTranscript:
    async def test_readable_once_tavus_sent_it_without_the_system_prompt(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        api, session = await ended_session(palisade, simulator)

        viewed = await wait_for(
            api, session["id"], lambda s: s["artifacts"]["transcript"] is not None, "transcript"
        )

        response = await api.get_transcript(session["id"])
        assert response.status_code == 200, response.text
        transcript = response.json()
        assert transcript["complete"] is True
        assert [item["role"] for item in transcript["items"]] == ["assistant", "user"]
        assert all(item["content"] != SYSTEM_PROMPT for item in transcript["items"])
        assert viewed["artifacts"]["transcript"]["complete"] is True
        assert viewed["artifacts"]["transcript"]["entries"] == 2
        assert viewed["joined_at"] is not None

    async def test_404_until_it_arrives(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key, _ = await setup_tenant(palisade)
        api = palisade.api_as(key)
        session = (await start(palisade, key, {"profile": "coach"})).json()

        assert_problem(await api.get_transcript(session["id"]), 404, "transcript_not_available")
        viewed = (await api.get_session(session["id"])).json()
        assert viewed["artifacts"] == {
            "transcript": None,
            "recording": None,
            "perception_analysis": None,
        }

    async def test_applied_when_it_arrives_after_the_session_ended(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        api, session = await ended_session(palisade, simulator, drop_webhooks=True)
        assert_problem(await api.get_transcript(session["id"]), 404, "transcript_not_available")

        await post_event(
            palisade,
            session,
            "application.transcription_ready",
            transcript=[
                {"role": "system", "content": SYSTEM_PROMPT},
                {
                    "role": "assistant",
                    "content": "Hi there!",
                    "timestamp": "2026-12-06T09:59:01Z",
                    "seconds_from_start": 1.5,
                },
                {"role": "user", "content": "Hello.", "seconds_from_start": 3.0, "duration": 0.8},
            ],
        )

        transcript = (await api.get_transcript(session["id"])).json()
        assert transcript["complete"] is True
        assert transcript["items"] == [
            {
                "role": "assistant",
                "content": "Hi there!",
                "timestamp": "2026-12-06T09:59:01Z",
                "seconds_from_start": 1.5,
            },
            {"role": "user", "content": "Hello.", "seconds_from_start": 3.0, "duration": 0.8},
        ]

    async def test_twice_is_applied_once_and_a_newer_one_replaces_it(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        api, session = await ended_session(palisade, simulator, drop_webhooks=True)
        first = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "A"}]
        newer = [*first, {"role": "assistant", "content": "B"}]
        older = [{"role": "user", "content": "stale"}]

        await post_event(palisade, session, "application.transcription_ready", transcript=first)
        await post_event(palisade, session, "application.transcription_ready", transcript=first)
        assert [
            i["content"] for i in (await api.get_transcript(session["id"])).json()["items"]
        ] == ["A"]

        await post_event(
            palisade,
            session,
            "application.transcription_ready",
            transcript=newer,
            timestamp="2026-12-06T10:05:00Z",
        )
        await post_event(
            palisade,
            session,
            "application.transcription_ready",
            transcript=older,
            timestamp="2026-12-06T09:00:00Z",
        )

        items = (await api.get_transcript(session["id"])).json()["items"]
        assert [i["content"] for i in items] == ["A", "B"]
        viewed = (await api.get_session(session["id"])).json()
        assert viewed["artifacts"]["transcript"]["entries"] == 2

    async def test_not_complete_while_the_session_is_live_or_entries_were_unreadable(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key, _ = await setup_tenant(palisade)
        api = palisade.api_as(key)
        session = (await start(palisade, key, {"profile": "coach"})).json()

        await post_event(
            palisade,
            session,
            "application.transcription_ready",
            transcript=[{"role": "user", "content": "so far"}, "garbled", {"role": "user"}],
        )

        transcript = (await api.get_transcript(session["id"])).json()
        assert transcript["complete"] is False
        assert transcript["items"] == [{"role": "user", "content": "so far"}]

    async def test_another_tenant_cannot_read_it_and_reading_needs_the_read_scope(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        _, session = await ended_session(palisade, simulator)
        other_key, _ = await setup_tenant(palisade, tenant_id="globex")
        assert_problem(
            await palisade.api_as(other_key).get_transcript(session["id"]),
            404,
            "session_not_found",
        )
        starter = palisade.api_as(await issue(palisade, {"scopes": ["sessions:start"]}))
        assert_needs_scope(await starter.get_transcript(session["id"]), "sessions:read")


class TestRecordingAndAnalysis:
    async def test_a_recorded_call_shows_where_tavus_put_it(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key, _ = await setup_tenant(palisade)
        api = palisade.api_as(key)
        body = {"profile": "coach", "conversation": {"properties": {"enable_recording": True}}}
        session = (await start(palisade, key, body)).json()
        simulator.sim.join_face(session["conversation_id"])
        simulator.sim.join_participant(session["conversation_id"])
        simulator.sim.advance(42)
        await api.end_session(session["id"])

        viewed = await wait_for(
            api, session["id"], lambda s: s["artifacts"]["recording"] is not None, "recording"
        )

        recording = viewed["artifacts"]["recording"]
        assert recording["storage_uri"].startswith("s3://")
        assert recording["storage_uri"].endswith(f"{session['conversation_id']}.mp4")
        assert recording["duration"] > 41

    async def test_the_recording_location_is_on_the_session(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        api, session = await ended_session(palisade, simulator)

        await post_event(
            palisade,
            session,
            "application.recording_ready",
            bucket_name="acme-recordings",
            s3_key="conversations/c1.mp4",
            duration=312.5,
            storage_provider="s3",
            storage_uri="s3://acme-recordings/conversations/c1.mp4",
        )

        recording = (await api.get_session(session["id"])).json()["artifacts"]["recording"]
        assert recording["storage_uri"] == "s3://acme-recordings/conversations/c1.mp4"
        assert recording["storage_provider"] == "s3"
        assert recording["bucket_name"] == "acme-recordings"
        assert recording["s3_key"] == "conversations/c1.mp4"
        assert recording["duration"] == 312.5
        assert recording["received_at"] is not None

    async def test_the_older_recording_shape_is_read_too(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        api, session = await ended_session(palisade, simulator)

        await post_event(
            palisade,
            session,
            "application.recording_ready",
            bucket_name="b",
            s3_key="k.mp4",
            duration="61",
        )

        recording = (await api.get_session(session["id"])).json()["artifacts"]["recording"]
        assert recording["storage_uri"] is None
        assert (recording["bucket_name"], recording["s3_key"]) == ("b", "k.mp4")
        assert recording["duration"] == 61.0

    async def test_the_perception_analysis_is_on_the_session(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        api, session = await ended_session(palisade, simulator)

        await post_event(
            palisade,
            session,
            "application.perception_analysis",
            analysis="## Summary\nThe user smiled.",
        )

        listed = (await api.list_sessions()).json()["items"]
        [viewed] = [s for s in listed if s["id"] == session["id"]]
        assert viewed["artifacts"]["perception_analysis"]["analysis"] == (
            "## Summary\nThe user smiled."
        )
