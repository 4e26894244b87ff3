from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.types import Receive, Scope, Send

from tavus_simulator.config import SimulatorConfig
from tavus_simulator.control import control_routes
from tavus_simulator.state import Simulator
from tavus_simulator.tavus_api import TavusRouter


class SimulatorApp:
    """The simulator's ASGI app: ``/v2/...`` goes straight to the Tavus dispatcher;
    everything else (``/_sim``, lifespan) to a small Starlette app."""

    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator

        @asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            await simulator.start()
            try:
                yield
            finally:
                await simulator.aclose()

        self._tavus = TavusRouter(simulator)
        self._control = Starlette(routes=control_routes(simulator), lifespan=lifespan)
        self.state: State = self._control.state
        self.state.simulator = simulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v2/"):
            await self._tavus(scope, receive, send)
        else:
            await self._control(scope, receive, send)


def create_app(config: SimulatorConfig | None = None) -> SimulatorApp:
    """Build the simulator's ASGI app; its state is ``app.state.simulator``.

    The ASGI lifespan starts the timer task and the webhook client and stops them.
    Without a lifespan (e.g. plain ``httpx.ASGITransport``) they start lazily on
    the first request or control call; close them with
    ``await app.state.simulator.aclose()``.
    """
    return SimulatorApp(Simulator(config))
