"""The dev-mode demo tenant: one API key per data directory, kept across restarts; its
persistent PAL the one the documentation names."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
from sqlalchemy import select

from app.db.models import TenantApiKey
from app.domain.tenants.demo import (
    DEMO_KEY_FILE,
    DEMO_PAL_ID,
    DEMO_TENANT_ID,
    DemoSeed,
    demo_banner,
    demo_simulator_pal,
    seed_demo,
)
from app.runtime import Runtime
from tavus_simulator.config import SeededPal
from tests.conftest import PalisadeFactory
from tests.support.stack import Palisade, SimulatorHandle

DOCS = Path(__file__).resolve().parents[3] / "docs"


@pytest.fixture(autouse=True)
def demo_pal(simulator: SimulatorHandle) -> None:
    # What `palisade serve` asks of the simulator it starts in dev mode (`--pal`).
    simulator.sim.store.seed_pal(SeededPal(**demo_simulator_pal()))


async def demo_keys(runtime: Runtime) -> list[TenantApiKey]:
    async with runtime.sessionmaker() as db:
        found = await db.scalars(
            select(TenantApiKey)
            .where(TenantApiKey.tenant_id == DEMO_TENANT_ID)
            .order_by(TenantApiKey.created_at)
        )
        return list(found)


def active(keys: list[TenantApiKey]) -> list[TenantApiKey]:
    return [k for k in keys if k.revoked_at is None]


async def in_data_dir(palisade_factory: PalisadeFactory, data_dir: Path) -> Palisade:
    return await palisade_factory(PALISADE_DATA_DIR=str(data_dir), PALISADE_RECONCILER=False)


class TestDemoKey:
    async def test_restarts_on_one_data_directory_reuse_one_key(
        self, palisade_factory: PalisadeFactory, tmp_path: Path
    ) -> None:
        palisade = await in_data_dir(palisade_factory, tmp_path / "data")
        first = await seed_demo(palisade.runtime)
        second = await seed_demo(palisade.runtime)

        assert second.api_key == first.api_key
        [key] = active(await demo_keys(palisade.runtime))
        assert key.prefix == first.api_key[: len(key.prefix)]
        sessions = await palisade.as_tenant(first.api_key, "GET", "/sessions")
        assert sessions.status_code == 200
        kept = tmp_path / "data" / DEMO_KEY_FILE
        assert kept.read_text().strip() == first.api_key
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600

    async def test_a_key_no_longer_active_is_replaced_and_older_ones_revoked(
        self, palisade_factory: PalisadeFactory, tmp_path: Path
    ) -> None:
        palisade = await in_data_dir(palisade_factory, tmp_path / "data")
        first = await seed_demo(palisade.runtime)
        [key] = active(await demo_keys(palisade.runtime))
        revoked = await palisade.admin("DELETE", f"/tenants/{DEMO_TENANT_ID}/api-keys/{key.id}")
        assert revoked.status_code == 204

        replaced = await seed_demo(palisade.runtime)

        assert replaced.api_key != first.api_key
        assert len(active(await demo_keys(palisade.runtime))) == 1
        assert (tmp_path / "data" / DEMO_KEY_FILE).read_text().strip() == replaced.api_key

    async def test_another_data_directory_takes_over_with_a_key_of_its_own(
        self, palisade_factory: PalisadeFactory, tmp_path: Path
    ) -> None:
        one = await in_data_dir(palisade_factory, tmp_path / "one")
        other = await in_data_dir(palisade_factory, tmp_path / "other")
        first = await seed_demo(one.runtime)
        taken_over = await seed_demo(other.runtime)

        assert taken_over.api_key != first.api_key
        [key] = active(await demo_keys(other.runtime))
        assert taken_over.api_key.startswith(key.prefix)
        assert (await one.as_tenant(first.api_key, "GET", "/sessions")).status_code == 401


class TestDemoPal:
    async def test_the_demo_reuses_the_pal_the_documentation_names(
        self, palisade_factory: PalisadeFactory, tmp_path: Path
    ) -> None:
        palisade = await in_data_dir(palisade_factory, tmp_path / "data")
        demo = await seed_demo(palisade.runtime)
        assert demo.persistent_pal_id == DEMO_PAL_ID
        for page in ("admin-api.md", "profiles.md"):
            named = set(re.findall(r"pal_id\W+(p[0-9a-f]{11})\b", (DOCS / page).read_text()))
            assert named == {DEMO_PAL_ID}, page
        started = await palisade.as_tenant(
            demo.api_key, "POST", "/sessions", json={"profile": "coach"}
        )
        assert started.status_code == 201, started.text

    def test_each_banner_has_an_idempotency_key_of_its_own(self, tmp_path: Path) -> None:
        seed = DemoSeed(DEMO_TENANT_ID, "psk_x", DEMO_PAL_ID, tmp_path / DEMO_KEY_FILE)

        def key(banner: str) -> str:
            found = re.search(r"Idempotency-Key: (\S+)'", banner)
            assert found, banner
            return found.group(1)

        assert key(demo_banner(seed, "http://x")) != key(demo_banner(seed, "http://x"))
