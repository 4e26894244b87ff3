"""Profiles: each tenant's policy for running sessions, and the pure strategy resolution.

Nothing in this package performs I/O. See ``docs/profiles.md`` for the profile format.
"""

from app.domain.profiles.errors import (
    InvalidProfile,
    OverrideInvalid,
    OverrideNotAllowed,
    OverridesNotAllowed,
    Problem,
    ProfileRequired,
    PropertyCapExceeded,
    UnknownProfile,
    validation_problems,
)
from app.domain.profiles.merge import deep_merge
from app.domain.profiles.resolution import Resolution, resolve, select_profile
from app.domain.profiles.schemas import (
    ConversationProperties,
    Profile,
    ProfileConversation,
    ProfileName,
    PropertyCaps,
    Strategy,
)
from app.domain.profiles.validation import validate_profile

__all__ = [
    "ConversationProperties",
    "InvalidProfile",
    "OverrideInvalid",
    "OverrideNotAllowed",
    "OverridesNotAllowed",
    "Problem",
    "Profile",
    "ProfileConversation",
    "ProfileName",
    "ProfileRequired",
    "PropertyCapExceeded",
    "PropertyCaps",
    "Resolution",
    "Strategy",
    "UnknownProfile",
    "deep_merge",
    "resolve",
    "select_profile",
    "validate_profile",
    "validation_problems",
]
