"""Tavus webhooks through real HTTP: from the simulator, and forged or hostile ones."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from app.db.repositories.sessions import SessionRepository
from tavus_simulator import DropFault, DuplicateFault, ReorderFault, SucceedThenDropFault
from tests.integration.api.test_sessions import setup_tenant, start
from tests.support.stack import Palisade, SimulatorHandle
from tests.support.wait import until


async def session_of(palisade: Palisade, key: str, session_id: str) -> dict[str, Any]:
    response = await palisade.as_tenant(key, "GET", f"/sessions/{session_id}")
    body: dict[str, Any] = response.json()
    return body


async def wait_status(
    palisade: Palisade, key: str, session_id: str, status: str, *, cleanup: str | None = None
) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        session = await session_of(palisade, key, session_id)
        if session["status"] == status and (cleanup is None or session["cleanup"] == cleanup):
            return session
        return None

    return await until(probe, within=15, message=f"session {status}/{cleanup}")


async def events(palisade: Palisade, key: str, session_id: str) -> list[dict[str, Any]]:
    response = await palisade.as_tenant(key, "GET", f"/sessions/{session_id}/events")
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def callback(simulator: SimulatorHandle, conversation_id: str) -> str:
    url: str = simulator.sim.conversation(conversation_id).callback_url or ""
    assert url
    return url


class TestShutdown:
    async def test_shutdown_ends_the_session_and_deletes_the_pal_at_once(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key, _ = await setup_tenant(palisade)
        session = (await start(palisade, key, {"profile": "voices"})).json()
        simulator.sim.join_face(session["conversation_id"])
        simulator.sim.shutdown_conversation(
            session["conversation_id"], "participant_left_timeout reached"
        )
        ended = await wait_status(palisade, key, session["id"], "ended", cleanup="done")
        assert ended["end_reason"] == "participant_left_timeout"
        pal = simulator.sim.pal(session["pal_id"])
        assert pal.deleted_at is not None
        assert pal.delete_calls == 1
        types = [e["type"] for e in await events(palisade, key, session["id"])]
        assert "system.replica_joined" in types
        assert "system.shutdown" in types
        assert "cleanup.done" in types

    async def test_reuse_session_ends_without_touching_the_persistent_pal(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key, persistent = await setup_tenant(palisade)
        session = (await start(palisade, key, {"profile": "coach"})).json()
        simulator.sim.shutdown_conversation(session["conversation_id"], "max_call_duration reached")
        ended = await wait_status(palisade, key, session["id"], "ended")
        assert ended["cleanup"] == "not_needed"
        assert simulator.sim.pal(persistent).deleted_at is None
        assert simulator.sim.pal(persistent).delete_calls == 0

    async def test_explicit_end_then_shutdown_webhook(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key, _ = await setup_tenant(palisade)
        session = (await start(palisade, key, {"profile": "voices"})).json()
        await palisade.as_tenant(key, "POST", f"/sessions/{session['id']}/end")
        ended = await wait_status(palisade, key, session["id"], "ended", cleanup="done")
        assert ended["end_reason"] == "ended_by_client"
        assert ended["ending_at"] is not None
        assert simulator.sim.pal(session["pal_id"]).delete_calls == 1


def claims(outcome: str) -> float:
    value = REGISTRY.get_sample_value("palisade_shutdown_claims_total", {"outcome": outcome})
    return value or 0.0


def shutdown_event(conversation_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "conversation_id": conversation_id,
        "event_type": "system.shutdown",
        "message_type": "system",
        "timestamp": "2026-11-23T10:00:00.000000Z",
        "properties": {"shutdown_reason": "participant_left_timeout reached"},
        **fields,
    }


class TestShutdownClaims:
    """A shutdown webhook is a claim: it ends nothing until Tavus confirms it."""

    async def test_a_forged_shutdown_frees_no_slot_and_deletes_no_pal(
        self, palisade_factory: Any, simulator: SimulatorHandle
    ) -> None:
        # Whoever holds the callback URL (it leaks, or a tenant finds it) can post a
        # shutdown for a conversation Tavus is still running.
        palisade = await palisade_factory(PALISADE_SHUTDOWN_CONFIRM_SECONDS=1)
        key, _ = await setup_tenant(palisade, cap=1)
        session = (await start(palisade, key, {"profile": "voices"})).json()
        token = palisade.runtime.webhook_tokens.token_for(session["id"])
        unconfirmed_before = claims("unconfirmed")

        forged = await palisade.client.post(
            f"/webhooks/tavus/{session['id']}",
            params={"token": token},
            json=shutdown_event(session["conversation_id"]),
        )
        assert forged.status_code == 200

        async def recorded() -> bool:
            kinds = [e["type"] for e in await events(palisade, key, session["id"])]
            return "shutdown.unconfirmed" in kinds

        await until(recorded, within=10, message="the claim was recorded as unconfirmed")
        after = await session_of(palisade, key, session["id"])
        assert after["status"] == "active"
        assert after["ended_at"] is None
        assert simulator.sim.conversation(session["conversation_id"]).status == "active"
        assert simulator.sim.pal(session["pal_id"]).delete_calls == 0
        # The slot is still taken: a cap of 1 admits nothing more.
        assert (await start(palisade, key, {"profile": "voices"})).status_code == 429
        assert claims("unconfirmed") == unconfirmed_before + 1
        # And the conversation is still watched: its real end still ends the session.
        simulator.sim.shutdown_conversation(session["conversation_id"], "max_call_duration")
        ended = await wait_status(palisade, key, session["id"], "ended", cleanup="done")
        assert ended["end_reason"] == "max_call_duration"

    async def test_tavus_reporting_the_end_late_still_confirms_it(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        # The webhook comes first; Tavus's own status says "ended" only a moment later.
        key, _ = await setup_tenant(palisade)
        simulator.sim.add_fault("webhook", DropFault())
        session = (await start(palisade, key, {"profile": "voices"})).json()
        token = palisade.runtime.webhook_tokens.token_for(session["id"])
        confirmed_before = claims("confirmed")
        await palisade.client.post(
            f"/webhooks/tavus/{session['id']}",
            params={"token": token},
            json=shutdown_event(session["conversation_id"]),
        )

        async def rechecked() -> bool:
            log = simulator.sim.call_log("conversation.get")
            return len(log) >= 2

        await until(rechecked, within=10, message="Tavus asked twice")
        assert (await session_of(palisade, key, session["id"]))["status"] == "active"
        simulator.sim.shutdown_conversation(session["conversation_id"], "participant_left_timeout")

        ended = await wait_status(palisade, key, session["id"], "ended", cleanup="done")
        assert ended["end_reason"] == "participant_left_timeout"
        assert simulator.sim.pal(session["pal_id"]).delete_calls == 1
        assert claims("confirmed") == confirmed_before + 1

    async def test_event_times_stay_within_the_sessions_life(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key, _ = await setup_tenant(palisade)
        session = (await start(palisade, key, {"profile": "coach"})).json()
        token = palisade.runtime.webhook_tokens.token_for(session["id"])
        joined = {
            **shutdown_event(session["conversation_id"]),
            "event_type": "system.replica_joined",
            "timestamp": "1970-01-01T00:00:00Z",
            "properties": {},
        }
        response = await palisade.client.post(
            f"/webhooks/tavus/{session['id']}", params={"token": token}, json=joined
        )
        assert response.status_code == 200
        async with palisade.runtime.sessionmaker() as db:
            stored = await SessionRepository(db).get(uuid.UUID(session["id"]))
        assert stored is not None
        assert stored.joined_at is not None
        assert stored.created_at <= stored.joined_at <= datetime.now(UTC)


class TestEarlyEvents:
    """Events Tavus sends before Palisade has stored the conversation id are applied as
    soon as it has."""

    async def test_a_shutdown_before_the_id_was_stored_ends_the_session_at_once(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key, _ = await setup_tenant(palisade)
        # The create succeeds on Tavus but its answer is held, then lost: Tavus calls
        # back (join, then shutdown) while Palisade still has no conversation id.
        simulator.sim.add_fault("conversation.create", SucceedThenDropFault(hold_s=1.5, times=1))
        started = asyncio.create_task(start(palisade, key, {"profile": "voices"}))

        async def created() -> str | None:
            live = simulator.conversations()
            return live[0]["conversation_id"] if live else None

        conversation_id = await until(created, within=10, message="the conversation exists")
        simulator.sim.join_face(conversation_id)
        simulator.sim.shutdown_conversation(conversation_id, "participant_absent_timeout")

        response = await started
        assert response.status_code == 201, response.text
        session = response.json()
        assert session["conversation_id"] == conversation_id
        ended = await wait_status(palisade, key, session["id"], "ended", cleanup="done")
        assert ended["end_reason"] == "participant_absent_timeout"
        assert simulator.sim.pal(session["pal_id"]).deleted_at is not None
        # The id came from the early webhook: no listing was read, nothing created twice.
        assert simulator.sim.call_log("conversation.list") == []
        assert len(simulator.sim.call_log("conversation.create")) == 1


class TestDeliveryFaults:
    async def test_duplicates_are_stored_once_and_delete_once(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key, _ = await setup_tenant(palisade)
        simulator.sim.add_fault("webhook", DuplicateFault(copies=3))
        session = (await start(palisade, key, {"profile": "voices"})).json()
        simulator.sim.join_face(session["conversation_id"])
        simulator.sim.shutdown_conversation(session["conversation_id"], "max_call_duration reached")
        await wait_status(palisade, key, session["id"], "ended", cleanup="done")
        await simulator.sim.webhooks.drain()
        logged = [
            e["type"] for e in await events(palisade, key, session["id"]) if e["kind"] == "webhook"
        ]
        assert logged.count("system.shutdown") == 1
        assert logged.count("system.replica_joined") == 1
        assert simulator.sim.pal(session["pal_id"]).delete_calls == 1

    async def test_shutdown_before_join_and_transcript_after_end(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key, _ = await setup_tenant(palisade)
        simulator.sim.add_fault("webhook", ReorderFault(max_hold_ms=300, times=1))
        session = (await start(palisade, key, {"profile": "voices"})).json()
        simulator.sim.join_face(session["conversation_id"])  # held, arrives after shutdown
        simulator.sim.shutdown_conversation(
            session["conversation_id"], "participant_absent_timeout"
        )
        await wait_status(palisade, key, session["id"], "ended", cleanup="done")
        await simulator.sim.webhooks.drain()

        async def all_arrived() -> list[str] | None:
            kinds = [e["type"] for e in await events(palisade, key, session["id"])]
            wanted = {"system.replica_joined", "system.shutdown", "application.transcription_ready"}
            return kinds if wanted <= set(kinds) else None

        kinds = await until(all_arrived, within=10, message="webhooks stored")
        assert kinds.index("system.shutdown") < kinds.index("system.replica_joined")
        final = await session_of(palisade, key, session["id"])
        assert final["status"] == "ended"
        assert final["end_reason"] == "participant_absent_timeout"

    async def test_lost_shutdown_is_recovered_by_polling(
        self, palisade_factory: Any, simulator: SimulatorHandle
    ) -> None:
        palisade = await palisade_factory(PALISADE_POLL_INTERVAL_SECONDS=0.2)
        key, _ = await setup_tenant(palisade)
        simulator.sim.add_fault("webhook", DropFault())
        session = (await start(palisade, key, {"profile": "voices"})).json()
        simulator.sim.shutdown_conversation(session["conversation_id"], "max_call_duration reached")
        ended = await wait_status(palisade, key, session["id"], "ended", cleanup="done")
        assert ended["end_reason"] == "max_call_duration"
        assert simulator.sim.pal(session["pal_id"]).deleted_at is not None
        assert all(e["kind"] != "webhook" for e in await events(palisade, key, session["id"]))


class TestHostileCalls:
    async def _active(self, palisade: Palisade) -> tuple[str, dict[str, Any], str]:
        key, _ = await setup_tenant(palisade)
        session = (await start(palisade, key, {"profile": "coach"})).json()
        token = palisade.runtime.webhook_tokens.token_for(session["id"])
        return key, session, token

    def _event(self, conversation_id: str, event_type: str = "system.shutdown") -> dict[str, Any]:
        return {
            "conversation_id": conversation_id,
            "event_type": event_type,
            "message_type": "system",
            "timestamp": "2026-11-23T10:00:00.000000Z",
            "properties": {"shutdown_reason": "max_call_duration reached"},
        }

    @pytest.mark.parametrize("token", [None, "", "forged", "A" * 43])
    async def test_wrong_or_missing_token_is_401_and_changes_nothing(
        self, palisade: Palisade, token: str | None
    ) -> None:
        key, session, _ = await self._active(palisade)
        params = {"token": token} if token is not None else {}
        response = await palisade.client.post(
            f"/webhooks/tavus/{session['id']}",
            params=params,
            json=self._event(session["conversation_id"]),
        )
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_webhook_token"
        assert (await session_of(palisade, key, session["id"]))["status"] == "active"
        assert all(e["kind"] != "webhook" for e in await events(palisade, key, session["id"]))

    async def test_another_sessions_token_is_401(self, palisade: Palisade) -> None:
        key, session, _ = await self._active(palisade)
        other = (await start(palisade, key, {"profile": "coach"})).json()
        other_token = palisade.runtime.webhook_tokens.token_for(other["id"])
        response = await palisade.client.post(
            f"/webhooks/tavus/{session['id']}",
            params={"token": other_token},
            json=self._event(session["conversation_id"]),
        )
        assert response.status_code == 401

    async def test_mismatched_conversation_is_404_and_changes_nothing(
        self, palisade: Palisade
    ) -> None:
        key, session, token = await self._active(palisade)
        response = await palisade.client.post(
            f"/webhooks/tavus/{session['id']}",
            params={"token": token},
            json=self._event("c-someone-else"),
        )
        assert response.status_code == 404
        assert response.json()["code"] == "conversation_mismatch"
        assert (await session_of(palisade, key, session["id"]))["status"] == "active"
        assert all(e["kind"] != "webhook" for e in await events(palisade, key, session["id"]))

    async def test_unknown_session_with_its_own_valid_token_is_404(
        self, palisade: Palisade
    ) -> None:
        ghost = str(uuid.uuid4())
        token = palisade.runtime.webhook_tokens.token_for(ghost)
        response = await palisade.client.post(
            f"/webhooks/tavus/{ghost}", params={"token": token}, json=self._event("c1")
        )
        assert response.status_code == 404

    @pytest.mark.parametrize(
        ("body", "code"),
        [
            (b"not json", "malformed_json"),
            (b"[]", "invalid_webhook"),
            (b"{}", "invalid_webhook"),
            (b'{"event_type": "system.shutdown"}', "invalid_webhook"),
            (b'{"conversation_id": 5}', "invalid_webhook"),
        ],
    )
    async def test_malformed_events_are_400(
        self, palisade: Palisade, body: bytes, code: str
    ) -> None:
        _, session, token = await self._active(palisade)
        response = await palisade.client.post(
            f"/webhooks/tavus/{session['id']}",
            params={"token": token},
            content=body,
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 400
        assert response.json()["code"] == code

    async def test_unknown_event_types_are_stored_and_ignored(self, palisade: Palisade) -> None:
        key, session, token = await self._active(palisade)
        event = self._event(session["conversation_id"], "application.something_new")
        response = await palisade.client.post(
            f"/webhooks/tavus/{session['id']}", params={"token": token}, json=event
        )
        assert response.status_code == 200
        assert (await session_of(palisade, key, session["id"]))["status"] == "active"
        stored = [e for e in await events(palisade, key, session["id"]) if e["kind"] == "webhook"]
        assert [e["type"] for e in stored] == ["application.something_new"]
        assert stored[0]["payload"] == event

    async def test_each_application_event_is_kept(self, palisade: Palisade) -> None:
        key, session, token = await self._active(palisade)
        for event_type, properties in [
            (
                "application.transcription_ready",
                {"transcript": [{"role": "user", "content": "hi"}]},
            ),
            ("application.recording_ready", {"bucket_name": "b", "s3_key": "k", "duration": 3}),
            ("application.perception_analysis", {"analysis": "# calm"}),
        ]:
            event = {
                **self._event(session["conversation_id"], event_type),
                "properties": properties,
            }
            response = await palisade.client.post(
                f"/webhooks/tavus/{session['id']}", params={"token": token}, json=event
            )
            assert response.status_code == 200
        stored = {
            e["type"] for e in await events(palisade, key, session["id"]) if e["kind"] == "webhook"
        }
        assert stored == {
            "application.transcription_ready",
            "application.recording_ready",
            "application.perception_analysis",
        }

    async def test_text_postgresql_cannot_store_is_kept_replaced(self, palisade: Palisade) -> None:
        # Refusing would lose the event (Tavus does not resend); jsonb cannot hold U+0000
        # or an unpaired surrogate, so those become U+FFFD.
        key, session, token = await self._active(palisade)
        event = {
            **self._event(session["conversation_id"], "application.transcription_ready"),
            "properties": {"transcript": [{"role": "user", "content": "hi\u0000\ud800"}]},
        }
        response = await palisade.client.post(
            f"/webhooks/tavus/{session['id']}",
            params={"token": token},
            content=json.dumps(event).encode(),
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 200, response.text
        [stored] = [e for e in await events(palisade, key, session["id"]) if e["kind"] == "webhook"]
        assert stored["payload"]["properties"]["transcript"][0]["content"] == "hi\ufffd\ufffd"

    async def test_oversize_webhook_is_413(self, palisade: Palisade) -> None:
        _, session, token = await self._active(palisade)
        response = await palisade.client.post(
            f"/webhooks/tavus/{session['id']}",
            params={"token": token},
            content=b"x" * 400_000,
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 413


async def test_webhook_reaches_palisade_over_http(palisade: Palisade) -> None:
    # The callback URL Palisade gives Tavus points at itself.
    assert palisade.runtime.settings.public_base_url == palisade.url
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{palisade.url}/healthz")).status_code == 200
