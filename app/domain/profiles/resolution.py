"""Strategy resolution: (profile, session request) → how to run the session on Tavus.

Pure: no I/O, no clock, no randomness; the same inputs always give the same
:class:`Resolution` or the same error. The session saga stores the resolution on the
session, so a later profile change never alters a session already started.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal

from pydantic import BaseModel, ConfigDict

from app.domain.profiles import memory
from app.domain.profiles.errors import (
    ExternalRefRequired,
    OverrideInvalid,
    OverrideNotAllowed,
    OverridesNotAllowed,
    ProfileRequired,
    PropertyCapExceeded,
    UnknownProfile,
    problem_extra,
)
from app.domain.profiles.fields import CAPPED_PROPERTIES
from app.domain.profiles.merge import deep_merge
from app.domain.profiles.paths import check_pal_body, is_override_allowed, leaf_paths
from app.domain.profiles.schemas import Profile, Strategy

if TYPE_CHECKING:
    from app.domain.sessions.schemas import SessionCreate

#: How many override paths a ``strategy_reason`` names before summarising the rest.
REASON_PATH_LIMIT: Final = 5


class Resolution(BaseModel):
    """The decision for one session, ready to store and to execute.

    ``pal_body`` and ``conversation_body`` are fresh dicts owned by this object; treat
    them as read-only and copy before adding ``pal_id``, ``callback_url`` or name tags.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: The strategy actually used.
    strategy: Literal["reuse", "ephemeral"]
    #: The profile's strategy (``auto`` resolves to one of the two above).
    requested_strategy: Strategy
    #: One human-readable sentence explaining the choice, shown to API clients.
    strategy_reason: str
    #: The persistent PAL (``reuse`` only).
    pal_id: str | None
    #: The ``POST /v2/pals`` body (``ephemeral`` only): template merged with overrides.
    pal_body: dict[str, Any] | None
    #: ``POST /v2/conversations`` body without ``pal_id`` and ``callback_url``;
    #: ``conversation_name`` is the caller's, if any, before the saga tags it.
    conversation_body: dict[str, Any]
    #: Effective ``properties.max_call_duration`` in seconds, for the session deadline.
    max_call_duration: int
    #: The leaf paths the session's overrides touch, sorted (empty for ``reuse``).
    override_paths: tuple[str, ...] = ()


def select_profile(
    profiles: Mapping[str, Profile], requested: str | None, default: str | None
) -> tuple[str, Profile]:
    """Pick the session's profile: the requested one, else the tenant's default.

    Raises ``UnknownProfile`` when the name is not among ``profiles`` and
    ``ProfileRequired`` when no name is requested and there is no default.
    """
    name = requested if requested is not None else default
    if name is None:
        raise ProfileRequired("the request names no profile and the tenant has no default_profile")
    profile = profiles.get(name)
    if profile is None:
        raise UnknownProfile(f"unknown profile {name!r}", profile=name)
    return name, profile


def resolve(
    profile: Profile,
    request: SessionCreate,
    *,
    profile_name: str,
    tenant_id: str | None = None,
) -> Resolution:
    """Decide how to run ``request`` under ``profile``.

    * ``reuse``: any override → ``OverridesNotAllowed``; otherwise the persistent PAL.
    * ``ephemeral``: every override leaf path must be a PAL field and covered by
      ``allowed_overrides`` (else ``OverrideNotAllowed``); the merged body must still
      be a valid PAL body (else ``OverrideInvalid``).
    * ``auto``: no overrides → as ``reuse``; any override → as ``ephemeral``.

    Conversation properties are the profile's defaults overlaid with the request's;
    a requested numeric property above the profile's cap → ``PropertyCapExceeded``.

    With ``tenant_id`` (a session of that tenant), the profile's memory-store templates
    are filled into ``memory_stores``; one that needs ``external_ref`` when the request
    has none → ``ExternalRefRequired``. Without it (plans that start no conversation for
    a user: warm-pool keys, profile checks), no memory store is named.
    """
    override_paths = leaf_paths(request.overrides)
    strategy = profile.strategy
    stores = _memory_stores(profile, request, profile_name, tenant_id)
    if strategy == "reuse" or (strategy == "auto" and not override_paths):
        if override_paths:
            raise OverridesNotAllowed(
                f"profile {profile_name!r} reuses a persistent PAL; send no overrides "
                f"(got {_describe(override_paths)})",
                path=override_paths[0],
                paths=override_paths,
            )
        assert profile.pal_id is not None  # guaranteed by Profile validation
        conversation_body, max_call_duration = _conversation(profile, request, stores)
        if strategy == "reuse":
            reason = f"profile {profile_name!r} is reuse: persistent PAL {profile.pal_id}"
        else:
            reason = f"auto: no overrides, only per-session data → reuse PAL {profile.pal_id}"
        return Resolution(
            strategy="reuse",
            requested_strategy=strategy,
            strategy_reason=reason,
            pal_id=profile.pal_id,
            pal_body=None,
            conversation_body=conversation_body,
            max_call_duration=max_call_duration,
        )

    pal_body = _pal_body(profile, request.overrides, override_paths)
    conversation_body, max_call_duration = _conversation(profile, request, stores)
    if strategy == "ephemeral":
        detail = f"overrides {_describe(override_paths)}" if override_paths else "no overrides"
        reason = f"profile {profile_name!r} is ephemeral: PAL from template, {detail}"
    else:
        reason = (
            f"auto: overrides {_describe(override_paths)} change PAL behaviour "
            "→ ephemeral PAL from template"
        )
    return Resolution(
        strategy="ephemeral",
        requested_strategy=strategy,
        strategy_reason=reason,
        pal_id=None,
        pal_body=pal_body,
        conversation_body=conversation_body,
        max_call_duration=max_call_duration,
        override_paths=tuple(override_paths),
    )


