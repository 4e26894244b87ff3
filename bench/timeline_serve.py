"""``palisade serve`` with a timeline of every ``POST /sessions``, for ``bench.timeline``.

    python bench/timeline_serve.py serve --host 127.0.0.1 --port 8000

Installs wrappers, then runs the ordinary command line. For each start it records, in
wall time from when FastAPI got the request, every SQL statement (from the engine's
statement events, and each statement the session store sends itself, ``app.db.raw``), every
commit (a transaction's exit), every Tavus call (the shared
httpx client's ``send``) and when the response began; and instants ("mark …", no
duration): the body fully received, the saga entered, each call of the start path's
writes (``SessionWrites.admit`` and ``move``) entered. Each start is one JSON line in
``$PALISADE_BENCH_TIMELINE.<pid>``. The wrappers cost a few microseconds per span and
touch nothing else: this is for seeing where the time goes, not for the suite's figures.
"""

from __future__ import annotations

import contextvars
import json
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

ENV_VAR = "PALISADE_BENCH_TIMELINE"
# One start's spans: (label, start, end), perf_counter seconds.
Spans = list[tuple[str, float, float]]
_spans: contextvars.ContextVar[Spans | None] = contextvars.ContextVar("spans", default=None)


def _record(label: str, began: float) -> None:
    spans = _spans.get()
    if spans is not None:
        spans.append((label, began, time.perf_counter()))


def _statement_label(statement: str) -> str:
    words = statement.split()
    # The CTE names tell the start path's statements apart ("WITH locked AS …").
    if words[:1] == ["WITH"] and len(words) > 1:
        return f"sql WITH {words[1]}"
    if words[:1] == ["SELECT"] and "FROM" in words[:-1]:
        return f"sql SELECT … FROM {words[words.index('FROM') + 1].split('(')[0]}"
    return "sql " + " ".join(words[:3])


def install(out_path: str) -> None:
    import fastapi
    import httpx
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.ext.asyncio import AsyncSessionTransaction

    out = open(out_path, "a", buffering=1)  # noqa: SIM115 - open for the process's life
    began_key = "bench.timeline.began"

    def before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if _spans.get() is not None:
            conn.info[began_key] = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        began = conn.info.pop(began_key, None)
        if began is not None:
            _record(_statement_label(statement), began)

    event.listen(Engine, "before_cursor_execute", before)
    event.listen(Engine, "after_cursor_execute", after)

    send = httpx.AsyncClient.send

    async def timed_send(self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return await send(self, request, **kwargs)
        finally:
            _record(f"tavus {request.method} {request.url.path}", began)

    httpx.AsyncClient.send = timed_send  # type: ignore[method-assign]

    from app.db.raw import RawConnection

    fetchrow = RawConnection.fetchrow

    async def timed_fetchrow(self: RawConnection, sql: str, *arguments: Any) -> Any:
        began = time.perf_counter()
        try:
            return await fetchrow(self, sql, *arguments)
        finally:
            _record(_statement_label(sql), began)

    RawConnection.fetchrow = timed_fetchrow  # type: ignore[method-assign]

    transaction_exit = AsyncSessionTransaction.__aexit__

    async def timed_exit(self: AsyncSessionTransaction, *args: Any) -> None:
        began = time.perf_counter()
        try:
            await transaction_exit(self, *args)
        finally:
            _record("commit", began)

    AsyncSessionTransaction.__aexit__ = timed_exit  # type: ignore[method-assign, assignment]

    app_call = fastapi.FastAPI.__call__

    async def timed_call(
        self: fastapi.FastAPI,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send_: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/sessions":
            await app_call(self, scope, receive, send_)
            return
        spans: Spans = []
        token = _spans.set(spans)
        began = time.perf_counter()

        async def timed_receive() -> Any:
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body"):
                _mark("body received")
            return message

        async def timed_send_(message: Any) -> None:
            if message["type"] == "http.response.start":
                _record("response", began)
            await send_(message)

        try:
            await app_call(self, scope, timed_receive, timed_send_)
        finally:
            _spans.reset(token)
            out.write(
                json.dumps([(label, (a - began) * 1000, (b - a) * 1000) for label, a, b in spans])
                + "\n"
            )

    fastapi.FastAPI.__call__ = timed_call  # type: ignore[method-assign, assignment]

    from app.db.session_store import SessionStore
    from app.domain.sessions.start import StartSaga

    _mark_calls(StartSaga, "start", "saga entered")
    _mark_calls(SessionStore, "admit", "admission called")
    _mark_calls(SessionStore, "move", "recovery point called")


def _mark(label: str) -> None:
    now = time.perf_counter()
    spans = _spans.get()
    if spans is not None:
        spans.append((f"mark {label}", now, now))


def _mark_calls(cls: type, name: str, label: str) -> None:
    original = getattr(cls, name)

    async def marked(*args: Any, **kwargs: Any) -> Any:
        _mark(label)
        return await original(*args, **kwargs)

    setattr(cls, name, marked)


def main() -> None:
    install(f"{os.environ[ENV_VAR]}.{os.getpid()}")
    from app.cli import main as palisade_main

    palisade_main()


if __name__ == "__main__":
    main()
