"""What a tenant's sessions cost over a period: the admin API's usage totals.

One grouped aggregate over the tenant's sessions that ended in the period, read through
``ix_session_tenant_ended``: its cost follows the sessions in the period, never the
tenant's whole history.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories.sessions import SessionRepository
from app.db.repositories.tenants import TenantRepository
from app.domain.tenants import errors
from app.errors import ValidationFailed

#: The period when none is given: the last 30 days.
DEFAULT_PERIOD: Final = timedelta(days=30)


class InvalidPeriod(ValidationFailed):
    code = "invalid_period"
    title = "The period must start before it ends"


class ProfileUsage(BaseModel):
    profile: str
    strategy: str
    #: Sessions whose conversation ended in the period.
    sessions: int
    #: Those whose cost is known (Tavus told the end's time).
    billed_sessions: int
    billed_seconds: float
    #: Of the billed seconds, those the room ran with nobody in it, where Tavus's
    #: shutdown reason tells.
    idle_seconds: float


class TenantUsage(BaseModel):
    tenant_id: str
    since: datetime
    until: datetime
    sessions: int
    billed_sessions: int
    billed_seconds: float
    idle_seconds: float
    by_profile: list[ProfileUsage]


def period(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    """``[since, until)`` in UTC: until now, from 30 days before ``until``, by default. A
    time without a zone is UTC."""
    try:
        end = _utc(until) if until is not None else datetime.now(UTC)
        start = _utc(since) if since is not None else end - DEFAULT_PERIOD
    except OverflowError:
        raise InvalidPeriod("the period lies outside the times Palisade can count") from None
    if start >= end:
        raise InvalidPeriod(f"since ({start.isoformat()}) is not before until ({end.isoformat()})")
    return start, end


async def tenant_usage(
    db: AsyncSession, tenant_id: str, since: datetime | None, until: datetime | None
) -> TenantUsage:
    start, end = period(since, until)
    if await TenantRepository(db).get(tenant_id) is None:
        raise errors.TenantNotFound(f"tenant {tenant_id!r} does not exist")
    rows = await SessionRepository(db).usage(tenant_id, since=start, until=end)
    by_profile = [
        ProfileUsage(
            profile=row.profile,
            strategy=row.strategy,
            sessions=row.sessions,
            billed_sessions=row.billed_sessions,
            billed_seconds=row.billed_seconds,
            idle_seconds=row.idle_seconds,
        )
        for row in rows
    ]
    return TenantUsage(
        tenant_id=tenant_id,
        since=start,
        until=end,
        sessions=sum(p.sessions for p in by_profile),
        billed_sessions=sum(p.billed_sessions for p in by_profile),
        billed_seconds=sum(p.billed_seconds for p in by_profile),
        idle_seconds=sum(p.idle_seconds for p in by_profile),
        by_profile=by_profile,
    )


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
