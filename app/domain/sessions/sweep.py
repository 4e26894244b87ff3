"""The orphan sweep: find Palisade's objects on Tavus that no live session needs.

For every Tavus key in use (the global one and each tenant's own), it lists user PALs and
active conversations, attributes each to a session by the tag in its name, and removes
only what it can attribute to a session that is over (ended or failed) or that the
database does not know. It never touches an object without a Palisade tag, a PAL that a
profile uses as its persistent PAL, or anything of a session still running or whose
cleanup the reconciler is already retrying.

Warm-pool PALs carry a pool tag instead (``(palisade pool <uuid>)``, see ``tags.py``),
which they keep once a session takes them. Such a PAL is kept while its pool row exists
(the pool deletes its own), then judged like any ephemeral PAL by the session holding its
``pal_id``; with neither, it is an orphan (e.g. a pool create whose answer was lost and
whose lookup did not see it yet).

A profile check's PAL (``(palisade check <uuid>)``) is deleted by the check itself; one
left behind (its delete failed) is removed once it is older than ``CHECK_PAL_MAX_AGE``,
so a check still running is never disturbed.

Caveat: two Palisade deployments sharing one Tavus account would each see the other's
sessions as unknown; give each deployment its own Tavus key.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import PooledPal, Session, SweepRun
from app.db.repositories.locks import advisory_lock
from app.db.repositories.pool import PoolRepository
from app.db.repositories.sessions import SessionRepository
from app.db.repositories.sweeps import SweepRunRepository
from app.db.repositories.tenants import TenantRepository
from app.domain.accounts import TavusAccounts
from app.domain.sessions import tags
from app.domain.sessions.states import Cleanup, is_terminal
from app.observability import metrics
from app.tavus.client import TavusClient
from app.tavus.errors import TavusError, TavusNotFound

logger = logging.getLogger(__name__)

# A check makes three Tavus calls in one admin request; none lasts anywhere near this.
CHECK_PAL_MAX_AGE = timedelta(minutes=15)
# What a run's record keeps: its removals (a sweep after an outage may remove thousands;
# the counts stay whole) and, once older than this, nothing.
MAX_RECORDED_ACTIONS = 500
SWEEP_RECORDS_KEPT_FOR = timedelta(days=30)

Kind = Literal["pal", "conversation"]


@dataclass
class SweepAction:
    kind: Kind
    object_id: str
    name: str | None
    session_id: uuid.UUID | None
    decision: str
    done: bool = False
    error: str | None = None


@dataclass
class SweepReport:
    dry_run: bool
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    accounts: int = 0
    pals_seen: int = 0
    conversations_seen: int = 0
    actions: list[SweepAction] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def removed(self) -> list[SweepAction]:
        return [a for a in self.actions if a.decision in ("delete", "end")]

    def lines(self) -> list[str]:
        verb = "would" if self.dry_run else "did"
        out = [
            f"accounts scanned: {self.accounts}; PALs seen: {self.pals_seen}; "
            f"active conversations seen: {self.conversations_seen}"
        ]
        for action in self.actions:
            status = "" if self.dry_run else (" ok" if action.done else f" FAILED ({action.error})")
            out.append(
                f"{verb} {action.decision} {action.kind} {action.object_id} "
                f"(session {action.session_id or '-'}){status}"
            )
        out += [f"error: {e}" for e in self.errors]
        out.append(f"orphans {'found' if self.dry_run else 'removed'}: {len(self.removed)}")
        return out


def _decide_pal(session: Session | None, pal_id: str) -> str:
    if session is None:
        return "delete"
    if not is_terminal(session.state):
        return "keep: session running"
    if session.cleanup == Cleanup.PENDING and session.pal_id == pal_id:
        return "keep: the reconciler is deleting it"
    return "delete"


def _decide_pooled_pal(pooled: PooledPal | None, holder: Session | None, pal_id: str) -> str:
    if pooled is not None:
        return "keep: pooled"
    if holder is not None:
        return _decide_pal(holder, pal_id)
    return "delete"


def _decide_check_pal(created_at: datetime | None, now: datetime) -> str:
    if created_at is None or now - created_at < CHECK_PAL_MAX_AGE:
        return "keep: profile check may be running"
    return "delete"


def _decide_conversation(session: Session | None) -> str:
    if session is None or is_terminal(session.state):
        return "end"
    return "keep: session running"


async def sweep(
    sessionmaker: async_sessionmaker[AsyncSession],
    accounts: TavusAccounts,
    *,
    dry_run: bool,
) -> SweepReport:
    report = SweepReport(dry_run=dry_run)
    every = await accounts.all()
    async with sessionmaker() as db:
        persistent = await TenantRepository(db).persistent_pal_ids()
    report.accounts = len(every)
    for account in every:
        try:
            await _sweep_account(sessionmaker, account.client, persistent, report, dry_run=dry_run)
        except TavusError as error:
            report.errors.append(f"{account.name}: {type(error).__name__}: {error.message}")
    metrics.sweep_orphans(report.removed)
    if not dry_run:
        await _record(sessionmaker, report)
    return report


SWEEP_LOCK_KEY = 0x70616C69  # any constant shared by every replica


async def sweep_if_alone(
    sessionmaker: async_sessionmaker[AsyncSession], accounts: TavusAccounts
) -> SweepReport | None:
    """The periodic sweep: run by whichever replica takes the advisory lock first."""
    async with sessionmaker() as db, advisory_lock(db, SWEEP_LOCK_KEY) as got:
        if not got:
            return None
        report = await sweep(sessionmaker, accounts, dry_run=False)
    for line in report.lines():
        logger.info("sweep: %s", line)
    return report


async def _sweep_account(
    sessionmaker: async_sessionmaker[AsyncSession],
    client: TavusClient,
    persistent: set[str],
    report: SweepReport,
    *,
    dry_run: bool,
) -> None:
    pals = [p async for p in client.iter_pals(pal_type="user")]
    conversations = [c async for c in client.iter_conversations(status="active")]
    report.pals_seen += len(pals)
    report.conversations_seen += len(conversations)
    ids = {
        sid
        for sid in (
            *(tags.session_id_from_name(p.pal_name) for p in pals),
            *(tags.session_id_from_name(c.conversation_name) for c in conversations),
        )
        if sid is not None
    }
    pool_ids = {pid for pid in (tags.pool_id_from_name(p.pal_name) for p in pals) if pid}
    async with sessionmaker() as db:
        # Pool rows before the sessions holding pool PALs: a start moves a PAL from the
        # one to the other in one transaction, so read in this order it is seen in one
        # of them at least, never in neither.
        pooled = await PoolRepository(db).get_many(pool_ids)
        taken = [
            p.pal_id
            for p in pals
            if (pool_id := tags.pool_id_from_name(p.pal_name)) is not None and pool_id not in pooled
        ]
        holders = await PoolRepository(db).sessions_holding(taken)
        sessions = await SessionRepository(db).get_many(ids)

    # Conversations first: a PAL is only removed once nothing can still be using it.
    for conversation in conversations:
        sid = tags.session_id_from_name(conversation.conversation_name)
        if sid is None:
            continue  # not Palisade's
        decision = _decide_conversation(sessions.get(sid))
        action = SweepAction(
            "conversation",
            conversation.conversation_id,
            conversation.conversation_name,
            sid,
            decision,
        )
        report.actions.append(action)
        if decision == "end" and not dry_run:
            await _carry_out(action, client.end_conversation(conversation.conversation_id))

    now = datetime.now(UTC)
    for pal in pals:
        sid = tags.session_id_from_name(pal.pal_name)
        pool_id = tags.pool_id_from_name(pal.pal_name)
        is_check = tags.is_check_pal_name(pal.pal_name)
        if sid is None and pool_id is None and not is_check:
            continue  # not Palisade's
        if pool_id is not None:
            holder = holders.get(pal.pal_id)
            sid = holder.id if holder is not None else None
        if pal.pal_id in persistent:
            report.actions.append(
                SweepAction("pal", pal.pal_id, pal.pal_name, sid, "keep: persistent")
            )
            continue
        if is_check:
            decision = _decide_check_pal(pal.created_at, now)
        elif pool_id is not None:
            decision = _decide_pooled_pal(pooled.get(pool_id), holders.get(pal.pal_id), pal.pal_id)
        else:
            assert sid is not None
            decision = _decide_pal(sessions.get(sid), pal.pal_id)
        action = SweepAction("pal", pal.pal_id, pal.pal_name, sid, decision)
        report.actions.append(action)
        if decision == "delete" and not dry_run:
            await _carry_out(action, client.delete_pal(pal.pal_id))


async def _carry_out(action: SweepAction, call: Awaitable[None]) -> None:
    """Run the removal; an object Tavus no longer knows counts as removed."""
    try:
        await call
    except TavusNotFound:
        pass
    except TavusError as error:
        action.error = error.message
        return
    action.done = True


async def _record(sessionmaker: async_sessionmaker[AsyncSession], report: SweepReport) -> None:
    """Keep a record of the run, and note in each known session's log what the sweep
    removed for it."""
    removals = report.removed
    async with sessionmaker.begin() as db:
        runs = SweepRunRepository(db)
        await runs.add(
            SweepRun(
                started_at=report.started_at,
                finished_at=datetime.now(UTC),
                accounts=report.accounts,
                pals_seen=report.pals_seen,
                conversations_seen=report.conversations_seen,
                removed=sum(1 for a in removals if a.done),
                failed=sum(1 for a in removals if not a.done),
                actions=[_recorded(a) for a in removals[:MAX_RECORDED_ACTIONS]],
                errors=list(report.errors),
            )
        )
        await runs.forget_before(report.started_at - SWEEP_RECORDS_KEPT_FOR)
        repo = SessionRepository(db)
        known = await repo.get_many({a.session_id for a in report.removed if a.session_id})
        for action in report.removed:
            if action.done and action.session_id in known:
                await repo.add_event(
                    action.session_id,
                    kind="sweep",
                    type=f"sweep.{action.decision}_{action.kind}",
                    payload={"object_id": action.object_id},
                )


def _recorded(action: SweepAction) -> dict[str, object]:
    return {
        "kind": action.kind,
        "object_id": action.object_id,
        "name": action.name,
        "session_id": str(action.session_id) if action.session_id else None,
        "decision": action.decision,
        "done": action.done,
        "error": action.error,
    }
