"""One pipeline for every log line: JSON or console, contextual ids, quiet libraries."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from app.observability.logging import get_logger, request_context, session_context
from app.observability.redaction import REDACTED
from app.settings import Settings
from tests.unit.observability.capture import captured_logs

ADMIN_TOKEN = "admin-token-for-logging-tests"
TAVUS_KEY = "tavus-key-for-logging-tests"


def production(level: str = "info") -> Settings:
    return Settings.model_validate(
        {
            "PALISADE_MODE": "production",
            "DATABASE_URL": "postgresql://u@127.0.0.1:1/x",
            "TAVUS_API_KEY": TAVUS_KEY,
            "ADMIN_TOKEN": ADMIN_TOKEN,
            "SECRET_KEY": "s" * 40,
            "PALISADE_LOG_LEVEL": level,
        }
    )


def dev() -> Settings:
    return Settings.model_validate({"PALISADE_MODE": "dev", "PALISADE_LOG_LEVEL": "debug"})


class TestProductionJson:
    def test_stdlib_and_structlog_lines_are_json_with_the_same_fields(self) -> None:
        with captured_logs(production()) as logs:
            logging.getLogger("some.library").warning("disk at %d%%", 91)
            get_logger("palisade.test").info("started", port=8000)
        library, own = logs.records()
        assert library["event"] == "disk at 91%"
        assert library["level"] == "warning"
        assert library["logger"] == "some.library"
        assert own["event"] == "started"
        assert own["port"] == 8000
        assert own["logger"] == "palisade.test"
        for record in (library, own):
            assert list(record)[:4] == ["timestamp", "level", "logger", "event"]
            assert record["timestamp"].endswith("Z")

    def test_context_ids_are_on_every_line_inside_the_block(self) -> None:
        with captured_logs(production()) as logs:
            with request_context("req-1"):
                logging.getLogger("lib").info("inside")
                with session_context("sess-1"):
                    get_logger("own").info("about a session")
                get_logger("own").info("session unbound again")
            logging.getLogger("lib").info("outside")
        inside, session, after_session, outside = logs.records()
        assert inside["request_id"] == "req-1"
        assert "session_id" not in inside
        assert (session["request_id"], session["session_id"]) == ("req-1", "sess-1")
        assert "session_id" not in after_session
        assert "request_id" not in outside
        assert structlog.contextvars.get_contextvars() == {}

    def test_level_filters_both_kinds_of_logger(self) -> None:
        with captured_logs(production("warning")) as logs:
            logging.getLogger("lib").info("no")
            get_logger("own").info("no")
            get_logger("own").warning("yes")
        assert [r["event"] for r in logs.records()] == ["yes"]

    def test_httpx_request_lines_are_quiet_even_at_debug(self) -> None:
        with captured_logs(production("debug")) as logs:
            logging.getLogger("httpx").info('HTTP Request: POST http://x/?token=t "200 OK"')
            logging.getLogger("sqlalchemy.engine.Engine").info("SELECT secret params")
            logging.getLogger("httpx").warning("retrying")
        assert [r["event"] for r in logs.records()] == ["retrying"]

    def test_uvicorn_lines_go_through_the_same_formatter(self) -> None:
        uvicorn = logging.getLogger("uvicorn.error")
        own_handler = logging.StreamHandler()
        uvicorn.addHandler(own_handler)
        try:
            with captured_logs(production()) as logs:
                assert uvicorn.handlers == []
                uvicorn.warning("Invalid HTTP request received.")
        finally:
            uvicorn.removeHandler(own_handler)
        [record] = logs.records()
        assert record["logger"] == "uvicorn.error"

    def test_uvicorn_access_log_is_silenced(self) -> None:
        with captured_logs(production()) as logs:
            logging.getLogger("uvicorn.access").info(
                '%s - "%s %s HTTP/%s" %d', "1.2.3.4:5", "POST", "/w/1?token=t", "1.1", 200
            )
        assert logs.lines() == []

    def test_alembic_context_chatter_is_dropped_but_upgrades_are_logged(self) -> None:
        migration = logging.getLogger("alembic.runtime.migration")
        # The test suite quiets alembic as a whole (tests/conftest.py).
        level = migration.level
        migration.setLevel(logging.INFO)
        try:
            with captured_logs(production()) as logs:
                migration.info("Context impl %s.", "PostgresqlImpl")
                migration.info("Will assume %s DDL.", "transactional")
                migration.info("Running upgrade %s -> %s, %s", "0002", "0003", "indexes")
        finally:
            migration.setLevel(level)
        assert [r["event"] for r in logs.records()] == ["Running upgrade 0002 -> 0003, indexes"]

    def test_secrets_are_scrubbed_from_messages_and_tracebacks(self) -> None:
        with captured_logs(production()) as logs:
            logging.getLogger("lib").info("using %s", TAVUS_KEY)
            try:
                raise RuntimeError(f"refused {ADMIN_TOKEN} for /w/1?token=abcdef123")
            except RuntimeError:
                get_logger("own").exception("failed")
        assert TAVUS_KEY not in logs.text
        assert ADMIN_TOKEN not in logs.text
        assert "abcdef123" not in logs.text
        first, second = logs.records()
        assert first["event"] == f"using {REDACTED}"
        assert "RuntimeError" in second["exception"]

    def test_an_unknown_level_is_refused(self) -> None:
        with (
            pytest.raises(ValueError, match="PALISADE_LOG_LEVEL"),
            captured_logs(production("loud")),
        ):
            pass


class TestDevConsole:
    def test_lines_are_readable_not_json(self) -> None:
        with captured_logs(dev()) as logs, request_context("req-9"):
            get_logger("palisade.http").info("request", route="/sessions", status=201)
        [line] = logs.lines()
        with pytest.raises(json.JSONDecodeError):
            json.loads(line)
        assert "request" in line
        assert "[palisade.http]" in line
        assert "request_id=req-9" in line
        assert "route=/sessions" in line
        assert "\x1b[" not in line  # no colours into something that is not a terminal

    def test_the_dev_admin_token_is_scrubbed_too(self) -> None:
        with captured_logs(dev()) as logs:
            logging.getLogger("lib").info("token is dev-admin-token")
        assert "dev-admin-token" not in logs.text
