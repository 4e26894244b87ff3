"""Text PostgreSQL can store: no NUL character (U+0000) and no unpaired surrogate.

JSON can carry both (`"\\u0000"`, `"\\ud800"`) and Python keeps them in a `str`, but
PostgreSQL's `text` and `jsonb` refuse them, so such a value would fail deep inside a
transaction as a server error. Client input is therefore refused where it enters, as a
validation error with the code `invalid_character`; Tavus's own payloads, which must not
be lost, have those characters replaced by U+FFFD instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Final

from pydantic import AfterValidator, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

INVALID_CHARACTER: Final = "invalid_character"
REPLACEMENT_CHARACTER: Final = "\ufffd"
_UNSTORABLE: Final = re.compile("[\x00\ud800-\udfff]")


def unstorable_location(value: Any) -> list[str | int] | None:
    """Where the first unstorable character is in a JSON-like value, keys included;
    None when there is none."""
    if isinstance(value, str):
        return [] if _UNSTORABLE.search(value) else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and _UNSTORABLE.search(key):
                return [replace_unstorable(key)]
            inner = unstorable_location(item)
            if inner is not None:
                return [str(key), *inner]
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        for index, item in enumerate(value):
            inner = unstorable_location(item)
            if inner is not None:
                return [index, *inner]
    return None


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
    """The value with every unstorable character, in keys and strings, replaced."""
    if isinstance(value, str):
        return _UNSTORABLE.sub(REPLACEMENT_CHARACTER, value)
    if isinstance(value, Mapping):
        return {replace_unstorable(key): replace_unstorable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [replace_unstorable(item) for item in value]
    return value


#: A string parameter (path or query) that ends up in a query or a row.
StorableStr = Annotated[str, AfterValidator(refuse_unstorable)]
