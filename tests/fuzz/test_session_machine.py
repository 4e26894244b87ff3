"""A stateful property test of the session state machine through the real stack.

Hypothesis drives a tenant's sessions through every door Palisade has: starts with each
strategy, with and without an Idempotency-Key (repeated with the same and with another
body, or sent twice at once), explicit ends, Tavus's own lifecycle (shutdowns, a face
and participants joining and leaving, the simulated clock running out the timeouts),
webhooks dropped, duplicated and replayed, Tavus failing a call, the reconciler's tick,
time passing for it, and the orphan sweep. After every step the safety invariants must
hold; at the end of every run everything is ended, the reconciler runs to quiescence,
and nothing may be left behind on Tavus.

The background reconciler is off: its passes are steps of the machine, so a run is the
sequence of actions Hypothesis chose (only the double click races), and a failure
replays.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import httpx
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select, text, update

from app.db.models import IdempotencyRecord, Session, SessionEvent
from app.domain.sessions import tags
from app.domain.sessions.reconcile import Reconciler
from app.domain.sessions.states import TERMINAL, State, can_move, status_of
from app.domain.sessions.sweep import sweep
from tavus_simulator import (
    DropFault,
    DuplicateFault,
    ErrorFault,
    HangFault,
    SucceedThenDropFault,
)
from tavus_simulator.faults import Fault
from tests.conftest import TRUNCATE_ALL, PalisadeFactory
from tests.fuzz import budget
from tests.fuzz.loop_bridge import LoopBridge, in_worker_thread
from tests.integration.api.test_sessions import VOICE_OVERRIDE, setup_tenant, start
from tests.support.stack import FAST_RETRY, Palisade, SimulatorHandle
from tests.support.wait import until

TENANT = "acme"
# Profiles of the tenant that `setup_tenant` creates, one per strategy.
REUSE, EPHEMERAL, AUTO = "coach", "voices", "smart"
LIVE_STATES = frozenset(State) - TERMINAL
# The simulated clock only moves when a step moves it, so timeouts fire at known steps.
FROZEN_TIME_SCALE = 1e-6
# Past the profile defaults: participant_left_timeout 60, participant_absent_timeout 180,
# max_call_duration 1800.
CLOCK_JUMPS = (61, 181, 1801)
CONVERSATION_EVENTS = (
    "face joins",
    "participant comes and goes",
    # Shutdowns Tavus decides on its own, with the reasons it sends.
    "participant_left_timeout reached",
    "end_conversation_endpoint_hit",
    "internal error occurred at step 3",
    "something Tavus never documented",
)
FAULTS: dict[str, Callable[[int], Fault]] = {
    "concurrency_limit": lambda times: ErrorFault(preset="concurrency_limit", times=times),
    "server_error": lambda times: ErrorFault(preset="server_error", times=times),
    "unavailable": lambda times: ErrorFault(preset="unavailable", times=times),
    "succeed_then_drop": lambda times: SucceedThenDropFault(times=times),
    "hang": lambda times: HangFault(seconds=0.05, times=times),
}
CREATES = ("pal.create", "conversation.create")
TAVUS_OPERATIONS = (
    *CREATES,
    "pal.delete",
    "pal.list",
    "conversation.get",
    "conversation.list",
    "conversation.end",
)
# Ending, then confirming the end, then deleting a PAL (with a retry) takes a few passes.
QUIESCENCE_ROUNDS = 10


@dataclass(frozen=True)
class Stack:
    palisade: Palisade
    simulator: SimulatorHandle
    bridge: LoopBridge

    @property
    def reconciler(self) -> Reconciler:
        reconciler = self.palisade.runtime.reconciler
        assert reconciler is not None
        return reconciler


class SessionMachine(RuleBasedStateMachine):
    def __init__(self, stack: Stack) -> None:
        super().__init__()
        self.stack = stack
        self.bridge = stack.bridge
        self.palisade = stack.palisade
        self.sim = stack.simulator.sim
        self.ready = False
        self.tenant_key = ""
        self.persistent_pal = ""
        self.cap = 0
        self.session_ids: list[str] = []
        self.keys: list[str] = []
        self.key_bodies: dict[str, dict[str, Any]] = {}
        self.key_sessions: dict[str, str] = {}
        self.names = itertools.count()

    # --- setup ---------------------------------------------------------------------

    @initialize(
        cap=st.integers(min_value=1, max_value=3),
        profile=st.sampled_from([REUSE, EPHEMERAL, AUTO]),
        overrides=st.booleans(),
    )
    def fresh_tenant_with_a_session(self, cap: int, profile: str, overrides: bool) -> None:
        # Hypothesis switches rules off for whole runs (swarm testing); a first session
        # keeps a run without starts meaningful.
        self.cap = cap
        self.tenant_key, self.persistent_pal = self.bridge.run(self._fresh_stack(cap))
        self.ready = True
        self._start_fresh(self._body(profile, overrides), key=None)

    async def _fresh_stack(self, cap: int) -> tuple[str, str]:
        self.sim.reset()
        self.sim.configure(time_scale=FROZEN_TIME_SCALE)
        async with self.palisade.runtime.engine.begin() as connection:
            await connection.execute(text(TRUNCATE_ALL))
        return await setup_tenant(self.palisade, tenant_id=TENANT, cap=cap)

    # --- starting --------------------------------------------------------------------

    @rule(
        profile=st.sampled_from([REUSE, EPHEMERAL, AUTO]),
        overrides=st.booleans(),
        with_key=st.booleans(),
    )
    def start_session(self, profile: str, overrides: bool, with_key: bool) -> None:
        key = None
        if with_key:
            key = f"key-{next(self.names)}"
            self.keys.append(key)
        self._start_fresh(self._body(profile, overrides), key=key)

    @precondition(lambda self: bool(self.keys))
    @rule(data=st.data(), same_body=st.booleans())
    def repeat_idempotency_key(self, data: st.DataObject, same_body: bool) -> None:
        key = data.draw(st.sampled_from(self.keys), label="key")
        body = self.key_bodies[key]
        if not same_body:
            body = {**body, "external_ref": f"other-{next(self.names)}"}
        self._start_again(key, body)

    @rule(profile=st.sampled_from([REUSE, EPHEMERAL, AUTO]), same_key=st.booleans())
    def two_starts_at_once(self, profile: str, same_key: bool) -> None:
        """A double click: admission and the idempotency claim are the only arbiters."""
        body = self._body(profile, overrides=False)
        key = f"key-{next(self.names)}" if same_key else None
        live = self._live_sessions()
        before = set(self.session_ids)

        async def both() -> list[httpx.Response]:
            return list(
                await asyncio.gather(
                    *(start(self.palisade, self.tenant_key, body, key) for _ in range(2))
                )
            )

        responses = self.bridge.run(both())
        self._settle()
        rows = self.bridge.run(self._rows())
        new = [str(row.id) for row in rows if str(row.id) not in before]
        self.session_ids.extend(new)
        statuses = sorted(response.status_code for response in responses)
        assert all(status in (201, 409, 429, 502, 503) for status in statuses), statuses
        refused = statuses.count(429)
        admitted = 2 - refused if key is None else int(refused < 2)
        assert len(new) == admitted, f"{statuses}: {len(new)} new sessions"
        assert live + len(new) <= self.cap, f"{live} live, {statuses} admitted, cap {self.cap}"
        if key is not None:
            ids = {r.json().get("id") or r.json().get("session_id") for r in responses} - {None}
            assert ids <= set(new), f"answered for {ids}, started {new}"
            self.keys.append(key)
            self.key_bodies[key] = body
            if new:
                self.key_sessions[key] = new[0]

    def _body(self, profile: str, overrides: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"profile": profile, "external_ref": f"ref-{next(self.names)}"}
        if overrides:
            body["overrides"] = VOICE_OVERRIDE
        return body

    def _start_fresh(self, body: dict[str, Any], key: str | None) -> None:
        if key is not None:
            self.key_bodies[key] = body
        live = self._live_sessions()
        creates_may_fail = self._create_faults_armed()
        response, new = self._send_start(body, key)
        status = response.status_code
        # An invalid request is refused as such even at the cap: retrying it cannot help.
        if body["profile"] == REUSE and "overrides" in body:
            self._expect_problem(response, 422, "overrides_not_allowed")
        elif live >= self.cap:
            self._expect_problem(response, 429, "tenant_concurrency_limit")
            assert response.headers.get("Retry-After"), "429 without Retry-After"
        elif creates_may_fail:
            assert status in (201, 502, 503), response.text
        else:
            assert status == 201, response.text
            assert response.json()["status"] == "active"
        admitted = status not in (422, 429)
        assert len(new) == (1 if admitted else 0), f"{status}: {len(new)} new sessions"
        if key is not None and admitted:
            self.key_sessions[key] = new[0]

    def _start_again(self, key: str, body: dict[str, Any]) -> None:
        bound = self.key_sessions.get(key)
        if bound is None:
            # Refused before anything was stored (validation, the cap): a fresh start.
            self._start_fresh(body, key)
            return
        record = self.bridge.run(self._idempotency_record(key))
        assert record is not None, f"the record of Idempotency-Key {key} is gone"
        assert str(record.session_id) == bound
        response, new = self._send_start(body, key)
        assert new == [], "a repeated Idempotency-Key started another session"
        if body != self.key_bodies[key]:
            self._expect_problem(response, 422, "idempotency_key_mismatch")
            return
        if record.response_status is not None:
            assert response.status_code == record.response_status, response.text
            assert response.headers.get("Idempotent-Replayed") == "true"
        else:
            # The first attempt left the outcome open: this retry resumes the same session.
            assert response.status_code in (201, 409, 502, 503), response.text
        answered = response.json().get("id") or response.json().get("session_id")
        if answered is not None:
            assert answered == bound, "the key answered for another session"

    def _send_start(
        self, body: dict[str, Any], key: str | None
    ) -> tuple[httpx.Response, list[str]]:
        before = set(self.session_ids)
        response = self.bridge.run(start(self.palisade, self.tenant_key, body, key))
        self._settle()
        rows = self.bridge.run(self._rows())
        new = [str(row.id) for row in rows if str(row.id) not in before]
        self.session_ids.extend(new)
        return response, new

    @staticmethod
    def _expect_problem(response: httpx.Response, status: int, code: str) -> None:
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == code, response.text

    # --- ending ----------------------------------------------------------------------

    @precondition(lambda self: bool(self.session_ids))
    @rule(data=st.data())
    def end_session(self, data: st.DataObject) -> None:
        session_id = data.draw(st.sampled_from(self.session_ids), label="session")
        before = self.bridge.run(self._row(session_id)).state
        response = self.bridge.run(
            self.palisade.as_tenant(self.tenant_key, "POST", f"/sessions/{session_id}/end")
        )
        self._settle()
        if before in (State.ADMITTED, State.PAL_CREATED):
            self._expect_problem(response, 409, "session_not_endable")
            return
        assert response.status_code == 202, response.text
        expected = "ending" if before == State.ACTIVE else status_of(before)
        assert response.json()["status"] == expected

    # --- Tavus's side: lifecycle and webhooks ------------------------------------------

    @precondition(lambda self: bool(self.session_ids))
    @rule(data=st.data(), event=st.sampled_from(CONVERSATION_EVENTS))
    def something_happens_in_the_conversation(self, data: st.DataObject, event: str) -> None:
        conversation = self._active_conversation(data)
        if conversation is None:
            return

        def happen() -> None:
            if event == "face joins":
                self.sim.join_face(conversation)
            elif event == "participant comes and goes":
                self.sim.join_participant(conversation)
                self.sim.leave_participant(conversation)
            else:
                self.sim.shutdown_conversation(
                    conversation, event, error=event.startswith("internal")
                )

        self.bridge.call(happen)
        self._settle()

    @rule(seconds=st.sampled_from(CLOCK_JUMPS))
    def simulated_clock_runs(self, seconds: int) -> None:
        self.bridge.call(lambda: self.sim.advance(seconds))
        self._settle()

    @rule(duplicate=st.booleans())
    def next_webhook_is_duplicated_or_lost(self, duplicate: bool) -> None:
        fault = DuplicateFault(copies=1, times=1) if duplicate else DropFault(times=1)
        self.bridge.call(lambda: self.sim.add_fault("webhook", fault))

    @precondition(lambda self: bool(self.session_ids))
    @rule(data=st.data())
    def delivered_webhook_is_replayed(self, data: st.DataObject) -> None:
        session_id = data.draw(st.sampled_from(self.session_ids), label="session")
        events = self.bridge.run(self._events(session_id))
        delivered = [event["payload"] for event in events if event["kind"] == "webhook"]
        if not delivered:
            return
        payload = data.draw(st.sampled_from(delivered), label="webhook")
        before = self.bridge.run(self._row(session_id)).state
        token = self.palisade.runtime.webhook_tokens.token_for(session_id)
        response = self.bridge.run(
            self.palisade.client.post(
                f"/webhooks/tavus/{session_id}",
                params={"token": token},
                content=json.dumps(payload),
            )
        )
        self._settle()
        assert response.status_code == 200, response.text
        after = self.bridge.run(self._row(session_id)).state
        # Replaying an event changes nothing, unless it is a shutdown that arrived before
        # the session knew its conversation and so could not be applied then.
        late_shutdown = payload.get("event_type") == "system.shutdown" and after == State.ENDED
        assert after == before or late_shutdown, f"replay moved {before} to {after}"

    # --- Tavus failing ----------------------------------------------------------------

    @rule(
        operation=st.sampled_from(TAVUS_OPERATIONS),
        outcome=st.sampled_from(sorted(FAULTS)),
        # Once is absorbed by a retry where retrying is safe; as many times as the retry
        # policy tries makes the call fail for good.
        times=st.sampled_from([1, FAST_RETRY.attempts]),
    )
    def tavus_fails(self, operation: str, outcome: str, times: int) -> None:
        # Only a create can half-happen; any other call simply fails.
        fault = FAULTS[outcome if operation in CREATES else "unavailable"](times)
        self.bridge.call(lambda: self.sim.add_fault(operation, fault))

    # --- background work, one pass at a time ------------------------------------------

    @rule(work=st.sampled_from(["pass", "pass after time passes", "orphan sweep"]))
    def background_work(self, work: str) -> None:
        runtime = self.palisade.runtime
        if work == "orphan sweep":
            self.bridge.run(sweep(runtime.sessionmaker, runtime.accounts, dry_run=False))
        else:
            if work == "pass after time passes":
                self.bridge.run(self._everything_due())
            self.bridge.run(self.stack.reconciler.tick())
        self._settle()

    # --- invariants -------------------------------------------------------------------

    @precondition(lambda self: self.ready)
    @invariant()
    def tenant_never_over_its_cap(self) -> None:
        live = self._live_sessions()
        assert live <= self.cap, f"{live} live sessions for a cap of {self.cap}"

    @precondition(lambda self: self.ready)
    @invariant()
    def every_state_change_is_in_the_transition_table(self) -> None:
        rows = {str(row.id): row for row in self.bridge.run(self._rows())}
        moves: dict[str, list[tuple[str | None, str | None]]] = defaultdict(list)
        for event in self.bridge.run(self._transition_events()):
            moves[str(event.session_id)].append((event.from_state, event.to_state))
        for session_id, row in rows.items():
            path = moves[session_id]
            assert path[0] == (None, State.ADMITTED), f"{session_id} began with {path[0]}"
            for (_, reached), (source, target) in itertools.pairwise(path):
                assert source == reached, f"{session_id}: {source} recorded after {reached}"
                assert source is not None
                assert target is not None
                assert can_move(State(source), State(target)), f"{session_id}: {source}->{target}"
            assert path[-1][1] == row.state, (
                f"{session_id}: log ends at {path[-1]}, row {row.state}"
            )

    @precondition(lambda self: self.ready)
    @invariant()
    def at_most_one_conversation_per_idempotency_key(self) -> None:
        rows = self.bridge.run(self._rows())
        conversations = Counter(
            tags.session_id_from_name(conversation["conversation_name"])
            for conversation in self._snapshot()["conversations"]
        )
        sessions_per_key: Counter[str] = Counter()
        conversations_per_key: Counter[str] = Counter()
        for row in rows:
            assert conversations[row.id] <= 1, f"session {row.id}: {conversations[row.id]}"
            if row.idempotency_key is not None:
                sessions_per_key[row.idempotency_key] += 1
                conversations_per_key[row.idempotency_key] += conversations[row.id]
        assert max(sessions_per_key.values(), default=0) <= 1, sessions_per_key
        assert max(conversations_per_key.values(), default=0) <= 1, conversations_per_key

    @precondition(lambda self: self.ready)
    @invariant()
    def persistent_pal_is_never_deleted(self) -> None:
        [pal] = [p for p in self._snapshot()["pals"] if p["pal_id"] == self.persistent_pal]
        assert pal["deleted_at"] is None
        assert pal["delete_calls"] == 0

    @precondition(lambda self: self.ready)
    @invariant()
    def no_pal_is_deleted_under_a_running_conversation(self) -> None:
        snapshot = self._snapshot()
        deleted = {p["pal_id"] for p in snapshot["pals"] if p["deleted_at"] is not None}
        for conversation in snapshot["conversations"]:
            if conversation["status"] == "active":
                assert conversation["pal_id"] not in deleted, conversation["conversation_id"]

    def teardown(self) -> None:
        if not self.ready:
            return
        self.bridge.run(self._quiesce())
        rows = self.bridge.run(self._rows())
        running = [(str(row.id), row.state) for row in rows if row.state not in TERMINAL]
        assert running == [], f"not terminal after quiescence: {running}"
        snapshot = self._snapshot()
        pals = [
            p["pal_id"]
            for p in snapshot["pals"]
            if p["deleted_at"] is None and p["pal_id"] != self.persistent_pal
        ]
        assert pals == [], f"ephemeral PALs left on Tavus: {pals}"
        active = [
            c["conversation_id"] for c in snapshot["conversations"] if c["status"] == "active"
        ]
        assert active == [], f"conversations still running on Tavus: {active}"

    async def _quiesce(self) -> None:
        """End every session and let the reconciler work until nothing is left to do."""
        self.sim.clear_faults()
        for _ in range(QUIESCENCE_ROUNDS):
            for row in await self._rows():
                if row.state == State.ACTIVE:
                    await self.palisade.as_tenant(
                        self.tenant_key, "POST", f"/sessions/{row.id}/end"
                    )
            await self._settled()
            await self._everything_due()
            await self.stack.reconciler.tick()
            await self._settled()
            rows = await self._rows()
            if all(row.state in TERMINAL and row.next_check_at is None for row in rows):
                return

    # --- observing the stack --------------------------------------------------------------

    def _settle(self) -> None:
        self.bridge.run(self._settled())

    async def _settled(self) -> None:
        """Every webhook delivered and every cleanup a webhook started is finished."""
        await self.sim.webhooks.drain()
        reconciler = self.stack.reconciler

        async def idle() -> bool:
            # spawn_check's tasks: the only background work left with the loop off.
            return reconciler.checks_running == 0

        await until(idle, within=30, message="webhook-started cleanups finished")

    async def _everything_due(self) -> None:
        """Time passes: every scheduled check falls due and every lease runs out."""
        now = datetime.now(UTC)
        async with self.palisade.runtime.sessionmaker.begin() as db:
            await db.execute(
                update(Session)
                .where(Session.next_check_at.isnot(None))
                .values(next_check_at=now, claimed_by=None)
            )
            await db.execute(
                update(IdempotencyRecord)
                .where(IdempotencyRecord.locked_until.isnot(None))
                .values(locked_until=now)
            )

    def _snapshot(self) -> dict[str, Any]:
        return self.bridge.call(self.sim.snapshot)

    def _live_sessions(self) -> int:
        return sum(row.state in LIVE_STATES for row in self.bridge.run(self._rows()))

    def _create_faults_armed(self) -> bool:
        faults = self._snapshot()["faults"]
        return any(faults.get(operation) for operation in CREATES)

    def _active_conversation(self, data: st.DataObject) -> str | None:
        session_id = data.draw(st.sampled_from(self.session_ids), label="session")
        conversation_id = self.bridge.run(self._row(session_id)).conversation_id
        if conversation_id is None:
            return None
        status = self.bridge.call(lambda: self.sim.conversation(conversation_id).status)
        return conversation_id if status == "active" else None

    async def _rows(self) -> list[Session]:
        async with self.palisade.runtime.sessionmaker() as db:
            return list((await db.scalars(select(Session).order_by(Session.created_at))).all())

    async def _row(self, session_id: str) -> Session:
        async with self.palisade.runtime.sessionmaker() as db:
            row = await db.get(Session, uuid.UUID(session_id))
        assert row is not None
        return row

    async def _transition_events(self) -> list[SessionEvent]:
        async with self.palisade.runtime.sessionmaker() as db:
            statement = (
                select(SessionEvent)
                .where(SessionEvent.kind == "transition")
                .order_by(SessionEvent.id)
            )
            return list((await db.scalars(statement)).all())

    async def _events(self, session_id: str) -> list[dict[str, Any]]:
        response = await self.palisade.as_tenant(
            self.tenant_key, "GET", f"/sessions/{session_id}/events"
        )
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def _idempotency_record(self, key: str) -> IdempotencyRecord | None:
        async with self.palisade.runtime.sessionmaker() as db:
            return await db.get(IdempotencyRecord, (TENANT, key))


async def test_session_state_machine(
    palisade_factory: PalisadeFactory, simulator: SimulatorHandle
) -> None:
    palisade = await palisade_factory(
        PALISADE_RECONCILER=False, PALISADE_POLL_INTERVAL_SECONDS=0.01
    )

    def run(bridge: LoopBridge) -> None:
        stack = Stack(palisade, simulator, bridge)
        run_state_machine_as_test(
            # Hypothesis takes any factory of machines; its annotation only names classes.
            cast(type[RuleBasedStateMachine], budget.seeded(lambda: SessionMachine(stack))),
            settings=settings(
                budget.hypothesis_settings(max_examples=budget.machine_runs()),
                stateful_step_count=budget.steps_per_run(),
            ),
        )

    await in_worker_thread(run)
