from __future__ import annotations

import pytest

from tavus_simulator.errors import ControlError
from tests.integration.simulator.conftest import Harness, HarnessFactory, eventually

QUIET = {"participant_absent_timeout": 10_000, "max_call_duration": 20_000}


def event_types(harness: Harness, conversation_id: str) -> list[str]:
    return [e["event_type"] for e in harness.sim.conversation(conversation_id).events]


class TestShutdownReasons:
    async def test_end_endpoint(self, harness: Harness) -> None:
        conversation_id = await harness.create_conversation(await harness.create_pal())
        harness.sim.advance(1.0)

        await harness.client.post(f"/v2/conversations/{conversation_id}/end")

        record = harness.sim.conversation(conversation_id)
        assert (record.status, record.shutdown_reason) == (
            "ended",
            "end_conversation_endpoint_hit",
        )
        assert event_types(harness, conversation_id) == [
            "system.replica_joined",
            "system.shutdown",
            "application.transcription_ready",
        ]

    async def test_max_call_duration(self, harness: Harness) -> None:
        pal_id = await harness.create_pal()
        conversation_id = await harness.create_conversation(
            pal_id, properties={"max_call_duration": 60, "participant_absent_timeout": 600}
        )
        harness.sim.join_participant(conversation_id)

        harness.sim.advance(59.0)
        assert harness.sim.conversation(conversation_id).status == "active"
        harness.sim.advance(1.0)

        record = harness.sim.conversation(conversation_id)
        assert record.shutdown_reason == "max_call_duration reached"
        assert not record.holds_slot

    async def test_default_max_call_duration_is_an_hour(self, harness: Harness) -> None:
        conversation_id = await harness.create_conversation(
            await harness.create_pal(), properties={"participant_absent_timeout": 10_000}
        )
        harness.sim.advance(3599.0)
        assert harness.sim.conversation(conversation_id).status == "active"
        harness.sim.advance(1.0)
        assert harness.sim.conversation(conversation_id).status == "ended"

    async def test_participant_absent_timeout_defaults_to_300s(self, harness: Harness) -> None:
        conversation_id = await harness.create_conversation(await harness.create_pal())

        harness.sim.advance(299.0)
        assert harness.sim.conversation(conversation_id).status == "active"
        harness.sim.advance(1.0)

        record = harness.sim.conversation(conversation_id)
        assert record.shutdown_reason == "participant_absent_timeout reached"

    async def test_joining_cancels_the_absent_timeout(self, harness: Harness) -> None:
        conversation_id = await harness.create_conversation(
            await harness.create_pal(), properties={"participant_absent_timeout": 30}
        )
        harness.sim.join_participant(conversation_id)
        harness.sim.advance(100.0)
        assert harness.sim.conversation(conversation_id).status == "active"

    async def test_participant_left_timeout(self, harness: Harness) -> None:
        conversation_id = await harness.create_conversation(
            await harness.create_pal(), properties={**QUIET, "participant_left_timeout": 10}
        )
        first = harness.sim.join_participant(conversation_id)
        second = harness.sim.join_participant(conversation_id, "guest")
        harness.sim.leave_participant(conversation_id, first)
        harness.sim.advance(60.0)
        assert harness.sim.conversation(conversation_id).status == "active"

        harness.sim.leave_participant(conversation_id, second)
        harness.sim.advance(9.5)
        assert harness.sim.conversation(conversation_id).status == "active"
        harness.sim.advance(0.5)

        record = harness.sim.conversation(conversation_id)
        assert record.shutdown_reason == "participant_left_timeout reached"
        assert record.participant_joins == 2

    async def test_rejoining_cancels_the_left_timeout(self, harness: Harness) -> None:
        conversation_id = await harness.create_conversation(
            await harness.create_pal(), properties={**QUIET, "participant_left_timeout": 10}
        )
        harness.sim.leave_participant(
            conversation_id, harness.sim.join_participant(conversation_id)
        )
        harness.sim.join_participant(conversation_id)
        harness.sim.advance(60.0)
        assert harness.sim.conversation(conversation_id).status == "active"

    async def test_left_timeout_defaults_to_zero(self, harness: Harness) -> None:
        conversation_id = await harness.create_conversation(
            await harness.create_pal(), properties=QUIET
        )
        harness.sim.leave_participant(
            conversation_id, harness.sim.join_participant(conversation_id)
        )
        harness.sim.advance(0.0)
        assert harness.sim.conversation(conversation_id).shutdown_reason == (
            "participant_left_timeout reached"
        )

    async def test_forced_shutdown_with_any_reason(self, harness: Harness) -> None:
        conversation_id = await harness.create_conversation(await harness.create_pal())
        harness.sim.shutdown_conversation(
            conversation_id, "exception_encountered_during_conversation_startup", error=True
        )
        record = harness.sim.conversation(conversation_id)
        assert record.status == "error"
        assert (await harness.client.get(f"/v2/conversations/{conversation_id}")).json()[
            "status"
        ] == "error"


