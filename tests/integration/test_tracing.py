"""Traces: one trace per start, from the request through the saga to Tavus and the
database; W3C trace context in and out; nothing installed when no endpoint is set."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import asyncpg
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from app.observability import tracing
from app.settings import Mode
from tavus_simulator import ErrorFault
from tests.conftest import PalisadeFactory, make_settings
from tests.integration.api.test_sessions import setup_tenant, start
from tests.support.stack import Palisade, SimulatorHandle
from tests.unit.observability.capture import captured_logs

# A caller's trace context (the W3C spec's example ids).
CALLER_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.install(exporter)
    try:
        yield exporter
    finally:
        tracing.uninstall()


@pytest.fixture
async def palisade(spans: InMemorySpanExporter, palisade_factory: PalisadeFactory) -> Palisade:
    """Palisade started with tracing on (the exporter is in place before its runtime)."""
    return await palisade_factory()


def finished(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    current = tracing.current()
    assert current is not None
    current.provider.force_flush()
    return list(exporter.get_finished_spans())


def request_span(all_spans: list[ReadableSpan], name: str) -> ReadableSpan:
    matching = [s for s in all_spans if s.name == name and s.kind is SpanKind.SERVER]
    assert len(matching) == 1, [s.name for s in all_spans]
    return matching[0]


def trace_of(all_spans: list[ReadableSpan], root: ReadableSpan) -> list[ReadableSpan]:
    assert root.context is not None
    return [
        s
        for s in all_spans
        if s.context is not None and s.context.trace_id == root.context.trace_id
    ]


def is_http(span: ReadableSpan) -> bool:
    attributes = span.attributes or {}
    return "http.url" in attributes or "url.full" in attributes


def ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    names = []
    parent = span.parent
    while parent is not None and parent.span_id in by_id:
        found = by_id[parent.span_id]
        names.append(found.name)
        parent = found.parent
    return names


async def test_a_start_is_one_trace_from_request_to_tavus_and_database(
    palisade: Palisade, simulator: SimulatorHandle, spans: InMemorySpanExporter
) -> None:
    key, _ = await setup_tenant(palisade)
    response = await start(
        palisade, key, {"profile": "voices", "overrides": {"system_prompt": "Be brief."}}
    )
    assert response.status_code == 201, response.text
    session_id = response.json()["id"]

    root = request_span(finished(spans), "POST /sessions")
    assert root.parent is None
    assert root.attributes is not None
    assert root.attributes["http.route"] == "/sessions"
    assert root.attributes["http.response.status_code"] == 201
    one_trace = trace_of(finished(spans), root)
    by_id = {s.context.span_id: s for s in one_trace if s.context is not None}
    names = [s.name for s in one_trace]
    for step in (
        "session.admit",
        "session.create_pal",
        "session.create_conversation",
        "tavus create_pal",
        "tavus create_conversation",
    ):
        assert names.count(step) == 1, names
    # pal_created, then active.
    moves = [s for s in one_trace if s.name == "session.move"]
    assert [m.attributes and m.attributes["palisade.move.to"] for m in moves] == [
        "pal_created",
        "active",
    ]
    assert all(m.attributes and m.attributes["palisade.session_id"] == session_id for m in moves)
    # Every span of the trace hangs from the request.
    for span in one_trace:
        assert span is root or ancestors(span, by_id)[-1] == root.name, span.name
    # Each Tavus call sits in its saga step and has the HTTP exchange under it.
    tavus_pal = next(s for s in one_trace if s.name == "tavus create_pal")
    assert ancestors(tavus_pal, by_id)[0] == "session.create_pal"
    exchanges = [s for s in one_trace if s.kind is SpanKind.CLIENT and is_http(s)]
    assert {ancestors(s, by_id)[0] for s in exchanges} == {
        "tavus create_pal",
        "tavus create_conversation",
    }
    # The database statements: admission's, the moves' (the session store's raw
    # connections) and SQLAlchemy's, each with its SQL and never its parameters.
    statements = [s for s in one_trace if (s.attributes or {}).get("db.system") == "postgresql"]
    assert any(ancestors(s, by_id)[0] == "session.admit" for s in statements)
    assert sum(ancestors(s, by_id)[0] == "session.move" for s in statements) == 2
    assert all("db.statement.parameters" not in (s.attributes or {}) for s in statements)
    # The background loops polled the database all along, yet no statement or HTTP call
    # made outside a traced operation started a trace of its own.
    assert [s.name for s in finished(spans) if s.parent is None and s.kind is SpanKind.CLIENT] == []
    # No API key, webhook token or body is put on any span.
    for span in one_trace:
        for value in (span.attributes or {}).values():
            assert key not in str(value)
            assert "token=" not in str(value)
            assert "Be brief." not in str(value)


async def test_a_callers_traceparent_is_continued_and_sent_on_to_tavus(
    palisade: Palisade, simulator: SimulatorHandle, spans: InMemorySpanExporter
) -> None:
    key, _pal_id = await setup_tenant(palisade)
    response = await palisade.as_tenant(
        key, "POST", "/sessions", json={"profile": "coach"}, headers={"traceparent": TRACEPARENT}
    )
    assert response.status_code == 201, response.text

    root = request_span(finished(spans), "POST /sessions")
    assert root.context is not None
    assert root.parent is not None
    assert format(root.context.trace_id, "032x") == CALLER_TRACE_ID
    assert format(root.parent.span_id, "016x") == CALLER_SPAN_ID
    assert root.parent.is_remote
    # Tavus received the trace context of the call that made the conversation.
    [call] = simulator.sim.call_log("conversation.create")
    assert call.traceparent is not None
    version, trace_id, parent_id, flags = call.traceparent.split("-")
    assert (version, trace_id, flags) == ("00", CALLER_TRACE_ID, "01")
    sent_by = [
        s
        for s in finished(spans)
        if s.context is not None and format(s.context.span_id, "016x") == parent_id
    ]
    assert [s.kind for s in sent_by] == [SpanKind.CLIENT]


async def test_no_endpoint_installs_nothing(
    palisade_factory: PalisadeFactory, simulator: SimulatorHandle
) -> None:
    palisade = await palisade_factory()
    key, _ = await setup_tenant(palisade)
    response = await palisade.as_tenant(
        key, "POST", "/sessions", json={"profile": "coach"}, headers={"traceparent": TRACEPARENT}
    )
    assert response.status_code == 201, response.text

    assert tracing.current() is None
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    assert not hasattr(asyncpg.connection.Connection.fetchrow, "__wrapped__")
    assert not getattr(palisade.runtime.http, "_is_instrumented_by_opentelemetry", False)
    # The caller's context is not passed on: nothing in Palisade took part in the trace.
    [call] = simulator.sim.call_log("conversation.create")
    assert call.traceparent is None


async def test_an_endpoint_turns_tracing_on_for_the_apps_lifetime(database_url: str) -> None:
    # Nothing listens there: no span is made, so nothing is sent.
    settings = make_settings(database_url, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9/")
    async with tracing.tracing_for(settings) as on:
        assert on is not None
        assert tracing.current() is on
        assert hasattr(asyncpg.connection.Connection.fetchrow, "__wrapped__")
        resource = on.provider.resource.attributes
        assert resource["service.name"] == "palisade"
    assert tracing.current() is None
    assert not hasattr(asyncpg.connection.Connection.fetchrow, "__wrapped__")


async def test_log_lines_carry_the_trace_of_their_request(
    palisade: Palisade, simulator: SimulatorHandle, spans: InMemorySpanExporter
) -> None:
    key, _ = await setup_tenant(palisade)
    production = palisade.runtime.settings.model_copy(update={"mode": Mode.PRODUCTION})
    with captured_logs(production) as logs:
        response = await palisade.as_tenant(
            key,
            "POST",
            "/sessions",
            json={"profile": "coach"},
            headers={"traceparent": TRACEPARENT},
        )
        assert response.status_code == 201, response.text
        logging.getLogger("palisade.test").info("outside any request")
    records = logs.records()
    [request] = [r for r in records if r.get("event") == "request" and r["route"] == "/sessions"]
    root = request_span(finished(spans), "POST /sessions")
    assert root.context is not None
    assert request["trace_id"] == CALLER_TRACE_ID
    assert request["span_id"] == format(root.context.span_id, "016x")
    [outside] = [r for r in records if r.get("event") == "outside any request"]
    assert "trace_id" not in outside


async def test_a_failed_tavus_call_is_an_error_span_without_its_message(
    palisade: Palisade, simulator: SimulatorHandle, spans: InMemorySpanExporter
) -> None:
    key, _ = await setup_tenant(palisade)
    body = {"error": "the secret words are in here"}
    simulator.sim.add_fault("conversation.create", ErrorFault(status=400, body=body))
    response = await start(palisade, key, {"profile": "coach"})
    assert response.status_code >= 400, response.text

    root = request_span(finished(spans), "POST /sessions")
    one_trace = trace_of(finished(spans), root)
    [attempt] = [s for s in one_trace if s.name == "tavus create_conversation"]
    [step] = [s for s in one_trace if s.name == "session.create_conversation"]
    for failed in (attempt, step):
        assert failed.status.status_code is StatusCode.ERROR
        assert failed.status.description is None
        assert (failed.attributes or {})["error.type"] == "TavusInvalidRequest"
        assert failed.events == ()
    for span in one_trace:
        assert "secret words" not in repr(dict(span.attributes or {}))
        assert all("secret words" not in repr(event.attributes) for event in span.events)
