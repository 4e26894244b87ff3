"""A profile as saved: the schema's checks, then its warm-pool variants resolved as a
session's request would be."""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from app.domain.profiles import errors
from app.domain.profiles.schemas import PROFILE_NAME_PATTERN, Profile
from app.domain.profiles.warm_pool import warm_pool_problems


def validate_profile(name: str, data: Any) -> Profile:
    """Validate a profile as saved under ``name``; raise ``InvalidProfile`` on failure.

    Beyond :meth:`Profile.model_validate`, each warm-pool variant is resolved as a
    session sending its overrides would be (``warm_pool_variant_invalid``,
    ``warm_pool_variant_duplicate``).

    ``InvalidProfile.extra`` holds ``profile`` (the name) and ``errors``: every problem as
    ``{"loc", "code", "msg"}`` with ``loc`` relative to the profile.
    """
    if not re.fullmatch(PROFILE_NAME_PATTERN, name):
        raise errors.InvalidProfile(
            f"profile name {name!r} is invalid",
            profile=name,
            errors=[
                errors.Problem(
                    loc=[],
                    code=errors.INVALID_PROFILE_NAME,
                    msg="profile names are 1-64 characters of a-z, 0-9, '-' and '_', "
                    "starting with a letter or digit",
                )
            ],
        )
    try:
        profile = Profile.model_validate(data)
    except ValidationError as exc:
        raise errors.InvalidProfile(
            f"profile {name!r} failed validation",
            profile=name,
            errors=errors.validation_problems(exc),
        ) from exc
    # Variants are resolved like a session's request, which needs the whole profile.
    problems = warm_pool_problems(profile, name)
    if problems:
        raise errors.InvalidProfile(
            f"profile {name!r} failed validation", profile=name, errors=problems
        )
    return profile
