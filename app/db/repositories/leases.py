"""What the background queues share: rows fall due at ``next_check_at`` and are leased.

Sessions (the reconciler) and pooled PALs (the warm pool) are both claimed this way.
Every process claims once a second per queue, due rows or not: most of what an idle
process does. So each claim statement is built once, with bound parameters, and keeps
its compiled-cache key; building and hashing it anew each tick cost more CPU than the
round trip itself.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CTE, DateTime, Integer, Text, bindparam, select

from app.db.models import PooledPal, Session


def due_ids(model: type[Session] | type[PooledPal]) -> CTE:
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


# What a claim sets: the row is ``:owner``'s until ``:lease_until``.
OWNER = bindparam("owner", type_=Text())
LEASE_UNTIL = bindparam("lease_until", type_=DateTime(timezone=True))


def claim_parameters(
    *, owner: str, now: datetime, lease_until: datetime, limit: int
) -> dict[str, object]:
    """The parameters of a statement built on ``due_ids``, ``OWNER`` and ``LEASE_UNTIL``."""
    return {"owner": owner, "now": now, "lease_until": lease_until, "limit": limit}
