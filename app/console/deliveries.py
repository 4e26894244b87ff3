"""Outbound webhook deliveries, as the console shows and retries them.

The console reads deliveries only through a :class:`DeliveryLedger`, which
:func:`delivery_ledger` provides: the overview shows :meth:`~DeliveryLedger.oldest_pending`,
the deliveries page a :meth:`~DeliveryLedger.page`, and its retry button calls
:meth:`~DeliveryLedger.retry`, which must go through the service the API's retry uses.
While Palisade records no outbound deliveries, :data:`NOT_RECORDED` stands in: both
pages say so, and a retry is 404 ``delivery_not_found``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import RuntimeDep
from app.console.errors import DeliveryNotFound
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


async def delivery_ledger(runtime: RuntimeDep) -> DeliveryLedger:
    """The deliveries the console shows: the one place to wire them."""
    return NOT_RECORDED