class TestRealTime:
    async def test_time_scale_drives_join_and_timeouts(self, make_harness: HarnessFactory) -> None:
        # 3600 simulated seconds per real second: the 1 s join delay is ~0.3 ms and
        # a 6-minute call lasts 0.1 s.
        harness = make_harness(time_scale=3600.0)
        conversation_id = await harness.create_conversation(
            await harness.create_pal(),
            properties={"max_call_duration": 360, "participant_absent_timeout": 10_000},
        )

        await eventually(
            lambda: harness.sim.conversation(conversation_id).status == "ended",
            what="max_call_duration shutdown",
        )
        record = harness.sim.conversation(conversation_id)
        assert record.shutdown_reason == "max_call_duration reached"
        assert record.face_joined_at is not None
        assert record.ended_at is not None
        elapsed = (record.ended_at - record.created_at).total_seconds()
        assert elapsed == pytest.approx(360.0)

    @pytest.mark.parametrize(
        ("properties", "participant", "reason", "duration"),
        [
            ({"max_call_duration": 600}, True, "max_call_duration reached", 600.0),
            ({"participant_absent_timeout": 300}, False, "participant_absent_timeout reached", 300),
            ({"participant_left_timeout": 120}, True, "participant_left_timeout reached", None),
        ],
    )
    async def test_each_timed_reason_at_a_large_time_scale(
        self,
        make_harness: HarnessFactory,
        properties: dict[str, int],
        participant: bool,
        reason: str,
        duration: float | None,
    ) -> None:
        harness = make_harness(time_scale=6000.0)
        conversation_id = await harness.create_conversation(
            await harness.create_pal(), properties={**QUIET, **properties}
        )
        if participant:
            joined = harness.sim.join_participant(conversation_id)
            if duration is None:
                harness.sim.leave_participant(conversation_id, joined)

        await eventually(lambda: harness.sim.conversation(conversation_id).status == "ended")

        record = harness.sim.conversation(conversation_id)
        assert record.shutdown_reason == reason
        assert record.ended_at is not None
        if duration is not None:
            elapsed = (record.ended_at - record.created_at).total_seconds()
            assert elapsed == pytest.approx(duration)

    async def test_time_scale_can_change_at_runtime(self, harness: Harness) -> None:
        conversation_id = await harness.create_conversation(
            await harness.create_pal(), properties={"participant_absent_timeout": 120}
        )
        harness.sim.configure(time_scale=6000.0)
        await eventually(
            lambda: harness.sim.conversation(conversation_id).status == "ended",
            what="absent timeout",
        )


