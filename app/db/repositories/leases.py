"""What the background queues share: rows fall due at ``next_check_at`` and are leased.

Sessions (the reconciler), pooled PALs (the warm pool) and tenants' webhook deliveries
(the sender) are all claimed this way.
Every process claims from each queue every second or two, due rows or not: most of
what an idle process does. So each claim statement is built once, with bound
parameters, and keeps its compiled-cache key; building and hashing it anew each tick
cost more CPU than the round trip itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CTE, DateTime, Integer, Text, Update, bindparam, func, select, update

from app.db.models import PooledPal, Session, WebhookDelivery

# The queues claimed this way: each has ``id``, ``next_check_at`` and ``claimed_by``.
Leased = type[Session] | type[PooledPal] | type[WebhookDelivery]


def due_ids(model: Leased) -> CTE:
    """Up to ``:limit`` rows of ``model`` due at ``:now``, oldest due first, locked as
    they are read.

    SKIP LOCKED lets replicas claim side by side without waiting on each other or taking
    the same row; a partial index on ``next_check_at`` keeps the cost in proportion to the
    due rows, not to the table. A CTE runs once: a subquery under IN could be re-run by
    the planner and lock more rows than it returns.
    """
    return (
        select(model.id)
        .where(
            model.next_check_at.isnot(None),
            model.next_check_at <= bindparam("now", type_=DateTime(timezone=True)),
        )
        .order_by(model.next_check_at)
        .limit(bindparam("limit", type_=Integer()))
        .with_for_update(skip_locked=True)
        .cte("due")
    )


def due_session_ids_by_turn() -> CTE:
    """As ``due_ids``, but taking the tenants in turn: each tenant's oldest due session,
    then each one's second, and so on. One tenant's storm of PAL deletions fills no pass
    by itself, so another tenant's cleanup never waits behind it. Ranking reads every due
    session, not just a batch: a cost in proportion to the backlog, paid only while there
    is one."""
    now = bindparam("now", type_=DateTime(timezone=True))
    turns = (
        select(
            Session.id,
            Session.next_check_at,
            func.row_number()
            .over(partition_by=Session.tenant_id, order_by=Session.next_check_at)
            .label("turn"),
        )
        .where(Session.next_check_at.isnot(None), Session.next_check_at <= now)
        .cte("turns")
    )
    return (
        select(Session.id)
        .join(turns, Session.id == turns.c.id)
        # Checked again on the locked row: it may have been claimed since it was ranked.
        .where(Session.next_check_at.isnot(None), Session.next_check_at <= now)
        .order_by(turns.c.turn, turns.c.next_check_at)
        .limit(bindparam("limit", type_=Integer()))
        .with_for_update(of=Session, skip_locked=True)
        .cte("due")
    )


def claim_due(model: Leased, *, by_tenant: bool = False, **also: Any) -> Update:
    """Lease the rows ``due_ids`` picks (``due_session_ids_by_turn`` with ``by_tenant``)
    to ``:owner`` until ``:lease_until``, setting ``also`` in the same statement; returns
    them. Build it once per caller."""
    due = due_session_ids_by_turn() if by_tenant else due_ids(model)
    return (
        update(model)
        .where(model.id == due.c.id)
        .values(
            claimed_by=bindparam("owner", type_=Text()),
            next_check_at=bindparam("lease_until", type_=DateTime(timezone=True)),
            **also,
        )
        .returning(model)
        .execution_options(synchronize_session=False)
    )


def claim_parameters(
    *, owner: str, now: datetime, lease_until: datetime, limit: int
) -> dict[str, object]:
    """The parameters of a ``claim_due`` statement."""
    return {"owner": owner, "now": now, "lease_until": lease_until, "limit": limit}
