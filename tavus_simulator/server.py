from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from tavus_simulator.app import create_app
from tavus_simulator.config import SimulatorConfig
from tavus_simulator.operations import SimulatedConnectionDrop

# How long the simulator keeps an idle connection open: longer than the clients and load
# balancers in front of an API usually keep theirs (60 s is common; httpx keeps 5 s). A
# server that closes an idle connection first races the client's next request on it.
HTTP_KEEP_ALIVE_SECONDS = 75


class _IgnoreSimulatedDrops(logging.Filter):
    # uvicorn logs every exception escaping the app as an error; injected
    # connection drops are intended, so they would only be noise.
    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.exc_info is not None and isinstance(record.exc_info[1], SimulatedConnectionDrop)
        )


_DROP_FILTER = _IgnoreSimulatedDrops()


class _Server(uvicorn.Server):
    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn re-raises the signal that stopped it; a supervisor stopping the simulator
        # with SIGTERM or Ctrl-C should see a clean exit instead.
        with super().capture_signals():
            try:
                yield
            finally:
                self._captured_signals.clear()


def build_server(
    host: str,
    port: int,
    config: SimulatorConfig,
    *,
    log_level: str = "warning",
    log_config: dict[str, Any] | str | None = None,
) -> uvicorn.Server:
    """A uvicorn server for the simulator (one worker; httptools + uvloop when present).

    Run it with ``server.run()`` (blocking) or ``await server.serve()``; stop it by
    setting ``server.should_exit = True``. ``log_config`` is a ``logging.config``
    dictionary, or the path of a JSON file holding one, in place of uvicorn's own
    logging set-up.
    """
    uv_config = uvicorn.Config(
        create_app,
        host=host,
        port=port,
        loop="auto",
        http="auto",
        lifespan="on",
        access_log=config.access_log,
        log_level=log_level,
        log_config=uvicorn.config.LOGGING_CONFIG if log_config is None else log_config,
        timeout_graceful_shutdown=2,
        # As an API behind a load balancer: at uvicorn's default of 5 s, the same as
        # httpx's, a client reusing a connection just as the simulator closed it got a
        # ReadError, an outcome-unknown create.
        timeout_keep_alive=HTTP_KEEP_ALIVE_SECONDS,
    )
    # After uvicorn.Config, which sets logging up: what building the app logs (the state
    # it restored) is formatted as configured.
    uv_config.app = create_app(config)
    # After uvicorn.Config, which (re)configures uvicorn's loggers.
    logging.getLogger("uvicorn.error").addFilter(_DROP_FILTER)
    return _Server(uv_config)


def serve(
    host: str,
    port: int,
    config: SimulatorConfig,
    *,
    log_level: str = "info",
    log_config: dict[str, Any] | str | None = None,
) -> None:
    """Serve the simulator over HTTP until SIGTERM or Ctrl-C, then exit cleanly (blocking)."""
    build_server(host, port, config, log_level=log_level, log_config=log_config).run()
