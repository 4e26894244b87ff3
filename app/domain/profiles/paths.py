"""The catalog of PAL body fields a profile may template and a session may override.

The catalog mirrors the documented ``POST /v2/pals`` body (top-level fields and the
``layers`` objects). It serves three purposes:

* refusing unknown paths in a profile's ``allowed_overrides``;
* checking a ``pal_template`` (and a merged PAL body) for unknown fields and wrong
  types before anything reaches Tavus;
* flattening a session's ``overrides`` object into the leaf paths it touches, so each
  can be checked against ``allowed_overrides``.

Objects are *closed* (unknown keys refused) unless marked *open*: provider-specific
bags such as ``layers.llm.extra_body`` or ``layers.tts.voice_settings`` accept any key,
and any path below an open object is a valid override path.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

#: Deepest nesting (objects and lists) accepted in a PAL body or an overrides object.
#: Legitimate bodies stay far below it; the bound keeps recursive walks safe.
MAX_DEPTH: Final = 32


class Kind(StrEnum):
    """The JSON shape a catalogued field accepts."""

    STRING = "string"
    BOOLEAN = "boolean"
    NUMBER = "number"
    STRING_LIST = "string[]"
    LIST = "array"
    OBJECT = "object"
    #: Fields whose type Tavus documents loosely (text or flag).
    STRING_OR_BOOLEAN = "string|boolean"
    #: Anything; used below open objects.
    ANY = "any"


@dataclass(frozen=True, slots=True)
class PalField:
    """One node of the catalog."""

    kind: Kind
    children: Mapping[str, PalField] = field(default_factory=lambda: MappingProxyType({}))
    #: For objects: keys beyond ``children`` are accepted (provider-specific settings).
    open: bool = False
    #: For strings: the closed set of accepted values, when Tavus documents one.
    choices: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """A defect found in a PAL body or an overrides object."""

    path: tuple[str, ...]
    #: Stable sub-code: ``unknown_field``, ``wrong_type``, ``invalid_choice``,
    #: ``required``, ``null_not_allowed`` or ``too_deep``.
    reason: str
    message: str

    @property
    def dotted(self) -> str:
        """The path as a dotted string (``""`` for the body itself)."""
        return ".".join(self.path)


def _s(*choices: str) -> PalField:
    return PalField(Kind.STRING, choices=frozenset(choices) if choices else None)


def _obj(children: Mapping[str, PalField] | None = None, *, open: bool = False) -> PalField:
    return PalField(Kind.OBJECT, MappingProxyType(dict(children or {})), open=open)


_STR = _s()
_BOOL = PalField(Kind.BOOLEAN)
_NUM = PalField(Kind.NUMBER)
_STRS = PalField(Kind.STRING_LIST)
_LIST = PalField(Kind.LIST)
_STR_OR_BOOL = PalField(Kind.STRING_OR_BOOLEAN)
_ANY = PalField(Kind.ANY)
_LEVEL = _s("low", "medium", "high")

# Engine and model names are deliberately free strings: Tavus adds models often and
# validates them itself; only small, stable enumerations are closed here.
PAL_BODY: Final = _obj(
    {
        "pal_name": _STR,
        "system_prompt": _STR,
        "pipeline_mode": _s("full", "echo"),
        "context": _STR,
        "default_face_id": _STR,
        "document_ids": _STRS,
        "document_tags": _STRS,
        "objectives_id": _STR,
        "guardrails_id": _STR,
        "languages": _STRS,
        "disclosure_type": _s("always", "auto", "off"),
        "verbal_disclosure": _STR_OR_BOOL,
        "visual_disclosure": _STR_OR_BOOL,
        "layers": _obj(
            {
                "llm": _obj(
                    {
                        "model": _STR,
                        "base_url": _STR,
                        "api_key": _STR,
                        "headers": _obj(open=True),
                        "extra_body": _obj(open=True),
                        "default_query": _obj(open=True),
                        "speculative_inference": _BOOL,
                        "tools": _LIST,
                    }
                ),
                "tts": _obj(
                    {
                        "tts_engine": _STR,
                        "api_key": _STR,
                        "external_voice_id": _STR,
                        "voice_id": _STR,
                        "tts_model_name": _STR,
                        "tts_emotion_control": _BOOL,
                        "pronunciation_dictionary_id": _STR,
                        # Keys differ per engine (Cartesia vs ElevenLabs), hence open.
                        "voice_settings": _obj(
                            {
                                "speed": _NUM,
                                "emotion": _STRS,
                                "stability": _NUM,
                                "similarity_boost": _NUM,
                                "style": _NUM,
                                "use_speaker_boost": _BOOL,
                            },
                            open=True,
                        ),
                    }
                ),
                "stt": _obj({"stt_engine": _STR, "hotwords": _STR}),
                "perception": _obj(
                    {
                        "perception_model": _STR,
                        "visual_awareness_queries": _STRS,
                        "perception_analysis_queries": _STRS,
                        "visual_tool_prompt": _STR,
                        "visual_tools": _LIST,
                        "audio_tool_prompt": _STR,
                        "audio_tools": _LIST,
                        "emotion_recognition": _STR,
                    }
                ),
                "conversational_flow": _obj(
                    {
                        "turn_detection_model": _STR,
                        "turn_taking_patience": _LEVEL,
                        "pal_interruptibility": _LEVEL,
                        "voice_isolation": _STR_OR_BOOL,
                        "idle_engagement": _STR_OR_BOOL,
                    }
                ),
                # Tavus documents neither layer's fields fully; accept what it accepts.
                "conferencing": _obj(open=True),
                "transport": _obj({"transport_type": _STR}, open=True),
            }
        ),
    }
)


def split_path(path: str) -> tuple[str, ...]:
    """Split a dotted path into segments; ``""`` or an empty segment gives ``()``."""
    segments = tuple(path.split("."))
    if not path or any(not s or s != s.strip() for s in segments):
        return ()
    return segments


def lookup(path: str | Iterable[str]) -> PalField | None:
    """The catalog node at ``path`` (dotted or segments), or ``None`` when unknown.

    Any path below an open object resolves (to an ``ANY`` node), because open objects
    carry provider-specific keys the catalog cannot enumerate.
    """
    segments = split_path(path) if isinstance(path, str) else tuple(path)
    if not segments:
        return None
    node = PAL_BODY
    for segment in segments:
        if node.kind is Kind.ANY:
            continue
        if node.kind is not Kind.OBJECT:
            return None
        child = node.children.get(segment)
        if child is None:
            if not node.open:
                return None
            child = _ANY
        node = child
    return node


def is_known_path(path: str) -> bool:
    """Whether ``path`` names a field of the PAL body (see :func:`lookup`)."""
    return lookup(path) is not None


def catalog_paths() -> Iterator[tuple[str, PalField]]:
    """Every catalogued path with its node, parents before children, in catalog order."""

    def walk(prefix: str, node: PalField) -> Iterator[tuple[str, PalField]]:
        for name, child in node.children.items():
            path = f"{prefix}.{name}" if prefix else name
            yield path, child
            yield from walk(path, child)

    yield from walk("", PAL_BODY)


def covers(allowed: str, path: str) -> bool:
    """Whether an ``allowed_overrides`` entry permits overriding ``path``.

    An entry permits its own path and everything below it, segment-wise:
    ``layers.tts`` covers ``layers.tts.voice_settings.speed`` but ``layers.tt`` covers
    nothing of ``layers.tts``.
    """
    allowed_segments = split_path(allowed)
    path_segments = split_path(path)
    if not allowed_segments or not path_segments:
        return False
    return path_segments[: len(allowed_segments)] == allowed_segments


def is_override_allowed(path: str, allowed: Iterable[str]) -> bool:
    """Whether any entry of ``allowed`` covers ``path``."""
    return any(covers(entry, path) for entry in allowed)


def nesting_depth(value: Any) -> int:
    """How deeply objects and lists nest in ``value`` (a scalar is 0).

    Iterative so that hostile input cannot exhaust the interpreter's stack.
    """
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, Mapping):
            items: Iterable[Any] = current.values()
        elif isinstance(current, list):
            items = current
        else:
            deepest = max(deepest, depth)
            continue
        deepest = max(deepest, depth + 1)
        if depth + 1 > MAX_DEPTH:
            return depth + 1
        stack.extend((item, depth + 1) for item in items)
    return deepest


def leaf_paths(overrides: Mapping[str, Any]) -> list[str]:
    """The dotted paths an overrides object touches, sorted.

    The walk descends into an object value only where the catalog has an object (or an
    open object's free-form content); any other value, including ``null`` (a
    deletion), a list, or an empty object, is a leaf at its own path. A value that
    replaces a catalogued scalar with an object is therefore one leaf, and its type is
    refused later by :func:`check_pal_body`.
    """
    found: list[str] = []

    def walk(prefix: tuple[str, ...], value: Mapping[str, Any], node: PalField) -> None:
        for key, child_value in value.items():
            path = (*prefix, str(key))
            child = _child(node, str(key))
            if (
                child is not None
                and child.kind in (Kind.OBJECT, Kind.ANY)
                and isinstance(child_value, Mapping)
                and child_value
                and len(path) < MAX_DEPTH
            ):
                walk(path, child_value, child)
            else:
                found.append(".".join(path))

    walk((), overrides, PAL_BODY)
    return sorted(found)


def _child(node: PalField, key: str) -> PalField | None:
    if node.kind is Kind.ANY:
        return _ANY
    if node.kind is not Kind.OBJECT:
        return None
    child = node.children.get(key)
    if child is None and node.open:
        return _ANY
    return child


def check_pal_body(body: Mapping[str, Any], *, complete: bool) -> list[FieldProblem]:
    """Every defect of a PAL body, in document order.

    ``complete=True`` checks a body about to be sent to ``POST /v2/pals`` (a template
    or a merged body): ``null`` values are refused and the required fields must be
    present (``default_face_id``; ``system_prompt`` unless ``pipeline_mode`` is
    ``echo``). ``complete=False`` checks an overrides object, where ``null`` means
    "remove this field" and nothing is required.
    """
    if nesting_depth(body) > MAX_DEPTH:
        return [FieldProblem((), "too_deep", f"nested deeper than {MAX_DEPTH} levels")]
    problems: list[FieldProblem] = []
    _check_object(body, PAL_BODY, (), complete=complete, problems=problems)
    if complete:
        problems.extend(_missing_required(body))
    return problems


def _check_object(
    value: Mapping[str, Any],
    node: PalField,
    path: tuple[str, ...],
    *,
    complete: bool,
    problems: list[FieldProblem],
) -> None:
    for key, child_value in value.items():
        child_path = (*path, str(key))
        child = _child(node, str(key))
        if child is None:
            where = ".".join(path) or "the PAL body"
            problems.append(FieldProblem(child_path, "unknown_field", f"not a field of {where}"))
            continue
        _check_value(child_value, child, child_path, complete=complete, problems=problems)


def _check_value(
    value: Any,
    node: PalField,
    path: tuple[str, ...],
    *,
    complete: bool,
    problems: list[FieldProblem],
) -> None:
    if value is None:
        if complete:
            problems.append(
                FieldProblem(path, "null_not_allowed", "null is not allowed; omit the field")
            )
        return
    if node.kind is Kind.ANY:
        return
    if node.kind is Kind.OBJECT:
        if isinstance(value, Mapping):
            _check_object(value, node, path, complete=complete, problems=problems)
        else:
            problems.append(_wrong_type(path, node))
        return
    if not _shape_matches(value, node.kind):
        problems.append(_wrong_type(path, node))
        return
    if node.choices is not None and value not in node.choices:
        expected = ", ".join(sorted(node.choices))
        problems.append(FieldProblem(path, "invalid_choice", f"must be one of: {expected}"))


def _shape_matches(value: Any, kind: Kind) -> bool:
    match kind:
        case Kind.STRING:
            return isinstance(value, str)
        case Kind.BOOLEAN:
            return isinstance(value, bool)
        case Kind.NUMBER:
            return isinstance(value, int | float) and not isinstance(value, bool)
        case Kind.STRING_LIST:
            return isinstance(value, list) and all(isinstance(item, str) for item in value)
        case Kind.LIST:
            return isinstance(value, list)
        case Kind.STRING_OR_BOOLEAN:
            return isinstance(value, str | bool)
        case _:
            return True


def _wrong_type(path: tuple[str, ...], node: PalField) -> FieldProblem:
    return FieldProblem(path, "wrong_type", f"must be of type {node.kind.value}")


def _missing_required(body: Mapping[str, Any]) -> Iterator[FieldProblem]:
    required = ["default_face_id"]
    # Echo mode speaks only what echo events send, so no prompt is needed.
    if body.get("pipeline_mode") != "echo":
        required.append("system_prompt")
    for name in required:
        if name in body and body[name] is None:
            continue  # already reported as null_not_allowed
        value = body.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            yield FieldProblem((name,), "required", "required field is missing")
