"""Run Palisade's logging configuration in a test and put the process back afterwards."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

from app.observability.logging import (
    QUIET_LOGGERS,
    UVICORN_ACCESS_LOGGER,
    UVICORN_LOGGERS,
    configure_logging,
)
from app.settings import Settings


class CapturedLogs:
    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[str]:
        return [line for line in self.text.splitlines() if line.strip()]

    def records(self) -> list[dict[str, Any]]:
        """Every line parsed as JSON (production mode writes one object per line)."""
        return [json.loads(line) for line in self.lines()]


@contextmanager
def captured_logs(settings: Settings) -> Iterator[CapturedLogs]:
    """Configure logging as Palisade does, into a buffer; restore the loggers after."""
    names = ["", *UVICORN_LOGGERS, UVICORN_ACCESS_LOGGER, *QUIET_LOGGERS]
    saved = {
        name: (logger.handlers[:], logger.level, logger.propagate)
        for name, logger in ((n, logging.getLogger(n)) for n in names)
    }
    stream = io.StringIO()
    configure_logging(settings, stream=stream)
    try:
        yield CapturedLogs(stream)
    finally:
        for name, (handlers, level, propagate) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers = handlers
            logger.setLevel(level)
            logger.propagate = propagate
        structlog.reset_defaults()
