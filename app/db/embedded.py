"""A real PostgreSQL server under the data directory, for the zero-setup path and tests.

Backed by the ``pgserver`` wheel, which ships PostgreSQL binaries; it listens on a Unix
socket inside the data directory, so nothing else on the machine is disturbed.
"""

from __future__ import annotations

import importlib.util
import logging
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

logger = logging.getLogger(__name__)


def is_installed() -> bool:
    """Whether the ``pgserver`` wheel is there: it is not in the production image."""
    return importlib.util.find_spec("pgserver") is not None


class EmbeddedPostgres:
    """Start on enter, stop on exit (also reached on SIGTERM/SIGINT via the CLI's handlers)."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata.resolve()
        self._server: Any = None

    def start(self) -> None:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless.
            warnings.simplefilter("ignore")
            import pgserver

            self.pgdata.mkdir(parents=True, exist_ok=True)
            self._server = pgserver.get_server(  # type: ignore[attr-defined]
                self.pgdata, cleanup_mode="stop"
            )
        logger.info("embedded PostgreSQL running in %s", self.pgdata)

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None

    def url(self, database: str = "postgres") -> str:
        """An asyncpg DSN to a database of this server, over its Unix socket."""
        if self._server is None:
            raise RuntimeError("embedded PostgreSQL is not running")
        socket_dir = self._server.get_postmaster_info().socket_dir
        return f"postgresql+asyncpg://postgres@/{database}?host={quote(str(socket_dir))}"

    def ensure_database(self, name: str) -> None:
        if self._server is None:
            raise RuntimeError("embedded PostgreSQL is not running")
        exists = self._server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}';")
        if "(1 row)" not in exists:
            self._server.psql(f'CREATE DATABASE "{name}";')

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
