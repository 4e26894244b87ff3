"""How Palisade marks the Tavus objects it creates, so each is attributable to a session.

Tavus has no metadata field, so the session id goes into the names: the conversation's
``conversation_name`` and the ephemeral PAL's ``pal_name`` end with
``(palisade <session uuid>)``. An unknown create outcome is resolved by listing and
matching the name; the orphan sweep parses the id back out. A participant who sees the
PAL's name sees that suffix after the template's ``pal_name``.
"""

from __future__ import annotations

import re
import uuid
from typing import Final

_TAG: Final = re.compile(
    r"\(palisade ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\)$"
)
DEFAULT_PAL_NAME: Final = "Palisade session"
DEFAULT_CONVERSATION_NAME: Final = "Palisade session"
# Tavus documents no limit; stay well within what any dashboard shows.
MAX_BASE_LENGTH: Final = 120


def _tagged(base: str | None, default: str, session_id: uuid.UUID) -> str:
    base = (base or default).strip()[:MAX_BASE_LENGTH] or default
    return f"{base} (palisade {session_id})"


def pal_name(base: str | None, session_id: uuid.UUID) -> str:
    return _tagged(base, DEFAULT_PAL_NAME, session_id)


def conversation_name(base: str | None, session_id: uuid.UUID) -> str:
    return _tagged(base, DEFAULT_CONVERSATION_NAME, session_id)


def session_id_from_name(name: str | None) -> uuid.UUID | None:
    """The session a tagged name belongs to, or None when the name is not Palisade's."""
    if not name:
        return None
    match = _TAG.search(name)
    return uuid.UUID(match.group(1)) if match else None
