"""A database that cannot be reached is a 503 with Retry-After; any other failure a 500."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import asyncpg
import pytest
import uvloop
from asyncpg import exceptions as pg
from sqlalchemy import exc as sa
from sqlalchemy.dialects.postgresql.asyncpg import (
    AsyncAdapt_asyncpg_connection,
    AsyncAdapt_asyncpg_dbapi,
)
from starlette.requests import Request

from app.api.problems import _database_failure
from app.db.errors import is_database_unreachable


def _dbapi(driver_error: Exception, *, invalidated: bool = False) -> sa.DBAPIError:
    """The error SQLAlchemy raises for ``driver_error``, translated as its asyncpg adapter
    translates it."""
    try:
        AsyncAdapt_asyncpg_connection._handle_exception_no_connection(
            AsyncAdapt_asyncpg_dbapi(asyncpg),  # type: ignore[no-untyped-call]
            driver_error,
        )
    except Exception as translated:
        return sa.DBAPIError("SELECT 1", None, translated, connection_invalidated=invalidated)
    raise AssertionError("not translated")


UNREACHABLE = [
    pytest.param(ConnectionRefusedError(errno.ECONNREFUSED, "refused"), id="refused"),
    pytest.param(
        FileNotFoundError(errno.ENOENT, "No such file", "/run/postgresql/.s.PGSQL.5432"),
        id="unix-socket-gone",
    ),
    pytest.param(sa.TimeoutError("QueuePool limit reached"), id="pool-timeout"),
    pytest.param(_dbapi(pg.ConnectionDoesNotExistError("closed")), id="connection-lost"),
    pytest.param(_dbapi(pg.CannotConnectNowError("starting up")), id="server-starting"),
    pytest.param(_dbapi(pg.AdminShutdownError("terminating")), id="server-stopping"),
    pytest.param(_dbapi(pg.TooManyConnectionsError("too many")), id="too-many-clients"),
    pytest.param(_dbapi(pg.DataError("x"), invalidated=True), id="invalidated"),
]
A_BUG = [
    pytest.param(FileNotFoundError(errno.ENOENT, "No such file", "/etc/palisade.yaml"), id="file"),
    pytest.param(_dbapi(pg.UniqueViolationError("duplicate key")), id="unique-violation"),
    pytest.param(ValueError("no"), id="plain"),
]


@pytest.mark.parametrize("error", UNREACHABLE)
def test_connectivity_failures_are_recognised(error: Exception) -> None:
    assert is_database_unreachable(error)


@pytest.mark.parametrize("error", A_BUG)
def test_other_failures_are_not(error: Exception) -> None:
    assert not is_database_unreachable(error)


def test_a_missing_server_socket_is_recognised_whatever_the_event_loop_names(
    tmp_path: Path,
) -> None:
    # uvloop, which serves production, names no file in its FileNotFoundError.
    with pytest.raises(FileNotFoundError) as raised:
        uvloop.run(asyncpg.connect(host=str(tmp_path), user="postgres", timeout=5))
    assert raised.value.filename is None
    assert is_database_unreachable(raised.value)


def test_a_missing_file_elsewhere_is_not() -> None:
    with pytest.raises(FileNotFoundError) as raised:
        Path("/nonexistent/palisade.yaml").read_text()
    assert not is_database_unreachable(raised.value)


def _request() -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "headers": []})


async def test_unreachable_is_answered_503_with_retry_after() -> None:
    response = await _database_failure(_request(), ConnectionRefusedError("refused"))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert json.loads(bytes(response.body))["code"] == "database_unavailable"


async def test_a_constraint_violation_is_still_a_500() -> None:
    error = _dbapi(pg.UniqueViolationError("duplicate key"))
    response = await _database_failure(_request(), error)
    assert response.status_code == 500
    assert json.loads(bytes(response.body))["code"] == "internal_error"
