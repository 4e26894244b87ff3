"""JSON as Palisade accepts it, from anyone: one decoder for every body and cursor.

Python's ``json`` is lenient where PostgreSQL and other JSON parsers are not: it reads
``NaN``, ``Infinity`` and ``-Infinity``, turns ``1e999`` into an infinite float, guesses
UTF-16 or UTF-32 from the bytes, and recurses as deep as the interpreter lets it. A value
read that way fails much later, as a server error (``jsonb`` refuses non-finite numbers)
or a ``RecursionError``. Here such input is refused where it enters:

* the text must be UTF-8 (RFC 8259 §8.1);
* every number must be finite (no ``NaN``/``Infinity`` tokens, none that overflows);
* integers must have at most as many digits as Python converts (4,300 by default);
* objects and arrays may nest at most :data:`MAX_JSON_DEPTH` levels, the outermost
  value counting as one.

Unpaired surrogates (``"\\ud800"``) and U+0000 are valid JSON and decode; where such text
would be stored, :mod:`app.domain.storable_text` deals with it.

The same rule, applied to a value already built (a YAML document), is
:func:`first_violation`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any, Final, NoReturn

#: Deepest nesting of objects and arrays accepted in any JSON document Palisade reads.
#: Legitimate bodies (a PAL template, a Tavus event) stay far below it; the bound keeps
#: every walk over a decoded value shallow.
MAX_JSON_DEPTH: Final = 64

_JSON_SCALARS: Final = (str, int, float, bool, type(None))


class StrictJsonError(json.JSONDecodeError):
    """The document is not JSON Palisade accepts. A ``JSONDecodeError``, so that code
    expecting the standard library's error (FastAPI's body parsing) handles it alike."""

    def __init__(self, message: str, document: str = "", position: int = 0) -> None:
        super().__init__(message, document, position)


class _NotFinite(ValueError):
    pass


def _refuse_constant(token: str) -> NoReturn:
    raise _NotFinite(f"{token} is not a JSON number Palisade accepts")


def _finite_float(token: str) -> float:
    value = float(token)
    if math.isinf(value):
        raise _NotFinite("a number is too large to represent")
    return value


_DECODER: Final = json.JSONDecoder(parse_float=_finite_float, parse_constant=_refuse_constant)


def loads(document: bytes | str) -> Any:
    """Decode ``document`` (UTF-8 bytes, or text) or raise :class:`StrictJsonError`."""
    if isinstance(document, bytes | bytearray):
        try:
            text = bytes(document).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StrictJsonError(f"not UTF-8 (byte {exc.start})", "", exc.start) from None
    else:
        text = document
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise StrictJsonError(exc.msg, text, exc.pos) from None
    except _NotFinite as exc:
        raise StrictJsonError(str(exc), text) from None
    except RecursionError:
        raise StrictJsonError(_too_deep(), text) from None
    except ValueError:
        # int() refuses more digits than sys.get_int_max_str_digits().
        raise StrictJsonError("a number has too many digits", text) from None
    # A document with no more brackets than the limit cannot nest deeper than it: the
    # common case costs two scans in C and no walk at all.
    if text.count("{") + text.count("[") > MAX_JSON_DEPTH and _deeper_than_limit(value):
        raise StrictJsonError(_too_deep(), text)
    return value


def first_violation(value: Any) -> tuple[list[str | int], str] | None:
    """Where ``value`` (built by other means, e.g. a YAML loader) breaks the rule that
    :func:`loads` enforces, and why; None when it is a value ``loads`` could return.

    Iterative and bounded by :data:`MAX_JSON_DEPTH`, so a self-referencing value (YAML
    aliases can build one) is reported as too deep rather than walked forever.
    """
    stack: list[tuple[Any, list[str | int]]] = [(value, [])]
    while stack:
        node, path = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            return path, f"{node} is not a JSON number Palisade accepts"
        if isinstance(node, _JSON_SCALARS):
            continue
        if len(path) >= MAX_JSON_DEPTH:
            return path, _too_deep()
        if isinstance(node, dict):
            for key, item in node.items():
                if not isinstance(key, str):
                    return [*path, str(key)], "keys must be strings"
                stack.append((item, [*path, key]))
        elif isinstance(node, list):
            stack.extend((item, [*path, index]) for index, item in enumerate(node))
        else:
            return path, f"a {type(node).__name__} is not a JSON value"
    return None


def _deeper_than_limit(value: Any) -> bool:
    stack: list[tuple[Sequence[Any] | dict[str, Any], int]] = []
    if isinstance(value, dict | list):
        stack.append((value, 1))
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return True
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return False


def _too_deep() -> str:
    return f"objects and arrays nest deeper than {MAX_JSON_DEPTH} levels"
