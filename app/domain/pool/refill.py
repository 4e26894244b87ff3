"""Keeping the warm pool: refill to size, expiry, invalidation, crash recovery, deletion.

Every process runs :meth:`WarmPool.run` beside the reconciler. Each pass:

1. **Due rows** (``next_check_at <= now``), claimed with ``FOR UPDATE SKIP LOCKED`` and
   a lease, acted on outside any transaction, written back only while the lease is
   still ours (as the reconciler does with sessions):

   * ``ready`` past ``expires_at`` becomes ``deleting`` in the claiming statement, so no
     start can take it any more;
   * ``deleting``: ``DELETE /v2/pals/{id}``, retried with backoff until Tavus confirms
     (an already-gone PAL counts); only then is the row deleted;
   * ``creating`` whose lease ran out (the process sending the create died or gave up):
     the PAL is looked up by its tag, never created again: found → ``ready``, absent →
     the row is deleted (a listing lagging behind is covered by the orphan sweep).

2. **Refill**, tenant by tenant, each under a transaction-scoped advisory lock taken
   with ``pg_try_advisory_xact_lock`` (a tenant another process is deciding for is
   skipped this pass). From the profiles' pool keys (``plan_pool``, the same resolution
   as a session's) and the tenant's rows:

   * ready rows no key wants any more (template or variants changed, pool or profile
     removed, ``reuse``, another Tavus account) and ready rows above a key's size are
     retired (``deleting``, due now);
   * each key short of its size gets new ``creating`` rows, round-robin across keys,
     while the tenant holds fewer PALs than ``max_pals_per_tenant`` (pool rows in any
     state, plus the PALs of live ephemeral sessions and of ended ones not yet
     deleted). The rows are committed, with the tag each PAL will carry, **before** the
     creates are sent: that is the recovery point.

   Because the count (``creating`` + ``ready``) and the inserts happen under the tenant's
   lock, several processes never fill the same gap twice: a key never has more than its
   size in ``creating`` + ``ready``. Rows being deleted are extra until Tavus confirms;
   all of them count against the tenant's cap.

A key whose create fails is left alone for a while (backoff in this process), so a
template Tavus refuses is not retried in a tight loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import crashpoints
from app.db.models import PooledPal, Session
from app.db.raw import RawConnections
from app.db.repositories.pool import CREATING, DELETING, READY, PoolRepository
from app.db.repositories.tenants import TenantRepository
from app.domain.accounts import TavusAccounts
from app.domain.leased_loop import Backoff, LoopConfig, utcnow
from app.domain.pool.claim import claim_pooled_pal
from app.domain.profiles.schemas import Profile
from app.domain.profiles.warm_pool import PoolKey, plan_pool
from app.observability import metrics
from app.security import pal_secrets
from app.security.secret_box import SecretBox, SecretBoxError
from app.tavus.errors import TavusError, TavusNotFound
from app.tavus.models import PalCreate

logger = logging.getLogger(__name__)

# (tenant, profile, fingerprint)
KeyId = tuple[str, str, str]


@dataclass(frozen=True)
class WarmPoolConfig:
    tick: timedelta = timedelta(seconds=2)
    # Held on a row while its create or deletion is in flight; outlasts a Tavus call.
    lease: timedelta = timedelta(seconds=60)
    max_pals_per_tenant: int = 50
    # Tavus calls in flight at once, per process.
    concurrency: int = 10
    # Due rows per pass, and new rows per tenant per pass.
    batch: int = 50
    backoff_base: timedelta = timedelta(seconds=2)
    backoff_max: timedelta = timedelta(minutes=5)
    # How long an unfinished pass may go on at shutdown.
    drain_timeout: timedelta = timedelta(seconds=10)
    # The refill waits for this process's starts in flight to finish, at most this long.
    refill_defer_max: timedelta = timedelta(seconds=1)

    @property
    def loop(self) -> LoopConfig:
        return LoopConfig(tick=self.tick, batch=self.batch, drain_timeout=self.drain_timeout)


@dataclass(frozen=True)
class Wanted:
    """One key a pooled profile wants filled, and how long its PALs may wait."""

    profile: str
    key: PoolKey
    ttl: timedelta


@dataclass(frozen=True)
class _Create:
    """A row committed as ``creating``, whose PAL this process now creates."""

    row_id: uuid.UUID
    lease_until: datetime
    pal_name: str
    body: dict[str, Any]
    account: bytes | None
    key: KeyId


_now = utcnow


class WarmPool:
    name = "warm pool"

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        accounts: TavusAccounts,
        secret_box: SecretBox,
        owner: str,
        config: WarmPoolConfig | None = None,
        *,
        autocommit: async_sessionmaker[AsyncSession],
        connections: RawConnections,
    ) -> None:
        self.sessionmaker = sessionmaker
        # For the claims and reads, each a single statement: no BEGIN or COMMIT.
        self.autocommit = autocommit
        # A start's claim of a pooled PAL goes through the session store.
        self.connections = connections
        self.accounts = accounts
        self.secret_box = secret_box
        self.owner = owner
        self.config = config or WarmPoolConfig()
        self._semaphore = asyncio.Semaphore(self.config.concurrency)
        # Set when a start took a PAL: the next pass refills at once (``LeasedLoop``).
        self.wake = asyncio.Event()
        self.backoff = Backoff(self.config.backoff_base, self.config.backoff_max)
        # Keys whose last create failed: attempts, and when to try again.
        self._failures: dict[KeyId, tuple[int, datetime]] = {}
        # (tenant, profile) with a pool, and when that was read (monotonic clock).
        self._pooled: frozenset[tuple[str, str]] = frozenset()
        self._pooled_read_at = -math.inf
        self._pooled_lock = asyncio.Lock()
        self.last_success: datetime | None = None
        # Starts running in this process (``starting``); set when there are none.
        self._starts = 0
        self._no_starts = asyncio.Event()
        self._no_starts.set()

    # --- the start's side ---------------------------------------------------------------

    async def claim(self, row: Session, instance_id: str, *, lease: timedelta) -> Session | None:
        """Give the admitted session ``row`` a pooled PAL of exactly its body, or None.

        See :func:`~app.domain.pool.claim.claim_pooled_pal`. A profile without a pool
        costs no database work: which profiles have one is read at most once per
        ``tick`` (and by every refill pass). A hit wakes this process's refill, so the
        pool is topped up without waiting for the next pass.
        """
        key = (row.tenant_id, row.profile)
        if key not in await self._pooled_profiles():
            return None
        claimed = await claim_pooled_pal(
            self.connections, row, instance_id, lease=lease, secret_box=self.secret_box
        )
        metrics.warm_pool_claim(row.tenant_id, row.profile, hit=claimed is not None)
        if claimed is not None:
            self.wake.set()
        return claimed

    @contextmanager
    def starting(self) -> Iterator[None]:
        """Held by each start of this process while it runs: the refill waits for them."""
        self._starts += 1
        self._no_starts.clear()
        try:
            yield
        finally:
            self._starts -= 1
            if self._starts == 0:
                self._no_starts.set()

    async def _after_starts(self) -> None:
        # A burst takes PALs from the pool, and the hit wakes the refill at once. Creating
        # the replacements then would compete with the burst's own Tavus calls, database
        # connections and CPU, making its misses slower than with no pool at all.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                self._no_starts.wait(), self.config.refill_defer_max.total_seconds()
            )

    async def _pooled_profiles(self) -> frozenset[tuple[str, str]]:
        if time.monotonic() - self._pooled_read_at >= self.config.tick.total_seconds():
            async with self._pooled_lock:
                if time.monotonic() - self._pooled_read_at >= self.config.tick.total_seconds():
                    async with self.autocommit() as db:
                        names = await PoolRepository(db).pooled_profile_names()
                    self._remember_pooled(names)
        return self._pooled

    def _remember_pooled(self, names: Iterable[tuple[str, str]]) -> None:
        self._pooled = frozenset(names)
        self._pooled_read_at = time.monotonic()

    # --- running (app.domain.leased_loop) ------------------------------------------------

    async def tick(self) -> int:
        """One pass: settle the due rows, then refill."""
        claimed = await self.handle_due()
        await self.refill()
        self.last_success = _now()
        return claimed

    async def release(self) -> None:
        async with self.autocommit.begin() as db:
            released = await PoolRepository(db).release_claims(self.owner, _now())
        if released:
            logger.info("released %d warm pool claims", released)

    async def _guarded(self, work: Coroutine[Any, Any, None]) -> None:
        async with self._semaphore:
            try:
                await work
            except Exception:
                # The lease runs out and a later pass retries; never lose the loop.
                logger.exception("warm pool work failed")

    async def _write(self, action: Callable[[PoolRepository], Awaitable[bool]]) -> bool:
        async with self.sessionmaker.begin() as db:
            return await action(PoolRepository(db))

    # --- due rows ----------------------------------------------------------------------

    async def handle_due(self) -> int:
        now = _now()
        async with self.autocommit.begin() as db:
            rows = await PoolRepository(db).claim_due(
                owner=self.owner,
                now=now,
                lease_until=now + self.config.lease,
                limit=self.config.batch,
            )
        await asyncio.gather(*(self._guarded(self._settle(row)) for row in rows))
        return len(rows)

    async def _settle(self, row: PooledPal) -> None:
        assert row.next_check_at is not None  # the lease just taken
        lease_until = row.next_check_at
        tavus = self.accounts.for_key(row.tavus_api_key_encrypted)
        pal_id = row.pal_id
        if row.state == CREATING or pal_id is None:
            # The create's outcome is unknown: its tag tells, never a second create.
            try:
                found = await tavus.find_pal_by_name(row.pal_name)
            except TavusError as error:
                await self._retry(row, error)
                return
            if found is None:
                await self._write(
                    lambda repo: repo.forget(row.id, owner=self.owner, lease_until=lease_until)
                )
                return
            pal_id = found.pal_id
            if row.state == CREATING:
                made = pal_id
                await self._write(
                    lambda repo: repo.mark_ready(
                        row.id, made, owner=self.owner, lease_until=lease_until
                    )
                )
                return
        assert row.state == DELETING, row.state
        crashpoints.reach("pool.before_delete")
        try:
            await tavus.delete_pal(pal_id)
        except TavusNotFound:
            pass  # already gone: done
        except TavusError as error:
            await self._retry(row, error, pal_id=pal_id)
            return
        await self._write(
            lambda repo: repo.forget(row.id, owner=self.owner, lease_until=lease_until)
        )

    async def _retry(self, row: PooledPal, error: TavusError, pal_id: str | None = None) -> None:
        assert row.next_check_at is not None
        lease_until = row.next_check_at
        at = _now() + self.backoff.after(row.attempts + 1)
        logger.warning(
            "warm pool %s of %s failed, retried later: %s", row.state, row.pal_name, error.message
        )
        await self._write(
            lambda repo: repo.retry_later(
                row.id, owner=self.owner, lease_until=lease_until, at=at, pal_id=pal_id
            )
        )

    # --- refill ----------------------------------------------------------------------

    async def refill(self) -> int:
        """Top every pool up (and retire what no key wants); the number of PALs made.

        Waits first for the starts in flight in this process (``refill_defer_max`` at
        most), so that a burst is not slowed down by its own refill."""
        await self._after_starts()
        async with self.autocommit() as db:
            repo = PoolRepository(db)
            profiles = await repo.pooled_profiles()
            tenants = await repo.tenants_with_rows()
        self._remember_pooled((tenant_id, name) for tenant_id, name, _ in profiles)
        wanted: dict[str, dict[tuple[str, str], Wanted]] = {}
        for tenant_id, name, config in profiles:
            for want in wanted_keys(tenant_id, name, config, self.secret_box):
                wanted.setdefault(tenant_id, {})[(name, want.key.fingerprint)] = want
        creates: list[_Create] = []
        for tenant_id in sorted(set(wanted) | tenants):
            creates += await self._refill_tenant(tenant_id, wanted.get(tenant_id, {}), _now())
        await asyncio.gather(*(self._guarded(self._create(c)) for c in creates))
        return len(creates)

    async def _refill_tenant(
        self, tenant_id: str, wanted: dict[tuple[str, str], Wanted], now: datetime
    ) -> list[_Create]:
        async with self.sessionmaker.begin() as db:
            repo = PoolRepository(db)
            if not await repo.try_lock_tenant(tenant_id):
                return []  # another process is deciding for this tenant right now
            tenant = await TenantRepository(db).get(tenant_id)
            if tenant is None:
                return []
            account = tenant.tavus_api_key_encrypted
            rows = await repo.rows_of_tenant(tenant_id)
            live: dict[tuple[str, str], list[PooledPal]] = {}
            unwanted: list[uuid.UUID] = []
            for row in rows:
                if row.state == DELETING:
                    continue
                key = (row.profile, row.fingerprint)
                if key not in wanted or row.tavus_api_key_encrypted != account:
                    if row.state == READY:
                        unwanted.append(row.id)
                    continue  # a creating row is retired once it is ready
                live.setdefault(key, []).append(row)
            for key, members in live.items():
                extra = len(members) - wanted[key].key.size
                if extra > 0:
                    ready = sorted((r for r in members if r.state == READY), key=_expiry)
                    unwanted += [r.id for r in ready[:extra]]
            if unwanted:
                retired = await repo.retire(unwanted, now)
                logger.info("warm pool of tenant %s: %d PALs retired", tenant_id, retired)
            if not wanted:
                return []
            held = len(rows) + await repo.pals_held_by_sessions(tenant_id)
            room = min(self.config.max_pals_per_tenant - held, self.config.batch)
            deficits = {
                key: want.key.size - len(live.get(key, []))
                for key, want in wanted.items()
                if not self._backing_off((tenant_id, *key), now)
            }
            creates: list[_Create] = []
            lease_until = now + self.config.lease
            for key in _round_robin(deficits, room):
                want = wanted[key]
                pool_id = uuid.uuid4()
                row = PooledPal(
                    id=pool_id,
                    tenant_id=tenant_id,
                    profile=want.profile,
                    variant=want.key.variant,
                    fingerprint=want.key.fingerprint,
                    pal_name=want.key.pal_name(pool_id),
                    tavus_api_key_encrypted=account,
                    state=CREATING,
                    expires_at=now + want.ttl,
                    next_check_at=lease_until,
                    claimed_by=self.owner,
                )
                repo.add_all([row])
                creates.append(
                    _Create(
                        row_id=pool_id,
                        lease_until=lease_until,
                        pal_name=row.pal_name,
                        body=want.key.body_for(pool_id),
                        account=account,
                        key=(tenant_id, *key),
                    )
                )
        # Committed: from here on a crash leaves rows whose tag the recovery looks up.
        return creates

    async def _create(self, create: _Create) -> None:
        tavus = self.accounts.for_key(create.account)
        started = time.perf_counter()

        async def forget(repo: PoolRepository) -> bool:
            return await repo.forget(
                create.row_id, owner=self.owner, lease_until=create.lease_until
            )

        try:
            pal = await tavus.create_pal(PalCreate.model_validate(create.body))
        except TavusError as error:
            if not error.may_have_taken_effect:
                logger.warning("warm pool PAL create refused: %s", error.message)
                self._failed(create.key)
                await self._write(forget)
                return
            try:
                found = await tavus.find_pal_by_name(create.pal_name)
            except TavusError:
                # Undecided: the row falls due now and its next holder looks again.
                at = _now()
                await self._write(
                    lambda repo: repo.retry_later(
                        create.row_id, owner=self.owner, lease_until=create.lease_until, at=at
                    )
                )
                return
            if found is None:
                self._failed(create.key)
                await self._write(forget)
                return
            pal = found
        crashpoints.reach("pool.pal_created_not_recorded")
        made = pal.pal_id
        recorded = await self._write(
            lambda repo: repo.mark_ready(
                create.row_id, made, owner=self.owner, lease_until=create.lease_until
            )
        )
        if recorded:
            metrics.warm_pool_refilled(time.perf_counter() - started)
            self._failures.pop(create.key, None)
        else:
            logger.info("warm pool row %s was taken over; its holder finds the PAL", create.row_id)

    def _failed(self, key: KeyId) -> None:
        attempts = self._failures.get(key, (0, _now()))[0] + 1
        self._failures[key] = (attempts, _now() + self.backoff.after(attempts))

    def _backing_off(self, key: KeyId, now: datetime) -> bool:
        failure = self._failures.get(key)
        return failure is not None and failure[1] > now


def _expiry(row: PooledPal) -> datetime:
    return row.expires_at


def wanted_keys(tenant_id: str, name: str, config: dict[str, Any], box: SecretBox) -> list[Wanted]:
    """The pool keys of one stored profile (none if it cannot be read)."""
    try:
        profile = Profile.model_validate(pal_secrets.unseal_profile(config, box))
        plan = plan_pool(profile, name)
    except (ValidationError, ValueError, SecretBoxError):
        logger.exception("profile %s/%s: its warm pool cannot be planned", tenant_id, name)
        return []
    assert profile.warm_pool is not None  # only pooled profiles are read
    ttl = timedelta(seconds=profile.warm_pool.ttl_seconds)
    wanted = []
    for key in plan.keys:
        try:
            PalCreate.model_validate(key.body_for(uuid.uuid4()))
        except ValidationError:
            # A start with this body is refused with 422 pal_body_invalid; pool nothing.
            logger.warning("profile %s/%s: a pool key is not a valid PAL body", tenant_id, name)
            continue
        wanted.append(Wanted(name, key, ttl))
    return wanted


def _round_robin(deficits: dict[tuple[str, str], int], room: int) -> list[tuple[str, str]]:
    """Up to ``room`` keys to fill, one per key in turn, so that a tight cap is shared."""
    left = {key: count for key, count in sorted(deficits.items()) if count > 0}
    picks: list[tuple[str, str]] = []
    while room > 0 and left:
        for key in list(left):
            if room <= 0:
                break
            picks.append(key)
            room -= 1
            left[key] -= 1
            if left[key] == 0:
                del left[key]
    return picks
