"""All SQL of the orphan sweep's own records (``sweep_run``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import SweepRun


class SweepRunRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, run: SweepRun) -> None:
        self.session.add(run)
        await self.session.flush()

    async def forget_before(self, before: datetime) -> int:
        """Delete the records of runs started before ``before``."""
        result = await self.session.execute(
            delete(SweepRun).where(SweepRun.started_at < before).returning(SweepRun.id)
        )
        return len(result.all())

    async def latest(self, limit: int) -> Sequence[SweepRun]:
        """The newest runs first."""
        query = select(SweepRun).order_by(SweepRun.started_at.desc()).limit(limit)
        return (await self.session.scalars(query)).all()