def _pal_body(
    profile: Profile, overrides: Mapping[str, Any], override_paths: Sequence[str]
) -> dict[str, Any]:
    assert profile.pal_template is not None  # guaranteed by Profile validation
    unknown = sorted(
        {p.dotted for p in check_pal_body(overrides, complete=False) if p.reason == "unknown_field"}
    )
    if unknown:
        raise OverrideNotAllowed(
            f"not a PAL field: {_describe(unknown)}",
            path=unknown[0],
            paths=unknown,
            reason="unknown_field",
        )
    refused = [p for p in override_paths if not is_override_allowed(p, profile.allowed_overrides)]
    if refused:
        raise OverrideNotAllowed(
            f"override not allowed by the profile: {_describe(refused)}",
            path=refused[0],
            paths=refused,
            reason="not_in_allowed_overrides",
        )
    # Type checks run on the merged body: it is what Tavus receives, and it also
    # catches an allowed deletion of a required field such as system_prompt.
    merged = deep_merge(profile.pal_template, overrides)
    problems = check_pal_body(merged, complete=True)
    if problems:
        first = problems[0]
        raise OverrideInvalid(
            f"{first.dotted or 'overrides'}: {first.message}",
            path=first.dotted,
            reason=first.reason,
            problems=problem_extra(problems),
        )
    return merged


def _memory_stores(
    profile: Profile, request: SessionCreate, profile_name: str, tenant_id: str | None
) -> list[str] | None:
    templates = profile.conversation.memory_stores
    if not templates or tenant_id is None:
        return None
    if request.external_ref is None and memory.EXTERNAL_REF in memory.placeholders(templates):
        raise ExternalRefRequired(
            f"profile {profile_name!r} names memory stores after the user: send external_ref",
            path="external_ref",
            memory_stores=list(templates),
        )
    values = {
        memory.TENANT_ID: tenant_id,
        memory.PROFILE: profile_name,
        memory.EXTERNAL_REF: request.external_ref or "",
    }
    return memory.fill(templates, values)


def _conversation(
    profile: Profile, request: SessionCreate, memory_stores: list[str] | None
) -> tuple[dict[str, Any], int]:
    requested = request.conversation.properties.model_dump(exclude_none=True)
    for name in CAPPED_PROPERTIES:
        cap: int = getattr(profile.caps, name)
        value = requested.get(name)
        if value is not None and value > cap:
            raise PropertyCapExceeded(
                f"{name}={value} is above this profile's cap of {cap}",
                path=f"conversation.properties.{name}",
                cap=cap,
                requested=value,
            )
    properties = {**profile.conversation.properties.model_dump(exclude_none=True), **requested}

    body: dict[str, Any] = {}
    face_id = request.conversation.face_id or profile.conversation.face_id
    if face_id is not None:
        body["face_id"] = face_id
    if request.conversation.conversation_name is not None:
        body["conversation_name"] = request.conversation.conversation_name
    if request.conversational_context:
        body["conversational_context"] = request.conversational_context
    if request.custom_greeting:
        body["custom_greeting"] = request.custom_greeting
    audio_only = request.conversation.audio_only
    if audio_only is None:
        audio_only = profile.conversation.audio_only
    if audio_only is not None:
        body["audio_only"] = audio_only
    if memory_stores is not None:
        body["memory_stores"] = memory_stores
    body["properties"] = properties
    return body, int(properties["max_call_duration"])


def _describe(paths: Sequence[str]) -> str:
    shown = ", ".join(paths[:REASON_PATH_LIMIT])
    hidden = len(paths) - REASON_PATH_LIMIT
    return f"{shown} (+{hidden} more)" if hidden > 0 else shown
