"""What the background queues share: rows fall due at ``next_check_at`` and are leased.

Sessions (the reconciler) and pooled PALs (the warm pool) are both claimed this way.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CTE, select

from app.db.models import PooledPal, Session


def due_ids(model: type[Session] | type[PooledPal], *, now: datetime, limit: int) -> CTE:
    """Up to ``limit`` due rows of ``model``, oldest due first, locked as they are read.

    SKIP LOCKED lets replicas claim side by side without waiting on each other or taking
    the same row; a partial index on ``next_check_at`` keeps the cost in proportion to the
    due rows, not to the table. A CTE runs once: a subquery under IN could be re-run by
    the planner and lock more rows than it returns.
    """
    return (
        select(model.id)
        .where(model.next_check_at.isnot(None), model.next_check_at <= now)
        .order_by(model.next_check_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("due")
    )
