"""Structured logs: one pipeline for structlog and the standard library alike.

Every line, whether Palisade's own (``get_logger``) or a library's (uvicorn, httpx,
SQLAlchemy, alembic, pgserver through stdlib ``logging``), is rendered by one handler on
the root logger: JSON lines in production, readable console lines in dev mode. Lines
carry the ``request_id`` and ``session_id`` bound in structlog's context variables, and,
while tracing is on and a span is active, its ``trace_id`` and ``span_id``; they pass
through the redaction processor last, just before rendering.
"""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO, cast

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from app.observability.redaction import redactor
from app.observability.tracing import add_trace_ids

if TYPE_CHECKING:
    from app.settings import Settings

# Libraries whose INFO and DEBUG lines are noise or worse: httpx logs every request URL
# with its query string, SQLAlchemy at DEBUG logs statement parameters, pgserver
# narrates every command it runs.
QUIET_LOGGERS = {
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "sqlalchemy": logging.WARNING,
    "pgserver": logging.WARNING,
    "asyncio": logging.WARNING,
}
# uvicorn installs handlers of its own on these; ours must format them instead.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.asgi")
# uvicorn's access log prints each path with its query string, webhook tokens included;
# Palisade logs every request itself (app/observability/http.py).
UVICORN_ACCESS_LOGGER = "uvicorn.access"
LEADING_KEYS = ("timestamp", "level", "logger", "event")
ALEMBIC_MIGRATION_LOGGER = "alembic.runtime.migration"


class _AlembicPreamble(logging.Filter):
    """Drop the two lines alembic logs whenever it opens a migration context: the
    readiness probe opens one every few seconds. "Running upgrade" lines stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(("Context impl ", "Will assume "))


_timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)

# What every event goes through before it reaches the handler, whatever its origin.
_SHARED: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    add_trace_ids,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    _timestamper,
]

_STRUCTLOG_CHAIN: list[Processor] = [
    structlog.stdlib.filter_by_level,
    *_SHARED,
    structlog.stdlib.PositionalArgumentsFormatter(),
    structlog.processors.StackInfoRenderer(),
    structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
]


def _lead_with_standard_keys(
    logger: WrappedLogger, method_name: str, event_dict: EventDict
) -> EventDict:
    ordered = {key: event_dict.pop(key) for key in LEADING_KEYS if key in event_dict}
    ordered.update(event_dict)
    return ordered


def formatter(*, json: bool, colors: bool = False) -> structlog.stdlib.ProcessorFormatter:
    """The one formatter: tracebacks become text before redaction sees them."""
    renderer: Processor
    if json:
        renderer = structlog.processors.JSONRenderer()
    else:
        # Plain tracebacks: the default (rich) one prints local variables, secrets included.
        renderer = structlog.dev.ConsoleRenderer(
            colors=colors, exception_formatter=structlog.dev.plain_traceback
        )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            redactor,
            _lead_with_standard_keys,
            renderer,
        ],
    )


def configure_logging(settings: Settings, *, stream: TextIO | None = None) -> None:
    """Route every log line of this process through one redacting formatter.

    Idempotent: each call replaces the root handler it installed before. ``stream``
    defaults to stderr.
    """
    level = logging.getLevelNamesMapping().get(settings.log_level.upper())
    if level is None:
        raise ValueError(f"PALISADE_LOG_LEVEL: unknown level {settings.log_level!r}")
    redactor.remember(
        settings.admin_token_value,
        settings.secret_key_value,
        settings.tavus_api_key.get_secret_value() if settings.tavus_api_key else None,
    )
    out = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter(json=not settings.is_dev, colors=_is_tty(out)))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for name in UVICORN_LOGGERS:
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers = []
        uvicorn_logger.propagate = True
    access = logging.getLogger(UVICORN_ACCESS_LOGGER)
    access.handlers = []
    access.propagate = False
    for name, quiet in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(max(level, quiet))
    migration = logging.getLogger(ALEMBIC_MIGRATION_LOGGER)
    if not any(isinstance(f, _AlembicPreamble) for f in migration.filters):
        migration.addFilter(_AlembicPreamble())
    structlog.configure(
        processors=_STRUCTLOG_CHAIN,
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def child_logging_config(settings: Settings) -> dict[str, Any]:
    """``configure_logging`` as ``logging.config`` settings, for a process Palisade starts
    (the Tavus simulator) so that its lines reach the same stderr in the same format."""
    level = settings.log_level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "palisade": {
                "()": f"{__name__}.formatter",
                "json": not settings.is_dev,
                "colors": _is_tty(sys.stderr),
            }
        },
        "handlers": {
            "palisade": {
                "class": "logging.StreamHandler",
                "formatter": "palisade",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["palisade"], "level": level},
        "loggers": {
            **{
                name: {"handlers": [], "propagate": True}
                for name in (*UVICORN_LOGGERS, UVICORN_ACCESS_LOGGER)
            },
            **{
                name: {"level": logging.getLevelName(max(logging.getLevelName(level), quiet))}
                for name, quiet in QUIET_LOGGERS.items()
            },
        },
    }


def _is_tty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger on the stdlib logger ``name``, independent of global config.

    Bound to the same chain ``configure_logging`` installs, so its events reach the root
    handler even in a process (a test run) that never called it.
    """
    return cast(
        structlog.stdlib.BoundLogger,
        structlog.wrap_logger(
            logging.getLogger(name),
            processors=_STRUCTLOG_CHAIN,
            wrapper_class=structlog.stdlib.BoundLogger,
        ),
    )


def bind_session(session_id: uuid.UUID | str) -> None:
    """Tag every later line of this request (or task) with the session it is about."""
    structlog.contextvars.bind_contextvars(session_id=str(session_id))


@contextmanager
def session_context(session_id: uuid.UUID | str) -> Iterator[None]:
    """Tag the lines logged inside the block with ``session_id``; the outer value returns."""
    with structlog.contextvars.bound_contextvars(session_id=str(session_id)):
        yield


@contextmanager
def request_context(request_id: str) -> Iterator[None]:
    """Bind ``request_id`` for one request, and drop whatever the request bound on top
    (its ``session_id``) when it ends, restoring the context it started in."""
    outer: dict[str, Any] = structlog.contextvars.get_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    try:
        yield
    finally:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(**outer)
