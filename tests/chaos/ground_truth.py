"""Reading what happened: the simulator's state and call log (Tavus's ground truth) and
Palisade's database, turned into the plain data the invariants take."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.engine import create_engine
from app.db.models import PooledPal, Session, SessionEvent, Tenant, WebhookDelivery, WebhookEvent
from tests.chaos.invariants import (
    TERMINAL_STATES,
    StoredSession,
    TavusConversation,
    TavusPal,
    Transition,
)

# Admission's replay reads admitted and the terminal states; the webhook check, active.
COUNTED_TRANSITIONS = ("admitted", "active", *TERMINAL_STATES)


class CallLog:
    """The simulator keeps a bounded log of recent calls; this copies it as it grows, so
    a long run loses no entry."""

    def __init__(self, simulator_url: str) -> None:
        self._url = f"{simulator_url}/_sim/calls"
        self.calls: list[dict[str, Any]] = []

    async def fetch(self, client: httpx.AsyncClient) -> None:
        since = self.calls[-1]["seq"] if self.calls else 0
        response = await client.get(self._url, params={"since": since}, timeout=30)
        response.raise_for_status()
        self.calls += response.json()["data"]

    async def follow(self, client: httpx.AsyncClient, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(httpx.HTTPError):
                await self.fetch(client)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 2.0)


def real_time_of(state: dict[str, Any]) -> Callable[[str], datetime]:
    """Map the simulator's timestamps back onto real time.

    The simulator stamps with ``start + simulated seconds``; at ``time_scale`` X a
    simulated second is 1/X real second, so real = start + (stamp - start) / X. Palisade's
    deadlines are real time, so the comparison must be too."""
    scale = float(state["config"]["time_scale"])
    start = _parse(state["wall_time"]) - timedelta(seconds=float(state["sim_time_s"]))

    def convert(stamp: str) -> datetime:
        return start + (_parse(stamp) - start) / scale

    return convert


def _parse(stamp: str) -> datetime:
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def tavus_objects(
    state: dict[str, Any],
) -> tuple[tuple[TavusPal, ...], tuple[TavusConversation, ...]]:
    real = real_time_of(state)
    pals = tuple(
        TavusPal(
            pal_id=p["pal_id"],
            name=p["pal_name"],
            user=p["pal_type"] == "user",
            deleted_at=real(p["deleted_at"]) if p["deleted_at"] else None,
            delete_calls=int(p["delete_calls"]),
        )
        for p in state["pals"]
    )
    conversations = tuple(
        TavusConversation(
            conversation_id=c["conversation_id"],
            name=c["conversation_name"],
            pal_id=c["pal_id"],
            created_at=real(c["created_at"]),
            ended_at=real(c["ended_at"]) if c["status"] != "active" and c["ended_at"] else None,
            max_call_duration_s=float(c["properties"]["max_call_duration"]),
        )
        for c in state["conversations"]
    )
    return pals, conversations


@dataclass
class Recorded:
    """Palisade's database at the end of a run."""

    sessions: tuple[StoredSession, ...]
    transitions: tuple[Transition, ...]
    caps: dict[str, int]
    end_reasons: Counter[str] = field(default_factory=Counter)
    strategies: Counter[str] = field(default_factory=Counter)
    outbox: dict[tuple[str, str], int] = field(default_factory=dict)
    artifacts: dict[str, frozenset[str]] = field(default_factory=dict)
    deliveries: dict[str, int] = field(default_factory=dict)


async def read_database(url: str) -> Recorded:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await _read(connection)
    finally:
        await engine.dispose()


async def _read(connection: AsyncConnection) -> Recorded:
    rows = (
        await connection.execute(
            select(
                Session.id,
                Session.tenant_id,
                Session.state,
                Session.cleanup,
                Session.pal_id,
                Session.pal_ephemeral,
                Session.conversation_id,
                Session.idempotency_key,
                Session.strategy,
                Session.end_reason,
                Session.artifacts,
            )
        )
    ).all()
    outbox = (
        await connection.execute(
            select(WebhookEvent.session_id, WebhookEvent.type, func.count()).group_by(
                WebhookEvent.session_id, WebhookEvent.type
            )
        )
    ).all()
    deliveries = (
        await connection.execute(
            select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
        )
    ).all()
    events = (
        await connection.execute(
            select(SessionEvent.id, SessionEvent.session_id, SessionEvent.to_state).where(
                SessionEvent.kind == "transition",
                SessionEvent.to_state.in_(COUNTED_TRANSITIONS),
            )
        )
    ).all()
    caps = (await connection.execute(select(Tenant.id, Tenant.max_concurrent_sessions))).all()
    sessions = tuple(
        StoredSession(
            id=str(row.id),
            tenant_id=row.tenant_id,
            state=row.state,
            cleanup=row.cleanup,
            pal_id=row.pal_id,
            pal_ephemeral=row.pal_ephemeral,
            conversation_id=row.conversation_id,
            idempotency_key=row.idempotency_key,
        )
        for row in rows
    )
    return Recorded(
        sessions=sessions,
        transitions=tuple(
            Transition(seq=e.id, session_id=str(e.session_id), to_state=str(e.to_state))
            for e in events
        ),
        caps={str(tenant): int(cap) for tenant, cap in caps},
        end_reasons=Counter(f"{row.state}:{row.end_reason}" for row in rows),
        strategies=Counter(row.strategy for row in rows),
        outbox={(str(sid), str(kind)): int(n) for sid, kind, n in outbox},
        artifacts={
            str(row.id): frozenset(k for k, v in (row.artifacts or {}).items() if v is not None)
            for row in rows
        },
        deliveries={str(status): int(n) for status, n in deliveries},
    )


async def unsettled_sessions(connection: AsyncConnection) -> int:
    """Sessions that still need something: not terminal, or a PAL deletion owed."""
    query = (
        select(func.count())
        .select_from(Session)
        .where(Session.state.not_in(sorted(TERMINAL_STATES)) | (Session.cleanup == "pending"))
    )
    return int((await connection.execute(query)).scalar_one())


async def pooled_pals(connection: AsyncConnection) -> int:
    """Warm-pool PALs Palisade still holds or has yet to delete."""
    query = select(func.count()).select_from(PooledPal)
    return int((await connection.execute(query)).scalar_one())


async def pending_deliveries(connection: AsyncConnection) -> int:
    """Tenant webhook deliveries not yet delivered nor failed."""
    query = (
        select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.status == "pending")
    )
    return int((await connection.execute(query)).scalar_one())
