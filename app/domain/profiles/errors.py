"""Errors of the profile policy, and the mapping of profile validation failures to codes.

Two kinds of failure exist:

* **Save-time** (a profile in ``POST/PATCH /tenants``): raised by
  :meth:`Profile.model_validate` as a pydantic ``ValidationError`` whose error ``type``
  is one of our stable codes (``pal_id_required``, ``pal_template_invalid``, ...).
  :func:`validation_problems` turns it into ``{"loc", "code", "msg"}`` items and
  :func:`~app.domain.profiles.schemas.validate_profile` wraps it in
  :class:`InvalidProfile`.
* **Session-time** (``POST /sessions``): raised by
  :func:`~app.domain.profiles.resolution.resolve` as the :class:`AppError` subclasses
  below, all 422, with the offending path in ``extra``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, TypedDict

from pydantic import ValidationError

from app.domain.profiles.memory import INVALID_MEMORY_STORE, UNKNOWN_MEMORY_PLACEHOLDER
from app.domain.profiles.paths import FieldProblem
from app.domain.storable_text import INVALID_CHARACTER
from app.domain.tenants.origins import INVALID_ORIGIN
from app.errors import ValidationFailed

# Save-time codes carried as pydantic error types --------------------------------------

PAL_ID_REQUIRED: Final = "pal_id_required"
PAL_TEMPLATE_REQUIRED: Final = "pal_template_required"
PAL_TEMPLATE_INVALID: Final = "pal_template_invalid"
UNKNOWN_OVERRIDE_PATH: Final = "unknown_override_path"
PROPERTY_CAP_EXCEEDED: Final = "property_cap_exceeded"
PROPERTY_OUT_OF_RANGE: Final = "property_out_of_range"
INVALID_PROFILE_NAME: Final = "invalid_profile_name"
OVERRIDES_TOO_DEEP: Final = "overrides_too_deep"
# Save-time codes of a warm pool's variants, found by resolving each like a session.
WARM_POOL_VARIANT_INVALID: Final = "warm_pool_variant_invalid"
WARM_POOL_VARIANT_DUPLICATE: Final = "warm_pool_variant_duplicate"

#: Codes raised by our own validators; they pass through :func:`validation_problems`.
OWN_CODES: Final = frozenset(
    {
        PAL_ID_REQUIRED,
        PAL_TEMPLATE_REQUIRED,
        PAL_TEMPLATE_INVALID,
        UNKNOWN_OVERRIDE_PATH,
        PROPERTY_CAP_EXCEEDED,
        PROPERTY_OUT_OF_RANGE,
        INVALID_PROFILE_NAME,
        OVERRIDES_TOO_DEEP,
        WARM_POOL_VARIANT_INVALID,
        WARM_POOL_VARIANT_DUPLICATE,
        INVALID_CHARACTER,
        INVALID_ORIGIN,
        INVALID_MEMORY_STORE,
        UNKNOWN_MEMORY_PLACEHOLDER,
    }
)

# pydantic's own error types, folded into a small stable vocabulary so clients never
# depend on pydantic's naming.
_PYDANTIC_CODES: Final = {
    "extra_forbidden": "unknown_field",
    "missing": "missing_field",
    "string_too_long": "too_long",
    "string_too_short": "too_short",
    "too_long": "too_long",
    "too_short": "too_short",
    "literal_error": "invalid_choice",
    "enum": "invalid_choice",
    "string_pattern_mismatch": "invalid_format",
    "greater_than": "out_of_range",
    "greater_than_equal": "out_of_range",
    "less_than": "out_of_range",
    "less_than_equal": "out_of_range",
    # A tagged union (the event type of an interaction): an unknown tag, or none.
    "union_tag_invalid": "invalid_choice",
    "union_tag_not_found": "missing_field",
}
# The vocabulary itself: a validator may raise one of these codes directly.
_STABLE_CODES: Final = frozenset(_PYDANTIC_CODES.values()) | {"invalid_type", "invalid_value"}


class Problem(TypedDict):
    """One validation failure in a client-facing form."""

    loc: list[str | int]
    code: str
    msg: str


def problem_code(pydantic_type: str) -> str:
    """The stable code for a pydantic error type (ours pass through unchanged)."""
    if pydantic_type in OWN_CODES or pydantic_type in _STABLE_CODES:
        return pydantic_type
    if pydantic_type in _PYDANTIC_CODES:
        return _PYDANTIC_CODES[pydantic_type]
    if pydantic_type.endswith(("_type", "_parsing")):
        return "invalid_type"
    return "invalid_value"


def validation_problems(
    exc: ValidationError, *, loc_prefix: Sequence[str | int] = ()
) -> list[Problem]:
    """Convert a pydantic ``ValidationError`` into ``[{"loc", "code", "msg"}, ...]``.

    The input value is deliberately left out: profile bodies may hold provider API keys
    that must not be echoed back in an error document.
    """
    return [
        Problem(
            loc=[*loc_prefix, *error["loc"]],
            code=problem_code(error["type"]),
            msg=error["msg"],
        )
        for error in exc.errors(include_url=False, include_input=False)
    ]


# Session-time and lookup errors ---------------------------------------------------------


class InvalidProfile(ValidationFailed):
    """A profile failed save-time validation; ``extra["errors"]`` lists every problem."""

    code = "invalid_profile"
    title = "Profile failed validation"


class UnknownProfile(ValidationFailed):
    """The session names a profile the tenant does not have (``extra["profile"]``)."""

    code = "unknown_profile"
    title = "Unknown profile"


class ExternalRefRequired(ValidationFailed):
    """The profile's memory stores are named after the caller's user, and the request
    names none (``external_ref``)."""

    code = "external_ref_required"
    title = "This profile's memory stores need the request's external_ref"


class ProfileRequired(ValidationFailed):
    """The session names no profile and the tenant has no ``default_profile``."""

    code = "profile_required"
    title = "No profile given and the tenant has no default profile"


class OverridesNotAllowed(ValidationFailed):
    """The profile is ``reuse`` and the session sent overrides (``extra["paths"]``)."""

    code = "overrides_not_allowed"
    title = "This profile does not accept overrides"


class OverrideNotAllowed(ValidationFailed):
    """An override path is not a PAL field or not covered by ``allowed_overrides``.

    ``extra``: ``path`` (the first offending path), ``paths`` (all of them) and
    ``reason`` (``unknown_field`` or ``not_in_allowed_overrides``).
    """

    code = "override_not_allowed"
    title = "Override not allowed"


class OverrideInvalid(ValidationFailed):
    """An allowed override has the wrong type or leaves the PAL body incomplete.

    ``extra``: ``path``, ``reason`` (``wrong_type``, ``invalid_choice``, ``required``,
    ``too_deep``) and ``problems`` (every defect as ``{"path", "reason", "msg"}``).
    """

    code = "override_invalid"
    title = "Override has an invalid value"


class PropertyCapExceeded(ValidationFailed):
    """A requested conversation property is above the profile's cap.

    ``extra``: ``path``, ``cap`` and ``requested``.
    """

    code = "property_cap_exceeded"
    title = "Conversation property above the profile's cap"


def problem_extra(problems: Sequence[FieldProblem]) -> list[dict[str, str]]:
    """Render field problems as plain dicts for an error's ``extra``."""
    return [{"path": p.dotted, "reason": p.reason, "msg": p.message} for p in problems]
