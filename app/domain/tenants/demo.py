"""The zero-setup demo: a tenant with one profile of each strategy, on the simulator.

The demo's persistent PAL is the one the documentation's examples name; the dev
simulator holds it from its first start. The demo tenant has one API key per data
directory: the key is kept in the data directory (readable by its owner only) and
reused by every start while it is still an active key of the demo tenant. Otherwise the
demo keys issued before are revoked and a new one is issued, so restarts never pile up
valid keys.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.repositories.tenants import ApiKeyRepository, TenantRepository
from app.domain.tenants import service
from app.domain.tenants.pals import TavusPalDirectory
from app.domain.tenants.schemas import TenantCreate, TenantUpdate
from app.security import api_keys
from app.security.secret_box import SecretBox
from app.settings import SIMULATOR_API_KEY, Settings
from app.tavus.client import TavusClient

DEMO_TENANT_ID = "demo"
# The PAL docs/admin-api.md and docs/profiles.md reuse, so their examples run as written.
DEMO_PAL_ID = "pcb7a34da5fe"
DEMO_PAL_NAME = "Demo coach"
DEMO_FACE_ID = "r90bbd427f71"
DEMO_PROMPT = "You are a warm, concise coach. Ask one question at a time."
# In the data directory, next to the embedded database.
DEMO_KEY_FILE = "demo-api-key"
DEMO_KEY_LABEL = "demo (printed at start-up)"


@dataclass(frozen=True)
class DemoSeed:
    tenant_id: str
    api_key: str
    persistent_pal_id: str
    key_file: Path


def demo_simulator_pal() -> dict[str, str]:
    """The demo's persistent PAL, as the simulator's ``--pal`` option takes it: in the
    account of the key Palisade uses with the simulator."""
    return {
        "api_key": SIMULATOR_API_KEY,
        "pal_id": DEMO_PAL_ID,
        "pal_name": DEMO_PAL_NAME,
        "default_face_id": DEMO_FACE_ID,
        "system_prompt": DEMO_PROMPT,
    }


def demo_profiles(persistent_pal_id: str) -> dict[str, dict[str, Any]]:
    template = {
        "pal_name": DEMO_PAL_NAME,
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


class DemoWorld(Protocol):
    """What seeding needs of the process (the runtime has all of it)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]: ...
    @property
    def tavus(self) -> TavusClient: ...
    @property
    def secret_box(self) -> SecretBox: ...
    @property
    def pals(self) -> TavusPalDirectory: ...


async def seed_demo(runtime: DemoWorld) -> DemoSeed:
    """Create (or refresh) the demo tenant, with the data directory's API key for it."""
    profiles = demo_profiles(DEMO_PAL_ID)
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
        key_file = runtime.settings.data_dir / DEMO_KEY_FILE
        kept = _read_key(key_file)
        key = kept if kept is not None and await _still_active(db, kept) else None
        if key is None:
            await ApiKeyRepository(db).revoke_labelled(DEMO_TENANT_ID, DEMO_KEY_LABEL)
            key = (await service.create_api_key(db, DEMO_TENANT_ID, label=DEMO_KEY_LABEL)).key
    # Kept once committed: a file naming a key the database never stored would only
    # cost the next start a new key.
    if key != kept:
        _write_key(key_file, key)
    return DemoSeed(DEMO_TENANT_ID, key, DEMO_PAL_ID, key_file)


async def _still_active(db: AsyncSession, key: str) -> bool:
    found = await ApiKeyRepository(db).find_active(api_keys.hash_key(key))
    return found is not None and found.tenant_id == DEMO_TENANT_ID


def _read_key(path: Path) -> str | None:
    try:
        key = path.read_text().strip()
    except FileNotFoundError:
        return None
    return key if api_keys.looks_like_key(key) else None


def _write_key(path: Path, key: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        # The mode given to open applies only to a file it creates.
        os.fchmod(file.fileno(), 0o600)
        file.write(key + "\n")


def demo_banner(seed: DemoSeed, base_url: str) -> str:
    # A key of its own per start: yesterday's would replay yesterday's answer.
    idempotency_key = f"demo-{secrets.token_hex(4)}"
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
        f"  -H 'Idempotency-Key: {idempotency_key}' \\\n"
        f"  -d {shlex.quote(json.dumps(body))}"
    )
    return (
        f"Demo tenant {seed.tenant_id!r} with profiles coach (reuse), voices (ephemeral) "
        f"and smart (auto).\nIts API key, kept in {seed.key_file} for the next starts: "
        f"{seed.api_key}\n"
        f"Start a session:\n\n{request}\n"
    )
