"""The writes of the session start path: admission and the compare-and-set ``move``.

They run on whatever the caller holds: an ORM session inside a larger transaction (the
warm pool's claim), a Core connection, or a driver connection (the start saga, see
``app.db.driver``), which spares SQLAlchemy's execution work on every start. Each is one
statement, atomic by itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql import Select

from app.db.driver import DriverConnection
from app.db.repositories import session_statements as statements


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
    """The gate's answers (migrations 0005 and 0007)."""

    ADMITTED = statements.ADMITTED
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
    """An event to append in the same statement as the write it describes."""

    kind: str
    type: str
    payload: dict[str, Any]
    from_state: str | None = None
    to_state: str | None = None


@dataclass(frozen=True)
class Moved:
    """A move that happened: the row's new ``updated_at``, and whether webhooks arrived
    before its conversation id was stored (``Session.early_events``)."""

    updated_at: datetime
    early_events: bool


@dataclass(frozen=True)
class StoredResponse:
    """The final answer to an idempotent request, stored in the same statement."""

    tenant_id: str
    key: str
    status: int
    body: dict[str, Any]


class SessionWrites:
    def __init__(self, db: AsyncConnection | AsyncSession | DriverConnection) -> None:
        self.db = db

    async def _row(
        self, statement: Select[Any], params: dict[str, Any]
    ) -> Mapping[str, Any] | None:
        if isinstance(self.db, DriverConnection):
            return await self.db.fetchrow(statement, params)
        result = await self.db.execute(statement, params)
        row: Mapping[str, Any] | None = result.mappings().first()
        return row

    async def admit(
        self, gate: AdmissionGate, values: dict[str, Any], event: EventRecord
    ) -> Admission:
        """Admit a session in one statement, on an autocommit connection: lock the tenant,
        run the gate's checks (``AdmissionGate``), claim the key, count the live sessions
        and, below the cap, insert the session (``values``) and its first ``event``.

        Admission is serialised per tenant by the lock, and the count is taken after
        the lock is held (``session_admission_gate``, migration 0005), so a tenant never
        has more live sessions than its cap. The key is claimed under the tenant lock,
        so two requests with one key cannot deadlock.
        """
        if set(values) != set(statements.ADMISSION_COLUMNS):
            raise ValueError(
                f"admission writes {statements.ADMISSION_COLUMNS}, got {tuple(values)}"
            )
        claim = gate.claim
        params: dict[str, Any] = {
            "p_tenant_id": gate.tenant_id,
            "p_api_key_id": gate.api_key_id,
            "p_profile": gate.profile,
            "p_profile_version": gate.profile_version,
            "p_profile_is_default": gate.profile_is_default,
            "claim_key": claim.key if claim else None,
            "claim_request_hash": claim.request_hash if claim else None,
            "claim_session_id": claim.session_id if claim else None,
            "claim_locked_until": claim.locked_until if claim else None,
            "claim_expires_at": claim.expires_at if claim else None,
        }
        params |= {f"value_{name}": value for name, value in values.items()}
        params |= _event_params(event)
        row = await self._row(statements.admit(), params)
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
        owner: str,
        lease_until: datetime | None,
        from_states: Collection[str],
        values: dict[str, Any],
        event: EventRecord,
        response: StoredResponse | None = None,
        synchronous_commit: bool = True,
    ) -> Moved | None:
        """Compare-and-set: apply ``values`` only if ``owner`` still holds the lease that
        ends at ``lease_until`` and the session is in one of ``from_states``; append
        ``event`` and store ``response`` in the same statement. What the move left (``Moved``),
        or None when nothing matched (the lease was lost or the state moved on).

        One statement, so it is atomic without a transaction of its own; the row lock
        the UPDATE takes re-checks the conditions against the latest committed row.

        ``synchronous_commit=False`` returns once the move is committed and visible,
        without waiting for it to reach disk. Only a PostgreSQL crash within a fraction of
        a second can then undo it, leaving the session at its previous state, as it was
        last written with a synchronous commit (which flushes every earlier commit too).
        Pass it only for a move that can be made again from that state with the same
        result.
        """
        query = statements.move(
            tuple(values),
            lease_is_null=lease_until is None,
            store_response=response is not None,
            synchronous_commit=synchronous_commit,
        )
        params: dict[str, Any] = {
            "p_session_id": session_id,
            "p_owner": owner,
            "p_from_states": list(from_states),
            **{f"value_{name}": value for name, value in values.items()},
            **_event_params(event),
        }
        if lease_until is not None:  # a null lease is matched with IS NULL, unbound
            params["p_lease_until"] = lease_until
        if response is not None:
            params |= {
                "stored_tenant_id": response.tenant_id,
                "stored_key": response.key,
                "stored_status": response.status,
                "stored_body": response.body,
            }
        row = await self._row(query, params)
        if row is None:
            return None
        return Moved(updated_at=row["updated_at"], early_events=row["early_events"])


def _event_params(event: EventRecord) -> dict[str, Any]:
    return {
        "event_kind": event.kind,
        "event_type": event.type,
        "event_from": event.from_state,
        "event_to": event.to_state,
        "event_payload": event.payload,
    }
