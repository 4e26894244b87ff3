from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.db import migrations
from app.main import create_app
from tests.conftest import make_settings
from tests.support import databases


async def test_healthz_answers_while_process_is_up(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_ready_on_a_migrated_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def _readyz(database_url: str) -> httpx.Response:
    api = create_app(make_settings(database_url))
    async with api.router.lifespan_context(api):
        transport = httpx.ASGITransport(app=api)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await c.get("/readyz")


async def test_readyz_is_503_when_schema_is_behind(postgres_server_url: str) -> None:
    name = databases.unique_name("palisade_empty")
    url = await databases.create_database(postgres_server_url, name)
    try:
        response = await _readyz(url)
    finally:
        await databases.drop_database(postgres_server_url, name)
    assert response.status_code == 503
    body = response.json()
    assert "not at head" in body["reason"]
    assert body["current"] == []


async def test_readyz_is_ready_when_a_newer_release_migrated_the_database(
    fresh_database_url: str,
) -> None:
    # What a rolling upgrade looks like to the old release: a revision it does not know.
    engine = create_async_engine(fresh_database_url)
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE alembic_version SET version_num = 'from_next'"))
    await engine.dispose()
    response = await _readyz(fresh_database_url)
    assert response.status_code == 200
    assert response.json()["current"] == ["from_next"]


async def test_readyz_is_503_when_one_migration_behind(fresh_database_url: str) -> None:
    engine = create_async_engine(fresh_database_url)
    [head] = migrations.head_revisions()
    previous = ScriptDirectory.from_config(migrations.alembic_config()).get_revision(head)
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE alembic_version SET version_num = :v"), {"v": previous.down_revision}
        )
    await engine.dispose()
    response = await _readyz(fresh_database_url)
    assert response.status_code == 503
    assert response.json()["current"] == [previous.down_revision]


async def test_readyz_is_503_when_database_is_unreachable() -> None:
    response = await _readyz("postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")
    assert response.status_code == 503
    assert "unreachable" in response.json()["reason"]


class TestProblemDetails:
    async def test_unknown_route_is_a_problem_document(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/nope")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "not_found"

    @pytest.mark.parametrize("declared", [10**9, 300 * 1024])
    async def test_oversize_body_is_413_before_it_is_read(
        self, client: httpx.AsyncClient, declared: int
    ) -> None:
        response = await client.post(
            "/healthz", content=b"x" * 10, headers={"content-length": str(declared)}
        )
        assert response.status_code == 413
        assert response.json()["code"] == "payload_too_large"

    async def test_streamed_oversize_body_is_413(self, client: httpx.AsyncClient) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(40):
                yield b"y" * 10_000

        response = await client.post("/healthz", content=chunks())
        assert response.status_code in (405, 413)
