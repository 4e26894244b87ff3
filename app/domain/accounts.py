"""Which Tavus account serves a tenant: its own key when it has one, else the global key.

Every Tavus call made for a tenant (a start, a poll, an end, a cleanup, a pool PAL, a
profile check, the orphan sweep) gets its client here, so the rule is written once.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.repositories.tenants import TenantRepository
from app.security.secret_box import SecretBox
from app.tavus.client import TavusClient


@dataclass(frozen=True)
class Account:
    """A Tavus account Palisade uses, named for reports (``global``, ``tenant acme``)."""

    name: str
    client: TavusClient


class TavusAccounts:
    def __init__(
        self,
        tavus: TavusClient,
        box: SecretBox,
        autocommit: async_sessionmaker[AsyncSession],
    ) -> None:
        # The global key's client; a tenant's own key gets a view of it.
        self.tavus = tavus
        self.box = box
        self.autocommit = autocommit

    def for_key(self, encrypted: bytes | None) -> TavusClient:
        """The account of a tenant's stored key (``tenant.tavus_api_key_encrypted``, or a
        copy of it): None is the global account."""
        if encrypted is None:
            return self.tavus
        return self.tavus.with_api_key(self.box.decrypt(encrypted))

    async def for_tenant(self, tenant_id: str) -> TavusClient:
        """The account serving ``tenant_id`` now (the global one for a tenant gone)."""
        async with self.autocommit() as db:
            encrypted = await TenantRepository(db).tavus_key(tenant_id)
        return self.for_key(encrypted)

    async def all(self) -> list[Account]:
        """Every account in use: the global one, then each distinct tenant key."""
        accounts = [Account("global", self.tavus)]
        async with self.autocommit() as db:
            keys = await TenantRepository(db).tavus_keys()
        seen: set[str] = set()
        for tenant_id, encrypted in keys:
            key = self.box.decrypt(encrypted)
            if key not in seen:
                seen.add(key)
                accounts.append(Account(f"tenant {tenant_id}", self.tavus.with_api_key(key)))
        return accounts
