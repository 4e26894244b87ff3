"""The statements of the session start path, each built once per shape and then executed
with parameters.

Every start runs them, and building a SQLAlchemy statement and hashing it for the
compiled-statement cache costs more CPU than the round trip it makes: a statement
object built once keeps its cache key, so each execution only binds its parameters.
Only the repositories in this package execute them.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Double,
    Integer,
    LargeBinary,
    Text,
    Uuid,
    any_,
    bindparam,
    column,
    exists,
    func,
    null,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlalchemy.sql import Select

from app.db.models import IdempotencyRecord, Session, SessionEvent

# What ``session_admission_gate`` answers when the session may be inserted.
ADMITTED = "admitted"
# The columns an admission writes; ``admit`` takes exactly these.
ADMISSION_COLUMNS = (
    "id",
    "tenant_id",
    "profile",
    "state",
    "strategy",
    "strategy_reason",
    "cleanup",
    "pal_id",
    "pal_ephemeral",
    "external_ref",
    "idempotency_key",
    "request",
    "resolved",
    "next_check_at",
    "claimed_by",
    "attempts",
)


def _event_from(session_id: Any) -> Any:
    """``INSERT INTO session_event … SELECT`` fed by a CTE that yields the session id, so
    the event is written exactly when the write it records happened."""
    return insert(SessionEvent).from_select(
        ["session_id", "kind", "type", "from_state", "to_state", "payload"],
        select(
            session_id,
            bindparam("event_kind", type_=SessionEvent.kind.type),
            bindparam("event_type", type_=SessionEvent.type.type),
            bindparam("event_from", type_=SessionEvent.from_state.type),
            bindparam("event_to", type_=SessionEvent.to_state.type),
            bindparam("event_payload", type_=JSONB),
        ),
    )


# The parameters of ``session_admission_gate`` (migrations 0005 and 0007), in order.
_GATE_PARAMETERS = (
    ("p_tenant_id", Text()),
    ("p_api_key_id", Text()),
    ("p_profile", Text()),
    ("p_profile_version", Text()),
    ("p_profile_is_default", Boolean()),
    ("claim_key", Text()),
    ("claim_request_hash", Text()),
    ("claim_session_id", Uuid()),
    ("claim_locked_until", DateTime(timezone=True)),
    ("claim_expires_at", DateTime(timezone=True)),
)


@cache
def admit() -> Select[Any]:
    """A whole admission, one statement: ``session_admission_gate`` locks the tenant and
    decides; when it answers ``admitted``, the session and its first event are inserted.

    Parameters: the gate's (``_GATE_PARAMETERS``; the ``claim_`` ones are null without an
    ``Idempotency-Key``), ``value_<column>`` for each of ``ADMISSION_COLUMNS`` and the
    event's (``event_<field>``). No parameter is named like a column: SQLAlchemy would
    take it for a value of that column in the statement's INSERT."""
    table = Session.__table__
    gate = select(
        func.session_admission_gate(
            *(bindparam(name, type_=type_) for name, type_ in _GATE_PARAMETERS)
        ).table_valued(
            column("outcome", Text()),
            column("live_sessions", BigInteger()),
            column("session_cap", Integer()),
            column("tavus_key", LargeBinary()),
            column("retry_after", Double()),
        )
    ).cte("gate")
    inserted = (
        insert(Session)
        .from_select(
            list(ADMISSION_COLUMNS),
            select(
                *(
                    bindparam(f"value_{name}", type_=table.c[name].type)
                    for name in ADMISSION_COLUMNS
                )
            )
            .select_from(gate)
            .where(gate.c.outcome == ADMITTED),
        )
        .returning(Session.id, Session.created_at, Session.updated_at)
        .cte("inserted")
    )
    return (
        select(
            gate.c.outcome,
            gate.c.live_sessions,
            gate.c.session_cap,
            gate.c.tavus_key,
            gate.c.retry_after,
            inserted.c.created_at,
            inserted.c.updated_at,
        )
        .select_from(gate.outerjoin(inserted, true()))
        .add_cte(_event_from(inserted.c.id).cte("logged"))
    )


@cache
def move(
    columns: tuple[str, ...],
    *,
    lease_is_null: bool,
    store_response: bool,
    synchronous_commit: bool = True,
) -> Select[Any]:
    """A compare-and-set on one session (``SessionWrites.move``). Parameters:
    ``p_session_id``, ``p_owner``, ``p_lease_until`` (unless ``lease_is_null``),
    ``p_from_states`` (a list), ``value_<column>`` for each of ``columns``, the event's
    and, with ``store_response``, ``stored_tenant_id``, ``stored_key``, ``stored_status``
    and ``stored_body``. One statement per shape: the shapes are the saga's, reconciler's
    and pool's transitions, a few dozen at most.

    Without ``synchronous_commit``, the statement's own transaction commits without
    waiting for its WAL to reach disk (``SET LOCAL synchronous_commit = off``, which ends
    with the statement): see ``SessionWrites.move`` for when that is allowed."""
    table = Session.__table__
    lease = (
        Session.next_check_at.is_(None)
        if lease_is_null
        else Session.next_check_at == bindparam("p_lease_until", type_=Session.next_check_at.type)
    )
    moved = (
        update(Session)
        .where(
            Session.id == bindparam("p_session_id", type_=Session.id.type),
            Session.claimed_by == bindparam("p_owner", type_=Session.claimed_by.type),
            lease,
            Session.state == any_(bindparam("p_from_states", type_=ARRAY(Session.state.type))),
        )
        .values(
            {
                **{name: bindparam(f"value_{name}", type_=table.c[name].type) for name in columns},
                "updated_at": func.now(),
            }
        )
        .returning(Session.id, Session.updated_at, Session.early_events)
        .cte("moved")
    )
    query = select(moved.c.updated_at, moved.c.early_events).add_cte(
        _event_from(moved.c.id).cte("logged")
    )
    if not synchronous_commit:
        # A column of the answer, so it runs once the row has moved (never if it has not);
        # is_local: the setting ends with this statement's transaction, not with the
        # pooled connection.
        query = query.add_columns(
            func.set_config("synchronous_commit", "off", true()).label("commit_mode")
        )
    if store_response:
        record = IdempotencyRecord
        stored = (
            update(record)
            .where(
                record.tenant_id == bindparam("stored_tenant_id", type_=record.tenant_id.type),
                record.key == bindparam("stored_key", type_=record.key.type),
                exists(select(moved.c.id)),
            )
            .values(
                response_status=bindparam("stored_status", type_=record.response_status.type),
                response_body=bindparam("stored_body", type_=JSONB),
                locked_until=null(),
            )
        )
        query = query.add_cte(stored.cte("stored"))
    return query
