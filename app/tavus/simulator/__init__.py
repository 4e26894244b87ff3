"""A faithful, fault-injectable, in-memory simulator of the Tavus API.

Use it in-process through ``httpx.ASGITransport(app=create_app(...))`` or over real
sockets with ``serve``/``build_server`` (``palisade simulator``). See
``docs/simulator.md``.
"""

from app.tavus.simulator.app import create_app
from app.tavus.simulator.config import Prefill, SimulatorConfig
from app.tavus.simulator.faults import (
    DelayFault,
    DropFault,
    DuplicateFault,
    ErrorFault,
    HangFault,
    LatencyFault,
    ReorderFault,
    SucceedThenDropFault,
)
from app.tavus.simulator.operations import SimulatedConnectionDrop
from app.tavus.simulator.server import build_server, serve
from app.tavus.simulator.state import Simulator

__all__ = [
    "DelayFault",
    "DropFault",
    "DuplicateFault",
    "ErrorFault",
    "HangFault",
    "LatencyFault",
    "Prefill",
    "ReorderFault",
    "SimulatedConnectionDrop",
    "Simulator",
    "SimulatorConfig",
    "SucceedThenDropFault",
    "build_server",
    "create_app",
    "serve",
]
