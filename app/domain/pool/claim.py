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

from app.db.models import Session
from app.db.raw import RawConnections
from app.db.session_store import Lease, SessionStore
from app.domain.pool.fingerprint import pal_body_fingerprint
from app.domain.sessions.moves import LeaseLost, make, transition
from app.domain.sessions.states import Cleanup, State
from app.security import pal_secrets
from app.security.secret_box import SecretBox

WARM_POOL_SOURCE = "warm_pool"


async def claim_pooled_pal(
    connections: RawConnections,
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
    now = datetime.now(UTC)
    async with connections.connect() as connection, connection.transaction():
        store = SessionStore(connection)
        taken = await store.take_pooled_pal(row.tenant_id, row.profile, fingerprint, now)
        if taken is None:
            return None
        move = transition(
            State.PAL_CREATED,
            {
                "pal_id": taken.pal_id,
                "source": WARM_POOL_SOURCE,
                "pool_id": str(taken.id),
                "pal_name": taken.pal_name,
                "variant": taken.variant,
            },
            pal_id=taken.pal_id,
            cleanup=Cleanup.PENDING,
            next_check_at=now + lease,
        )
        moved = await make(store, row, move, lease=Lease(instance_id, row.next_check_at))
        if moved is None:
            # Leaving the block with the exception rolls the pool row back.
            raise LeaseLost(row.id)
    return moved
