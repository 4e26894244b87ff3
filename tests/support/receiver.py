"""A tenant's webhook receiver as a real process: ``python -m tests.support.receiver``.

It answers each request after ``--delay-ms``, with the statuses of ``--fail-first``
for the first requests of each ``webhook-id`` and 200 after them (``--status`` changes
that last one), and keeps every request it got: ``GET /_requests`` returns them, each
with its headers and its body exactly as received (base64), in arrival order.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests.support.processes import REPO, clean_env, free_port, running, wait_ready

_lock = threading.Lock()
_requests: list[dict[str, Any]] = []
_seen: Counter[str] = Counter()


def _handler(fail_first: list[int], status: int, delay: float) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            with _lock:
                body = json.dumps(_requests).encode()
            self._answer(200, body)

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            message_id = self.headers.get("webhook-id") or ""
            with _lock:
                nth = _seen[message_id]
                _seen[message_id] += 1
                answer = fail_first[nth] if nth < len(fail_first) else status
                _requests.append(
                    {
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": base64.b64encode(raw).decode(),
                        "answered": answer,
                        "at": time.time(),
                    }
                )
            if delay:
                time.sleep(delay)
            self._answer(answer, b'{"ok":true}')

        def _answer(self, code: int, body: bytes) -> None:
            self.send_response(code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--fail-first", default="", help="e.g. 500,500")
    parser.add_argument("--status", type=int, default=200)
    parser.add_argument("--delay-ms", type=float, default=0)
    args = parser.parse_args()
    fail_first = [int(code) for code in args.fail_first.split(",") if code]
    server = ThreadingHTTPServer(
        ("127.0.0.1", args.port), _handler(fail_first, args.status, args.delay_ms / 1000)
    )
    server.daemon_threads = True
    server.request_queue_size = 1024
    server.serve_forever()


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
