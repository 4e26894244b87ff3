"""What Tavus sends after a call, as Palisade keeps and shows it: the transcript, the
recording's location and the perception analysis.

Each artifact webhook is stored raw in the session's log like every event; the session
row keeps a short summary of the latest of each kind (``Session.artifacts``), which the
session view shows without reading the log. The transcript itself stays in its stored
event, which the summary names: it can run to hundreds of kilobytes, and the list of
sessions reads the row of every session it shows.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel, ConfigDict

TRANSCRIPTION_READY: Final = "application.transcription_ready"
RECORDING_READY: Final = "application.recording_ready"
PERCEPTION_ANALYSIS: Final = "application.perception_analysis"


class Artifact(StrEnum):
    """The kinds of artifact, named as the session view names them."""

    TRANSCRIPT = "transcript"
    RECORDING = "recording"
    PERCEPTION_ANALYSIS = "perception_analysis"


ARTIFACT_OF_EVENT: Final = {
    TRANSCRIPTION_READY: Artifact.TRANSCRIPT,
    RECORDING_READY: Artifact.RECORDING,
    PERCEPTION_ANALYSIS: Artifact.PERCEPTION_ANALYSIS,
}

# The recording's location, in Tavus's old shape (bucket and key) and its new one
# (provider and URI); other properties stay in the stored event.
_RECORDING_TEXT: Final = ("storage_uri", "storage_provider", "bucket_name", "s3_key")


# --- what clients see ---------------------------------------------------------------------


class TranscriptItem(BaseModel):
    """One turn: ``role`` (``user``, ``assistant``) and ``content``, with whatever else
    Tavus sends for it (``timestamp``, ``seconds_from_start``, ``duration``, ...)."""

    model_config = ConfigDict(extra="allow")

    role: str
    content: str


class Transcript(BaseModel):
    items: list[TranscriptItem]
    #: The conversation is over (the session ended) and every entry Tavus sent could be
    #: read: the transcript covers the whole call.
    complete: bool
    received_at: datetime


class TranscriptSummary(BaseModel):
    complete: bool
    #: Turns in it, the system prompt left out.
    entries: int
    received_at: datetime


class RecordingSummary(BaseModel):
    """Where Tavus put the recording: ``storage_uri`` (newer) or ``bucket_name`` and
    ``s3_key`` (older), and its length in seconds."""

    storage_uri: str | None
    storage_provider: str | None
    bucket_name: str | None
    s3_key: str | None
    duration: float | None
    received_at: datetime


class PerceptionAnalysisSummary(BaseModel):
    #: Tavus's analysis of what the camera saw, in Markdown.
    analysis: str | None
    received_at: datetime


class Artifacts(BaseModel):
    """What Tavus has sent after the call; None until it has."""

    transcript: TranscriptSummary | None
    recording: RecordingSummary | None
    perception_analysis: PerceptionAnalysisSummary | None


# --- reading Tavus's events -----------------------------------------------------------------


def transcript_entries(event: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """The turns of a ``transcription_ready`` event, in order and without the leading
    system prompt, and how many entries could not be read as turns (not an object, or
    no text ``role`` and ``content``)."""
    raw = (event.get("properties") or {}).get("transcript")
    if not isinstance(raw, list):
        return [], 1
    entries = list(raw)
    if entries and isinstance(entries[0], dict) and entries[0].get("role") == "system":
        entries = entries[1:]
    items = [
        entry
        for entry in entries
        if isinstance(entry, dict)
        and isinstance(entry.get("role"), str)
        and isinstance(entry.get("content"), str)
    ]
    return items, len(entries) - len(items)


def summary_of(
    artifact: Artifact, event: dict[str, Any], *, event_id: int, at: datetime, received: datetime
) -> dict[str, Any]:
    """What the session row keeps of an artifact event (stored as JSON). ``at`` is the
    event's time (Tavus's, or its receipt's), which orders two events of one kind."""
    properties: dict[str, Any] = event.get("properties") or {}
    summary: dict[str, Any] = {
        "event_id": event_id,
        "at": at.isoformat(),
        "received_at": received.isoformat(),
    }
    if artifact is Artifact.TRANSCRIPT:
        items, unreadable = transcript_entries(event)
        summary.update(entries=len(items), unreadable=unreadable)
    elif artifact is Artifact.RECORDING:
        for key in _RECORDING_TEXT:
            value = properties.get(key)
            summary[key] = value if isinstance(value, str) else None
        summary["duration"] = _seconds(properties.get("duration"))
    else:
        analysis = properties.get("analysis")
        summary["analysis"] = analysis if isinstance(analysis, str) else None
    return summary


def is_newer(summary: dict[str, Any], kept: dict[str, Any] | None) -> bool:
    """Whether ``summary`` replaces ``kept``: a later event, or one at the same time
    (Tavus sent it again)."""
    if kept is None:
        return True
    return datetime.fromisoformat(summary["at"]) >= datetime.fromisoformat(kept["at"])


def artifacts_view(stored: dict[str, Any] | None, *, ended: bool) -> Artifacts:
    stored = stored or {}
    transcript = stored.get(Artifact.TRANSCRIPT)
    recording = stored.get(Artifact.RECORDING)
    analysis = stored.get(Artifact.PERCEPTION_ANALYSIS)
    return Artifacts(
        transcript=TranscriptSummary(
            complete=transcript_complete(transcript, ended=ended),
            entries=transcript["entries"],
            received_at=transcript["received_at"],
        )
        if transcript
        else None,
        recording=RecordingSummary.model_validate(recording) if recording else None,
        perception_analysis=PerceptionAnalysisSummary.model_validate(analysis)
        if analysis
        else None,
    )


def transcript_complete(summary: dict[str, Any] | None, *, ended: bool) -> bool:
    return summary is not None and ended and summary["unreadable"] == 0


def _seconds(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if not isinstance(value, int | float | str):
        return None
    try:
        seconds = float(value)
    except (ValueError, OverflowError):  # an int past any float is no length either
        return None
    # NaN, infinities and negative lengths are not lengths.
    return seconds if 0 <= seconds < float("inf") else None
