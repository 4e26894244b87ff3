"""The migrations are the schema: they match the models and they go both ways."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

import app.db.models  # noqa: F401 - registers every table
from app.db import migrations
from app.db.base import metadata
from app.db.engine import create_engine


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
