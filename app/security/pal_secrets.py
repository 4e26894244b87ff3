"""Credentials inside PAL bodies: sealed at rest, redacted in views, clear only for Tavus.

A PAL body may carry a provider's key or an LLM's authenticating headers, at the paths
of :data:`CREDENTIAL_PATHS`. Wherever Palisade stores such a
body (a session's request and plan, a profile's template and warm-pool variants), each
credential is replaced by ``{"$sealed": "<Fernet token>"}``, encrypted by the
:class:`~app.security.secret_box.SecretBox` that seals tenants' Tavus keys, so a resumed
start can still send the real value after a crash. In memory bodies are always clear:
stored ones are unsealed where they are read (a profile when it is loaded, a session's
PAL body just before its create is sent). Views show :data:`REDACTED` instead.

A body without credentials comes back as the very same object: no copy, no encryption.
Values stored before sealing existed are read as they are.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any, Final

from app.observability.redaction import REDACTED
from app.security.secret_box import SecretBox

SEALED: Final = "$sealed"

#: Where a PAL body carries credentials, ``*`` standing for any key: the ``api_key`` of
#: every layer and every header sent to a custom LLM (``Authorization``, most often).
CREDENTIAL_PATHS: Final[tuple[tuple[str, ...], ...]] = (
    ("layers", "*", "api_key"),
    ("layers", "llm", "headers", "*"),
)

# JSON objects, as stored in jsonb columns.
Body = dict[str, Any]
_Leaf = Callable[[Any], Any]


def seal(body: Body, box: SecretBox) -> Body:
    """``body`` with every credential sealed."""
    return _rewrite(body, lambda value: _sealed(value, box))


def unseal(body: Body, box: SecretBox) -> Body:
    """``body`` with every sealed credential in clear (``SecretBoxError`` when it was
    sealed under another ``SECRET_KEY``)."""
    return _rewrite(body, lambda value: _unsealed(value, box))


def redact(body: Body) -> Body:
    """``body`` as views show it: each credential replaced by :data:`REDACTED`."""
    return _rewrite(body, lambda value: REDACTED)


def redacted_credentials(body: Body) -> list[tuple[str, ...]]:
    """The paths whose credential is the redaction mark itself: a body read from a view
    and sent back, which would otherwise replace the real credential with the mark."""
    return [path for path, value in _credentials(body, ()) if value == REDACTED]


def seal_profile(config: Body, box: SecretBox) -> Body:
    """A stored profile (``Profile.model_dump(mode="json")``) with its template's and
    its warm-pool variants' credentials sealed."""
    return _profile_bodies(config, lambda body: seal(body, box))


def unseal_profile(config: Body, box: SecretBox) -> Body:
    return _profile_bodies(config, lambda body: unseal(body, box))


def redact_profile(config: Body) -> Body:
    return _profile_bodies(config, redact)


def _sealed(value: Any, box: SecretBox) -> Any:
    return {SEALED: box.encrypt(json.dumps(value)).decode("ascii")}


def _unsealed(value: Any, box: SecretBox) -> Any:
    if isinstance(value, dict) and len(value) == 1 and isinstance(value.get(SEALED), str):
        return json.loads(box.decrypt(value[SEALED].encode("ascii")))
    return value


def _rewrite(body: Body, leaf: _Leaf) -> Body:
    for path in CREDENTIAL_PATHS:
        body = _rewrite_at(body, path, leaf)
    return body


def _rewrite_at(node: Body, path: tuple[str, ...], leaf: _Leaf) -> Body:
    head, rest = path[0], path[1:]
    keys = list(node) if head == "*" else [head] if head in node else []
    copied: dict[str, Any] | None = None
    for key in keys:
        value = node[key]
        if value is None:
            continue  # absent in effect (an override's `null` removes the field)
        if rest:
            new = _rewrite_at(value, rest, leaf) if isinstance(value, dict) else value
        else:
            new = leaf(value)
        if new is not value:
            if copied is None:
                copied = dict(node)
            copied[key] = new
    return node if copied is None else copied


def _credentials(node: Body, prefix: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    for path in CREDENTIAL_PATHS:
        yield from _found_at(node, path, prefix)


def _found_at(
    node: Body, path: tuple[str, ...], prefix: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], Any]]:
    head, rest = path[0], path[1:]
    keys = list(node) if head == "*" else [head] if head in node else []
    for key in keys:
        value = node[key]
        if not rest:
            yield (*prefix, str(key)), value
        elif isinstance(value, dict):
            yield from _found_at(value, rest, (*prefix, str(key)))


def _profile_bodies(config: Body, rewrite: Callable[[Body], Body]) -> Body:
    changed: dict[str, Any] = {}
    template = config.get("pal_template")
    if isinstance(template, dict):
        new_template = rewrite(template)
        if new_template is not template:
            changed["pal_template"] = new_template
    pool = config.get("warm_pool")
    variants = pool.get("variants") if isinstance(pool, dict) else None
    if isinstance(pool, dict) and isinstance(variants, list):
        new_variants = [_variant(variant, rewrite) for variant in variants]
        if any(new is not old for new, old in zip(new_variants, variants, strict=True)):
            changed["warm_pool"] = {**pool, "variants": new_variants}
    return {**config, **changed} if changed else config


def _variant(variant: Any, rewrite: Callable[[Body], Body]) -> Any:
    overrides = variant.get("overrides") if isinstance(variant, dict) else None
    if not isinstance(overrides, dict):
        return variant
    new = rewrite(overrides)
    return variant if new is overrides else {**variant, "overrides": new}
