"""DESIGN §3 as checks over plain data: what Tavus holds (the simulator's ground truth),
what Palisade's database recorded, and what clients were told.

Every check is a pure function of a :class:`World` returning the violations it found;
tests/unit/chaos feeds each one hand-made violating data.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from app.domain.sessions.tags import session_id_from_name

TERMINAL_STATES = frozenset({"ended", "failed"})


@dataclass(frozen=True)
class Violation:
    invariant: str
    detail: str


@dataclass(frozen=True)
class TavusPal:
    pal_id: str
    name: str | None
    # Created through the API by an account (Palisade or the run itself), not a stock PAL.
    user: bool
    deleted_at: datetime | None
    delete_calls: int


@dataclass(frozen=True)
class TavusConversation:
    conversation_id: str
    name: str | None
    pal_id: str
    created_at: datetime
    # None while the conversation is active.
    ended_at: datetime | None
    max_call_duration_s: float


@dataclass(frozen=True)
class StoredSession:
    id: str
    tenant_id: str
    state: str
    cleanup: str
    pal_id: str | None
    pal_ephemeral: bool
    conversation_id: str | None
    idempotency_key: str | None


@dataclass(frozen=True)
class Transition:
    """A session entering ``admitted``, ``ended`` or ``failed``; ``seq`` is the event
    log's identity, which orders the entries of one tenant as admission saw them."""

    seq: int
    session_id: str
    to_state: str


@dataclass(frozen=True)
class ClientStart:
    """What a client was told across every attempt of one start."""

    tenant_id: str
    idempotency_key: str
    session_ids: frozenset[str]
    conversation_ids: frozenset[str]
    # Refused as a different body, although every attempt sent the same one.
    mismatched: bool = False


@dataclass(frozen=True)
class World:
    checked_at: datetime
    deadline_grace: timedelta
    pals: tuple[TavusPal, ...]
    conversations: tuple[TavusConversation, ...]
    sessions: tuple[StoredSession, ...]
    transitions: tuple[Transition, ...]
    caps: Mapping[str, int]
    persistent_pals: frozenset[str]
    client_starts: tuple[ClientStart, ...]
    # Tenant webhooks: the outbox's rows by (session id, event type), the artifacts each
    # session holds (by kind), and the deliveries by status.
    outbox: Mapping[tuple[str, str], int] = field(default_factory=dict)
    artifacts: Mapping[str, frozenset[str]] = field(default_factory=dict)
    deliveries: Mapping[str, int] = field(default_factory=dict)


def _owner(name: str | None) -> str | None:
    session_id = session_id_from_name(name)
    return None if session_id is None else str(session_id)


def _ephemeral_pals(world: World) -> list[TavusPal]:
    return [p for p in world.pals if p.user and p.pal_id not in world.persistent_pals]


def no_leaked_pal(world: World) -> list[Violation]:
    """§3.1: every ephemeral PAL is deleted, and never while its conversation runs."""
    found = []
    conversations_on: dict[str, list[TavusConversation]] = defaultdict(list)
    for conversation in world.conversations:
        conversations_on[conversation.pal_id].append(conversation)
    for pal in _ephemeral_pals(world):
        if pal.deleted_at is None:
            found.append(
                f"ephemeral PAL {pal.pal_id} (session {_owner(pal.name)}) was never deleted"
            )
            continue
        for conversation in conversations_on[pal.pal_id]:
            if conversation.ended_at is None or conversation.ended_at > pal.deleted_at:
                found.append(
                    f"PAL {pal.pal_id} was deleted at {pal.deleted_at.isoformat()} while "
                    f"conversation {conversation.conversation_id} was still active"
                )
    return [Violation("no_leaked_pal", detail) for detail in found]


