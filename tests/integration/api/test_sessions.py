"""POST /sessions and friends against a real database and the Tavus simulator."""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from sqlalchemy import text

from app.db.session_store import Lease, SessionStore
from app.domain.sessions import tags
from app.domain.sessions.schemas import SessionCreate
from app.errors import Unauthorized
from app.tavus.models import PalCreate
from tavus_simulator import (
    DropFault,
    ErrorFault,
    HangFault,
    LatencyFault,
    SucceedThenDropFault,
)
from tests.conftest import PalisadeFactory
from tests.support.stack import PAL_TEMPLATE, Palisade, SimulatorHandle
from tests.support.wait import until

ALLOWED = ["layers.tts.external_voice_id", "system_prompt"]
VOICE_OVERRIDE = {"layers": {"tts": {"external_voice_id": "voice-b"}}}


async def setup_tenant(
    palisade: Palisade, *, tenant_id: str = "acme", cap: int = 10
) -> tuple[str, str]:
    """A tenant with one profile per strategy; returns (api key, persistent PAL id)."""
    pal = await palisade.runtime.tavus.create_pal(
        PalCreate(default_face_id="r90bbd427f71", pal_name="Persistent", system_prompt="hi")
    )
    body = {
        "id": tenant_id,
        "name": tenant_id.title(),
        "max_concurrent_sessions": cap,
        "profiles": {
            "coach": {"strategy": "reuse", "pal_id": pal.pal_id},
            "voices": {
                "strategy": "ephemeral",
                "pal_template": copy.deepcopy(PAL_TEMPLATE),
                "allowed_overrides": ALLOWED,
            },
            "smart": {
                "strategy": "auto",
                "pal_id": pal.pal_id,
                "pal_template": copy.deepcopy(PAL_TEMPLATE),
                "allowed_overrides": ALLOWED,
            },
        },
        "default_profile": "coach",
    }
    return await palisade.create_tenant(body), pal.pal_id


async def start(
    palisade: Palisade, key: str, body: dict[str, Any], idempotency_key: str | None = None
) -> httpx.Response:
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    return await palisade.as_tenant(key, "POST", "/sessions", json=body, headers=headers)


def conversations(simulator: SimulatorHandle) -> list[dict[str, Any]]:
    return simulator.conversations()


def user_pals(simulator: SimulatorHandle, persistent: str) -> list[dict[str, Any]]:
    return [
        p for p in simulator.live_pals() if p["pal_type"] == "user" and p["pal_id"] != persistent
    ]


