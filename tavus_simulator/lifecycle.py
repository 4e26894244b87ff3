from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from tavus_simulator.app_messages import deliver_queued, drop_queued
from tavus_simulator.clock import SimClock, iso_z
from tavus_simulator.config import SimulatorConfig
from tavus_simulator.errors import ControlError
from tavus_simulator.records import ConversationRecord, ConversationStatus
from tavus_simulator.timers import Timer, TimerQueue
from tavus_simulator.webhooks import WebhookSender

END_ENDPOINT_HIT = "end_conversation_endpoint_hit"
MAX_CALL_DURATION = "max_call_duration reached"
PARTICIPANT_ABSENT = "participant_absent_timeout reached"
PARTICIPANT_LEFT = "participant_left_timeout reached"
ROOM_DELETED = "daily_room_has_been_deleted"
BOT_COULD_NOT_JOIN = "bot_could_not_join_meeting_it_was_probably_ended"
# Shutdowns after which the conversation's room no longer exists.
ROOM_GONE_REASONS = frozenset({ROOM_DELETED, BOT_COULD_NOT_JOIN})

DEFAULT_GREETING = "Hi there! How can I help you today?"
# Where the simulator says recordings go (Tavus's own bucket when the conversation
# names no recording_storage of its own).
RECORDING_BUCKET = "tavus-simulator-recordings"