def no_runaway_conversation(world: World) -> list[Violation]:
    """§3.2: no conversation outlives created + max_call_duration + grace, and none is
    left running once Palisade considers its session over."""
    states = {s.id: s.state for s in world.sessions}
    found = []
    for conversation in world.conversations:
        deadline = (
            conversation.created_at
            + timedelta(seconds=conversation.max_call_duration_s)
            + world.deadline_grace
        )
        end = conversation.ended_at or world.checked_at
        if end > deadline:
            found.append(
                f"conversation {conversation.conversation_id} ran until {end.isoformat()}, "
                f"past its deadline {deadline.isoformat()}"
            )
        elif conversation.ended_at is None:
            state = states.get(_owner(conversation.name) or "")
            if state is None or state in TERMINAL_STATES:
                found.append(
                    f"conversation {conversation.conversation_id} is still active on Tavus "
                    f"although its session is {state or 'unknown to Palisade'}"
                )
    return [Violation("no_runaway_conversation", detail) for detail in found]


def one_conversation_per_key(world: World) -> list[Violation]:
    """§3.3: at most one conversation (and one ephemeral PAL) per session and per
    Idempotency-Key; every tagged Tavus object is the one the database recorded, and
    every answer to one key names the same session."""
    sessions = {s.id: s for s in world.sessions}
    found = []
    conversations_of: dict[str, list[str]] = defaultdict(list)
    for conversation in world.conversations:
        owner = _owner(conversation.name)
        if owner is None or owner not in sessions:
            found.append(
                f"conversation {conversation.conversation_id} ({conversation.name!r}) "
                "belongs to no session Palisade knows"
            )
            continue
        conversations_of[owner].append(conversation.conversation_id)
    for session in world.sessions:
        held = conversations_of.get(session.id, [])
        if len(held) > 1:
            found.append(f"session {session.id} has {len(held)} conversations on Tavus: {held}")
        if session.conversation_id is not None and session.conversation_id not in held:
            found.append(
                f"session {session.id} recorded conversation {session.conversation_id}, "
                f"but Tavus holds {held or 'none'} under its tag"
            )
        if session.conversation_id is None and held:
            found.append(f"session {session.id} recorded no conversation, but Tavus holds {held}")
    pals_of: Counter[str] = Counter(
        owner for pal in _ephemeral_pals(world) if (owner := _owner(pal.name)) is not None
    )
    found += [
        f"session {owner} had {count} ephemeral PALs on Tavus"
        for owner, count in pals_of.items()
        if count > 1
    ]
    by_key: dict[tuple[str, str], list[StoredSession]] = defaultdict(list)
    for session in world.sessions:
        if session.idempotency_key is not None:
            by_key[(session.tenant_id, session.idempotency_key)].append(session)
    for (tenant, key), keyed in by_key.items():
        conversations = [c for s in keyed for c in conversations_of.get(s.id, [])]
        if len(keyed) > 1 or len(conversations) > 1:
            found.append(
                f"key {key!r} of {tenant} has {len(keyed)} sessions and "
                f"{len(conversations)} conversations"
            )
    for start in world.client_starts:
        if len(start.session_ids) > 1 or len(start.conversation_ids) > 1:
            found.append(
                f"key {start.idempotency_key!r} of {start.tenant_id} was answered with sessions "
                f"{sorted(start.session_ids)} and conversations {sorted(start.conversation_ids)}"
            )
        if start.mismatched:
            found.append(
                f"key {start.idempotency_key!r} of {start.tenant_id} was refused as "
                "idempotency_key_mismatch for the body it was first used with"
            )
    return [Violation("one_conversation_per_key", detail) for detail in found]


def admission_within_cap(world: World) -> list[Violation]:
    """§3.4: replaying the event log, no tenant ever had more live sessions than its cap.

    Ordering by the log's identity cannot invent an excess: an admission's event is
    written after its count, and a session counted as ended there had written its own
    event before."""
    tenant_of = {s.id: s.tenant_id for s in world.sessions}
    live: Counter[str] = Counter()
    alive: set[str] = set()
    peak: dict[str, tuple[int, int]] = {}
    for transition in sorted(world.transitions, key=lambda t: t.seq):
        tenant = tenant_of.get(transition.session_id)
        if tenant is None:
            continue
        if transition.to_state == "admitted" and transition.session_id not in alive:
            alive.add(transition.session_id)
            live[tenant] += 1
            cap = world.caps.get(tenant, 0)
            if live[tenant] > cap and live[tenant] > peak.get(tenant, (cap, 0))[0]:
                peak[tenant] = (live[tenant], transition.seq)
        elif transition.to_state in TERMINAL_STATES and transition.session_id in alive:
            alive.discard(transition.session_id)
            live[tenant] -= 1
    return [
        Violation(
            "admission_within_cap",
            f"tenant {tenant} had {count} live sessions (cap {world.caps.get(tenant, 0)}), "
            f"at event {seq}",
        )
        for tenant, (count, seq) in sorted(peak.items())
    ]


