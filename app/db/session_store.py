"""The session store: the one way a session is admitted and the one way it moves.

Every change of a session's state, and every write made under a lease, is one call of
the PL/pgSQL function ``session_move`` (migration 0008): a compare-and-set on the state
(the sources of the target in the transition table) and on the lease its caller holds,
with the event and the stored idempotent answer, in one statement. Admission is one
statement too, around ``session_admission_gate`` (migration 0005). Both are plain SQL
sent on a pooled asyncpg connection (``app.db.raw``): a start is two or three of them,
and nothing else on its path.

What a session is allowed to do is the domain's (``app.domain.sessions.states``); what
the store guarantees is that a move happens whole or not at all, only from a state the
caller named, and only while the caller still holds the lease it names.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from app.db.raw import RawConnection
from app.errors import Rendered

# The columns admission writes, in the order of the statement's parameters.
ADMISSION_COLUMNS: Final = (
    ("id", "uuid"),
    ("tenant_id", "text"),
    ("profile", "text"),
    ("state", "text"),
    ("strategy", "text"),
    ("strategy_reason", "text"),
    ("cleanup", "text"),
    ("pal_id", "text"),
    ("pal_ephemeral", "boolean"),
    ("external_ref", "text"),
    ("idempotency_key", "text"),
    ("request", "jsonb"),
    ("resolved", "jsonb"),
    ("next_check_at", "timestamptz"),
    ("claimed_by", "text"),
    ("attempts", "integer"),
)
ADMISSION_COLUMN_NAMES: Final = tuple(name for name, _ in ADMISSION_COLUMNS)

# The columns a move may set: each is named once in ``session_move``.
SETTABLE: Final = frozenset(
    {
        "state",
        "cleanup",
        "pal_id",
        "conversation_id",
        "conversation_url",
        "active_at",
        "joined_at",
        "ending_at",
        "ended_at",
        "deadline_at",
        "end_reason",
        "error",
        "next_check_at",
        "claimed_by",
        "attempts",
        "shutdown_claimed_at",
        "conversation_created_at",
        "billed_seconds",
        "idle_seconds",
    }
)

# What ``session_admission_gate`` answers when the session may be inserted.
ADMITTED: Final = "admitted"
# The gate's parameters, in order (migrations 0005 and 0009), then the row's and the event's.
_GATE_PARAMETERS: Final = (
    ("tenant_id", "text"),
    ("api_key_id", "text"),
    ("profile", "text"),
    ("profile_version", "text"),
    ("profile_is_default", "boolean"),
    ("claim_key", "text"),
    ("claim_request_hash", "text"),
    ("claim_session_id", "uuid"),
    ("claim_locked_until", "timestamptz"),
    ("claim_expires_at", "timestamptz"),
)


def _placeholders(types: Collection[str], first: int) -> list[str]:
    return [f"${first + i}::{type_}" for i, type_ in enumerate(types)]


def _admit_sql() -> str:
    gate = _placeholders([t for _, t in _GATE_PARAMETERS], 1)
    values = _placeholders([t for _, t in ADMISSION_COLUMNS], 1 + len(gate))
    event = _placeholders(["text", "text", "jsonb"], 1 + len(gate) + len(values))
    return f"""
WITH gate AS (
    SELECT * FROM session_admission_gate({", ".join(gate)})
), inserted AS (
    INSERT INTO session ({", ".join(ADMISSION_COLUMN_NAMES)})
    SELECT {", ".join(values)} FROM gate WHERE gate.outcome = '{ADMITTED}'
    RETURNING id, state, created_at, updated_at
), logged AS (
    INSERT INTO session_event (session_id, kind, type, to_state, payload)
    SELECT inserted.id, {event[0]}, {event[1]}, inserted.state, {event[2]} FROM inserted
)
SELECT gate.outcome, gate.live_sessions, gate.session_cap, gate.tavus_key, gate.retry_after,
       inserted.created_at, inserted.updated_at
  FROM gate LEFT JOIN inserted ON true