class Lifecycle:
    """Moves conversations through active → ended on the simulated clock and
    emits Tavus's events (recorded for ``?verbose=true``, POSTed to callback_url)."""

    def __init__(
        self,
        clock: SimClock,
        timers: TimerQueue,
        webhooks: WebhookSender,
        config: Callable[[], SimulatorConfig],
        on_ended: Callable[[ConversationRecord], None],
    ) -> None:
        self._clock = clock
        self._timers = timers
        self._webhooks = webhooks
        self._config = config
        self._on_ended = on_ended
        self._participant_seq = itertools.count(1)

    def reset(self) -> None:
        self._participant_seq = itertools.count(1)

    def number_participants_after(self, last: int) -> None:
        self._participant_seq = itertools.count(last + 1)

    def begin(self, conv: ConversationRecord) -> None:
        if conv.status != "active":
            return
        delay = self._config().replica_join_delay_s
        if delay is not None:
            conv.timers["face_join"] = self._timers.call_later(delay, lambda: self.join_face(conv))
        conv.timers["max_call_duration"] = self._timers.call_later(
            conv.max_call_duration, lambda: self.shutdown(conv, MAX_CALL_DURATION)
        )
        conv.timers["participant_absent"] = self._timers.call_later(
            conv.participant_absent_timeout, lambda: self.shutdown(conv, PARTICIPANT_ABSENT)
        )

    def begin_ongoing(self, conv: ConversationRecord) -> None:
        """A call already under way, face and a participant in the room: only
        ``max_call_duration``, counted from now, ends it by itself."""
        conv.timers["max_call_duration"] = self._timers.call_later(
            conv.max_call_duration, lambda: self.shutdown(conv, MAX_CALL_DURATION)
        )

    def resume(self, conv: ConversationRecord) -> None:
        """A conversation that was active when the simulator last stopped: its clocks ran
        on meanwhile, as Tavus's would have, so whatever fell due while nobody watched
        happens as soon as the timers run."""
        if conv.status != "active":
            return
        elapsed = (self._clock.wall() - conv.created_at).total_seconds()

        def after(delay: float, action: Callable[[], None]) -> Timer:
            return self._timers.call_later(max(delay - elapsed, 0.0), action)

        delay = self._config().replica_join_delay_s
        if conv.face_joined_at is None and delay is not None:
            conv.timers["face_join"] = after(delay, lambda: self.join_face(conv))
        conv.timers["max_call_duration"] = after(
            conv.max_call_duration, lambda: self.shutdown(conv, MAX_CALL_DURATION)
        )
        if conv.participants:
            return
        if conv.participant_joins:
            # When the last participant left was not kept: the timeout starts again.
            conv.timers["participant_left"] = self._timers.call_later(
                conv.participant_left_timeout, lambda: self.shutdown(conv, PARTICIPANT_LEFT)
            )
        else:
            conv.timers["participant_absent"] = after(
                conv.participant_absent_timeout, lambda: self.shutdown(conv, PARTICIPANT_ABSENT)
            )

    def join_face(self, conv: ConversationRecord) -> None:
        self._require_active(conv)
        if conv.face_joined_at is not None:
            return
        self._timers.cancel(conv.timers.pop("face_join", None))
        conv.face_joined_at = self._clock.wall()
        self.emit(conv, "system.replica_joined", "system", {"replica_id": conv.face_id})
        if self._config().emit_pal_joined:
            self.emit(conv, "system.pal_joined", "system", {"face_id": conv.face_id})
        deliver_queued(conv, conv.face_joined_at)

    def join_participant(self, conv: ConversationRecord, participant_id: str | None) -> str:
        self._require_active(conv)
        pid = participant_id or f"participant-{next(self._participant_seq)}"
        if pid in conv.participants:
            raise ControlError(409, f"participant {pid} is already in the conversation")
        # The face is a participant too, so max_participants counts it.
        if conv.max_participants is not None and len(conv.participants) + 2 > conv.max_participants:
            raise ControlError(409, "max_participants reached")
        conv.participants.append(pid)
        conv.participant_joins += 1
        self._timers.cancel(conv.timers.pop("participant_absent", None))
        self._timers.cancel(conv.timers.pop("participant_left", None))
        return pid

    def leave_participant(self, conv: ConversationRecord, participant_id: str | None) -> str:
        self._require_active(conv)
        if not conv.participants:
            raise ControlError(409, "no participant is in the conversation")
        pid = participant_id or conv.participants[-1]
        if pid not in conv.participants:
            raise ControlError(404, f"participant {pid} is not in the conversation")
        conv.participants.remove(pid)
        if not conv.participants:
            conv.timers["participant_left"] = self._timers.call_later(
                conv.participant_left_timeout, lambda: self.shutdown(conv, PARTICIPANT_LEFT)
            )
        return pid

    def shutdown(
        self, conv: ConversationRecord, reason: str, status: ConversationStatus = "ended"
    ) -> None:
        if conv.status != "active":
            return
        now = self._clock.wall()
        conv.status = status
        conv.shutdown_reason = reason
        conv.ended_at = now
        conv.updated_at = now
        for timer in conv.timers.values():
            self._timers.cancel(timer)
        conv.timers.clear()
        conv.participants.clear()
        drop_queued(conv, now)
        self._on_ended(conv)
        self.emit(
            conv,
            "system.shutdown",
            "system",
            {"replica_id": conv.face_id, "shutdown_reason": reason},
        )
        self.emit(
            conv,
            "application.transcription_ready",
            "application",
            {"replica_id": conv.face_id, "transcript": self._transcript(conv)},
        )
        if self._recorded(conv):
            self.emit(conv, "application.recording_ready", "application", self._recording(conv))

    def emit(
        self,
        conv: ConversationRecord,
        event_type: str,
        message_type: str,
        properties: dict[str, Any],
    ) -> None:
        event = {
            "properties": properties,
            "conversation_id": conv.conversation_id,
            "webhook_url": conv.callback_url,
            "event_type": event_type,
            "message_type": message_type,
            "timestamp": iso_z(self._clock.wall()),
        }
        conv.events.append(event)
        if conv.callback_url:
            self._webhooks.submit(conv.conversation_id, conv.callback_url, event)

    @staticmethod
    def _recorded(conv: ConversationRecord) -> bool:
        # A recording is of the face's time in the room: none if it never joined.
        properties = conv.request.get("properties") or {}
        return properties.get("enable_recording") is True and conv.face_joined_at is not None

    @staticmethod
    def _recording(conv: ConversationRecord) -> dict[str, Any]:
        assert conv.face_joined_at is not None
        assert conv.ended_at is not None
        key = f"recordings/{conv.conversation_id}.mp4"
        return {
            "replica_id": conv.face_id,
            "bucket_name": RECORDING_BUCKET,
            "s3_key": key,
            "duration": (conv.ended_at - conv.face_joined_at).total_seconds(),
            "storage_provider": "s3",
            "storage_uri": f"s3://{RECORDING_BUCKET}/{key}",
        }

    def _transcript(self, conv: ConversationRecord) -> list[dict[str, str]]:
        transcript = [{"role": "system", "content": conv.system_prompt}]
        if conv.face_joined_at is not None:
            transcript.append(
                {"role": "assistant", "content": conv.custom_greeting or DEFAULT_GREETING}
            )
            if conv.participant_joins:
                transcript.append({"role": "user", "content": "Hello."})
        return transcript

    @staticmethod
    def _require_active(conv: ConversationRecord) -> None:
        if conv.status != "active":
            raise ControlError(409, f"conversation {conv.conversation_id} is {conv.status}")
