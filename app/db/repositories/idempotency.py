from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import IdempotencyRecord
from app.errors import Rendered


class IdempotencyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def session_of(self, tenant_id: str, key: str) -> uuid.UUID | None:
        """The session the key started, read without a lock."""
        return await self.session.scalar(
            select(IdempotencyRecord.session_id).where(
                IdempotencyRecord.tenant_id == tenant_id, IdempotencyRecord.key == key
            )
        )

    async def get_for_update(self, tenant_id: str, key: str) -> IdempotencyRecord | None:
        query = (
            select(IdempotencyRecord)
            .where(IdempotencyRecord.tenant_id == tenant_id, IdempotencyRecord.key == key)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(query)).one_or_none()

    async def extend_lock(self, tenant_id: str, key: str, locked_until: datetime) -> None:
        await self.session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.tenant_id == tenant_id, IdempotencyRecord.key == key)
            .values(locked_until=locked_until)
        )

    async def complete_unless_answered(self, tenant_id: str, key: str, answer: Rendered) -> None:
        """Store ``answer`` as the key's first answer, unless it has one already."""
        await self.session.execute(
            update(IdempotencyRecord)
            .where(
                IdempotencyRecord.tenant_id == tenant_id,
                IdempotencyRecord.key == key,
                IdempotencyRecord.response_status.is_(None),
            )
            .values(
                response_status=answer.status,
                response_text=answer.body.decode("utf-8"),
                response_headers=answer.headers,
                locked_until=None,
            )
        )

    async def prune(self, now: datetime, *, batch: int = 1000) -> int:
        expired = (
            select(IdempotencyRecord.tenant_id, IdempotencyRecord.key)
            .where(IdempotencyRecord.expires_at < now)
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
        result = await self.session.execute(
            delete(IdempotencyRecord)
            .where(tuple_(IdempotencyRecord.tenant_id, IdempotencyRecord.key).in_(expired))
            .returning(IdempotencyRecord.key)
        )
        return len(result.all())
