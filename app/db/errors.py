"""Telling "the database cannot be reached" apart from every other database failure.

While PostgreSQL restarts or fails over, requests fail in ways that say nothing about
the request: the pool cannot connect (asyncpg raises the socket's ``OSError`` as is), a
connection dies mid-statement, or no connection frees up in time. Those are answered 503
with ``Retry-After``; any other failure is a bug and stays a 500.
"""

from __future__ import annotations

import traceback

from sqlalchemy import exc as sa

# asyncpg names its Unix sockets like libpq does: <dir>/.s.PGSQL.<port>.
_SOCKET_MARK = ".s.PGSQL."
# SQLSTATEs of an unreachable server: class 08 (connection exception), 57P01-57P03 (the
# server is shutting down or not yet accepting connections), 53300 (too many clients).
_UNREACHABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")

# The exception types that can mean it; ``is_database_unreachable`` decides.
CANDIDATES: tuple[type[Exception], ...] = (sa.DBAPIError, sa.TimeoutError, OSError)


def is_database_unreachable(error: BaseException) -> bool:
    if isinstance(error, sa.TimeoutError):  # no pooled connection came free in time
        return True
    if isinstance(error, sa.DBAPIError):
        # The driver's error carries the SQLSTATE (SQLAlchemy's asyncpg adapter copies it).
        sqlstate = getattr(error.orig, "sqlstate", None)
        return error.connection_invalidated or (
            isinstance(sqlstate, str) and sqlstate.startswith(_UNREACHABLE_SQLSTATES)
        )
    if isinstance(error, ConnectionError):  # refused, reset
        return True
    if isinstance(error, OSError):
        # e.g. the server's Unix socket is gone: uvloop's FileNotFoundError names no file,
        # so tell it by where it was raised.
        return _SOCKET_MARK in str(error.filename or "") or _raised_by_driver(error)
    return False


def _raised_by_driver(error: BaseException) -> bool:
    return any(
        frame.f_globals.get("__name__", "").startswith("asyncpg")
        for frame, _ in traceback.walk_tb(error.__traceback__)
    )
