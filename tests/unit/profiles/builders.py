"""Builders for profiles and session requests used across the profile tests."""

from __future__ import annotations

import copy
from typing import Any

from app.domain.profiles.schemas import Profile
from app.domain.sessions.schemas import SessionCreate

PAL_ID = "p123"
FACE_ID = "r90bbd427f71"

TEMPLATE: dict[str, Any] = {
    "pal_name": "Coach",
    "system_prompt": "You are a patient coach.",
    "default_face_id": FACE_ID,
    "objectives_id": "o12345",
    "document_tags": ["faq"],
    "layers": {
        "llm": {"model": "tavus-glm-4.7", "extra_body": {"temperature": 0.4}},
        "tts": {
            "tts_engine": "cartesia",
            "external_voice_id": "voice-default",
            "voice_settings": {"speed": 0.1, "emotion": ["positivity:high"]},
        },
    },
}


def template(**changes: Any) -> dict[str, Any]:
    """A fresh copy of :data:`TEMPLATE` with top-level ``changes`` applied."""
    body = copy.deepcopy(TEMPLATE)
    body.update(changes)
    return body


def profile_data(strategy: str = "auto", **fields: Any) -> dict[str, Any]:
    """Raw profile data with everything ``strategy`` needs, then ``fields`` on top."""
    data: dict[str, Any] = {"strategy": strategy}
    if strategy in ("reuse", "auto"):
        data["pal_id"] = PAL_ID
    if strategy in ("ephemeral", "auto"):
        data["pal_template"] = template()
    data.update(fields)
    return data


def profile(strategy: str = "auto", **fields: Any) -> Profile:
    """A validated profile (see :func:`profile_data`)."""
    return Profile.model_validate(profile_data(strategy, **fields))


def request(**fields: Any) -> SessionCreate:
    """A validated ``POST /sessions`` body."""
    return SessionCreate.model_validate(fields)
