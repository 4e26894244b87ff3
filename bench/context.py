"""What every scenario drives: the stack, the load generator, the process monitor and the
run's options."""

from __future__ import annotations

from dataclasses import dataclass

from bench.config import Options
from bench.loadgen import LoadGenerator
from bench.monitor import ProcessMonitor
from bench.stack import Stack


@dataclass
class Bench:
    stack: Stack
    loader: LoadGenerator
    monitor: ProcessMonitor
    options: Options
