"""The load generator: a Python process of its own that drives Palisade and the Tavus
simulator with httpx over real sockets, one phase at a time.

The parent sends a spec over a socket pair and gets the phase's result back. Nothing
else is shared: the process imports this module and httpx only, so its CPU and memory
are the generator's own, and the parent's bookkeeping (polling the database, sampling
processes) never delays a request.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

import httpx

# Placeholders in a call's headers and body: a fresh UUID per start, and the pal_id that
# the previous call of the same start answered.
ID = "@ID@"
PAL_ID = "@PAL_ID@"
# Enough for the slowest phase to finish its last requests after its time bound.
_ANSWER_GRACE_S = 120.0
WEBHOOK_EVENT_TYPES = ("system.replica_joined", "application.perception_analysis")
_ANALYSIS = (
    "The user sat facing the camera in a well-lit room, spoke calmly and looked engaged "
    "for most of the call; no other person was visible."
)

T = TypeVar("T")


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: str
    takes_pal_id: bool = False

    def render(self, tag: str, pal_id: str = "") -> tuple[list[tuple[str, str]], bytes]:
        """The headers and body to send, placeholders filled in."""
        headers = [(name, value.replace(ID, tag)) for name, value in self.headers]
        return headers, self.body.replace(ID, tag).replace(PAL_ID, pal_id).encode()


# One start: the calls it makes, in order.
Start = tuple[Call, ...]


@dataclass(frozen=True)
class StartSpec:
    """``requests`` starts from ``clients`` concurrent clients. Request ``i`` goes to
    ``targets[i % len(targets)]``, and the variants take turns over each round of
    targets. Closed loop when ``rate`` is None: each client sends its next start as soon
    as the last one is answered. Paced otherwise: start ``i`` leaves at ``i / rate``
    seconds, whenever a client is free to send it."""

    label: str
    targets: tuple[str, ...]
    variants: tuple[Start, ...]
    requests: int
    clients: int
    max_seconds: float
    prime_path: str
    rate: float | None = None


@dataclass
class StartResult:
    latencies_ms: list[float] = field(default_factory=list)
    # Paced only: how late each start left against its schedule. Large lags mean the
    # offered rate was above what the clients could keep up with.
    lag_ms: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None
    elapsed_s: float = 0.0

    def fail(self, error: str) -> None:
        self.errors += 1
        self.first_error = self.first_error or error


@dataclass(frozen=True)
class WebhookSpec:
    """Tavus events POSTed to the sessions' callback URLs in turn; every
    ``duplicate_every``-th is an exact resend of the last body sent to that session."""

    targets: tuple[tuple[str, str], ...]  # (callback URL, conversation id)
    events: int
    clients: int
    duplicate_every: int
    max_seconds: float
    first: int  # the first event's number, so that warm-up and measured bodies differ


@dataclass
class WebhookResult:
    latencies_ms: list[float] = field(default_factory=list)
    duplicates_answered: int = 0
    errors: int = 0
    first_error: str | None = None
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class PalSpec:
    """PALs to create on the simulator, one per name."""

    simulator_url: str
    api_key: str
    names: tuple[str, ...]
    face_id: str
    clients: int


class LoadGeneratorError(RuntimeError):
    pass


# Sent by the generator once a start phase's connections are open; the parent answers
# when it has taken its own readings, and the phase begins.
PRIMED = "primed"


def _client(connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(60.0))


async def _one_start(http: httpx.AsyncClient, base_url: str, calls: Start) -> str | None:
    """Make the calls of one start; the error, if one failed."""
    tag = str(uuid.uuid4())
    pal_id = ""
    for call in calls:
        headers, content = call.render(tag, pal_id)
        try:
            response = await http.request(
                call.method, base_url + call.path, headers=headers, content=content
            )
        except httpx.HTTPError as exc:
            return f"{call.method} {call.path}: {exc!r}"
        if response.status_code >= 300:
            return f"{call.method} {call.path}: {response.status_code} {response.text[:300]}"
        if call.takes_pal_id:
            pal_id = response.json()["pal_id"]
    return None


async def run_starts(spec: StartSpec, primed: Callable[[], None]) -> StartResult:
    """Open the connections, call ``primed``, then run the phase."""
    result = StartResult()
    issued = 0
    async with _client(spec.clients * len(spec.targets)) as http:
        # Open the keep-alive connections first, so that no measured start pays for one.
        await asyncio.gather(
            *(http.get(t + spec.prime_path) for t in spec.targets for _ in range(spec.clients))
        )
        primed()
        started = time.perf_counter()
        stop_at = started + spec.max_seconds

        async def client() -> None:
            nonlocal issued
            while issued < spec.requests:
                index = issued
                issued += 1
                if spec.rate is not None:
                    due = started + index / spec.rate
                    if (wait := due - time.perf_counter()) > 0:
                        await asyncio.sleep(wait)
                    result.lag_ms.append(max(0.0, time.perf_counter() - due) * 1000.0)
                if time.perf_counter() > stop_at:
                    return
                target = spec.targets[index % len(spec.targets)]
                variant = spec.variants[(index // len(spec.targets)) % len(spec.variants)]
                begun = time.perf_counter()
                error = await _one_start(http, target, variant)
                if error is None:
                    result.latencies_ms.append((time.perf_counter() - begun) * 1000.0)
                else:
                    result.fail(error)

        await asyncio.gather(*(client() for _ in range(spec.clients)))
        result.elapsed_s = time.perf_counter() - started
    return result


def webhook_event(number: int, conversation_id: str, callback_url: str) -> bytes:
    """A well-formed Tavus event; its timestamp makes every body distinct."""
    event_type = WEBHOOK_EVENT_TYPES[number % len(WEBHOOK_EVENT_TYPES)]
    at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(microseconds=number)
    properties: dict[str, Any] = {"replica_id": "r-bench"}
    if event_type == "application.perception_analysis":
        properties["analysis"] = _ANALYSIS
    body = {
        "properties": properties,
        "conversation_id": conversation_id,
        "webhook_url": callback_url,
        "event_type": event_type,
        "message_type": event_type.split(".", 1)[0],
        "timestamp": at.isoformat(timespec="microseconds").replace("+00:00", "Z"),
    }
    return json.dumps(body).encode()


async def send_webhooks(spec: WebhookSpec) -> WebhookResult:
    result = WebhookResult()
    last_body: dict[int, bytes] = {}
    issued = 0
    headers = {"Content-Type": "application/json"}
    async with _client(spec.clients) as http:
        started = time.perf_counter()
        stop_at = started + spec.max_seconds

        async def client() -> None:
            nonlocal issued
            while issued < spec.events and time.perf_counter() < stop_at:
                number = spec.first + issued
                issued += 1
                index = number % len(spec.targets)
                callback_url, conversation_id = spec.targets[index]
                body = last_body.get(index)
                if body is None or number % spec.duplicate_every:
                    body = webhook_event(number, conversation_id, callback_url)
                    last_body[index] = body
                begun = time.perf_counter()
                try:
                    response = await http.post(callback_url, content=body, headers=headers)
                except httpx.HTTPError as exc:
                    result.errors += 1
                    result.first_error = result.first_error or repr(exc)
                    continue
                if response.status_code != 200:
                    result.errors += 1
                    result.first_error = result.first_error or (
                        f"{response.status_code} {response.text[:300]}"
                    )
                    continue
                result.latencies_ms.append((time.perf_counter() - begun) * 1000.0)
                result.duplicates_answered += response.json().get("status") == "duplicate"

        await asyncio.gather(*(client() for _ in range(spec.clients)))
        result.elapsed_s = time.perf_counter() - started
    return result


async def create_pals(spec: PalSpec) -> list[str]:
    pal_ids = [""] * len(spec.names)
    next_index = 0
    async with _client(spec.clients) as http:

        async def client() -> None:
            nonlocal next_index
            while next_index < len(spec.names):
                index = next_index
                next_index += 1
                response = await http.post(
                    f"{spec.simulator_url}/v2/pals",
                    headers={"x-api-key": spec.api_key},
                    json={
                        "pal_name": spec.names[index],
                        "default_face_id": spec.face_id,
                        "system_prompt": "You are a friendly benchmark persona.",
                    },
                )
                response.raise_for_status()
                pal_ids[index] = response.json()["pal_id"]

        await asyncio.gather(*(client() for _ in range(spec.clients)))
    return pal_ids


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # not on every platform; the standard loop only costs more CPU
        return None
    return uvloop.new_event_loop


def serve(pipe: Connection) -> None:
    """Run the specs that come down ``pipe`` until it sends None."""
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        while (spec := pipe.recv()) is not None:
            try:
                if isinstance(spec, StartSpec):

                    def primed() -> None:
                        pipe.send(PRIMED)
                        pipe.recv()

                    pipe.send(runner.run(run_starts(spec, primed)))
                elif isinstance(spec, WebhookSpec):
                    pipe.send(runner.run(send_webhooks(spec)))
                else:
                    pipe.send(runner.run(create_pals(spec)))
            except Exception as exc:  # sent back: the parent reports it with its context
                pipe.send(LoadGeneratorError(repr(exc)))


class LoadGenerator:
    """The load-generator process: ``python -m bench.loadgen`` on one end of a socket
    pair, this object on the other."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        with theirs:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "bench.loadgen", str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                cwd=Path(__file__).resolve().parents[1],
            )
        self._pipe = Connection(ours.detach())

    @property
    def pid(self) -> int:
        return self._process.pid

    def starts(self, spec: StartSpec, at_start: Callable[[], None]) -> StartResult:
        """Run a start phase; ``at_start`` runs once the connections are open, just
        before the first measured start."""
        primed = self._ask(spec, spec.max_seconds, str)
        if primed != PRIMED:
            raise LoadGeneratorError(f"unexpected answer {primed!r}")
        at_start()
        self._pipe.send(True)
        return self._answer(spec, spec.max_seconds, StartResult)

    def webhooks(self, spec: WebhookSpec) -> WebhookResult:
        return self._ask(spec, spec.max_seconds, WebhookResult)

    def create_pals(self, spec: PalSpec, within_s: float) -> list[str]:
        return self._ask(spec, within_s, list)

    def _ask(self, spec: object, within_s: float, answer_type: type[T]) -> T:
        if self._process.poll() is not None:
            raise LoadGeneratorError(f"the load generator exited ({self._process.returncode})")
        self._pipe.send(spec)
        return self._answer(spec, within_s, answer_type)

    def _answer(self, spec: object, within_s: float, answer_type: type[T]) -> T:
        if not self._pipe.poll(within_s + _ANSWER_GRACE_S):
            raise LoadGeneratorError(f"no answer to {type(spec).__name__} in time")
        answer = self._pipe.recv()
        if isinstance(answer, Exception):
            raise answer
        if not isinstance(answer, answer_type):
            raise LoadGeneratorError(f"unexpected answer {answer!r}")
        return answer

    def close(self) -> None:
        if self._process.poll() is None:
            try:
                self._pipe.send(None)
                self._process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self._process.kill()
                self._process.wait()
        self._pipe.close()


if __name__ == "__main__":
    # Through the module's importable name, so that what it pickles back names
    # bench.loadgen, not __main__.
    from bench import loadgen

    loadgen.serve(Connection(int(sys.argv[1])))