"""


ADMIT: Final = _admit_sql()
MOVE: Final = (
    "SELECT moved_at, early_events FROM session_move("
    "$1::uuid, $2::text, $3::timestamptz, $4::text[], $5::jsonb, $6::jsonb, $7::jsonb, "
    "$8::timestamptz, $9::boolean)"
)
# One ready, unexpired PAL of this key on the tenant's current Tavus account (the one
# nearest its expiry), deleted from the pool. SKIP LOCKED: concurrent starts each take a
# different row, or none, and never wait for each other.
TAKE_POOLED_PAL: Final = """
WITH candidate AS (
    SELECT p.id FROM pooled_pal p
     WHERE p.tenant_id = $1::text AND p.profile = $2::text AND p.fingerprint = $3::text
       AND p.state = 'ready' AND p.expires_at > $4::timestamptz
       AND p.tavus_api_key_encrypted IS NOT DISTINCT FROM
           (SELECT t.tavus_api_key_encrypted FROM tenant t WHERE t.id = $1::text)
     ORDER BY p.expires_at
     LIMIT 1
       FOR UPDATE SKIP LOCKED
)
DELETE FROM pooled_pal p USING candidate
 WHERE p.id = candidate.id
RETURNING p.id, p.pal_id, p.pal_name, p.variant
"""


@dataclass(frozen=True)
class KeyClaim:
    """An idempotency key to claim for a request, as in flight until ``locked_until``."""

    key: str
    request_hash: str
    session_id: uuid.UUID
    locked_until: datetime
    expires_at: datetime


@dataclass(frozen=True)
class AdmissionGate:
    """What admission checks under the tenant's lock before it inserts a session."""

    tenant_id: str
    # The caller's key, checked to be still active (None: not checked).
    api_key_id: str | None
    # The profile the request was resolved under, at the version it was read in.
    profile: str
    profile_version: str
    # The request named no profile: the tenant's default must still be ``profile``.
    profile_is_default: bool
    claim: KeyClaim | None


class AdmissionOutcome(StrEnum):
    """The gate's answers (migrations 0005 and 0009)."""

    ADMITTED = ADMITTED
    NO_TENANT = "no_tenant"
    KEY_REVOKED = "key_revoked"
    PROFILE_CHANGED = "profile_changed"
    KEY_EXISTS = "key_exists"
    KEY_RATE_LIMITED = "key_rate_limited"
    FULL = "full"


@dataclass(frozen=True)
class Admission:
    """What admission decided. ``live`` is counted when the key was claimed (or there
    was none); ``created_at``/``updated_at`` are the inserted session's, when admitted;
    ``retry_after`` is when the caller's API key has a start token again, in seconds, when
    its start rate refused it."""

    outcome: AdmissionOutcome
    live: int | None
    cap: int | None
    tavus_api_key_encrypted: bytes | None
    created_at: datetime | None
    updated_at: datetime | None
    retry_after: float | None = None


@dataclass(frozen=True)
class EventRecord:
    """An event to append in the same statement as the write it describes. A move's
    event records the states it moved between by itself."""

    kind: str
    type: str
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class Lease:
    """The claim a move is made under: ``owner`` holds the session until ``until``."""

    owner: str
    until: datetime | None


@dataclass(frozen=True)
class Moved:
    """A move that happened: the row's new ``updated_at``, and whether webhooks arrived
    before its conversation id was stored (``Session.early_events``)."""

    updated_at: datetime
    early_events: bool


@dataclass(frozen=True)
class PooledPal:
    """A warm-pool PAL taken for a session."""

    id: uuid.UUID
    pal_id: str
    pal_name: str
    variant: str | None


def _json(value: object) -> str:
    return json.dumps(value, default=_jsonable, separators=(",", ":"))


