"""Fixtures for the Tavus simulator's tests: in-process harnesses, a simulator served
over loopback sockets, and a real webhook receiver."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tavus_simulator import Simulator, SimulatorConfig, build_server, create_app
from tavus_simulator.app import SimulatorApp

API_KEY = "sim-test-key"
T = TypeVar("T")

PAL_BODY: dict[str, Any] = {
    "pal_name": "Life Coach",
    "default_face_id": "r90bbd427f71",
    "system_prompt": "You are a calm life coach.",
}


async def eventually(probe: Callable[[], T], *, within: float = 5.0, what: str = "condition") -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {within}s (last: {value!r})")
        await asyncio.sleep(0.005)


async def eventually_async(
    probe: Callable[[], Awaitable[T]], *, within: float = 5.0, what: str = "condition"
) -> T:
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {within}s (last: {value!r})")
        await asyncio.sleep(0.005)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# in-process harness -----------------------------------------------------------------


@dataclass
class Harness:
    app: SimulatorApp
    sim: Simulator
    client: httpx.AsyncClient
    _extra: list[httpx.AsyncClient] = field(default_factory=list)

    def client_for(self, api_key: str | None) -> httpx.AsyncClient:
        headers = {"x-api-key": api_key} if api_key is not None else {}
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://tavus", headers=headers
        )
        self._extra.append(client)
        return client

    async def create_pal(self, **overrides: Any) -> str:
        response = await self.client.post("/v2/pals", json={**PAL_BODY, **overrides})
        assert response.status_code == 200, response.text
        pal_id: str = response.json()["pal_id"]
        return pal_id

    async def create_conversation(self, pal_id: str, **body: Any) -> str:
        response = await self.client.post("/v2/conversations", json={"pal_id": pal_id, **body})
        assert response.status_code == 200, response.text
        conversation_id: str = response.json()["conversation_id"]
        return conversation_id

    async def aclose(self) -> None:
        for client in [self.client, *self._extra]:
            await client.aclose()
        await self.sim.aclose()


HarnessFactory = Callable[..., Harness]


@pytest.fixture
async def make_harness() -> AsyncIterator[HarnessFactory]:
    """Build in-process simulators (no lifespan: background tasks start lazily)."""
    made: list[Harness] = []

    def make(config: SimulatorConfig | None = None, **fields: Any) -> Harness:
        app = create_app(config or SimulatorConfig(**{"seed": 1234, **fields}))
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://tavus",
            headers={"x-api-key": API_KEY},
        )
        harness = Harness(app=app, sim=app.state.simulator, client=client)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        await harness.aclose()


@pytest.fixture
def harness(make_harness: HarnessFactory) -> Harness:
    return make_harness()


# servers in background threads --------------------------------------------------------


class ThreadedServer:
    def __init__(self, server: uvicorn.Server) -> None:
        self.server = server
        self.thread = threading.Thread(target=server.run, daemon=True)

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass(frozen=True)
class Received:
    token: str
    body: dict[str, Any]


class WebhookReceiver:
    """Collects webhook POSTs over real sockets; each test uses its own token."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self.port = free_port()

    def url(self, token: str) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/{token}"

    def new_url(self) -> tuple[str, str]:
        token = uuid.uuid4().hex
        return token, self.url(token)

    def bodies(self, token: str) -> list[dict[str, Any]]:
        with self._lock:
            return [item.body for item in self._received if item.token == token]

    def event_types(self, token: str) -> list[str]:
        return [body["event_type"] for body in self.bodies(token)]

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = await request.json()
            with self._lock:
                self._received.append(Received(request.path_params["token"], body))
            return JSONResponse({"status": "success"})

        return Starlette(routes=[Route("/hooks/{token}", hook, methods=["POST"])])


@pytest.fixture(scope="session")
def receiver() -> Iterator[WebhookReceiver]:
    hooks = WebhookReceiver()
    config = uvicorn.Config(
        hooks.app(), host="127.0.0.1", port=hooks.port, log_level="warning", lifespan="off"
    )
    with ThreadedServer(uvicorn.Server(config)):
        yield hooks


@dataclass(frozen=True)
class Served:
    base_url: str

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, **kwargs)


@pytest.fixture(scope="session")
def served_simulator() -> Iterator[Served]:
    """The simulator behind uvicorn on a loopback port, as ``palisade simulator`` runs it."""
    port = free_port()
    config = SimulatorConfig(seed=99, time_scale=1.0, replica_join_delay_s=0.05)
    with ThreadedServer(build_server("127.0.0.1", port, config)):
        yield Served(f"http://127.0.0.1:{port}")


@pytest.fixture
async def served(served_simulator: Served) -> Served:
    async with served_simulator.client() as control:
        (await control.post("/_sim/reset", json={"seed": 99})).raise_for_status()
    return served_simulator
