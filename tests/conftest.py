"""Fixtures shared by every test layer.

Databases live on a real PostgreSQL: the server named by ``TEST_DATABASE_URL`` when set,
otherwise an embedded one started for the run. One migrated template is built per run;
a test that needs its own database gets a copy of it, and a test that only needs a
session gets a transaction that is rolled back afterwards.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db import models as _models  # noqa: F401 - registers every table
from app.db.base import metadata
from app.db.embedded import EmbeddedPostgres
from app.db.engine import create_engine
from app.main import create_app
from app.settings import Mode, Settings, normalise_database_url
from tavus_simulator import SimulatorConfig
from tests.support import databases
from tests.support.processes import free_port
from tests.support.stack import (
    Palisade,
    SimulatorHandle,
    start_palisade,
    start_simulator,
    stop_palisade,
)

TRUNCATE_ALL = (
    "TRUNCATE " + ", ".join(f'"{table}"' for table in metadata.tables) + " RESTART IDENTITY CASCADE"
)

logging.getLogger("pgserver").setLevel(logging.WARNING)
logging.getLogger("alembic").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def postgres_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A DSN with rights to create databases."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield normalise_database_url(configured)
        return
    # A short path: the server's Unix socket lives in the data directory.
    server = EmbeddedPostgres(Path(tmp_path_factory.mktemp("pg")) / "data")
    server.start()
    try:
        yield server.url("postgres")
    finally:
        server.stop()


@pytest.fixture(scope="session")
async def template_database(postgres_server_url: str) -> AsyncIterator[str]:
    name = databases.unique_name("palisade_tpl")
    await databases.create_migrated_database(postgres_server_url, name)
    try:
        yield name
    finally:
        await databases.drop_database(postgres_server_url, name)


@pytest.fixture
async def fresh_database_url(
    postgres_server_url: str, template_database: str
) -> AsyncIterator[str]:
    """A migrated database of this test's own (for tests that change the schema)."""
    name = databases.unique_name("palisade_t")
    url = await databases.create_database(postgres_server_url, name, template=template_database)
    try:
        yield url
    finally:
        await databases.drop_database(postgres_server_url, name)


@pytest.fixture(scope="session")
async def _app_database(
    postgres_server_url: str, template_database: str
) -> AsyncIterator[tuple[str, AsyncEngine]]:
    name = databases.unique_name("palisade_app")
    url = await databases.create_database(postgres_server_url, name, template=template_database)
    engine = create_engine(url)
    try:
        yield url, engine
    finally:
        await engine.dispose()
        await databases.drop_database(postgres_server_url, name)


@pytest.fixture
async def database_url(_app_database: tuple[str, AsyncEngine]) -> str:
    """A migrated database emptied for this test; the code under test commits freely.

    Emptying one shared database is much faster than copying a template per test.
    """
    url, engine = _app_database
    async with engine.begin() as connection:
        await connection.execute(text(TRUNCATE_ALL))
    return url


@pytest.fixture(scope="session")
async def shared_engine(
    postgres_server_url: str, template_database: str
) -> AsyncIterator[AsyncEngine]:
    """An engine on one migrated database shared by the rolled-back tests."""
    name = databases.unique_name("palisade_shared")
    url = await databases.create_database(postgres_server_url, name, template=template_database)
    engine = create_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()
        await databases.drop_database(postgres_server_url, name)


@pytest.fixture
async def db_session(shared_engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session whose commits become savepoints of an outer transaction rolled back after."""
    async with shared_engine.connect() as connection:
        transaction = await connection.begin()
        session = AsyncSession(
            bind=connection,
            expire_on_commit=False,
            join_transaction_mode="create_savepoint",
        )
        try:
            yield session
        finally:
            await session.close()
            await transaction.rollback()


def make_settings(database_url: str | None, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "DATABASE_URL": database_url,
        "PALISADE_MODE": Mode.DEV,
        "TAVUS_BASE_URL": "http://127.0.0.1:9",
        # Tests see an unknown create outcome resolved without waiting 10 s.
        "PALISADE_TAVUS_LIST_SETTLE_SECONDS": 0.2,
    }
    values.update(overrides)
    return Settings.model_validate(values)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture(scope="session")
async def simulator_server() -> AsyncIterator[SimulatorHandle]:
    handle = await start_simulator(SimulatorConfig(seed=20261123, replica_join_delay_s=None))
    try:
        yield handle
    finally:
        await handle.served.stop()


@pytest.fixture
def simulator(simulator_server: SimulatorHandle) -> Iterator[SimulatorHandle]:
    """The shared simulator, fresh for this test (no objects, faults or calls)."""
    simulator_server.reset()
    yield simulator_server
    simulator_server.reset()


PalisadeFactory = Callable[..., Awaitable[Palisade]]

# Background work runs fast in tests so that convergence is quick to observe.
TEST_DEFAULTS = {
    "PALISADE_TAVUS_TIMEOUT_SECONDS": 1.0,
    "PALISADE_RECONCILER_TICK_SECONDS": 0.05,
    "PALISADE_RETRY_BACKOFF_SECONDS": 0.05,
    "PALISADE_SWEEP_INTERVAL_SECONDS": 0,
}


@pytest.fixture
async def palisade_factory(
    database_url: str, simulator: SimulatorHandle
) -> AsyncIterator[PalisadeFactory]:
    """Start Palisade instances (own engine, pools, leases) on this test's database."""
    started: list[Palisade] = []

    async def start(**overrides: object) -> Palisade:
        port = free_port()
        settings = make_settings(
            database_url,
            TAVUS_BASE_URL=simulator.url,
            PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
            **{**TEST_DEFAULTS, **overrides},
        )
        running = await start_palisade(settings, port)
        started.append(running)
        return running

    try:
        yield start
    finally:
        for running in reversed(started):
            await stop_palisade(running)


@pytest.fixture
async def palisade(palisade_factory: PalisadeFactory) -> Palisade:
    """Palisade on a real port, on its own database, talking to the simulator."""
    return await palisade_factory()


@pytest.fixture
async def second_palisade(palisade: Palisade, palisade_factory: PalisadeFactory) -> Palisade:
    """Another Palisade instance on the same database."""
    return await palisade_factory()


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    """Palisade in-process (no socket, no background work), for HTTP-level tests."""
    api = create_app(settings.model_copy(update={"reconciler": False}))
    async with api.router.lifespan_context(api):
        yield api


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://palisade.test") as c:
        yield c
