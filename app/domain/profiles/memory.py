"""Memory-store templates: a stable Tavus ``memory_stores`` id for the same end user
across sessions, whatever PAL each session runs on.

Tavus keeps a PAL's memories under the ids in a conversation's ``memory_stores`` and
advises a stable one. Under ``ephemeral`` the PAL id changes every session, so the id
comes from what does not: the tenant, the profile and the caller's ``external_ref``. A
template names them as placeholders (``"{tenant_id}-{external_ref}"``); ``{{`` and ``}}``
stand for braces.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from typing import Final

#: The placeholders a template may use.
TENANT_ID: Final = "tenant_id"
PROFILE: Final = "profile"
EXTERNAL_REF: Final = "external_ref"
PLACEHOLDERS: Final = (TENANT_ID, PROFILE, EXTERNAL_REF)

#: Save-time error codes (``app.domain.profiles.errors``).
INVALID_MEMORY_STORE: Final = "invalid_memory_store"
UNKNOWN_MEMORY_PLACEHOLDER: Final = "unknown_memory_placeholder"

_FORMATTER: Final = string.Formatter()
_KNOWN: Final = ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)


class TemplateProblem(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _parts(template: str) -> list[tuple[str, str | None]]:
    """``template`` as (literal text, placeholder or None) pairs; ``TemplateProblem``
    when it is not a plain template of known placeholders."""
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError as exc:
        raise TemplateProblem(INVALID_MEMORY_STORE, f"{template!r}: {exc}") from None
    parts: list[tuple[str, str | None]] = []
    for literal, field, spec, conversion in parsed:
        if field is not None and field not in PLACEHOLDERS:
            raise TemplateProblem(
                UNKNOWN_MEMORY_PLACEHOLDER,
                f"{{{field}}} is not a placeholder; use {_KNOWN}",
            )
        if spec or conversion:
            raise TemplateProblem(
                INVALID_MEMORY_STORE,
                f"{{{field}}} takes no conversion or format; write the placeholder alone",
            )
        parts.append((literal, field))
    return parts


def check(template: str) -> None:
    """Raise ``TemplateProblem`` unless ``template`` is a template Palisade can fill."""
    _parts(template)


def placeholders(templates: Iterable[str]) -> set[str]:
    """The placeholders the (checked) ``templates`` use."""
    return {field for template in templates for _, field in _parts(template) if field}


def fill(templates: Iterable[str], values: Mapping[str, str]) -> list[str]:
    """Each (checked) template with its placeholders replaced by ``values``."""
    return [
        "".join(literal + (values[field] if field else "") for literal, field in _parts(template))
        for template in templates
    ]
