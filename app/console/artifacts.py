"""A session's transcript and artifacts (recording, perception analysis), as the
console's session page shows them.

:func:`artifacts_of` is the one place the page reads them from. While Palisade keeps
them only as the raw Tavus events of the session's log (shown in its timeline), it
returns None and the page says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Session


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
    artifacts: list[Artifact]


async def artifacts_of(db: AsyncSession, session: Session) -> SessionArtifacts | None:
    """The session's transcript and artifacts; None while Palisade does not record them."""
    return None
