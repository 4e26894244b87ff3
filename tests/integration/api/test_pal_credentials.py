"""Credentials inside PAL bodies (provider API keys, LLM headers): Tavus gets them in
clear; the database holds them only sealed, and no view returns them."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text, update

from app.db.base import metadata
from app.db.models import Session
from app.domain.sessions.schemas import SessionCreate
from app.domain.sessions.start import Started
from app.observability.redaction import REDACTED
from tests.conftest import PalisadeFactory
from tests.integration.api.test_warm_pool import FAST_POOL, wait_ready
from tests.support.stack import PAL_TEMPLATE, Palisade, SimulatorHandle

TEMPLATE_LLM_KEY = "sk-template-llm-5c1e9a0d7b3f"
TEMPLATE_HEADER = "Bearer template-header-2b8d4e6f"
VARIANT_TTS_KEY = "tts-variant-key-9e4a1c7d2f"
SESSION_LLM_KEY = "sk-session-llm-8f2b6c4e1a9d"
SESSION_TTS_KEY = "tts-session-key-3d7f1b9e5c"
SESSION_HEADER = "Bearer session-header-6a2c8e0f"
SECRETS = (
    TEMPLATE_LLM_KEY,
    TEMPLATE_HEADER,
    VARIANT_TTS_KEY,
    SESSION_LLM_KEY,
    SESSION_TTS_KEY,
    SESSION_HEADER,
)
ALLOWED = ["system_prompt", "layers.llm", "layers.tts.api_key", "layers.tts.external_voice_id"]


def template() -> dict[str, Any]:
    body = copy.deepcopy(PAL_TEMPLATE)
    body["layers"]["llm"] = {
        "model": "custom-llm",
        "base_url": "https://llm.example.com/v1",
        "api_key": TEMPLATE_LLM_KEY,
        "headers": {"Authorization": TEMPLATE_HEADER, "X-Team": "coaching"},
    }
    return body


def session_overrides() -> dict[str, Any]:
    return {
        "layers": {
            "llm": {"api_key": SESSION_LLM_KEY, "headers": {"Authorization": SESSION_HEADER}},
            "tts": {"api_key": SESSION_TTS_KEY},
        }
    }


async def make_tenant(palisade: Palisade) -> str:
    return await palisade.create_tenant(
        {
            "id": "acme",
            "name": "Acme",
            "max_concurrent_sessions": 20,
            "profiles": {
                "voices": {
                    "strategy": "ephemeral",
                    "pal_template": template(),
                    "allowed_overrides": ALLOWED,
                },
                "pooled": {
                    "strategy": "ephemeral",
                    "pal_template": template(),
                    "allowed_overrides": ALLOWED,
                    "warm_pool": {
                        "size": 1,
                        "variants": [
                            {
                                "name": "own-voice",
                                "overrides": {"layers": {"tts": {"api_key": VARIANT_TTS_KEY}}},
                            }
                        ],
                    },
                },
            },
            "default_profile": "voices",
        }
    )


async def database_text(palisade: Palisade) -> str:
    """Every row of every table, as PostgreSQL renders it."""
    rows: list[str] = []
    async with palisade.runtime.autocommit() as db:
        for table in metadata.tables:
            found = await db.execute(text(f'SELECT row_to_json(t)::text FROM "{table}" AS t'))
            rows += [str(value) for (value,) in found]
    return "\n".join(rows)


def assert_no_secret(where: str, content: str) -> None:
    leaked = [secret for secret in SECRETS if secret in content]
    assert not leaked, f"{where} holds {leaked}"


def sent_to_tavus(simulator: SimulatorHandle, pal_id: str) -> dict[str, Any]:
    request: dict[str, Any] = simulator.sim.pal(pal_id).request
    return request


class TestAtRestAndInViews:
    async def test_tavus_gets_the_credentials_and_nothing_else_keeps_them(
        self, palisade_factory: PalisadeFactory, simulator: SimulatorHandle
    ) -> None:
        palisade = await palisade_factory(**FAST_POOL)
        key = await make_tenant(palisade)
        await wait_ready(palisade, 1, variant="own-voice")
        started = await palisade.as_tenant(
            key,
            "POST",
            "/sessions",
            json={"profile": "voices", "overrides": session_overrides()},
            headers={"Idempotency-Key": "with-credentials"},
        )
        assert started.status_code == 201, started.text
        session = started.json()
        pooled = await palisade.as_tenant(
            key,
            "POST",
            "/sessions",
            json={
                "profile": "pooled",
                "overrides": {"layers": {"tts": {"api_key": VARIANT_TTS_KEY}}},
            },
        )
        assert pooled.status_code == 201, pooled.text

        sent = sent_to_tavus(simulator, session["pal_id"])
        assert sent["layers"]["llm"]["api_key"] == SESSION_LLM_KEY
        assert sent["layers"]["llm"]["headers"] == {
            "Authorization": SESSION_HEADER,
            "X-Team": "coaching",
        }
        assert sent["layers"]["tts"]["api_key"] == SESSION_TTS_KEY
        # The pooled PAL was made with the variant's key, and the session sending that
        # key took it: the pool's key still matches with the credentials sealed.
        taken = sent_to_tavus(simulator, pooled.json()["pal_id"])
        assert taken["layers"]["tts"]["api_key"] == VARIANT_TTS_KEY
        assert taken["layers"]["llm"]["api_key"] == TEMPLATE_LLM_KEY
        assert "(palisade pool " in taken["pal_name"]

        assert_no_secret("the database", await database_text(palisade))
        reads = [
            await palisade.as_tenant(key, "GET", f"/sessions/{session['id']}"),
            await palisade.as_tenant(key, "GET", "/sessions"),
            await palisade.as_tenant(key, "GET", f"/sessions/{session['id']}/events"),
            await palisade.admin("GET", "/tenants"),
            await palisade.admin("GET", "/tenants/acme"),
        ]
        for response in reads:
            assert response.status_code == 200, response.text
            assert_no_secret(str(response.url), response.text)

    async def test_the_admin_api_marks_where_a_credential_is_set(self, palisade: Palisade) -> None:
        await make_tenant(palisade)
        tenant = (await palisade.admin("GET", "/tenants/acme")).json()
        llm = tenant["profiles"]["voices"]["pal_template"]["layers"]["llm"]
        assert llm["api_key"] == REDACTED
        assert llm["headers"] == {"Authorization": REDACTED, "X-Team": REDACTED}
        assert llm["model"] == "custom-llm"
        [variant] = tenant["profiles"]["pooled"]["warm_pool"]["variants"]
        assert variant["overrides"] == {"layers": {"tts": {"api_key": REDACTED}}}

    async def test_the_redaction_mark_sent_back_is_refused(self, palisade: Palisade) -> None:
        await make_tenant(palisade)
        tenant = (await palisade.admin("GET", "/tenants/acme")).json()
        voices = tenant["profiles"]["voices"]
        voices["pal_template"]["system_prompt"] = "edited"
        response = await palisade.admin(
            "PATCH", "/tenants/acme", json={"profiles": {"voices": voices}}
        )
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["code"] == "invalid_profile"
        locs = {(tuple(e["loc"]), e["code"]) for e in problem["errors"]}
        assert (("pal_template", "layers", "llm", "api_key"), "pal_template_invalid") in locs

    async def test_an_unchanged_profile_sent_again_is_not_rewritten(
        self, palisade: Palisade
    ) -> None:
        await make_tenant(palisade)

        async def stored() -> tuple[Any, Any]:
            async with palisade.runtime.autocommit() as db:
                row = (
                    await db.execute(
                        text("SELECT config, updated_at FROM profile WHERE name = 'voices'")
                    )
                ).one()
            return row.config, row.updated_at

        before = await stored()
        again = {
            "strategy": "ephemeral",
            "pal_template": template(),
            "allowed_overrides": ALLOWED,
        }
        response = await palisade.admin(
            "PATCH", "/tenants/acme", json={"profiles": {"voices": again}}
        )
        assert response.status_code == 200, response.text
        assert await stored() == before


class TestResumedStart:
    @pytest.mark.parametrize("profile", ["voices", "pooled"])
    async def test_a_start_resumed_after_a_crash_sends_the_real_credentials(
        self, palisade_factory: PalisadeFactory, simulator: SimulatorHandle, profile: str
    ) -> None:
        palisade = await palisade_factory(PALISADE_RECONCILER=False)
        await make_tenant(palisade)
        saga = palisade.runtime.start_saga
        # Admitted, then the process "died" before any Tavus call: only the row is left.
        body = SessionCreate(profile=profile, overrides=session_overrides())
        admitted = await saga._admit("acme", body, None, None)
        assert isinstance(admitted, tuple)
        session_id = admitted[0].id
        async with palisade.runtime.sessionmaker.begin() as db:
            await db.execute(
                update(Session)
                .where(Session.id == session_id)
                .values(next_check_at=datetime.now(UTC) - timedelta(seconds=1))
            )

        outcome = await saga.drive(session_id, fresh=False)

        assert isinstance(outcome, Started), outcome
        sent = sent_to_tavus(simulator, str(outcome.session.pal_id))
        assert sent["layers"]["llm"]["api_key"] == SESSION_LLM_KEY
        assert sent["layers"]["llm"]["headers"]["Authorization"] == SESSION_HEADER
        assert sent["layers"]["tts"]["api_key"] == SESSION_TTS_KEY
        assert_no_secret("the database", await database_text(palisade))
        assert uuid.UUID(str(outcome.session.id)) == session_id
