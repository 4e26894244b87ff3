"""Fixtures shared by every test layer.

Databases live on a real PostgreSQL: the server named by ``TEST_DATABASE_URL`` when set,
otherwise an embedded one started for the run. One migrated template is built per run;
a test that needs its own database gets a copy of it, and a test that only needs a
session gets a transaction that is rolled back afterwards.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db.embedded import EmbeddedPostgres
from app.db.engine import create_engine
from app.main import create_app
from app.settings import Mode, Settings, normalise_database_url
from tests.support import databases

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
async def database_url(postgres_server_url: str, template_database: str) -> AsyncIterator[str]:
    """A fresh, migrated database of this test's own."""
    name = databases.unique_name("palisade_t")
    url = await databases.create_database(postgres_server_url, name, template=template_database)
    try:
        yield url
    finally:
        await databases.drop_database(postgres_server_url, name)


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
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    api = create_app(settings)
    async with api.router.lifespan_context(api):
        yield api


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://palisade.test") as c:
        yield c
