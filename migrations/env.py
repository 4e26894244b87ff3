"""Alembic environment: async engine, Palisade's metadata, and an injectable connection.

Palisade runs migrations from its own code (``palisade migrate``, ``palisade serve``, the
tests) by passing a live connection in ``config.attributes["connection"]``; the plain
``alembic`` command line works too and then builds its own engine from the URL.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import app.db.models  # noqa: F401 - registers every table on the metadata
from app.db.base import metadata
from app.settings import get_settings

config = context.config


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        compare_server_default=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_engine(url: str) -> None:
    # As app.db.engine: parameters never reach a log line or an error message.
    engine = create_async_engine(url, hide_parameters=True)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_configure)
            await connection.commit()
    finally:
        await engine.dispose()


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url") or get_settings().database_url
    if not url:
        raise SystemExit(
            "set DATABASE_URL (or use `palisade migrate`, which knows the embedded one)"
        )
    return url


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
    else:
        asyncio.run(_run_with_own_engine(_url()))
