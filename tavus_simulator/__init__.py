"""A faithful, fault-injectable, in-memory simulator of the Tavus API.

Use it in-process through ``httpx.ASGITransport(app=create_app(...))`` or over real
sockets with ``serve``/``build_server`` (``palisade simulator``). See
``docs/simulator.md``.
"""

from tavus_simulator.app import create_app
from tavus_simulator.config import Prefill, SimulatorConfig
from tavus_simulator.faults import (
    DelayFault,
    DropFault,
    DuplicateFault,
    ErrorFault,
    HangFault,
    LatencyFault,
    ReorderFault,
    SucceedThenDropFault,
)
from tavus_simulator.operations import SimulatedConnectionDrop
from tavus_simulator.server import build_server, serve
from tavus_simulator.state import Simulator

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
