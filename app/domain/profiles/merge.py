"""The deep-merge rule that turns a PAL template and a session's overrides into a PAL body.

The rule is JSON Merge Patch (RFC 7386), chosen because it is a published standard
integrators already know, and because it gives ``null`` a useful meaning:

* objects merge recursively, key by key;
* scalars and lists in the overrides replace the template's value wholesale (lists are
  never concatenated or merged by index);
* ``null`` in the overrides **removes** the key from the result (so a session can drop a
  template field and fall back to Tavus's default, if that path is allowed);
* an object in the overrides that lands on a missing or non-object value is merged
  into an empty object, so ``null`` members inside it are dropped too.

Neither input is mutated and the result shares no mutable structure with them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any


def deep_merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``overrides`` applied by the JSON Merge Patch rule."""
    result: dict[str, Any] = {
        key: copy.deepcopy(value) for key, value in base.items() if key not in overrides
    }
    for key, value in overrides.items():
        if value is None:
            continue  # deletion: the key is simply not carried over
        if isinstance(value, Mapping):
            current = base.get(key)
            result[key] = deep_merge(current if isinstance(current, Mapping) else {}, value)
        else:
            result[key] = copy.deepcopy(value)
    return result
