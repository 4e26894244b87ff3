"""Text PostgreSQL can store: no NUL character (U+0000) and no unpaired surrogate.

JSON can carry both (`"\\u0000"`, `"\\ud800"`) and Python keeps them in a `str`, but
PostgreSQL's `text` and `jsonb` refuse them, so such a value would fail deep inside a
transaction as a server error. Client input is therefore refused where it enters, as a
validation error with the code `invalid_character`; Tavus's own payloads, which must not
be lost, have those characters replaced by U+FFFD instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Final

from pydantic import AfterValidator, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

INVALID_CHARACTER: Final = "invalid_character"
REPLACEMENT_CHARACTER: Final = "\ufffd"
_UNSTORABLE: Final = re.compile("[\x00\ud800-\udfff]")


# A location as a chain of (parent, step) links: extending it costs O(1) at any depth.
_Link = tuple["_Link", str | int] | None


def unstorable_location(value: Any) -> list[str | int] | None:
    """Where the first unstorable character is in a JSON-like value, keys included;
    None when there is none. Iterative: any depth is safe."""
    if not _any_unstorable(value):
        return None  # the common case, checked without keeping track of where
    # Depth first in document order: a key is checked before its value, and a value's
    # whole subtree before the next key.
    stack: list[tuple[Any, _Link, bool]] = [(value, None, False)]
    while stack:
        node, link, is_key = stack.pop()
        if isinstance(node, str):
            if _UNSTORABLE.search(node):
                location = _unlinked(link)
                return [*location, replace_unstorable(node)] if is_key else location
        elif isinstance(node, Mapping):
            children: list[tuple[Any, _Link, bool]] = []
            for key, item in node.items():
                children.append((key, link, True))
                children.append((item, (link, str(key)), False))
            stack.extend(reversed(children))
        elif isinstance(node, Sequence) and not isinstance(node, bytes | bytearray):
            stack.extend(
                (item, (link, index), False) for index, item in reversed(list(enumerate(node)))
            )
    return None


def _any_unstorable(value: Any) -> bool:
    search = _UNSTORABLE.search
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if search(node):
                return True
        elif isinstance(node, Mapping):
            for key, item in node.items():
                if isinstance(key, str) and search(key):
                    return True
                stack.append(item)
        elif isinstance(node, Sequence) and not isinstance(node, bytes | bytearray):
            stack.extend(node)
    return False


def _unlinked(link: _Link) -> list[str | int]:
    steps: list[str | int] = []
    while link is not None:
        link, step = link
        steps.append(step)
    steps.reverse()
    return steps


def refuse_unstorable(value: Any) -> Any:
    """A pydantic validator: the value unchanged, or an `invalid_character` error at the
    offending key or item."""
    location = unstorable_location(value)
    if location is None:
        return value
    problem = PydanticCustomError(
        INVALID_CHARACTER, "text must not contain U+0000 or an unpaired surrogate"
    )
    # Raised inside a validator, a ValidationError is spliced into the outer one with its
    # locations, so the error points at the field rather than at the whole body.
    raise ValidationError.from_exception_data(
        "storable text", [InitErrorDetails(type=problem, loc=tuple(location), input=None)]
    )


def replace_unstorable(value: Any) -> Any:
    """The value with every unstorable character, in keys and strings, replaced.
    Iterative: any depth is safe."""
    return map_text(value, replace_unstorable_text)


def replace_unstorable_text(text: str) -> str:
    return _UNSTORABLE.sub(REPLACEMENT_CHARACTER, text)


def map_text(value: Any, transform: Callable[[str], str]) -> Any:
    """A copy of a JSON-like value with ``transform`` applied to every string in it, keys
    included. Iterative: any depth is safe."""
    pending: list[tuple[Mapping[Any, Any] | list[Any], dict[Any, Any] | list[Any]]] = []

    def copied(node: Any) -> Any:
        # Strings are transformed at once; a container's copy is filled in when popped.
        if isinstance(node, str):
            return transform(node)
        if isinstance(node, Mapping):
            mapping: dict[Any, Any] = {}
            pending.append((node, mapping))
            return mapping
        if isinstance(node, list):
            items: list[Any] = []
            pending.append((node, items))
            return items
        return node

    result = copied(value)
    while pending:
        source, target = pending.pop()
        if isinstance(target, dict):
            assert isinstance(source, Mapping)
            for key, item in source.items():
                target[copied(key)] = copied(item)
        else:
            target.extend(copied(item) for item in source)
    return result


#: A string parameter (path or query) that ends up in a query or a row.
StorableStr = Annotated[str, AfterValidator(refuse_unstorable)]
