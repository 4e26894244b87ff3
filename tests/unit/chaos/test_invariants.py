"""The chaos suite's checks over hand-made data: each holds on a clean world and fails on
the violation it exists to catch."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from app.domain.sessions.tags import conversation_name, pal_name
from tests.chaos.invariants import (
    ClientStart,
    StoredSession,
    TavusConversation,
    TavusPal,
    Transition,
    Violation,
    World,
    admission_within_cap,
    check,
    every_session_terminal,
    no_delivery_stuck,
    no_leaked_pal,
    no_runaway_conversation,
    one_conversation_per_key,
    one_event_per_change,
    persistent_pals_kept,
)

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
PERSISTENT = "p00000000001"
REUSE_ID = str(uuid.UUID(int=1))
EPHEMERAL_ID = str(uuid.UUID(int=2))


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def stored(session_id: str, **changes: object) -> StoredSession:
    values: dict[str, object] = {
        "id": session_id,
        "tenant_id": "acme",
        "state": "ended",
        "cleanup": "not_needed",
        "pal_id": PERSISTENT,
        "pal_ephemeral": False,
        "conversation_id": f"c-{session_id[-4:]}",
        "idempotency_key": f"key-{session_id[-4:]}",
    }
    values.update(changes)
    return StoredSession(**values)  # type: ignore[arg-type]


def conversation(session_id: str, **changes: object) -> TavusConversation:
    values: dict[str, object] = {
        "conversation_id": f"c-{session_id[-4:]}",
        "name": conversation_name(None, uuid.UUID(session_id)),
        "pal_id": PERSISTENT,
        "created_at": at(0),
        "ended_at": at(2),
        "max_call_duration_s": 60.0,
    }
    values.update(changes)
    return TavusConversation(**values)  # type: ignore[arg-type]


def ephemeral_pal(session_id: str, **changes: object) -> TavusPal:
    values: dict[str, object] = {
        "pal_id": f"p-{session_id[-4:]}",
        "name": pal_name("Coach", uuid.UUID(session_id)),
        "user": True,
        "deleted_at": at(8),
        "delete_calls": 1,
    }
    values.update(changes)
    return TavusPal(**values)  # type: ignore[arg-type]


def clean_world() -> World:
    """Two sessions of one tenant with a cap of 1, one after the other: a reuse one and
    an ephemeral one whose PAL was deleted after its conversation ended."""
    return World(
        checked_at=at(100),
        deadline_grace=timedelta(seconds=5),
        pals=(
            TavusPal(PERSISTENT, "Persistent", user=True, deleted_at=None, delete_calls=0),
            ephemeral_pal(EPHEMERAL_ID),
        ),
        conversations=(
            conversation(REUSE_ID),
            conversation(
                EPHEMERAL_ID, pal_id=f"p-{EPHEMERAL_ID[-4:]}", created_at=at(5), ended_at=at(7)
            ),
        ),
        sessions=(
            stored(REUSE_ID),
            stored(
                EPHEMERAL_ID, pal_id=f"p-{EPHEMERAL_ID[-4:]}", pal_ephemeral=True, cleanup="done"
            ),
        ),
        transitions=(
            Transition(1, REUSE_ID, "admitted"),
            Transition(2, REUSE_ID, "active"),
            Transition(3, REUSE_ID, "ended"),
            Transition(4, EPHEMERAL_ID, "admitted"),
            Transition(5, EPHEMERAL_ID, "active"),
            Transition(6, EPHEMERAL_ID, "ended"),
        ),
        caps={"acme": 1},
        persistent_pals=frozenset({PERSISTENT}),
        client_starts=(
            ClientStart(
                "acme", f"key-{REUSE_ID[-4:]}", frozenset({REUSE_ID}), frozenset({"c-0001"})
            ),
        ),
        outbox={
            (REUSE_ID, "session.active"): 1,
            (REUSE_ID, "session.ended"): 1,
            (REUSE_ID, "session.transcript_ready"): 1,
            (EPHEMERAL_ID, "session.active"): 1,
            (EPHEMERAL_ID, "session.ended"): 1,
            (EPHEMERAL_ID, "session.cleanup_done"): 1,
        },
        artifacts={REUSE_ID: frozenset({"transcript", "perception_analysis"})},
        deliveries={"delivered": 6},
    )


def _details(found: list[Violation]) -> str:
    return "\n".join(str(v) for v in found)


def test_a_clean_world_violates_nothing() -> None:
    verdicts = check(clean_world())
    assert {name: found for name, found in verdicts.items() if found} == {}


class TestNoLeakedPal:
    def test_an_ephemeral_pal_never_deleted(self) -> None:
        world = clean_world()
        world = replace(world, pals=(world.pals[0], ephemeral_pal(EPHEMERAL_ID, deleted_at=None)))
        found = no_leaked_pal(world)
        assert len(found) == 1
        assert "never deleted" in found[0].detail
        assert EPHEMERAL_ID in found[0].detail

    def test_a_pal_deleted_while_its_conversation_ran(self) -> None:
        world = clean_world()
        world = replace(world, pals=(world.pals[0], ephemeral_pal(EPHEMERAL_ID, deleted_at=at(6))))
        found = no_leaked_pal(world)
        assert ["still active" in v.detail for v in found] == [True]

    def test_a_pal_deleted_under_a_conversation_still_active(self) -> None:
        world = clean_world()
        running = replace(world.conversations[1], ended_at=None)
        world = replace(world, conversations=(world.conversations[0], running))
        assert len(no_leaked_pal(world)) == 1


class TestNoRunawayConversation:
    def test_a_conversation_that_outlived_its_deadline(self) -> None:
        world = clean_world()
        late = replace(world.conversations[0], ended_at=at(66))
        world = replace(world, conversations=(late, world.conversations[1]))
        found = no_runaway_conversation(world)
        assert len(found) == 1
        assert "past its deadline" in found[0].detail

    def test_a_conversation_still_running_after_its_session_ended(self) -> None:
        world = replace(clean_world(), checked_at=at(10))
        running = replace(world.conversations[0], ended_at=None)
        world = replace(world, conversations=(running, world.conversations[1]))
        found = no_runaway_conversation(world)
        assert ["its session is ended" in v.detail for v in found] == [True]

    def test_a_conversation_still_running_for_a_live_session_within_its_deadline(self) -> None:
        world = replace(clean_world(), checked_at=at(10))
        running = replace(world.conversations[0], ended_at=None)
        live = replace(world.sessions[0], state="active")
        world = replace(
            world,
            conversations=(running, world.conversations[1]),
            sessions=(live, world.sessions[1]),
        )
        assert no_runaway_conversation(world) == []


class TestOneConversationPerKey:
    def test_a_second_conversation_for_one_session(self) -> None:
        world = clean_world()
        twin = conversation(REUSE_ID, conversation_id="c-twin")
        world = replace(world, conversations=(*world.conversations, twin))
        found = one_conversation_per_key(world)
        assert any("has 2 conversations" in v.detail for v in found), _details(found)
        assert any("key 'key-0001'" in v.detail for v in found)

    def test_two_sessions_for_one_key(self) -> None:
        world = clean_world()
        other = replace(world.sessions[1], idempotency_key=world.sessions[0].idempotency_key)
        world = replace(world, sessions=(world.sessions[0], other))
        found = one_conversation_per_key(world)
        assert ["has 2 sessions and 2 conversations" in v.detail for v in found] == [True]

    def test_a_conversation_no_session_owns(self) -> None:
        world = clean_world()
        stray = conversation(str(uuid.UUID(int=99)), conversation_id="c-stray")
        world = replace(world, conversations=(*world.conversations, stray))
        found = one_conversation_per_key(world)
        assert ["belongs to no session" in v.detail for v in found] == [True]

    def test_a_conversation_the_database_never_recorded(self) -> None:
        world = clean_world()
        forgot = replace(world.sessions[0], conversation_id=None, state="failed")
        world = replace(world, sessions=(forgot, world.sessions[1]))
        found = one_conversation_per_key(world)
        assert ["recorded no conversation" in v.detail for v in found] == [True]

    def test_a_recorded_conversation_tavus_does_not_hold(self) -> None:
        world = clean_world()
        wrong = replace(world.sessions[0], conversation_id="c-other")
        world = replace(world, sessions=(wrong, world.sessions[1]))
        found = one_conversation_per_key(world)
        assert ["recorded conversation c-other" in v.detail for v in found] == [True]

    def test_a_second_ephemeral_pal_for_one_session(self) -> None:
        world = clean_world()
        twin = ephemeral_pal(EPHEMERAL_ID, pal_id="p-twin")
        world = replace(world, pals=(*world.pals, twin))
        found = one_conversation_per_key(world)
        assert ["had 2 ephemeral PALs" in v.detail for v in found] == [True]

    def test_a_key_answered_with_two_sessions(self) -> None:
        world = clean_world()
        answer = replace(world.client_starts[0], session_ids=frozenset({REUSE_ID, EPHEMERAL_ID}))
        found = one_conversation_per_key(replace(world, client_starts=(answer,)))
        assert ["was answered with sessions" in v.detail for v in found] == [True]

    def test_a_key_refused_as_a_mismatch_of_its_own_body(self) -> None:
        world = clean_world()
        answer = replace(world.client_starts[0], mismatched=True)
        found = one_conversation_per_key(replace(world, client_starts=(answer,)))
        assert ["idempotency_key_mismatch" in v.detail for v in found] == [True]


class TestAdmissionWithinCap:
    def test_overlapping_sessions_over_the_cap(self) -> None:
        world = replace(
            clean_world(),
            transitions=(
                Transition(1, REUSE_ID, "admitted"),
                Transition(2, EPHEMERAL_ID, "admitted"),
                Transition(3, REUSE_ID, "ended"),
                Transition(4, EPHEMERAL_ID, "ended"),
            ),
        )
        found = admission_within_cap(world)
        assert [v.detail for v in found] == ["tenant acme had 2 live sessions (cap 1), at event 2"]

    def test_the_log_is_replayed_in_its_own_order(self) -> None:
        world = clean_world()
        shuffled = replace(world, transitions=tuple(reversed(world.transitions)))
        assert admission_within_cap(shuffled) == []

    def test_a_failed_start_frees_its_slot(self) -> None:
        world = replace(
            clean_world(),
            transitions=(
                Transition(1, REUSE_ID, "admitted"),
                Transition(2, REUSE_ID, "failed"),
                Transition(3, EPHEMERAL_ID, "admitted"),
            ),
        )
        assert admission_within_cap(world) == []


class TestEverySessionTerminal:
    @pytest.mark.parametrize("state", ["admitted", "pal_created", "active", "ending"])
    def test_a_session_left_live(self, state: str) -> None:
        world = clean_world()
        world = replace(
            world, sessions=(replace(world.sessions[0], state=state), world.sessions[1])
        )
        assert [v.detail for v in every_session_terminal(world)] == [
            f"session {REUSE_ID} is still {state}"
        ]

    def test_an_ended_session_still_owing_its_pal_deletion(self) -> None:
        world = clean_world()
        owing = replace(world.sessions[1], cleanup="pending")
        world = replace(world, sessions=(world.sessions[0], owing))
        assert ["cleanup is pending" in v.detail for v in every_session_terminal(world)] == [True]


class TestPersistentPalsKept:
    def test_a_delete_call_on_a_persistent_pal(self) -> None:
        world = clean_world()
        hit = replace(world.pals[0], delete_calls=1)
        world = replace(world, pals=(hit, world.pals[1]))
        assert ["1 DELETE call" in v.detail for v in persistent_pals_kept(world)] == [True]

    def test_a_persistent_pal_gone_from_tavus(self) -> None:
        world = clean_world()
        world = replace(world, pals=(world.pals[1],))
        assert ["missing on Tavus" in v.detail for v in persistent_pals_kept(world)] == [True]


class TestOneEventPerChange:
    def test_a_change_without_its_event(self) -> None:
        world = clean_world()
        outbox = dict(world.outbox)
        del outbox[(EPHEMERAL_ID, "session.cleanup_done")]
        found = one_event_per_change(replace(world, outbox=outbox))
        assert [v.detail for v in found] == [
            f"session {EPHEMERAL_ID}: 0 session.cleanup_done events in the outbox"
        ]

    def test_an_event_written_twice(self) -> None:
        world = clean_world()
        outbox = {**world.outbox, (REUSE_ID, "session.ended"): 2}
        found = one_event_per_change(replace(world, outbox=outbox))
        assert ["2 session.ended events" in v.detail for v in found] == [True]

    def test_an_event_without_its_change(self) -> None:
        world = clean_world()
        outbox = {**world.outbox, (REUSE_ID, "session.recording_ready"): 1}
        found = one_event_per_change(replace(world, outbox=outbox))
        assert ["without its change" in v.detail for v in found] == [True]

    def test_a_failed_session_that_never_went_live_has_only_its_failure(self) -> None:
        failed_id = str(uuid.UUID(int=3))
        world = clean_world()
        world = replace(
            world,
            sessions=(*world.sessions, stored(failed_id, state="failed", conversation_id=None)),
            outbox={**world.outbox, (failed_id, "session.failed"): 1},
        )
        assert one_event_per_change(world) == []
        world = replace(world, outbox={**world.outbox, (failed_id, "session.active"): 1})
        assert ["without its change" in v.detail for v in one_event_per_change(world)] == [True]


class TestNoDeliveryStuck:
    @pytest.mark.parametrize("status", ["pending", "failed"])
    def test_a_delivery_left_behind(self, status: str) -> None:
        world = replace(clean_world(), deliveries={"delivered": 5, status: 1})
        assert [v.detail for v in no_delivery_stuck(world)] == [f"1 deliveries {status}"]
