"""The migrations are the schema: they match the models and they go both ways."""

from __future__ import annotations

import json
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

import app.db.models  # noqa: F401 - registers every table
from app.db import migrations
from app.db.base import metadata
from app.db.engine import create_engine

STORED_PAYLOADS = "SELECT type, payload::text FROM session_event ORDER BY id"


async def stored_payloads(connection: AsyncConnection) -> dict[str, str]:
    rows = await connection.execute(text(STORED_PAYLOADS))
    return {str(kind): str(payload) for kind, payload in rows}


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, metadata))


async def test_migrated_schema_equals_models(fresh_database_url: str) -> None:
    engine = create_engine(fresh_database_url)
    try:
        async with engine.connect() as connection:
            diff = await connection.run_sync(_diff)
    finally:
        await engine.dispose()
    assert diff == []


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_downgrade_to_base_then_upgrade_to_head(fresh_database_url: str) -> None:
    engine = create_engine(fresh_database_url)
    try:
        await migrations.downgrade(engine, "base")
        async with engine.connect() as connection:
            assert await connection.run_sync(_tables) <= {"alembic_version"}
        assert await migrations.current_revisions(engine) == frozenset()

        await migrations.upgrade(engine)
        assert await migrations.is_at_head(engine)
        async with engine.connect() as connection:
            assert set(metadata.tables) <= await connection.run_sync(_tables)
            assert await connection.run_sync(_diff) == []
    finally:
        await engine.dispose()


def test_revision_files_are_date_stamped() -> None:
    versions = migrations.migrations_dir() / "versions"
    names = sorted(p.name for p in versions.glob("*.py"))
    assert names
    for name in names:
        stamp, _, slug = name.partition("_")
        assert len(stamp) == len("YYYY-MM-DD-HHMM"), name
        assert slug.endswith(".py")


async def test_0007_takes_webhook_tokens_out_of_stored_events(fresh_database_url: str) -> None:
    url = "https://palisade.example/webhooks/tavus/s1"
    payloads = {
        "echoed": {"webhook_url": f"{url}?token=SECRET-1", "event_type": "system.shutdown"},
        "among others": {"callback_url": f"{url}?v=2&token=SECRET-2&x=1"},
        "in text": {"properties": {"note": f"sent to {url}?token=SECRET-3 at noon"}},
        "beside an escape": {"q": f'{url}?token=SECRET-4\\"quoted"'},
        "untouched": {"text": "How are you? token=fine", "n": 0.1000000000000000055511151},
    }
    engine = create_engine(fresh_database_url)
    try:
        await migrations.downgrade(engine, "0005")
        async with engine.begin() as connection:
            await connection.execute(
                text("INSERT INTO tenant (id, name, max_concurrent_sessions) VALUES ('t', 'T', 1)")
            )
            await connection.execute(
                text(
                    "INSERT INTO session (id, tenant_id, profile, state, strategy,"
                    " strategy_reason, request, resolved) VALUES"
                    " ('00000000-0000-0000-0000-000000000001', 't', 'p', 'ended', 'reuse',"
                    " 'test', '{}', '{}')"
                )
            )
            for name, payload in payloads.items():
                await connection.execute(
                    text(
                        "INSERT INTO session_event (session_id, kind, type, payload) VALUES"
                        " ('00000000-0000-0000-0000-000000000001', 'webhook', :type,"
                        " CAST(:payload AS jsonb))"
                    ),
                    {"type": name, "payload": json.dumps(payload)},
                )
            before = await stored_payloads(connection)

        await migrations.upgrade(engine)

        async with engine.connect() as connection:
            after = await stored_payloads(connection)
    finally:
        await engine.dispose()
    assert "SECRET" not in "".join(after.values())
    assert json.loads(after["echoed"]) == {"webhook_url": url, "event_type": "system.shutdown"}
    assert json.loads(after["among others"]) == {"callback_url": f"{url}?v=2&x=1"}
    assert json.loads(after["in text"]) == {"properties": {"note": f"sent to {url} at noon"}}
    assert json.loads(after["beside an escape"]) == {"q": f'{url}\\"quoted"'}
    # Rows without a token are left byte for byte, numbers included.
    assert after["untouched"] == before["untouched"]
