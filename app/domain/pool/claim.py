"""A start takes a pooled PAL: one transaction moves the PAL from the pool to the session.

The start computes the fingerprint of the PAL body it planned at admission
(``resolved["pal_body"]`` with its credentials unsealed, tagged with the session's tag,
which the fingerprint leaves out). If a ready PAL of that body is pooled for the
session's tenant, profile and Tavus account, one transaction

* deletes its pool row (``FOR UPDATE SKIP LOCKED``: concurrent starts never take the
  same row and never wait for each other),
* moves the session ``admitted → pal_created`` with that ``pal_id`` and
  ``cleanup = pending``, only while this process still holds the session's lease,
* and records the transition with ``source: "warm_pool"``.

So at every instant the PAL belongs to exactly one of the pool or the session, whatever
crashes: from there on it is an ephemeral PAL like any other, deleted when its session
ends. Anything else (no matching PAL, pool empty) returns None at once, and the start
creates its PAL as it always did.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import Session
from app.db.repositories.pool import PoolRepository
from app.db.repositories.session_writes import EventRecord, SessionWrites
from app.domain.pool.fingerprint import pal_body_fingerprint
from app.domain.sessions.start import LeaseLost, image_after
from app.domain.sessions.states import Cleanup, State, check_move, sources_of
from app.security import pal_secrets
from app.security.secret_box import SecretBox

WARM_POOL_SOURCE = "warm_pool"


async def claim_pooled_pal(
    sessionmaker: async_sessionmaker[AsyncSession],
    row: Session,
    instance_id: str,
    *,
    lease: timedelta,
    secret_box: SecretBox,
) -> Session | None:
    """The session moved to ``pal_created`` with a pooled PAL, or None on a miss.

    Raises ``LeaseLost`` (nothing changed) when ``instance_id`` no longer holds the
    session.
    """
    body = row.resolved.get("pal_body")
    if row.state != State.ADMITTED or not row.pal_ephemeral or not isinstance(body, dict):
        return None
    # The fingerprint is of the body Tavus receives: its credentials in clear.
    fingerprint = pal_body_fingerprint(pal_secrets.unseal(body, secret_box))
    check_move(State(row.state), State.PAL_CREATED)
    now = datetime.now(UTC)
    async with sessionmaker.begin() as db:
        pool = PoolRepository(db)
        taken = await pool.take_ready(row.tenant_id, row.profile, fingerprint, now)
        if taken is None:
            return None
        assert taken.pal_id is not None  # every ready row has its PAL
        changes = {
            "pal_id": taken.pal_id,
            "cleanup": Cleanup.PENDING,
            "next_check_at": now + lease,
        }
        moved_row = await SessionWrites(db).move(
            row.id,
            owner=instance_id,
            lease_until=row.next_check_at,
            from_states=sources_of(State.PAL_CREATED),
            values={"state": State.PAL_CREATED, **changes},
            event=EventRecord(
                kind="transition",
                type=f"session.{State.PAL_CREATED}",
                from_state=State.ADMITTED,
                to_state=State.PAL_CREATED,
                payload={
                    "pal_id": taken.pal_id,
                    "source": WARM_POOL_SOURCE,
                    "pool_id": str(taken.id),
                    "pal_name": taken.pal_name,
                    "variant": taken.variant,
                },
            ),
        )
        if moved_row is None:
            # Leaving the block with the exception rolls the pool row back.
            raise LeaseLost(row.id)
    moved = image_after(row, State.PAL_CREATED, changes)
    moved.updated_at = moved_row.updated_at
    return moved
