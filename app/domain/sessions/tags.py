"""How Palisade marks the Tavus objects it creates, so each is attributable to a session.

Tavus has no metadata field, so the session id goes into the names: the conversation's
``conversation_name`` and the ephemeral PAL's ``pal_name`` end with
``(palisade <session uuid>)``. An unknown create outcome is resolved by listing and
matching the name; the orphan sweep parses the id back out. A participant who sees the
PAL's name sees that suffix after the template's ``pal_name``.

A PAL made ahead of time for the warm pool (``app/domain/pool``) carries the id of its
pool row instead, ``(palisade pool <uuid>)``, and keeps that name when a session takes
it: the sweep attributes it by its pool row, or by the session holding its ``pal_id``.

A profile check (``app/domain/tenants/check.py``) names its short-lived PAL
``(palisade check <uuid>)``; it deletes the PAL itself, and the sweep removes one left
behind once it is older than any check can run.
"""

from __future__ import annotations

import re
import uuid
from typing import Final

_UUID: Final = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_TAG: Final = re.compile(rf"\(palisade ({_UUID})\)$")
_POOL_TAG: Final = re.compile(rf"\(palisade pool ({_UUID})\)$")
_CHECK_TAG: Final = re.compile(rf"\(palisade check ({_UUID})\)$")
# Either tag, with the space that joins it to the base name.
_ANY_TAG: Final = re.compile(rf" \(palisade (?:pool )?{_UUID}\)$")
DEFAULT_PAL_NAME: Final = "Palisade session"
DEFAULT_CONVERSATION_NAME: Final = "Palisade session"
# Tavus documents no limit; stay well within what any dashboard shows.
MAX_BASE_LENGTH: Final = 120


def _base(base: str | None, default: str) -> str:
    return (base or default).strip()[:MAX_BASE_LENGTH] or default


def _tagged(base: str | None, default: str, session_id: uuid.UUID) -> str:
    return f"{_base(base, default)} (palisade {session_id})"


def pal_name(base: str | None, session_id: uuid.UUID) -> str:
    return _tagged(base, DEFAULT_PAL_NAME, session_id)


def conversation_name(base: str | None, session_id: uuid.UUID) -> str:
    return _tagged(base, DEFAULT_CONVERSATION_NAME, session_id)


def pool_pal_name(base: str | None, pool_id: uuid.UUID) -> str:
    """The name of a warm-pool PAL: the same base as a session's PAL, another tag."""
    return f"{_base(base, DEFAULT_PAL_NAME)} (palisade pool {pool_id})"


def check_pal_name(base: str | None, check_id: uuid.UUID, default: str) -> str:
    """The name of a profile check's PAL."""
    return f"{_base(base, default)} (palisade check {check_id})"


def is_check_pal_name(name: str | None) -> bool:
    return bool(name) and _CHECK_TAG.search(name or "") is not None


def pal_base_name(name: str | None) -> str:
    """What a participant sees of a PAL's name: the base, without Palisade's tag.

    A session's PAL and a pool PAL built from the same body have the same base.
    """
    return _base(_ANY_TAG.sub("", name) if name else name, DEFAULT_PAL_NAME)


def session_id_from_name(name: str | None) -> uuid.UUID | None:
    """The session a tagged name belongs to, or None when the name is not Palisade's."""
    if not name:
        return None
    match = _TAG.search(name)
    return uuid.UUID(match.group(1)) if match else None


def pool_id_from_name(name: str | None) -> uuid.UUID | None:
    """The pool row a warm-pool PAL's name belongs to, or None for any other name."""
    if not name:
        return None
    match = _POOL_TAG.search(name)
    return uuid.UUID(match.group(1)) if match else None
