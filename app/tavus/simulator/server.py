from __future__ import annotations

import logging

import uvicorn

from app.settings import HTTP_KEEP_ALIVE_SECONDS
from app.tavus.simulator.app import create_app
from app.tavus.simulator.config import SimulatorConfig
from app.tavus.simulator.operations import SimulatedConnectionDrop


class _IgnoreSimulatedDrops(logging.Filter):
    # uvicorn logs every exception escaping the app as an error; injected
    # connection drops are intended, so they would only be noise.
    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.exc_info is not None and isinstance(record.exc_info[1], SimulatedConnectionDrop)
        )


_DROP_FILTER = _IgnoreSimulatedDrops()


def build_server(
    host: str, port: int, config: SimulatorConfig, *, log_level: str = "warning"
) -> uvicorn.Server:
    """A uvicorn server for the simulator (one worker; httptools + uvloop when present).

    Run it with ``server.run()`` (blocking) or ``await server.serve()``; stop it by
    setting ``server.should_exit = True``.
    """
    uv_config = uvicorn.Config(
        create_app(config),
        host=host,
        port=port,
        loop="auto",
        http="auto",
        lifespan="on",
        access_log=config.access_log,
        log_level=log_level,
        timeout_graceful_shutdown=2,
        # As an API behind a load balancer: at uvicorn's default of 5 s, the same as
        # httpx's, a client reusing a connection just as the simulator closed it got a
        # ReadError, an outcome-unknown create.
        timeout_keep_alive=HTTP_KEEP_ALIVE_SECONDS,
    )
    # After uvicorn.Config, which (re)configures uvicorn's loggers.
    logging.getLogger("uvicorn.error").addFilter(_DROP_FILTER)
    return uvicorn.Server(uv_config)


def serve(host: str, port: int, config: SimulatorConfig) -> None:
    """Serve the simulator over HTTP until interrupted (blocking)."""
    build_server(host, port, config, log_level="info").run()
