"""The key of the warm pool: a fingerprint of the exact PAL body Tavus receives.

A start can take a pooled PAL only when the body that PAL was created from is the very
body the session would have sent. Both sides are fingerprinted the same way:

* the body's ``pal_name`` is reduced to its base (:func:`~app.domain.sessions.tags.
  pal_base_name`): the session's tag and the pool's tag differ by design, the base a
  participant sees does not;
* the rest is canonical JSON: keys sorted, no whitespace, and numbers compared as JSON
  numbers (an integral float such as ``2.0`` is written ``2``, as PostgreSQL's ``jsonb``
  gives it back after a round trip).

Anything else that differs (a voice, a prompt, a list's order) gives another fingerprint,
so a pooled PAL is never used for a session that asked for something else.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

from app.domain.sessions import tags

#: Bumped whenever the canonical form changes: old pool rows then simply stop matching.
VERSION: Final = "pal-body-v1"


def _canonical(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _canonical(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def canonical_pal_body(body: Mapping[str, Any]) -> str:
    """The body as compared: base name instead of the tagged one, canonical JSON."""
    untagged = {**body, "pal_name": tags.pal_base_name(body.get("pal_name"))}
    return json.dumps(
        _canonical(untagged),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


def pal_body_fingerprint(body: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical body: equal for a session's PAL body and a pool
    PAL's body exactly when Tavus would receive the same PAL but for the name tag."""
    return hashlib.sha256(f"{VERSION}\n{canonical_pal_body(body)}".encode()).hexdigest()