def _jsonable(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in a session move")


class SessionStore:
    """Admission and moves of sessions, on one pooled connection."""

    def __init__(self, connection: RawConnection) -> None:
        self.connection = connection

    async def admit(
        self, gate: AdmissionGate, values: Mapping[str, Any], event: EventRecord
    ) -> Admission:
        """Admit a session in one statement, on an autocommit connection: lock the tenant,
        run the gate's checks (``AdmissionGate``), claim the key, count the live sessions
        and, below the cap, insert the session (``values``) and its first ``event``.

        Admission is serialised per tenant by the lock, and the count is taken after
        the lock is held (``session_admission_gate``, migration 0005), so a tenant never
        has more live sessions than its cap. The key is claimed under the tenant lock,
        so two requests with one key cannot deadlock.
        """
        if set(values) != set(ADMISSION_COLUMN_NAMES):
            raise ValueError(f"admission writes {ADMISSION_COLUMN_NAMES}, got {tuple(values)}")
        claim = gate.claim
        arguments: list[Any] = [
            gate.tenant_id,
            gate.api_key_id,
            gate.profile,
            gate.profile_version,
            gate.profile_is_default,
            claim.key if claim else None,
            claim.request_hash if claim else None,
            claim.session_id if claim else None,
            claim.locked_until if claim else None,
            claim.expires_at if claim else None,
        ]
        arguments += [
            _json(values[name]) if type_ == "jsonb" else values[name]
            for name, type_ in ADMISSION_COLUMNS
        ]
        arguments += [event.kind, event.type, _json(event.payload)]
        row = await self.connection.fetchrow(ADMIT, *arguments)
        if row is None:  # the statement selects from the gate, which always answers
            raise RuntimeError("the admission statement returned no row")
        return Admission(
            outcome=AdmissionOutcome(row["outcome"]),
            live=row["live_sessions"],
            cap=row["session_cap"],
            tavus_api_key_encrypted=row["tavus_key"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            retry_after=row["retry_after"],
        )

    async def move(
        self,
        session_id: uuid.UUID,
        *,
        lease: Lease | None,
        from_states: Collection[str] | None,
        changes: Mapping[str, Any],
        event: EventRecord | None = None,
        answer: Rendered | None = None,
        key_locked_until: datetime | None = None,
        wait_for_disk: bool = True,
    ) -> Moved | None:
        """Compare-and-set: apply ``changes`` only if the session is in one of
        ``from_states`` (None: any; the state must then not change) and, with a
        ``lease``, only while its owner still holds it; append ``event``, and store
        ``answer`` (as sent) for the session's Idempotency-Key (or keep the key locked until
        ``key_locked_until``), all in one statement. None when nothing matched.

        ``wait_for_disk=False`` returns once the move is committed and visible, without
        waiting for it to reach disk. Only a PostgreSQL crash within a fraction of a
        second can then undo it, leaving the session at its previous state, as it was
        last written with a synchronous commit (which flushes every earlier commit too).
        Pass it only for a move that can be made again from that state with the same
        result.
        """
        unknown = set(changes) - SETTABLE
        if unknown:
            raise ValueError(f"a move cannot set {sorted(unknown)}")
        if from_states is None and "state" in changes:
            raise ValueError("a move that changes the state names the states it leaves")
        row = await self.connection.fetchrow(
            MOVE,
            session_id,
            lease.owner if lease else None,
            lease.until if lease else None,
            list(from_states) if from_states is not None else None,
            _json(changes),
            _json({"kind": event.kind, "type": event.type, "payload": event.payload})
            if event is not None
            else None,
            _json(
                {
                    "status": answer.status,
                    "text": answer.body.decode("utf-8"),
                    "headers": answer.headers,
                }
            )
            if answer
            else None,
            key_locked_until,
            wait_for_disk,
        )
        if row is None:
            return None
        return Moved(updated_at=row["moved_at"], early_events=row["early_events"])

    async def take_pooled_pal(
        self, tenant_id: str, profile: str, fingerprint: str, now: datetime
    ) -> PooledPal | None:
        """Delete one ready, unexpired pool PAL of this key and return it, or None. Use
        inside ``RawConnection.transaction()`` with the move that gives it to a
        session, so the PAL belongs to exactly one of them at every instant."""
        row = await self.connection.fetchrow(TAKE_POOLED_PAL, tenant_id, profile, fingerprint, now)
        if row is None:
            return None
        return PooledPal(row["id"], row["pal_id"], row["pal_name"], row["variant"])