def every_session_terminal(world: World) -> list[Violation]:
    """Once everything settled, every session is ended or failed with nothing owed."""
    found = []
    for session in world.sessions:
        if session.state not in TERMINAL_STATES:
            found.append(f"session {session.id} is still {session.state}")
        elif session.cleanup == "pending":
            found.append(f"session {session.id} is {session.state} but its cleanup is pending")
    return [Violation("every_session_terminal", detail) for detail in found]


def persistent_pals_kept(world: World) -> list[Violation]:
    """§3.6: Palisade never deletes a persistent PAL, nor even tries to."""
    pals = {p.pal_id: p for p in world.pals}
    found = []
    for pal_id in sorted(world.persistent_pals):
        pal = pals.get(pal_id)
        if pal is None:
            found.append(f"persistent PAL {pal_id} is missing on Tavus")
        elif pal.deleted_at is not None or pal.delete_calls:
            found.append(f"persistent PAL {pal_id} received {pal.delete_calls} DELETE call(s)")
    return [Violation("persistent_pals_kept", detail) for detail in found]


def _expected_events(world: World, session: StoredSession, reached: set[str]) -> set[str]:
    expected = set()
    if session.id in reached:
        expected.add("session.active")
    if session.state in TERMINAL_STATES:
        expected.add(f"session.{session.state}")
    if session.cleanup == "done":
        expected.add("session.cleanup_done")
    kinds = world.artifacts.get(session.id, frozenset())
    expected |= {f"session.{kind}_ready" for kind in kinds & {"transcript", "recording"}}
    return expected


def one_event_per_change(world: World) -> list[Violation]:
    """Tenant webhooks: every change that makes an event made exactly one outbox row,
    and no row stands for a change that did not happen (one rolled back)."""
    reached = {t.session_id for t in world.transitions if t.to_state == "active"}
    found = []
    expected_rows: set[tuple[str, str]] = set()
    for session in world.sessions:
        for event in sorted(_expected_events(world, session, reached)):
            expected_rows.add((session.id, event))
            count = world.outbox.get((session.id, event), 0)
            if count != 1:
                found.append(f"session {session.id}: {count} {event} events in the outbox")
    for (session_id, event), count in sorted(world.outbox.items()):
        if (session_id, event) not in expected_rows and count:
            found.append(f"session {session_id}: a {event} event without its change")
    return [Violation("one_event_per_change", detail) for detail in found]


def no_delivery_stuck(world: World) -> list[Violation]:
    """Tenant webhooks: once settled, nothing is pending, and with a receiver that always
    answers 200, nothing failed either."""
    return [
        Violation("no_delivery_stuck", f"{count} deliveries {status}")
        for status, count in sorted(world.deliveries.items())
        if status != "delivered" and count
    ]


CHECKS: dict[str, Callable[[World], list[Violation]]] = {
    "no_leaked_pal": no_leaked_pal,
    "no_runaway_conversation": no_runaway_conversation,
    "one_conversation_per_key": one_conversation_per_key,
    "admission_within_cap": admission_within_cap,
    "every_session_terminal": every_session_terminal,
    "persistent_pals_kept": persistent_pals_kept,
    "one_event_per_change": one_event_per_change,
    "no_delivery_stuck": no_delivery_stuck,
}


def check(world: World) -> dict[str, list[Violation]]:
    """Every invariant by name, with its violations (empty when it holds)."""
    return {name: run(world) for name, run in CHECKS.items()}
