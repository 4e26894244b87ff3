"""A live stack in the test's event loop: the Tavus simulator and Palisade, each served
over a real loopback socket, so webhooks travel over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
import uvicorn
from fastapi import FastAPI

from app.main import create_app
from app.runtime import Runtime
from app.settings import DEV_ADMIN_TOKEN, HTTP_KEEP_ALIVE_SECONDS, Settings
from app.tavus.retry import RetryPolicy
from tavus_simulator import Simulator, SimulatorConfig, build_server
from tavus_simulator.app import SimulatorApp
from tests.support.client import PalisadeClient, TenantCreate
from tests.support.processes import free_port
from tests.support.wait import until

ADMIN_HEADERS = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}
FACE_ID = "r90bbd427f71"
PAL_TEMPLATE: dict[str, Any] = {
    "pal_name": "Coach",
    "default_face_id": FACE_ID,
    "system_prompt": "You are a calm coach.",
    "layers": {"tts": {"tts_engine": "cartesia", "external_voice_id": "voice-a"}},
}
# Tests must not wait out production backoff; the retry rules stay the same.
FAST_RETRY = RetryPolicy(
    attempts=3,
    timeout=5.0,
    wait_initial=0.01,
    wait_max=0.05,
    wait_jitter=0.0,
    retry_after_jitter=0.0,
)


def _keep_test_runner_signals(server: uvicorn.Server) -> None:
    # Servers inside the test loop must leave Ctrl-C to pytest.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]


@dataclass
class Served:
    server: uvicorn.Server
    task: asyncio.Task[None]
    url: str

    async def stop(self) -> None:
        self.server.should_exit = True
        await asyncio.wait_for(self.task, timeout=10)


async def serve(app: Any, *, port: int | None = None) -> Served:
    port = port or free_port()
    # As `palisade serve` and the simulator: idle connections outlive the clients' own
    # keep-alive, so a client never reuses one the server is closing.
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_keep_alive=HTTP_KEEP_ALIVE_SECONDS,
    )
    server = uvicorn.Server(config)
    _keep_test_runner_signals(server)
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        if task.done():
            task.result()
        return server.started

    await until(started, within=10, message="server started")
    return Served(server, task, f"http://127.0.0.1:{port}")


@dataclass
class SimulatorHandle:
    url: str
    sim: Simulator
    served: Served

    def reset(self) -> None:
        self.sim.reset()

    def live_pals(self) -> list[dict[str, Any]]:
        return [p for p in self.sim.snapshot()["pals"] if p["deleted_at"] is None]

    def conversations(self) -> list[dict[str, Any]]:
        return list(self.sim.snapshot()["conversations"])


async def start_simulator(config: SimulatorConfig) -> SimulatorHandle:
    port = free_port()
    server = build_server("127.0.0.1", port, config)
    _keep_test_runner_signals(server)
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        if task.done():
            task.result()
        return server.started

    await until(started, within=10, message="simulator started")
    app = server.config.app
    assert isinstance(app, SimulatorApp)
    return SimulatorHandle(
        f"http://127.0.0.1:{port}", app.simulator, Served(server, task, f"http://127.0.0.1:{port}")
    )


@dataclass
class Palisade:
    """Palisade served on a loopback port, with clients for the admin and tenant APIs."""

    app: FastAPI
    served: Served
    client: httpx.AsyncClient
    tenants: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.served.url

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    @property
    def api(self) -> PalisadeClient:
        """The typed client, with the admin token."""
        return PalisadeClient(self.client, DEV_ADMIN_TOKEN)

    def api_as(self, api_key: str, *, origin: str | None = None) -> PalisadeClient:
        """The typed client with a tenant API key (and a browser's ``Origin``)."""
        return PalisadeClient(self.client, api_key, origin=origin)

    async def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.request(method, path, headers=ADMIN_HEADERS, **kwargs)

    async def create_tenant(self, body: dict[str, Any]) -> str:
        """Create a tenant and an API key for it; return the key."""
        created = await self.api.create_tenant(cast(TenantCreate, body))
        assert created.status_code == 201, created.text
        key = await self.api.create_api_key(body["id"])
        assert key.status_code == 201, key.text
        api_key: str = key.json()["key"]
        self.tenants[body["id"]] = api_key
        return api_key

    async def as_tenant(
        self, api_key: str, method: str, path: str, **kwargs: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {api_key}", **kwargs.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kwargs)


async def start_palisade(settings: Settings, port: int) -> Palisade:
    app = create_app(settings, tavus_retry=FAST_RETRY)
    served = await serve(app, port=port)
    client = httpx.AsyncClient(base_url=served.url, timeout=30)
    return Palisade(app, served, client)


async def stop_palisade(palisade: Palisade) -> None:
    await palisade.client.aclose()
    await palisade.served.stop()
