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
    ColumnElement,
    any_,
    bindparam,
    exists,
    false,
    func,
    null,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlalchemy.sql import Select

from app.db.models import IdempotencyRecord, Profile, Session, SessionEvent, Tenant
from app.db.models.session import NON_TERMINAL_STATES_SQL

# The columns an admission writes; ``insert_admitted`` takes exactly these.
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
_CLAIM_COLUMNS = ("key", "request_hash", "session_id", "locked_until", "expires_at")


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


@cache
def lock_tenant(with_claim: bool) -> Select[Any]:
    """Parameters: ``p_tenant_id``, ``p_profile`` and, ``with_claim``,
    ``claim_<column>`` for each claimed column of the idempotency record.

    No parameter is named like a column: SQLAlchemy would take it for a value of that
    column in the statement's INSERT or UPDATE."""
    wanted = func.coalesce(bindparam("p_profile", type_=Profile.name.type), Tenant.default_profile)
    locked = (
        select(
            Tenant.id,
            Tenant.max_concurrent_sessions,
            Tenant.tavus_api_key_encrypted,
            wanted.label("profile_name"),
            Profile.config,
        )
        .select_from(Tenant)
        .outerjoin(Profile, (Profile.tenant_id == Tenant.id) & (Profile.name == wanted))
        .where(Tenant.id == bindparam("p_tenant_id", type_=Tenant.id.type))
        .with_for_update(of=Tenant, key_share=True)
        .cte("locked")
    )
    key_claimed: ColumnElement[bool] = false()
    if with_claim:
        record = IdempotencyRecord.__table__.c
        claimed = (
            insert(IdempotencyRecord)
            .from_select(
                ["tenant_id", *_CLAIM_COLUMNS],
                select(
                    locked.c.id,
                    *(
                        bindparam(f"claim_{name}", type_=record[name].type)
                        for name in _CLAIM_COLUMNS
                    ),
                ),
            )
            .on_conflict_do_nothing(
                index_elements=[IdempotencyRecord.tenant_id, IdempotencyRecord.key]
            )
            .returning(IdempotencyRecord.key)
            .cte("claimed")
        )
        key_claimed = exists(select(claimed.c.key))
    return select(locked, key_claimed.label("key_claimed"))


@cache
def insert_admitted() -> Select[Any]:
    """Parameters: ``value_<column>`` for each of ``ADMISSION_COLUMNS``, ``p_cap`` and the
    event's (``event_<field>``)."""
    table = Session.__table__
    live = (
        select(func.count().label("n"))
        .select_from(Session)
        .where(
            Session.tenant_id == bindparam("value_tenant_id", type_=Session.tenant_id.type),
            text(NON_TERMINAL_STATES_SQL),
        )
        .cte("live")
    )
    inserted = (
        insert(Session)
        .from_select(
            list(ADMISSION_COLUMNS),
            select(
                *(
                    bindparam(f"value_{name}", type_=table.c[name].type)
                    for name in ADMISSION_COLUMNS
                )
            ).where(
                select(live.c.n).scalar_subquery()
                < bindparam("p_cap", type_=Tenant.max_concurrent_sessions.type)
            ),
        )
        .returning(Session.id, Session.created_at, Session.updated_at)
        .cte("inserted")
    )
    return (
        select(live.c.n, inserted.c.created_at, inserted.c.updated_at)
        .select_from(live.outerjoin(inserted, true()))
        .add_cte(_event_from(inserted.c.id).cte("logged"))
    )


@cache
def move(columns: tuple[str, ...], *, lease_is_null: bool, store_response: bool) -> Select[Any]:
    """A compare-and-set on one session (``SessionRepository.move``). Parameters:
    ``p_session_id``, ``p_owner``, ``p_lease_until`` (unless ``lease_is_null``),
    ``p_from_states`` (a list), ``value_<column>`` for each of ``columns``, the event's
    and, with ``store_response``, ``stored_tenant_id``, ``stored_key``, ``stored_status``
    and ``stored_body``. One statement per shape: the shapes are the saga's, reconciler's
    and pool's transitions, a few dozen at most."""
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
        .returning(Session.id, Session.updated_at)
        .cte("moved")
    )
    query = select(moved.c.updated_at).add_cte(_event_from(moved.c.id).cte("logged"))
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
