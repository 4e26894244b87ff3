"""Schema migrations driven from Palisade's own code (CLI, start-up, readiness, tests)."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

import app

FILE_TEMPLATE = "%%(year)d-%%(month).2d-%%(day).2d-%%(hour).2d%%(minute).2d_%%(slug)s"


def migrations_dir(override: Path | None = None) -> Path:
    """Where the revision scripts live: next to the package in a checkout, or as configured."""
    candidates = [override] if override else []
    candidates += [Path(app.__file__).resolve().parent.parent / "migrations", Path("migrations")]
    for candidate in candidates:
        if candidate is not None and (candidate / "env.py").is_file():
            return candidate.resolve()
    raise RuntimeError("migrations directory not found; set PALISADE_MIGRATIONS_DIR")


def alembic_config(override: Path | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir(override)))
    cfg.set_main_option("file_template", FILE_TEMPLATE)
    cfg.set_main_option("timezone", "UTC")
    return cfg


@lru_cache(maxsize=4)
def head_revisions(override: Path | None = None) -> frozenset[str]:
    return frozenset(ScriptDirectory.from_config(alembic_config(override)).get_heads())


def _current(connection: Connection) -> frozenset[str]:
    return frozenset(MigrationContext.configure(connection).get_current_heads())


async def current_revisions(engine: AsyncEngine) -> frozenset[str]:
    async with engine.connect() as connection:
        return await connection.run_sync(_current)


async def is_at_head(engine: AsyncEngine, override: Path | None = None) -> bool:
    return await current_revisions(engine) == head_revisions(override)


class SchemaState(StrEnum):
    AT_HEAD = "at_head"
    # Migrated by a newer release (a revision this code does not know): during a rolling
    # upgrade the old release keeps serving, since migrations are additive first.
    AHEAD = "ahead"
    BEHIND = "behind"
    EMPTY = "empty"

    @property
    def can_serve(self) -> bool:
        return self in (SchemaState.AT_HEAD, SchemaState.AHEAD)


@lru_cache(maxsize=4)
def known_revisions(override: Path | None = None) -> frozenset[str]:
    script = ScriptDirectory.from_config(alembic_config(override))
    return frozenset(revision.revision for revision in script.walk_revisions())


def schema_state(current: frozenset[str], override: Path | None = None) -> SchemaState:
    if current == head_revisions(override):
        return SchemaState.AT_HEAD
    if not current:
        return SchemaState.EMPTY
    if current - known_revisions(override):
        return SchemaState.AHEAD
    return SchemaState.BEHIND


async def current_schema_state(engine: AsyncEngine, override: Path | None = None) -> SchemaState:
    return schema_state(await current_revisions(engine), override)


async def _run(engine: AsyncEngine, action: str, target: str, override: Path | None) -> None:
    cfg = alembic_config(override)

    def go(connection: Connection) -> None:
        cfg.attributes["connection"] = connection
        getattr(command, action)(cfg, target)

    async with engine.begin() as connection:
        await connection.run_sync(go)


async def upgrade(engine: AsyncEngine, target: str = "head", override: Path | None = None) -> None:
    await _run(engine, "upgrade", target, override)


async def downgrade(engine: AsyncEngine, target: str, override: Path | None = None) -> None:
    await _run(engine, "downgrade", target, override)
