"""Outbound webhook deliveries, as the console shows and retries them.

The console reads deliveries only through a :class:`DeliveryLedger`, which
:func:`delivery_ledger` provides: the overview shows :meth:`~DeliveryLedger.oldest_pending`,
the deliveries page a :meth:`~DeliveryLedger.page`, and its retry button calls
:meth:`~DeliveryLedger.retry`, which goes through the service the API's retry uses
(``app.domain.webhooks.service``). :data:`RECORDED` reads the tenant webhooks' deliveries
(docs/webhooks.md); :data:`NOT_RECORDED` stands for a Palisade that records none (both
pages then say so, and a retry is 404 ``delivery_not_found``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import RuntimeDep
from app.console.errors import DeliveryNotFound, InvalidDeliveryStatus
from app.db.models.webhook import DELIVERY_STATUSES
from app.db.repositories.webhooks import DeliveryFilter, WebhookRepository
from app.domain.webhooks import service as webhook_service
from app.domain.webhooks.errors import WebhookDeliveryNotFound
from app.domain.webhooks.schemas import WebhookDeliveryPublic
from app.domain.webhooks.service import delivery_view
from app.runtime import Runtime


@dataclass(frozen=True)
class DeliveryLine:
    id: str
    tenant_id: str
    event_type: str
    session_id: uuid.UUID | None
    # pending, delivered or failed
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    last_error: str | None


@dataclass(frozen=True)
class DeliveryPage:
    items: list[DeliveryLine]
    next_cursor: str | None


class DeliveryLedger(Protocol):
    #: False: Palisade records no deliveries; the pages say so instead of listing none.
    recorded: bool

    async def oldest_pending(self, db: AsyncSession) -> DeliveryLine | None: ...

    async def page(
        self,
        db: AsyncSession,
        *,
        tenant_id: str | None,
        status: str | None,
        limit: int,
        cursor: str | None,
    ) -> DeliveryPage: ...

    async def retry(self, runtime: Runtime, delivery_id: str) -> None:
        """Deliver again now; ``DeliveryNotFound`` when there is no such delivery."""
        ...


class _NotRecorded:
    recorded = False

    async def oldest_pending(self, db: AsyncSession) -> DeliveryLine | None:
        return None

    async def page(
        self,
        db: AsyncSession,
        *,
        tenant_id: str | None,
        status: str | None,
        limit: int,
        cursor: str | None,
    ) -> DeliveryPage:
        return DeliveryPage([], None)

    async def retry(self, runtime: Runtime, delivery_id: str) -> None:
        raise DeliveryNotFound(f"delivery {delivery_id!r} does not exist")


NOT_RECORDED: DeliveryLedger = _NotRecorded()


def _line(view: WebhookDeliveryPublic) -> DeliveryLine:
    return DeliveryLine(
        id=str(view.id),
        tenant_id=view.tenant_id,
        event_type=view.event_type,
        session_id=view.session_id,
        status=view.status,
        attempts=view.attempts,
        created_at=view.created_at,
        next_attempt_at=view.next_attempt_at,
        last_error=view.last_error,
    )


class _Recorded:
    recorded = True

    async def oldest_pending(self, db: AsyncSession) -> DeliveryLine | None:
        row = await WebhookRepository(db).oldest_pending()
        return _line(delivery_view(row)) if row is not None else None

    async def page(
        self,
        db: AsyncSession,
        *,
        tenant_id: str | None,
        status: str | None,
        limit: int,
        cursor: str | None,
    ) -> DeliveryPage:
        if status is not None and status not in DELIVERY_STATUSES:
            raise InvalidDeliveryStatus(f"status is one of {', '.join(DELIVERY_STATUSES)}")
        page = await webhook_service.list_deliveries(
            db,
            tenant_id,
            DeliveryFilter(status=status),
            limit=limit,
            cursor=cursor,
            unknown_tenant_is_empty=True,
        )
        return DeliveryPage([_line(item) for item in page.items], page.next_cursor)

    async def retry(self, runtime: Runtime, delivery_id: str) -> None:
        try:
            wanted = uuid.UUID(delivery_id)
        except ValueError:
            raise DeliveryNotFound(f"delivery {delivery_id!r} does not exist") from None
        try:
            async with runtime.sessionmaker.begin() as db:
                await webhook_service.retry_delivery(db, None, wanted)
        except WebhookDeliveryNotFound:
            raise DeliveryNotFound(f"delivery {delivery_id!r} does not exist") from None
        runtime.webhook_sender.wake.set()


RECORDED: DeliveryLedger = _Recorded()


async def delivery_ledger(runtime: RuntimeDep) -> DeliveryLedger:
    """The deliveries the console shows: the one place to wire them."""
    return RECORDED
