"""All SQL of tenant webhooks: endpoints, the outbox's events, deliveries and attempts.

Events and their first deliveries are written by the trigger of migration 0012, never
here; the sender claims deliveries like the other leased queues
(``app.db.repositories.leases``).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Update, and_, delete, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from app.db.repositories.leases import claim_due, claim_parameters

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"


@cache
def _claim_due() -> Update:
    return claim_due(WebhookDelivery)


@dataclass(frozen=True)
class AttemptRecord:
    attempted_at: datetime
    status_code: int | None
    latency_ms: float
    response_body: str | None
    error: str | None


@dataclass(frozen=True)
class DeliveryFilter:
    status: str | None = None
    event_type: str | None = None
    session_id: uuid.UUID | None = None


class WebhookRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- endpoints ---------------------------------------------------------------------

    async def add_endpoint(self, endpoint: WebhookEndpoint) -> WebhookEndpoint:
        self.session.add(endpoint)
        await self.session.flush()
        return endpoint

    async def endpoints(self, tenant_id: str) -> Sequence[WebhookEndpoint]:
        query = (
            select(WebhookEndpoint)
            .where(WebhookEndpoint.tenant_id == tenant_id)
            .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
        )
        return (await self.session.scalars(query)).all()

    async def endpoint(
        self, tenant_id: str, endpoint_id: uuid.UUID, *, for_update: bool = False
    ) -> WebhookEndpoint | None:
        query = select(WebhookEndpoint).where(
            WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.id == endpoint_id
        )
        if for_update:
            query = query.with_for_update()
        return (await self.session.scalars(query)).one_or_none()

    async def endpoints_by_id(self, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, WebhookEndpoint]:
        if not ids:
            return {}
        query = select(WebhookEndpoint).where(WebhookEndpoint.id.in_(ids))
        return {row.id: row for row in (await self.session.scalars(query)).all()}

    async def delete_endpoint(self, tenant_id: str, endpoint_id: uuid.UUID) -> bool:
        result = await self.session.execute(
            delete(WebhookEndpoint)
            .where(WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.id == endpoint_id)
            .returning(WebhookEndpoint.id)
        )
        return result.first() is not None

    async def lock_endpoint(self, endpoint_id: uuid.UUID) -> None:
        await self.session.execute(
            select(WebhookEndpoint.id).where(WebhookEndpoint.id == endpoint_id).with_for_update()
        )

    async def disable_endpoint(self, endpoint_id: uuid.UUID, reason: str) -> None:
        """Stop sending to an endpoint: it and its pending deliveries (failed now)."""
        await self.session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id)
            .values(enabled=False, disabled_reason=reason, updated_at=func.now())
        )
        await self.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status == PENDING)
            .values(
                status=FAILED,
                next_check_at=None,
                claimed_by=None,
                last_error=reason,
                updated_at=func.now(),
            )
        )

    # --- events ------------------------------------------------------------------------

    async def events_by_id(self, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, WebhookEvent]:
        if not ids:
            return {}
        query = select(WebhookEvent).where(WebhookEvent.id.in_(ids))
        return {row.id: row for row in (await self.session.scalars(query)).all()}

    # --- the sender's queue ------------------------------------------------------------

    async def claim_due(
        self, *, owner: str, now: datetime, lease_until: datetime, limit: int
    ) -> Sequence[WebhookDelivery]:
        parameters = claim_parameters(owner=owner, now=now, lease_until=lease_until, limit=limit)
        return (await self.session.scalars(_claim_due(), parameters)).all()

    def _held(self, delivery_id: uuid.UUID, owner: str, lease_until: datetime) -> Any:
        # A claim is ours only while both the owner and the lease expiry it set are
        # unchanged (as for sessions and pooled PALs).
        return and_(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.claimed_by == owner,
            WebhookDelivery.next_check_at == lease_until,
        )

    async def record_attempt(self, delivery_id: uuid.UUID, attempt: AttemptRecord) -> None:
        self.session.add(
            WebhookAttempt(
                delivery_id=delivery_id,
                attempted_at=attempt.attempted_at,
                status_code=attempt.status_code,
                latency_ms=attempt.latency_ms,
                response_body=attempt.response_body,
                error=attempt.error,
            )
        )
        await self.session.flush()

    async def settle(
        self,
        delivery_id: uuid.UUID,
        *,
        owner: str,
        lease_until: datetime,
        status: str,
        attempts: int,
        attempted_at: datetime | None,
        next_attempt_at: datetime | None,
        error: str | None,
    ) -> bool:
        """Write a delivery's outcome while the claim is still ours; False if it was not."""
        result = await self.session.execute(
            update(WebhookDelivery)
            .where(self._held(delivery_id, owner, lease_until))
            .values(
                status=status,
                attempts=attempts,
                last_attempt_at=func.coalesce(attempted_at, WebhookDelivery.last_attempt_at),
                delivered_at=attempted_at if status == DELIVERED else None,
                next_check_at=next_attempt_at,
                claimed_by=None,
                last_error=error,
                updated_at=func.now(),
            )
            .returning(WebhookDelivery.id)
        )
        return result.first() is not None

    async def put_back(
        self, claims: Sequence[tuple[uuid.UUID, datetime]], *, owner: str, due: datetime
    ) -> None:
        """Hand back claims (delivery id, lease) unsent, due at ``due``; one statement.
        A claim no longer ours, or taken again since, is left alone."""
        await self.session.execute(
            update(WebhookDelivery)
            .where(
                tuple_(WebhookDelivery.id, WebhookDelivery.next_check_at).in_(claims),
                WebhookDelivery.claimed_by == owner,
            )
            .values(claimed_by=None, next_check_at=due)
        )

    async def release_claims(self, owner: str, now: datetime) -> int:
        """Hand back every lease ``owner`` holds, due at once (graceful shutdown)."""
        result = await self.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.claimed_by == owner)
            .values(claimed_by=None, next_check_at=now)
            .returning(WebhookDelivery.id)
        )
        return len(result.all())

    # --- what operators see and do -----------------------------------------------------

    async def deliveries(
        self,
        tenant_id: str | None,
        where: DeliveryFilter,
        *,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None = None,
    ) -> Sequence[WebhookDelivery]:
        """Newest first; ``after`` is the (created_at, id) of the previous page's last."""
        query = select(WebhookDelivery)
        if tenant_id is not None:
            query = query.where(WebhookDelivery.tenant_id == tenant_id)
        if where.status is not None:
            query = query.where(WebhookDelivery.status == where.status)
        if where.event_type is not None:
            query = query.where(WebhookDelivery.event_type == where.event_type)
        if where.session_id is not None:
            query = query.where(WebhookDelivery.session_id == where.session_id)
        if after is not None:
            query = query.where(
                tuple_(WebhookDelivery.created_at, WebhookDelivery.id) < tuple_(*after)
            )
        query = query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc()).limit(
            limit
        )
        return (await self.session.scalars(query)).all()

    async def delivery(
        self, tenant_id: str | None, delivery_id: uuid.UUID, *, for_update: bool = False
    ) -> WebhookDelivery | None:
        query = select(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
        if tenant_id is not None:
            query = query.where(WebhookDelivery.tenant_id == tenant_id)
        if for_update:
            query = query.with_for_update()
        return (await self.session.scalars(query)).one_or_none()

    async def attempts(self, delivery_id: uuid.UUID) -> Sequence[WebhookAttempt]:
        query = (
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery_id)
            .order_by(WebhookAttempt.id)
        )
        return (await self.session.scalars(query)).all()

    async def retry(self, delivery: WebhookDelivery, now: datetime) -> None:
        """Send again now: a new round of the schedule, whatever the delivery's status.
        A delivery a sender holds is taken back from it (its outcome is then dropped)."""
        delivery.status = PENDING
        delivery.attempts = 0
        delivery.next_check_at = now
        delivery.claimed_by = None
        delivery.delivered_at = None
        await self.session.flush()

    async def oldest_pending(self) -> WebhookDelivery | None:
        query = (
            select(WebhookDelivery)
            .where(WebhookDelivery.status == PENDING)
            .order_by(WebhookDelivery.created_at)
            .limit(1)
        )
        return (await self.session.scalars(query)).one_or_none()

    async def pending_stats(self) -> tuple[int, datetime | None]:
        """How many deliveries are pending, and when the oldest one's event happened;
        from the partial index of pending deliveries alone."""
        query = select(func.count(), func.min(WebhookDelivery.created_at)).where(
            WebhookDelivery.status == PENDING
        )
        count, oldest = (await self.session.execute(query)).one()
        return int(count), oldest


async def prune_settled_events(session: AsyncSession, before: datetime, *, batch: int) -> int:
    """Delete up to ``batch`` events created before ``before`` that no delivery still waits
    to send, oldest first, with their deliveries and attempts (the foreign keys cascade);
    how many were deleted."""
    settled = (
        select(WebhookEvent.id)
        .where(
            WebhookEvent.created_at < before,
            ~select(WebhookDelivery.id)
            .where(WebhookDelivery.event_id == WebhookEvent.id, WebhookDelivery.status == PENDING)
            .exists(),
        )
        .order_by(WebhookEvent.created_at)
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    result = await session.execute(
        delete(WebhookEvent).where(WebhookEvent.id.in_(settled)).returning(WebhookEvent.id)
    )
    return len(result.all())
