"""How full each warm pool is, key by key: what the operator console shows."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.repositories.pool import CREATING, DELETING, READY, PoolRepository
from app.domain.pool.refill import wanted_keys
from app.security.secret_box import SecretBox


@dataclass(frozen=True)
class PoolFill:
    tenant_id: str
    profile: str
    # The variant's name; None for the template itself.
    variant: str | None
    # What the profile asks for; None for rows no key wants any more (being retired).
    size: int | None
    ready: int = 0
    creating: int = 0
    deleting: int = 0


async def pool_fill(db: AsyncSession, box: SecretBox) -> list[PoolFill]:
    """Every key of every pooled profile, and any rows no key wants, by tenant and
    profile."""
    repo = PoolRepository(db)
    profiles = await repo.pooled_profiles()
    counts = await repo.counts_by_key()
    fills: list[PoolFill] = []
    wanted: set[tuple[str, str, str]] = set()
    for tenant_id, name, config in profiles:
        for want in wanted_keys(tenant_id, name, config, box):
            fingerprint = want.key.fingerprint
            wanted.add((tenant_id, name, fingerprint))
            fills.append(
                PoolFill(
                    tenant_id,
                    name,
                    want.key.variant,
                    want.key.size,
                    ready=counts.get((tenant_id, name, fingerprint, READY), 0),
                    creating=counts.get((tenant_id, name, fingerprint, CREATING), 0),
                    deleting=counts.get((tenant_id, name, fingerprint, DELETING), 0),
                )
            )
    unwanted: dict[tuple[str, str], dict[str, int]] = {}
    for (tenant_id, name, fingerprint, state), count in counts.items():
        if (tenant_id, name, fingerprint) not in wanted:
            by_state = unwanted.setdefault((tenant_id, name), {})
            by_state[state] = by_state.get(state, 0) + count
    for (tenant_id, name), by_state in unwanted.items():
        fills.append(
            PoolFill(
                tenant_id,
                name,
                None,
                None,
                ready=by_state.get(READY, 0),
                creating=by_state.get(CREATING, 0),
                deleting=by_state.get(DELETING, 0),
            )
        )
    return sorted(fills, key=lambda f: (f.tenant_id, f.profile, f.size is None, f.variant or ""))
