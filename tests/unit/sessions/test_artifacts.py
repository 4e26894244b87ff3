"""Reading Tavus's artifact events: transcript entries, the recording's location, order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.domain.sessions.artifacts import (
    Artifact,
    artifacts_view,
    is_newer,
    summary_of,
    transcript_entries,
)

NOW = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


def _event(**properties: Any) -> dict[str, Any]:
    return {"event_type": "application.x", "conversation_id": "c1", "properties": properties}


class TestTranscriptEntries:
    def test_only_a_leading_system_prompt_is_left_out(self) -> None:
        items, unreadable = transcript_entries(
            _event(
                transcript=[
                    {"role": "system", "content": "prompt"},
                    {"role": "user", "content": "hi"},
                    {"role": "system", "content": "a tool said so"},
                ]
            )
        )

        assert [i["content"] for i in items] == ["hi", "a tool said so"]
        assert unreadable == 0

    def test_fields_tavus_adds_are_kept(self) -> None:
        entry = {"role": "user", "content": "hi", "seconds_from_start": 2.5, "inference_id": "i1"}

        items, _ = transcript_entries(_event(transcript=[entry]))

        assert items == [entry]

    @pytest.mark.parametrize(
        "entry", ["text", None, {"role": "user"}, {"content": "x"}, {"role": 1, "content": "x"}]
    )
    def test_an_entry_that_is_not_a_turn_is_counted_not_shown(self, entry: object) -> None:
        items, unreadable = transcript_entries(
            _event(transcript=[{"role": "user", "content": "ok"}, entry])
        )

        assert len(items) == 1
        assert unreadable == 1

    def test_no_transcript_list_at_all_is_unreadable(self) -> None:
        assert transcript_entries(_event(transcript="nope")) == ([], 1)


class TestRecording:
    @pytest.mark.parametrize(
        ("duration", "seconds"),
        [
            (12, 12.0),
            (1.5, 1.5),
            ("30", 30.0),
            ("x", None),
            (-1, None),
            (True, None),
            (None, None),
            # Past any float: a length no recording has, not a server error.
            pytest.param(10**400, None, id="int-past-float"),
            pytest.param("1" + "0" * 400, None, id="text-past-float"),
        ],
    )
    def test_duration(self, duration: object, seconds: float | None) -> None:
        summary = summary_of(
            Artifact.RECORDING, _event(duration=duration), event_id=1, at=NOW, received=NOW
        )

        assert summary["duration"] == seconds

    def test_a_location_that_is_not_text_is_left_empty(self) -> None:
        summary = summary_of(
            Artifact.RECORDING,
            _event(storage_uri={"bucket": "b"}, s3_key="k"),
            event_id=1,
            at=NOW,
            received=NOW,
        )

        assert summary["storage_uri"] is None
        assert summary["s3_key"] == "k"


class TestOrder:
    def _summary(self, at: datetime) -> dict[str, Any]:
        return summary_of(
            Artifact.PERCEPTION_ANALYSIS, _event(analysis="a"), event_id=1, at=at, received=NOW
        )

    def test_a_later_or_equal_event_replaces_an_earlier_one(self) -> None:
        kept = self._summary(NOW)

        assert is_newer(self._summary(NOW + timedelta(microseconds=1)), kept)
        assert is_newer(self._summary(NOW), kept)
        assert not is_newer(self._summary(NOW - timedelta(seconds=1)), kept)
        assert is_newer(kept, None)


class TestView:
    def test_a_transcript_is_complete_only_once_the_session_ended(self) -> None:
        stored = {
            "transcript": summary_of(
                Artifact.TRANSCRIPT,
                _event(transcript=[{"role": "user", "content": "hi"}]),
                event_id=7,
                at=NOW,
                received=NOW,
            )
        }

        live = artifacts_view(stored, ended=False).transcript
        over = artifacts_view(stored, ended=True).transcript

        assert live is not None
        assert over is not None
        assert (live.complete, over.complete, over.entries) == (False, True, 1)
        assert artifacts_view(None, ended=True).recording is None