class TestFace:
    async def test_face_joins_after_the_configured_delay(self, harness: Harness) -> None:
        conversation_id = await harness.create_conversation(await harness.create_pal())
        harness.sim.advance(0.9)
        assert harness.sim.conversation(conversation_id).face_joined_at is None
        harness.sim.advance(0.1)
        assert event_types(harness, conversation_id) == ["system.replica_joined"]

    async def test_no_automatic_join_when_delay_is_none(self, make_harness: HarnessFactory) -> None:
        harness = make_harness(replica_join_delay_s=None)
        conversation_id = await harness.create_conversation(await harness.create_pal())
        harness.sim.advance(60.0)
        assert event_types(harness, conversation_id) == []

        harness.sim.join_face(conversation_id)
        assert event_types(harness, conversation_id) == ["system.replica_joined"]

    async def test_pal_joined_is_optional(self, make_harness: HarnessFactory) -> None:
        harness = make_harness(emit_pal_joined=True, replica_join_delay_s=0.0)
        conversation_id = await harness.create_conversation(await harness.create_pal())
        harness.sim.advance(0.0)
        assert event_types(harness, conversation_id) == [
            "system.replica_joined",
            "system.pal_joined",
        ]
        pal_joined = harness.sim.conversation(conversation_id).events[1]
        assert pal_joined["properties"] == {"face_id": "r90bbd427f71"}


class TestTranscript:
    async def test_first_entry_is_the_system_prompt(self, harness: Harness) -> None:
        pal_id = await harness.create_pal(system_prompt="Coach people kindly.")
        conversation_id = await harness.create_conversation(pal_id, custom_greeting="Hello!")
        harness.sim.advance(1.0)
        harness.sim.join_participant(conversation_id)
        await harness.client.post(f"/v2/conversations/{conversation_id}/end")

        ready = harness.sim.conversation(conversation_id).events[-1]

        assert ready["event_type"] == "application.transcription_ready"
        assert ready["message_type"] == "application"
        assert ready["properties"]["transcript"] == [
            {"role": "system", "content": "Coach people kindly."},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Hello."},
        ]


class TestRecording:
    async def test_a_recorded_call_sends_where_its_recording_is(self, harness: Harness) -> None:
        conversation_id = await harness.create_conversation(
            await harness.create_pal(), properties={"enable_recording": True, **QUIET}
        )
        harness.sim.advance(1.0)
        harness.sim.join_participant(conversation_id)
        harness.sim.advance(120.0)
        await harness.client.post(f"/v2/conversations/{conversation_id}/end")

        events = harness.sim.conversation(conversation_id).events
        assert [e["event_type"] for e in events][-2:] == [
            "application.transcription_ready",
            "application.recording_ready",
        ]
        recording = events[-1]["properties"]
        assert recording["s3_key"] == f"recordings/{conversation_id}.mp4"
        assert recording["storage_uri"] == f"s3://{recording['bucket_name']}/{recording['s3_key']}"
        assert recording["storage_provider"] == "s3"
        # Recorded from the face joining (1 s after creation) to the end.
        assert recording["duration"] == pytest.approx(120.0, abs=0.5)

    async def test_no_recording_without_enable_recording_or_a_face(self, harness: Harness) -> None:
        plain = await harness.create_conversation(await harness.create_pal(), properties=QUIET)
        faceless = await harness.create_conversation(
            await harness.create_pal(), properties={"enable_recording": True, **QUIET}
        )
        harness.sim.shutdown_conversation(
            faceless, "exception_encountered_during_conversation_startup"
        )
        harness.sim.advance(1.0)
        await harness.client.post(f"/v2/conversations/{plain}/end")

        for conversation_id in (plain, faceless):
            assert "application.recording_ready" not in event_types(harness, conversation_id)


class TestParticipantControlErrors:
    async def test_cannot_join_an_ended_conversation(self, harness: Harness) -> None:
        conversation_id = await harness.create_conversation(await harness.create_pal())
        await harness.client.post(f"/v2/conversations/{conversation_id}/end")
        with pytest.raises(ControlError):
            harness.sim.join_participant(conversation_id)

    async def test_max_participants_counts_the_face(self, harness: Harness) -> None:
        conversation_id = await harness.create_conversation(
            await harness.create_pal(), max_participants=2
        )
        harness.sim.join_participant(conversation_id)
        with pytest.raises(ControlError):
            harness.sim.join_participant(conversation_id)

    async def test_unknown_conversation(self, harness: Harness) -> None:
        with pytest.raises(ControlError):
            harness.sim.join_participant("cnope")
