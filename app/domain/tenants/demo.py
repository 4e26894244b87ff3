"""The zero-setup demo: a tenant with one profile of each strategy, on the simulator."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any

from app.db.repositories.tenants import TenantRepository
from app.domain.tenants import service
from app.domain.tenants.schemas import TenantCreate, TenantUpdate
from app.runtime import Runtime
from app.tavus.models import PalCreate

DEMO_TENANT_ID = "demo"
DEMO_FACE_ID = "r90bbd427f71"
DEMO_PROMPT = "You are a warm, concise coach. Ask one question at a time."


@dataclass(frozen=True)
class DemoSeed:
    tenant_id: str
    api_key: str
    persistent_pal_id: str


def demo_profiles(persistent_pal_id: str) -> dict[str, dict[str, Any]]:
    template = {
        "pal_name": "Demo coach",
        "default_face_id": DEMO_FACE_ID,
        "system_prompt": DEMO_PROMPT,
        "layers": {"tts": {"tts_engine": "cartesia", "external_voice_id": "voice-calm"}},
    }
    overridable = ["system_prompt", "layers.tts.external_voice_id", "layers.llm.model"]
    return {
        "coach": {"strategy": "reuse", "pal_id": persistent_pal_id},
        "voices": {
            "strategy": "ephemeral",
            "pal_template": template,
            "allowed_overrides": overridable,
        },
        "smart": {
            "strategy": "auto",
            "pal_id": persistent_pal_id,
            "pal_template": template,
            "allowed_overrides": overridable,
        },
    }


async def seed_demo(runtime: Runtime) -> DemoSeed:
    """Create (or refresh) the demo tenant and issue a fresh API key for it.

    The simulator forgets everything when it stops, so the persistent PAL is created anew
    on every start and the tenant's profiles are pointed at it.
    """
    pal = await runtime.tavus.create_pal(
        PalCreate(default_face_id=DEMO_FACE_ID, pal_name="Demo coach", system_prompt=DEMO_PROMPT)
    )
    profiles = demo_profiles(pal.pal_id)
    async with runtime.sessionmaker.begin() as db:
        if await TenantRepository(db).get(DEMO_TENANT_ID) is None:
            await service.create_tenant(
                db,
                TenantCreate(
                    id=DEMO_TENANT_ID,
                    name="Demo product",
                    max_concurrent_sessions=5,
                    profiles=profiles,
                    default_profile="coach",
                ),
                box=runtime.secret_box,
                pals=runtime.pals,
            )
        else:
            await service.update_tenant(
                db,
                DEMO_TENANT_ID,
                TenantUpdate(profiles=dict(profiles), default_profile="coach"),
                box=runtime.secret_box,
                pals=runtime.pals,
            )
        key = await service.create_api_key(db, DEMO_TENANT_ID, label="demo (printed at start-up)")
    return DemoSeed(DEMO_TENANT_ID, key.key, pal.pal_id)


def demo_banner(seed: DemoSeed, base_url: str) -> str:
    body = {
        "profile": "voices",
        "external_ref": "user-42",
        "conversational_context": "The user is Ana; this is her first session.",
        "overrides": {"layers": {"tts": {"external_voice_id": "voice-bright"}}},
    }
    request = (
        f"curl -s {base_url}/sessions \\\n"
        f"  -H 'Authorization: Bearer {seed.api_key}' \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        "  -H 'Idempotency-Key: demo-1' \\\n"
        f"  -d {shlex.quote(json.dumps(body))}"
    )
    return (
        f"Demo tenant {seed.tenant_id!r} with profiles coach (reuse), voices (ephemeral) "
        f"and smart (auto).\nIts API key, shown once: {seed.api_key}\n"
        f"Start a session:\n\n{request}\n"
    )