class TestReuse:
    async def test_reuse_creates_one_conversation_on_the_persistent_pal(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key, pal_id = await setup_tenant(palisade)
        response = await start(
            palisade,
            key,
            {
                "profile": "coach",
                "external_ref": "user-1",
                "conversational_context": "Ana, first visit",
                "custom_greeting": "Hi Ana",
            },
        )
        assert response.status_code == 201, response.text
        session = response.json()
        assert session["status"] == "active"
        assert session["strategy"] == "reuse"
        assert session["pal_id"] == pal_id
        assert session["pal_ephemeral"] is False
        assert session["cleanup"] == "not_needed"
        assert session["deadline_at"] > session["active_at"]

        [conv] = conversations(simulator)
        assert conv["conversation_id"] == session["conversation_id"]
        assert conv["pal_id"] == pal_id
        assert tags.session_id_from_name(conv["conversation_name"]) == uuid.UUID(session["id"])
        callback = urlparse(conv["callback_url"])
        assert callback.path == f"/webhooks/tavus/{session['id']}"
        token = parse_qs(callback.query)["token"][0]
        assert palisade.runtime.webhook_tokens.verify(session["id"], token)
        request = conv["request"]
        assert request["conversational_context"] == "Ana, first visit"
        assert request["custom_greeting"] == "Hi Ana"
        assert request["properties"]["participant_absent_timeout"] > 0

    async def test_reuse_refuses_overrides(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key, _ = await setup_tenant(palisade)
        response = await start(palisade, key, {"profile": "coach", "overrides": VOICE_OVERRIDE})
        assert response.status_code == 422
        assert response.json()["code"] == "overrides_not_allowed"
        assert conversations(simulator) == []

    async def test_default_profile_applies(self, palisade: Palisade) -> None:
        key, _ = await setup_tenant(palisade)
        response = await start(palisade, key, {})
        assert response.status_code == 201
        assert response.json()["profile"] == "coach"


class TestEphemeral:
    async def test_ephemeral_creates_a_tagged_pal_then_the_conversation(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key, persistent = await setup_tenant(palisade)
        response = await start(palisade, key, {"profile": "voices", "overrides": VOICE_OVERRIDE})
        assert response.status_code == 201, response.text
        session = response.json()
        assert session["strategy"] == "ephemeral"
        assert session["pal_ephemeral"] is True
        assert session["cleanup"] == "pending"
        [pal] = user_pals(simulator, persistent)
        assert pal["pal_id"] == session["pal_id"]
        assert tags.session_id_from_name(pal["pal_name"]) == uuid.UUID(session["id"])
        assert pal["request"]["layers"]["tts"]["external_voice_id"] == "voice-b"
        [conv] = conversations(simulator)
        assert conv["pal_id"] == pal["pal_id"]

    async def test_override_outside_allowed_is_422_and_creates_nothing(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key, persistent = await setup_tenant(palisade)
        response = await start(
            palisade, key, {"profile": "voices", "overrides": {"layers": {"llm": {"model": "x"}}}}
        )
        assert response.status_code == 422
        assert response.json()["code"] == "override_not_allowed"
        assert user_pals(simulator, persistent) == []


class TestAuto:
    async def test_no_overrides_reuses(self, palisade: Palisade) -> None:
        key, pal_id = await setup_tenant(palisade)
        session = (await start(palisade, key, {"profile": "smart"})).json()
        assert session["strategy"] == "reuse"
        assert session["pal_id"] == pal_id
        assert "reuse" in session["strategy_reason"]

    async def test_overrides_go_ephemeral(self, palisade: Palisade) -> None:
        key, pal_id = await setup_tenant(palisade)
        session = (
            await start(
                palisade, key, {"profile": "smart", "overrides": {"system_prompt": "Be brief."}}
            )
        ).json()
        assert session["strategy"] == "ephemeral"
        assert session["pal_id"] != pal_id
        assert "system_prompt" in session["strategy_reason"]


class TestCompensation:
    @pytest.mark.parametrize(
        ("preset", "status", "code"),
        [
            ("concurrency_limit", 503, "upstream_capacity"),
            ("out_of_credits", 502, "upstream_error"),
        ],
    )
    async def test_conversation_refused_deletes_the_ephemeral_pal(
        self,
        palisade: Palisade,
        simulator: SimulatorHandle,
        preset: str,
        status: int,
        code: str,
    ) -> None:
        key, persistent = await setup_tenant(palisade)
        simulator.sim.add_fault("conversation.create", ErrorFault(preset=preset))
        response = await start(palisade, key, {"profile": "voices"})
        assert response.status_code == status, response.text
        problem = response.json()
        assert problem["code"] == code
        assert user_pals(simulator, persistent) == []
        session = (await palisade.as_tenant(key, "GET", "/sessions?status=failed")).json()["items"][
            0
        ]
        assert session["cleanup"] == "done"
        assert session["error"]["code"] == code
        assert session["end_reason"] == "creation_failed"

    async def test_pal_refused_fails_cleanly(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key, persistent = await setup_tenant(palisade)
        simulator.sim.add_fault("pal.create", ErrorFault(status=400, body={"error": "bad"}))
        response = await start(palisade, key, {"profile": "voices"})
        assert response.status_code == 502
        assert response.json()["code"] == "upstream_error"
        assert user_pals(simulator, persistent) == []
        assert conversations(simulator) == []

    async def test_server_error_on_conversation_with_nothing_created_compensates(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key, persistent = await setup_tenant(palisade)
        simulator.sim.add_fault("conversation.create", ErrorFault(preset="server_error"))
        response = await start(palisade, key, {"profile": "voices"})
        # A 5xx may hide a create that happened: the answer says the outcome is unknown,
        # and the start fails (its PAL deleted) once the listings settle without it.
        assert response.status_code == 502
        assert "Idempotency-Key" in response.json()["detail"]

        async def failed() -> bool:
            listed = await palisade.as_tenant(key, "GET", "/sessions?status=failed")
            return bool(listed.json()["items"]) and user_pals(simulator, persistent) == []

        await until(failed, within=10, message="the start failed and its PAL was deleted")
        assert conversations(simulator) == []
        assert len(simulator.sim.call_log("conversation.create")) == 1

    async def test_a_failed_start_frees_its_slot(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key, _ = await setup_tenant(palisade, cap=1)
        simulator.sim.add_fault("conversation.create", ErrorFault(preset="server_error", times=1))
        assert (await start(palisade, key, {"profile": "coach"})).status_code == 502

        # The slot is held while the first create's outcome is unknown (a conversation
        # may hold one of the account's Tavus slots), and freed once it is known.
        async def started() -> bool:
            return (await start(palisade, key, {"profile": "coach"})).status_code == 201

        await until(started, within=10, message="a second start was admitted")


class TestUnknownOutcomes:
    @pytest.mark.parametrize("operation", ["pal.create", "conversation.create"])
    async def test_succeed_then_drop_is_resolved_by_lookup_without_duplicates(
        self, palisade: Palisade, simulator: SimulatorHandle, operation: str
    ) -> None:
        key, persistent = await setup_tenant(palisade)
        before = len(simulator.sim.call_log(operation))
        simulator.sim.add_fault(operation, SucceedThenDropFault(times=1))
        response = await start(palisade, key, {"profile": "voices"})
        assert response.status_code == 201, response.text
        session = response.json()
        assert [p["pal_id"] for p in user_pals(simulator, persistent)] == [session["pal_id"]]
        [conv] = conversations(simulator)
        assert conv["conversation_id"] == session["conversation_id"]
        assert len(simulator.sim.call_log(operation)) == before + 1

    async def test_hang_on_conversation_create_is_not_retried_blindly(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key, persistent = await setup_tenant(palisade)
        simulator.sim.add_fault("conversation.create", HangFault(seconds=5, times=1))
        response = await start(palisade, key, {"profile": "voices"})
        # The hang never ran the create: once the listings settle without it, the start
        # fails and the PAL is compensated; nothing is created a second time.
        assert response.status_code == 502, response.text

        async def compensated() -> bool:
            return user_pals(simulator, persistent) == []

        await until(compensated, within=10, message="the PAL was compensated")
        assert len(simulator.sim.call_log("conversation.create")) == 1
        assert conversations(simulator) == []

    async def test_unreachable_lookup_leaves_the_outcome_open_for_a_retry(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key, persistent = await setup_tenant(palisade)
        simulator.sim.add_fault("conversation.create", SucceedThenDropFault(times=1))
        simulator.sim.add_fault("conversation.list", ErrorFault(preset="unavailable", times=3))
        first = await start(palisade, key, {"profile": "voices"}, idempotency_key="k-open")
        assert first.status_code == 502
        assert "Idempotency-Key" in first.json()["detail"]
        # The retry (or the reconciler, whichever comes first; meanwhile the retry gets
        # 409) looks the conversation up and finds the one the first attempt made.

        async def retry() -> httpx.Response | None:
            response = await start(palisade, key, {"profile": "voices"}, idempotency_key="k-open")
            return None if response.status_code == 409 else response

        answer = await until(retry, within=15, message="retry answered")
        assert answer.status_code == 201, answer.text
        assert len(conversations(simulator)) == 1
        assert len(simulator.sim.call_log("conversation.create")) == 1
        assert len(user_pals(simulator, persistent)) == 1


class TestResumeLockOrder:
    async def test_a_resumed_key_and_a_move_in_flight_do_not_deadlock(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        """A retry that resumes a first attempt locks the session before its key, in the
        order a move takes them (the session, then its key's answer): the other order
        deadlocks with a move made at the same moment."""
        key, _ = await setup_tenant(palisade)
        first = await start(palisade, key, {"profile": "coach"}, idempotency_key="k-order")
        assert first.status_code == 201, first.text
        session_id = uuid.UUID(first.json()["id"])
        db = palisade.runtime.sessionmaker
        async with db.begin() as setup:
            # As if the first attempt's process died before answering.
            await setup.execute(
                text(
                    "UPDATE idempotency_record SET response_status = NULL, response_text = NULL,"
                    " response_headers = NULL, locked_until = now() - interval '1 second'"
                    " WHERE key = 'k-order'"
                )
            )

        async with db() as move:
            # A move in flight: it holds the session and will next write the key's answer.
            await move.execute(
                text("SELECT id FROM session WHERE id = :id FOR UPDATE"), {"id": session_id}
            )
            retry = asyncio.create_task(
                start(palisade, key, {"profile": "coach"}, idempotency_key="k-order")
            )

            async def retry_waits_for_a_lock() -> bool:
                async with db() as probe:
                    waiting = await probe.scalar(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE datname ="
                            " current_database() AND wait_event_type = 'Lock'"
                        )
                    )
                return bool(waiting)

            await until(retry_waits_for_a_lock, message="the retry waits for the session")
            await move.execute(
                text("UPDATE idempotency_record SET locked_until = NULL WHERE key = 'k-order'")
            )
            await move.commit()

        answer = await retry
        assert answer.status_code < 500, answer.text


class TestIdempotency:
    async def test_same_key_replays_the_first_result(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key, _ = await setup_tenant(palisade)
        body = {"profile": "voices", "external_ref": "u1"}
        first = await start(palisade, key, body, idempotency_key="abc")
        second = await start(palisade, key, body, idempotency_key="abc")
        assert first.status_code == second.status_code == 201
        assert second.json() == first.json()
        assert second.headers["idempotent-replayed"] == "true"
        assert len(conversations(simulator)) == 1

    async def test_same_key_other_body_is_422(self, palisade: Palisade) -> None:
        key, _ = await setup_tenant(palisade)
        assert (
            await start(palisade, key, {"profile": "coach"}, idempotency_key="k")
        ).status_code == 201
        response = await start(palisade, key, {"profile": "smart"}, idempotency_key="k")
        assert response.status_code == 422
        assert response.json()["code"] == "idempotency_key_mismatch"

    async def test_same_key_while_running_is_409(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key, _ = await setup_tenant(palisade)
        # The conversation create takes 0.5 s: whichever request claims the key first is
        # still running when the other arrives.
        simulator.sim.add_fault("conversation.create", LatencyFault(ms=500, times=1))
        responses = await asyncio.gather(
            start(palisade, key, {"profile": "coach"}, "slow"),
            start(palisade, key, {"profile": "coach"}, "slow"),
        )
        codes = sorted(r.status_code for r in responses)
        assert codes == [201, 409], [r.text for r in responses]
        conflict = next(r for r in responses if r.status_code == 409)
        assert conflict.json()["code"] == "idempotency_key_in_flight"
        assert conflict.headers["retry-after"] == "1"
        assert len(conversations(simulator)) == 1

    async def test_keys_are_per_tenant(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key_a, _ = await setup_tenant(palisade, tenant_id="a")
        key_b, _ = await setup_tenant(palisade, tenant_id="b")
        assert (await start(palisade, key_a, {}, idempotency_key="same")).status_code == 201
        assert (await start(palisade, key_b, {}, idempotency_key="same")).status_code == 201
        assert len(conversations(simulator)) == 2

    async def test_failure_after_side_effects_is_replayed_too(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key, _ = await setup_tenant(palisade)
        simulator.sim.add_fault(
            "conversation.create", ErrorFault(preset="concurrency_limit", times=1)
        )
        first = await start(palisade, key, {"profile": "voices"}, idempotency_key="f")
        second = await start(palisade, key, {"profile": "voices"}, idempotency_key="f")
        assert first.status_code == second.status_code == 503
        assert second.json()["code"] == first.json()["code"] == "upstream_capacity"
        assert len(simulator.sim.call_log("conversation.create")) == 1

    async def test_validation_errors_are_not_stored(self, palisade: Palisade) -> None:
        key, _ = await setup_tenant(palisade)
        bad = await start(palisade, key, {"profile": "nope"}, idempotency_key="v")
        assert bad.status_code == 422
        good = await start(palisade, key, {"profile": "coach"}, idempotency_key="v")
        assert good.status_code == 201

    @pytest.mark.parametrize("value", ["", "x" * 256, "has space", "tab\there"])
    async def test_malformed_keys_are_400(self, palisade: Palisade, value: str) -> None:
        key, _ = await setup_tenant(palisade)
        response = await palisade.as_tenant(
            key, "POST", "/sessions", json={}, headers={"Idempotency-Key": value}
        )
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_idempotency_key"


class TestAdmission:
    async def test_fifty_parallel_starts_against_a_cap_of_five_across_two_instances(
        self, palisade: Palisade, second_palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key, _ = await setup_tenant(palisade, cap=5)
        instances = [palisade, second_palisade]
        responses = await asyncio.gather(
            *(start(instances[i % 2], key, {"profile": "coach"}) for i in range(50))
        )
        codes = sorted(r.status_code for r in responses)
        assert codes.count(201) == 5
        assert codes.count(429) == 45
        for response in responses:
            if response.status_code == 429:
                assert response.json()["code"] == "tenant_concurrency_limit"
                assert int(response.headers["retry-after"]) > 0
        assert len(conversations(simulator)) == 5

    async def test_an_ending_session_holds_its_slot_until_tavus_confirms(
        self, palisade_factory: PalisadeFactory, simulator: SimulatorHandle
    ) -> None:
        # No webhook and no poll soon: the end stays unconfirmed for the whole test.
        palisade = await palisade_factory(PALISADE_POLL_INTERVAL_SECONDS=600)
        simulator.sim.add_fault("webhook", DropFault())
        key, _ = await setup_tenant(palisade, cap=1)
        first = (await start(palisade, key, {})).json()
        assert (await start(palisade, key, {})).status_code == 429
        ended = await palisade.as_tenant(key, "POST", f"/sessions/{first['id']}/end")
        assert ended.status_code == 202
        # Still holding the slot while Tavus confirms the end.
        assert (await start(palisade, key, {})).status_code == 429


class TestAdmissionGate:
    """Admission re-checks, under the tenant's lock, what the start was resolved with."""

    async def test_a_profile_changed_behind_the_cache_is_read_again(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key, _ = await setup_tenant(palisade)
        assert (await start(palisade, key, {"profile": "coach"})).status_code == 201
        assert (await start(palisade, key, {})).status_code == 201  # the default: coach
        other = await palisade.runtime.tavus.create_pal(
            PalCreate(default_face_id="r90bbd427f71", pal_name="Other", system_prompt="hi")
        )
        # As another process would: the rows change, this process's cache does not know.
        async with palisade.runtime.sessionmaker.begin() as db:
            await db.execute(
                text(
                    "UPDATE profile SET config = jsonb_set(config, '{pal_id}', to_jsonb("
                    "CAST(:pal AS text))) WHERE tenant_id = 'acme' AND name = 'coach'"
                ),
                {"pal": other.pal_id},
            )
            await db.execute(text("UPDATE tenant SET default_profile = 'voices' WHERE id = 'acme'"))
        named = await start(palisade, key, {"profile": "coach"})
        assert named.status_code == 201, named.text
        assert named.json()["pal_id"] == other.pal_id
        default = await start(palisade, key, {})
        assert default.status_code == 201, default.text
        assert default.json()["profile"] == "voices"
        assert default.json()["strategy"] == "ephemeral"

    async def test_a_retry_after_its_profile_was_removed_still_replays(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key, _ = await setup_tenant(palisade)
        body = {"profile": "voices", "external_ref": "u1"}
        first = await start(palisade, key, body, idempotency_key="before-removal")
        assert first.status_code == 201
        removed = await palisade.admin(
            "PATCH", "/tenants/acme", json={"profiles": {"voices": None}}
        )
        assert removed.status_code == 200, removed.text
        again = await start(palisade, key, body, idempotency_key="before-removal")
        assert again.status_code == 201, again.text
        assert again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"
        fresh = await start(palisade, key, body, idempotency_key="after-removal")
        assert fresh.status_code == 422
        assert fresh.json()["code"] == "unknown_profile"
        assert len(conversations(simulator)) == 1

    async def test_a_key_revoked_after_authentication_starts_nothing(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        await setup_tenant(palisade)
        issued = (await palisade.admin("POST", "/tenants/acme/api-keys", json={})).json()
        revoked = await palisade.admin("DELETE", f"/tenants/acme/api-keys/{issued['id']}")
        assert revoked.status_code == 204
        # The request authenticated just before the revocation committed.
        with pytest.raises(Unauthorized):
            await palisade.runtime.start_saga.start(
                "acme", SessionCreate(profile="coach"), "k", api_key_id=issued["id"]
            )
        async with palisade.runtime.sessionmaker() as db:
            assert (await db.execute(text("SELECT count(*) FROM session"))).scalar_one() == 0
            assert (
                await db.execute(text("SELECT count(*) FROM idempotency_record"))
            ).scalar_one() == 0
        assert conversations(simulator) == []

    async def test_a_start_refused_at_the_cap_leaves_its_key_unused(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key, _ = await setup_tenant(palisade, cap=1)
        assert (await start(palisade, key, {})).status_code == 201
        for _ in range(2):  # not "in flight", not a replay of the 429
            refused = await start(palisade, key, {}, idempotency_key="later")
            assert refused.status_code == 429
            assert refused.json()["code"] == "tenant_concurrency_limit"
        raised = await palisade.admin("PATCH", "/tenants/acme", json={"max_concurrent_sessions": 2})
        assert raised.status_code == 200
        admitted = await start(palisade, key, {}, idempotency_key="later")
        assert admitted.status_code == 201, admitted.text
        assert "idempotent-replayed" not in admitted.headers
        assert len(conversations(simulator)) == 2


class TestReadListEnd:
    async def test_get_list_filters_and_events(self, palisade: Palisade) -> None:
        key, _ = await setup_tenant(palisade)
        a = (await start(palisade, key, {"external_ref": "ref-a"})).json()
        b = (await start(palisade, key, {"external_ref": "ref-b"})).json()
        got = await palisade.as_tenant(key, "GET", f"/sessions/{a['id']}")
        assert got.json() == a
        by_ref = (await palisade.as_tenant(key, "GET", "/sessions?external_ref=ref-b")).json()
        assert [s["id"] for s in by_ref["items"]] == [b["id"]]
        active = (await palisade.as_tenant(key, "GET", "/sessions?status=active")).json()
        assert {s["id"] for s in active["items"]} == {a["id"], b["id"]}
        assert (await palisade.as_tenant(key, "GET", "/sessions?status=ended")).json()[
            "items"
        ] == []
        events = (await palisade.as_tenant(key, "GET", f"/sessions/{a['id']}/events")).json()
        assert [e["type"] for e in events["items"]] == ["session.admitted", "session.active"]

    async def test_pagination_is_stable_while_rows_are_inserted(self, palisade: Palisade) -> None:
        key, _ = await setup_tenant(palisade, cap=100)
        made = [(await start(palisade, key, {})).json()["id"] for _ in range(7)]
        page1 = (await palisade.as_tenant(key, "GET", "/sessions?limit=3")).json()
        for _ in range(3):
            assert (await start(palisade, key, {})).status_code == 201
        seen = [s["id"] for s in page1["items"]]
        cursor = page1["next_cursor"]
        while cursor:
            page = (
                await palisade.as_tenant(key, "GET", f"/sessions?limit=3&cursor={cursor}")
            ).json()
            seen += [s["id"] for s in page["items"]]
            cursor = page["next_cursor"]
        assert seen == list(reversed(made))

    async def test_the_event_log_pages_oldest_first_while_events_are_appended(
        self, palisade: Palisade
    ) -> None:
        key, _ = await setup_tenant(palisade)
        session = (await start(palisade, key, {"profile": "voices"})).json()
        path = f"/sessions/{session['id']}/events"
        token = palisade.runtime.webhook_tokens.token_for(session["id"])

        async def tavus_says(n: int) -> None:
            event = {
                "event_type": f"application.note_{n}",
                "conversation_id": session["conversation_id"],
            }
            response = await palisade.client.post(
                f"/webhooks/tavus/{session['id']}", params={"token": token}, json=event
            )
            assert response.status_code == 200

        for n in range(3):
            await tavus_says(n)
        whole = (await palisade.as_tenant(key, "GET", path)).json()
        assert whole["next_cursor"] is None
        assert len(whole["items"]) == 6

        page = (await palisade.as_tenant(key, "GET", path, params={"limit": 2})).json()
        seen = [e["id"] for e in page["items"]]
        await tavus_says(3)  # appended while paging: found on the last page
        while page["next_cursor"]:
            page = (
                await palisade.as_tenant(
                    key, "GET", path, params={"limit": 2, "cursor": page["next_cursor"]}
                )
            ).json()
            seen += [e["id"] for e in page["items"]]
        assert seen == sorted(seen)
        assert seen[:6] == [e["id"] for e in whole["items"]]
        assert len(seen) == 7

    @pytest.mark.parametrize("limit", [0, 501, -1])
    async def test_event_pages_have_bounds(self, palisade: Palisade, limit: int) -> None:
        key, _ = await setup_tenant(palisade)
        session = (await start(palisade, key, {})).json()
        response = await palisade.as_tenant(
            key, "GET", f"/sessions/{session['id']}/events", params={"limit": limit}
        )
        assert response.status_code == 422
        assert response.json()["code"] == "validation_error"

    async def test_bad_cursor_is_400(self, palisade: Palisade) -> None:
        key, _ = await setup_tenant(palisade)
        response = await palisade.as_tenant(key, "GET", "/sessions?cursor=%%%")
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_cursor"

    async def test_end_is_idempotent_and_ends_on_tavus(
        self, palisade: Palisade, simulator: SimulatorHandle
    ) -> None:
        key, _ = await setup_tenant(palisade)
        session = (await start(palisade, key, {})).json()
        first = await palisade.as_tenant(key, "POST", f"/sessions/{session['id']}/end")
        second = await palisade.as_tenant(key, "POST", f"/sessions/{session['id']}/end")
        assert first.status_code == second.status_code == 202
        assert first.json()["status"] == "ending"
        # By the second call Tavus's shutdown webhook may already have ended it.
        assert second.json()["status"] in ("ending", "ended")
        assert first.json()["end_reason"] == "ended_by_client"
        [conv] = conversations(simulator)
        assert conv["status"] == "ended"
        assert len(simulator.sim.call_log("conversation.end")) == 1

    async def test_other_tenants_sessions_are_404(self, palisade: Palisade) -> None:
        key_a, _ = await setup_tenant(palisade, tenant_id="a")
        key_b, _ = await setup_tenant(palisade, tenant_id="b")
        session = (await start(palisade, key_a, {})).json()
        for method, path in [
            ("GET", f"/sessions/{session['id']}"),
            ("GET", f"/sessions/{session['id']}/events"),
            ("POST", f"/sessions/{session['id']}/end"),
        ]:
            response = await palisade.as_tenant(key_b, method, path)
            assert response.status_code == 404, (method, path)
            assert response.json()["code"] == "session_not_found"
        assert (await palisade.as_tenant(key_b, "GET", "/sessions")).json()["items"] == []

    @pytest.mark.parametrize("session_id", ["nope", "123", str(uuid.uuid4())])
    async def test_unknown_ids_are_404(self, palisade: Palisade, session_id: str) -> None:
        key, _ = await setup_tenant(palisade)
        response = await palisade.as_tenant(key, "GET", f"/sessions/{session_id}")
        assert response.status_code == 404


class TestBadInput:
    @pytest.mark.parametrize(
        ("body", "status", "code"),
        [
            ({"profile": "nope"}, 422, "unknown_profile"),
            ({"colour": "red"}, 422, "validation_error"),
            ({"conversational_context": "x" * 20_001}, 422, "validation_error"),
            ({"custom_greeting": "x" * 1_001}, 422, "validation_error"),
            ({"external_ref": "x" * 201}, 422, "validation_error"),
            (
                {"conversation": {"properties": {"max_call_duration": 999_999}}},
                422,
                "validation_error",
            ),
            (
                {"conversation": {"properties": {"max_call_duration": 3600}}, "profile": "coach"},
                201,
                None,
            ),
            (
                {"conversation": {"properties": {"participant_left_timeout": 601}}},
                422,
                "property_cap_exceeded",
            ),
            ({"overrides": "not an object"}, 422, "validation_error"),
        ],
    )
    async def test_bad_bodies_get_a_code_and_create_nothing(
        self,
        palisade: Palisade,
        simulator: SimulatorHandle,
        body: dict[str, Any],
        status: int,
        code: str | None,
    ) -> None:
        key, _ = await setup_tenant(palisade)
        response = await start(palisade, key, body)
        assert response.status_code == status, response.text
        if code is not None:
            assert response.json()["code"] == code
            assert conversations(simulator) == []

    @pytest.mark.parametrize(
        ("body", "loc"),
        [
            ({"external_ref": "user\u0000"}, ["body", "external_ref"]),
            ({"profile": "\u0000"}, ["body", "profile"]),
            ({"conversational_context": "a\ud800b"}, ["body", "conversational_context"]),
            (
                {"profile": "voices", "overrides": {"system_prompt": "x\u0000"}},
                ["body", "overrides", "system_prompt"],
            ),
            (
                {"profile": "voices", "overrides": {"layers": {"tts": {"\udfff": 1}}}},
                ["body", "overrides", "layers", "tts", "\ufffd"],
            ),
            (
                {"conversation": {"properties": {"language": "en\u0000"}}},
                ["body", "conversation", "properties", "language"],
            ),
        ],
    )
    async def test_text_postgresql_cannot_store_is_422_not_500(
        self, palisade: Palisade, simulator: SimulatorHandle, body: dict[str, Any], loc: list[str]
    ) -> None:
        # Written as JSON text: NUL and unpaired surrogates only exist as JSON escapes.
        key, _ = await setup_tenant(palisade)
        response = await palisade.as_tenant(
            key,
            "POST",
            "/sessions",
            content=json.dumps(body).encode(),
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 422, response.text
        [error] = response.json()["errors"]
        assert error == {
            "loc": loc,
            "code": "invalid_character",
            "msg": "text must not contain U+0000 or an unpaired surrogate",
        }
        assert conversations(simulator) == []

    async def test_listing_by_an_external_ref_with_a_nul_is_422(self, palisade: Palisade) -> None:
        key, _ = await setup_tenant(palisade)
        response = await palisade.as_tenant(
            key, "GET", "/sessions", params={"external_ref": "user\x00"}
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["code"] == "invalid_character"

    async def test_malformed_json(self, palisade: Palisade) -> None:
        key, _ = await setup_tenant(palisade)
        response = await palisade.as_tenant(
            key,
            "POST",
            "/sessions",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 400
        assert response.json()["code"] == "malformed_json"

    async def test_oversize_body(self, palisade: Palisade) -> None:
        key, _ = await setup_tenant(palisade)
        response = await start(palisade, key, {"conversational_context": "x" * 300_000})
        assert response.status_code == 413

    @pytest.mark.parametrize(
        "authorization", [None, "Bearer nope", "Bearer psk_" + "a" * 43, "psk_abc"]
    )
    async def test_bad_keys_are_401(self, palisade: Palisade, authorization: str | None) -> None:
        headers = {"Authorization": authorization} if authorization else {}
        response = await palisade.client.post("/sessions", json={}, headers=headers)
        assert response.status_code == 401
        assert response.json()["code"] == "unauthorized"


class TestActiveMoveFlushedLazily:
    """The move to ``active`` commits without waiting for the disk (see
    ``StartSaga._record_active``). If a PostgreSQL crash undid it, the session would be
    back at its recovery point: these tests put it there by hand and show the start
    converges on the same conversation, and that the setting never outlives the move."""

    @pytest.mark.parametrize("profile", ["coach", "voices"])
    async def test_a_lost_active_move_is_made_again_with_the_same_conversation(
        self, palisade_factory: PalisadeFactory, simulator: SimulatorHandle, profile: str
    ) -> None:
        palisade = await palisade_factory(PALISADE_RECONCILER=False)
        key, persistent = await setup_tenant(palisade)
        body = {"profile": profile, "external_ref": "u1"}
        first = await start(palisade, key, body, idempotency_key="lost")
        assert first.status_code == 201, first.text
        session = first.json()
        owner = palisade.runtime.start_saga.ctx.instance_id
        async with palisade.runtime.autocommit() as db:
            # What the last synchronous commit left: the recovery point, leased to this
            # process (the lease run out), the key still in flight.
            await db.execute(
                text(
                    "UPDATE session SET state = CASE WHEN pal_ephemeral THEN 'pal_created' "
                    "ELSE 'admitted' END, conversation_id = NULL, conversation_url = NULL, "
                    "active_at = NULL, deadline_at = NULL, claimed_by = :owner, "
                    "next_check_at = now() - interval '1 second' WHERE id = :id"
                ),
                {"owner": owner, "id": uuid.UUID(session["id"])},
            )
            await db.execute(
                text(
                    "DELETE FROM session_event WHERE session_id = :id AND type = 'session.active'"
                ),
                {"id": uuid.UUID(session["id"])},
            )
            await db.execute(
                text(
                    "UPDATE idempotency_record SET response_status = NULL, response_body = NULL, "
                    "locked_until = now() - interval '1 second' WHERE key = 'lost'"
                )
            )

        again = await start(palisade, key, body, idempotency_key="lost")

        assert again.status_code == 201, again.text
        resumed = again.json()
        assert resumed["id"] == session["id"]
        assert resumed["conversation_id"] == session["conversation_id"]
        assert resumed["conversation_url"] == session["conversation_url"]
        assert resumed["pal_id"] == session["pal_id"]
        assert len(conversations(simulator)) == 1
        assert len(user_pals(simulator, persistent)) == (1 if profile == "voices" else 0)
        replayed = await start(palisade, key, body, idempotency_key="lost")
        assert replayed.json() == resumed

    async def test_the_lazy_flush_ends_with_the_move(self, palisade: Palisade) -> None:
        await setup_tenant(palisade)
        saga = palisade.runtime.start_saga
        admitted = await saga._admit("acme", SessionCreate(profile="coach"), None, None)
        assert isinstance(admitted, tuple)
        row = admitted[0]
        async with saga.ctx.connections.connect() as connection:
            async with connection.transaction():
                moved = await SessionStore(connection).move(
                    row.id,
                    lease=Lease(saga.ctx.instance_id, row.next_check_at),
                    from_states=["admitted"],
                    changes={"state": "active", "claimed_by": None},
                    wait_for_disk=False,
                )
                within = await connection.fetchrow("SHOW synchronous_commit")
            after = await connection.fetchrow("SHOW synchronous_commit")
        assert moved is not None
        # Off for the transaction the move ran in, and only for it.
        assert within is not None
        assert within["synchronous_commit"] == "off"
        assert after is not None
        assert after["synchronous_commit"] == "on"


class TestReplayIsTheFirstAnswer:
    """An Idempotency-Key's replay is the first answer byte for byte, headers included,
    but for ``Idempotent-Replayed``."""

    @staticmethod
    def _headers(response: httpx.Response) -> dict[str, str]:
        # Per request, not per answer: when and by what it was sent, and its id.
        ignored = {"date", "server", "x-request-id", "idempotent-replayed"}
        return {k: v for k, v in response.headers.items() if k not in ignored}

    async def _replayed(
        self, palisade: Palisade, key: str, body: dict[str, Any], status: int
    ) -> None:
        first = await start(palisade, key, body, idempotency_key=f"replay-{status}")
        assert first.status_code == status, first.text
        again = await start(palisade, key, body, idempotency_key=f"replay-{status}")
        assert again.headers["idempotent-replayed"] == "true"
        assert "idempotent-replayed" not in first.headers
        assert again.status_code == first.status_code
        assert again.content == first.content
        assert self._headers(again) == self._headers(first)

    async def test_a_start(self, palisade: Palisade) -> None:
        key, _ = await setup_tenant(palisade)
        await self._replayed(palisade, key, {"profile": "voices"}, 201)

    async def test_tavus_at_capacity(self, palisade: Palisade, simulator: SimulatorHandle) -> None:
        key, _ = await setup_tenant(palisade)
        simulator.sim.add_fault("conversation.create", ErrorFault(preset="concurrency_limit"))
        await self._replayed(palisade, key, {"profile": "voices"}, 503)

    async def test_tavus_refusing(self, palisade: Palisade, simulator: SimulatorHandle) -> None:
        key, _ = await setup_tenant(palisade)
        simulator.sim.add_fault(
            "conversation.create", ErrorFault(status=400, body={"error": "bad face"})
        )
        await self._replayed(palisade, key, {"profile": "voices"}, 502)

    async def test_refusals_before_tavus_are_not_stored(self, palisade: Palisade) -> None:
        # 422 (the request) and 429 (the tenant's cap) are decided before anything is
        # sent to Tavus: a retry is answered afresh, so it can succeed once fixed.
        key, _ = await setup_tenant(palisade, cap=1)
        unknown = await start(palisade, key, {"profile": "nope"}, idempotency_key="k-422")
        assert unknown.status_code == 422
        first = await start(palisade, key, {"profile": "coach"})
        assert first.status_code == 201
        full = await start(palisade, key, {"profile": "voices"}, idempotency_key="k-429")
        assert full.status_code == 429
        await palisade.as_tenant(key, "POST", f"/sessions/{first.json()['id']}/end")
        simulator_free = await start(palisade, key, {"profile": "voices"}, idempotency_key="k-429")
        assert simulator_free.status_code in (201, 429)
        assert "idempotent-replayed" not in simulator_free.headers
