"""A session's transcript and artifacts (recording, perception analysis), as the
console's session page shows them.

:func:`artifacts_of` is the one place the page reads them from: the summaries the
session row keeps (``Session.artifacts``, written by the webhook handler) and, for the
transcript, the stored ``application.transcription_ready`` event the summary names, as
``GET /sessions/{id}/transcript`` reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Session
from app.db.repositories.sessions import SessionRepository
from app.domain.sessions.artifacts import Artifact as ArtifactKind
from app.domain.sessions.artifacts import transcript_complete, transcript_entries
from app.domain.sessions.states import State

# A transcript can run to thousands of turns; the page shows the first ones and says how
# many more the API's transcript route has.
TRANSCRIPT_LINES_SHOWN: Final = 500

# Only these become links: anything else Tavus sent (s3://, or a hostile javascript:)
# is shown as text.
_LINKABLE: Final = ("https://",)

# Bookkeeping of the summary, not something Tavus said.
_INTERNAL: Final = frozenset({"event_id", "unreadable"})


@dataclass(frozen=True)
class TranscriptLine:
    role: str
    content: str


@dataclass(frozen=True)
class Artifact:
    #: ``recording``, ``perception_analysis``, ...
    kind: str
    #: A link to it, when it has one.
    url: str | None = None
    #: Anything else Tavus said of it, shown as JSON.
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SessionArtifacts:
    transcript: list[TranscriptLine] | None
    #: Whether the transcript is the whole conversation.
    transcript_complete: bool
    #: Turns in the transcript beyond the ones shown.
    transcript_more: int
    artifacts: list[Artifact]


async def artifacts_of(db: AsyncSession, session: Session) -> SessionArtifacts | None:
    """The session's transcript and artifacts; None while Tavus has sent none."""
    stored: dict[str, Any] = session.artifacts or {}
    if not stored:
        return None
    transcript: list[TranscriptLine] | None = None
    more = 0
    complete = False
    summary = stored.get(ArtifactKind.TRANSCRIPT)
    if summary:
        event = await SessionRepository(db).event(session.id, summary["event_id"])
        if event is not None:
            items, _ = transcript_entries(event.payload)
            transcript = [
                TranscriptLine(role=item["role"], content=item["content"])
                for item in items[:TRANSCRIPT_LINES_SHOWN]
            ]
            more = max(0, len(items) - TRANSCRIPT_LINES_SHOWN)
            complete = transcript_complete(summary, ended=session.state == State.ENDED)
    artifacts = [
        _artifact(kind, stored[kind])
        for kind in (ArtifactKind.RECORDING, ArtifactKind.PERCEPTION_ANALYSIS)
        if stored.get(kind)
    ]
    return SessionArtifacts(
        transcript=transcript,
        transcript_complete=complete,
        transcript_more=more,
        artifacts=artifacts,
    )


def _artifact(kind: ArtifactKind, summary: dict[str, Any]) -> Artifact:
    details = {
        key: value for key, value in summary.items() if key not in _INTERNAL and value is not None
    }
    uri = summary.get("storage_uri")
    url = uri if isinstance(uri, str) and uri.startswith(_LINKABLE) else None
    return Artifact(kind=str(kind), url=url, details=details)
