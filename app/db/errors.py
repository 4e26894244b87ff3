"""Telling "the database cannot be reached" apart from every other database failure.

While PostgreSQL restarts or fails over, requests fail in ways that say nothing about
the request: the pool cannot connect (asyncpg raises the socket's ``OSError`` as is), a
connection dies mid-statement, or no connection frees up in time. Those are answered 503
with ``Retry-After``; any other failure is a bug and stays a 500.
"""

from __future__ import annotations

from asyncpg import exceptions as pg
from sqlalchemy import exc as sa

# asyncpg names its Unix sockets like libpq does: <dir>/.s.PGSQL.<port>.
_SOCKET_MARK = ".s.PGSQL."
_CONNECTION_LOST = (
    pg.ConnectionDoesNotExistError,
    pg.CannotConnectNowError,
    pg.AdminShutdownError,
    pg.ConnectionFailureError,
    pg.TooManyConnectionsError,
)

# The exception types that can mean it; ``is_database_unreachable`` decides.
CANDIDATES: tuple[type[Exception], ...] = (sa.DBAPIError, sa.TimeoutError, OSError)


def is_database_unreachable(error: BaseException) -> bool:
    if isinstance(error, sa.TimeoutError):  # no pooled connection came free in time
        return True
    if isinstance(error, sa.DBAPIError):
        return error.connection_invalidated or isinstance(error.orig, _CONNECTION_LOST)
    if isinstance(error, ConnectionError):  # refused, reset
        return True
    if isinstance(error, FileNotFoundError):  # the server's Unix socket is gone
        return _SOCKET_MARK in str(error.filename or error)
    return False
