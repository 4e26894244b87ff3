"""Opt-in count of the database round trips a process makes, for benchmarks.

Set ``PALISADE_COUNT_DB_ROUND_TRIPS`` to a file path and every engine opened by
``open_runtime`` counts what it sends to PostgreSQL; when the engine is disposed (at
shutdown) the totals are written to that path as JSON. Unset, nothing is installed and
nothing is paid. The benchmark suite (``bench/scenarios/round_trips.py``) reads the file.
Each process writes the whole file, so count with one worker.

What is counted, as the asyncpg driver sends it:

- each statement (one round trip once asyncpg has prepared it on that connection;
  the first use on a connection adds a prepare, which steady-state figures leave out);
- ``BEGIN``, ``COMMIT`` and ``ROLLBACK``, only when sent: the driver opens the
  transaction lazily at the first statement, so a transaction that ran none costs none;
- the liveness check, on a checkout of a connection that sat idle in the pool (one
  round trip, see ``app.db.engine.check_liveness_on_checkout``);
- new connections, whose set-up queries are not itemised;
- the statements the session store sends on raw connections (``app.db.raw``), each one
  round trip, and the ``BEGIN``/``COMMIT`` of its transactions.
"""

from __future__ import annotations

import atexit
import json
import os
import re
from collections import Counter, deque
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry

from app.db.engine import PINGED
from app.db.raw import RawConnections

ENV_VAR = "PALISADE_COUNT_DB_ROUND_TRIPS"
# Enough to hold several whole session starts, so a reader can show one in order.
SEQUENCE_LENGTH = 1000
# The info keys live on the pooled connection, which outlives each checkout.
_IN_TRANSACTION = "round_trips.in_transaction"
_BEGIN_PENDING = "round_trips.begin_pending"
_WHITESPACE = re.compile(r"\s+")


class RoundTripCounter:
    def __init__(self, path: Path, ping_round_trips: int) -> None:
        self.path = path
        self.ping_round_trips = ping_round_trips
        self.statements: Counter[str] = Counter()
        self.kinds: Counter[str] = Counter()
        self.sequence: deque[str] = deque(maxlen=SEQUENCE_LENGTH)
        self.written = False

    def _note(self, kind: str, statement: str | None = None) -> None:
        self.kinds[kind] += 1
        if statement is not None:
            self.statements[statement] += 1
        self.sequence.append(statement if statement is not None else kind.upper())

    def on_connect(self, dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        self.kinds["connect"] += 1

    def on_checkout(self, dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
        # Registered after app.db.engine's check, which marks the checkouts it tested.
        if record.info.pop(PINGED, False):
            self._note("ping")

    def on_begin(self, conn: Connection) -> None:
        # Under AUTOCOMMIT the driver sends no BEGIN (nor COMMIT or ROLLBACK after it).
        if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            conn.info[_BEGIN_PENDING] = True

    def on_statement(
        self,
        conn: Connection,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        if conn.info.pop(_BEGIN_PENDING, False):
            conn.info[_IN_TRANSACTION] = True
            self._note("begin")
        self._note("statement", _WHITESPACE.sub(" ", statement).strip())

    def on_raw_statement(self, statement: str) -> None:
        # One round trip each: a statement (autocommit unless a transaction is open), or
        # the BEGIN and COMMIT of one.
        if statement in ("BEGIN", "COMMIT"):
            self._note(statement.lower())
        else:
            self._note("statement", _WHITESPACE.sub(" ", statement).strip())

    def on_commit(self, conn: Connection) -> None:
        self._end(conn, "commit")

    def on_rollback(self, conn: Connection) -> None:
        self._end(conn, "rollback")

    def on_reset(self, dbapi_connection: Any, record: ConnectionPoolEntry, state: Any) -> None:
        # A connection returned mid-transaction is rolled back by the pool itself.
        self._end_info(record.info, "rollback")

    def _end(self, conn: Connection, kind: str) -> None:
        self._end_info(conn.info, kind)

    def _end_info(self, info: dict[Any, Any], kind: str) -> None:
        info.pop(_BEGIN_PENDING, None)
        if info.pop(_IN_TRANSACTION, False):
            self._note(kind)

    def totals(self) -> dict[str, Any]:
        kinds = {k: self.kinds[k] for k in ("ping", "begin", "statement", "commit", "rollback")}
        round_trips = (
            kinds["begin"]
            + kinds["statement"]
            + kinds["commit"]
            + kinds["rollback"]
            + kinds["ping"] * self.ping_round_trips
        )
        return {
            "round_trips": round_trips,
            "ping_round_trips": self.ping_round_trips,
            "connects": self.kinds["connect"],
            **kinds,
            "statements": dict(self.statements),
            "sequence": list(self.sequence),
        }

    def write(self) -> None:
        if self.written:
            return
        self.written = True
        self.path.write_text(json.dumps(self.totals(), indent=1))


def count_round_trips_if_enabled(engine: AsyncEngine, raw: RawConnections) -> None:
    """Install the counters on ``engine`` and ``raw`` when
    ``PALISADE_COUNT_DB_ROUND_TRIPS`` is set."""
    target = os.environ.get(ENV_VAR)
    if not target:
        return
    # app.db.engine tests a reused connection with one statement on checkout.
    counter = RoundTripCounter(Path(target), ping_round_trips=1)
    install(counter, engine, raw)
    event.listen(engine.sync_engine, "engine_disposed", lambda _engine: counter.write())
    # A process stopped before the engine is disposed still leaves its totals.
    atexit.register(counter.write)


def install(counter: RoundTripCounter, engine: AsyncEngine, raw: RawConnections) -> None:
    """Count what ``engine`` and ``raw`` send from now on."""
    sync_engine: Engine = engine.sync_engine
    event.listen(sync_engine.pool, "connect", counter.on_connect)
    event.listen(sync_engine.pool, "checkout", counter.on_checkout)
    event.listen(sync_engine.pool, "reset", counter.on_reset)
    event.listen(sync_engine, "begin", counter.on_begin)
    event.listen(sync_engine, "before_cursor_execute", counter.on_statement)
    event.listen(sync_engine, "commit", counter.on_commit)
    event.listen(sync_engine, "rollback", counter.on_rollback)
    raw.observers.append(counter.on_raw_statement)
