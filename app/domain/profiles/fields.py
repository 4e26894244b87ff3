"""Field types shared by profiles and session requests: the numeric conversation
properties with their accepted ranges, and the ids and names both carry.

They sit below both schemas so that a session request and a profile validate the same
field the same way without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Final

from pydantic import AfterValidator, Field, StringConstraints
from pydantic_core import PydanticCustomError

from app.domain.profiles import errors

#: Accepted range (inclusive, seconds) of each numeric conversation property.
#: ``max_call_duration`` stops at 3600 because Tavus documents that maximum (and its
#: default); the timeouts share that ceiling since a longer idle room only burns money.
#: ``participant_left_timeout`` may be 0 (Tavus's default: end as soon as everyone left).
PROPERTY_RANGES: Final[dict[str, tuple[int, int]]] = {
    "max_call_duration": (1, 3600),
    "participant_left_timeout": (0, 3600),
    "participant_absent_timeout": (1, 3600),
}

#: The numeric properties every profile caps and every conversation body carries.
CAPPED_PROPERTIES: Final = tuple(PROPERTY_RANGES)


def _bounded(name: str) -> Callable[[int], int]:
    low, high = PROPERTY_RANGES[name]

    def check(value: int) -> int:
        if not low <= value <= high:
            raise PydanticCustomError(
                errors.PROPERTY_OUT_OF_RANGE,
                "{name} must be between {low} and {high} seconds",
                {"name": name, "low": low, "high": high},
            )
        return value

    return check


def _range_schema(name: str) -> dict[str, Any]:
    low, high = PROPERTY_RANGES[name]
    return {"minimum": low, "maximum": high}


MaxCallDuration = Annotated[
    int,
    Field(json_schema_extra=_range_schema("max_call_duration")),
    AfterValidator(_bounded("max_call_duration")),
]
ParticipantLeftTimeout = Annotated[
    int,
    Field(json_schema_extra=_range_schema("participant_left_timeout")),
    AfterValidator(_bounded("participant_left_timeout")),
]
ParticipantAbsentTimeout = Annotated[
    int,
    Field(json_schema_extra=_range_schema("participant_absent_timeout")),
    AfterValidator(_bounded("participant_absent_timeout")),
]
FaceId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
PalId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Language = Annotated[str, StringConstraints(min_length=1, max_length=64)]
