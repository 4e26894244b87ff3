"""A tenant's webhook receiver as a real process: ``python -m tests.support.receiver``.

It answers each request after ``--delay-ms``, with the statuses of ``--fail-first``
for the first requests of each ``webhook-id`` and 200 after them (``--status`` changes
that last one), and keeps every request it got: ``GET /_requests`` returns them, each
with its headers and its body exactly as received (base64), in arrival order.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.types import Receive, Scope, Send

from tests.support.processes import REPO, clean_env, free_port, running, wait_ready


class ReceiverApp:
    """The receiver as a plain ASGI app, served by uvicorn: it answers many requests at
    once (a delay is an asyncio sleep), as a tenant's web server would."""

    def __init__(self, fail_first: list[int], status: int, delay: float) -> None:
        self.fail_first = fail_first
        self.status = status
        self.delay = delay
        self.requests: list[dict[str, Any]] = []
        self.seen: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] == "GET":
            await self._answer(send, 200, json.dumps(self.requests).encode())
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        message_id = headers.get("webhook-id", "")
        nth = self.seen[message_id]
        self.seen[message_id] += 1
        answer = self.fail_first[nth] if nth < len(self.fail_first) else self.status
        self.requests.append(
            {
                "path": scope["path"],
                "headers": headers,
                "body": base64.b64encode(raw).decode(),
                "answered": answer,
                "at": time.time(),
            }
        )
        if self.delay:
            await asyncio.sleep(self.delay)
        await self._answer(send, answer, b'{"ok":true}')

    async def _answer(self, send: Send, code: int, body: bytes) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": code,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--fail-first", default="", help="e.g. 500,500")
    parser.add_argument("--status", type=int, default=200)
    parser.add_argument("--delay-ms", type=float, default=0)
    args = parser.parse_args()
    fail_first = [int(code) for code in args.fail_first.split(",") if code]
    app = ReceiverApp(fail_first, args.status, args.delay_ms / 1000)
    uvicorn.run(
        app, host="127.0.0.1", port=args.port, log_level="warning", backlog=4096, access_log=False
    )


@dataclass
class Receiver:
    url: str

    async def requests(self) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(timeout=10) as client:
            got: list[dict[str, Any]] = (await client.get(f"{self.url}/_requests")).json()
        for request in got:
            request["raw"] = base64.b64decode(request["body"])
            request["json"] = json.loads(request["raw"])
        return got

    def requests_sync(self) -> list[dict[str, Any]]:
        """The same, from a test that runs no event loop (end-to-end tests)."""
        got: list[dict[str, Any]] = httpx.get(f"{self.url}/_requests", timeout=10).json()
        for request in got:
            request["raw"] = base64.b64decode(request["body"])
            request["json"] = json.loads(request["raw"])
        return got


@contextmanager
def receiver_process(tmp_path: Path, *args: str) -> Iterator[Receiver]:
    port = free_port()
    log = tmp_path / f"receiver-{port}.log"
    command = [sys.executable, "-m", "tests.support.receiver", "--port", str(port), *args]
    with running(command, clean_env(), REPO, log) as process:
        url = f"http://127.0.0.1:{port}"
        wait_ready(f"{url}/_requests", process, log)
        yield Receiver(url)


if __name__ == "__main__":
    main()
