"""OpenTelemetry traces: off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

Off, nothing is installed and the SDK and instrumentations are not even imported: no
tracer provider, no patched driver, no wrapped transport; the helpers here check one
module variable and return a shared null context. On, the process has one
provider of its own (the global one is left alone, so a library that traces by itself
does not start exporting through Palisade), and:

* each HTTP request is a server span, continuing the caller's W3C ``traceparent``
  (``server_span``, called by ``app.observability.http``). It is written here rather
  than taken from the ASGI instrumentation, which puts the query string on its spans,
  and with it the webhook tokens;
* the start saga's steps and every move of a session are spans (``span``);
* each Tavus attempt is a span (``traced_exchange``, the Tavus transport's observer),
  whose HTTP exchange, traced by the httpx instrumentation of the runtime's one client,
  carries ``traceparent`` to Tavus;
* every statement on an asyncpg connection, SQLAlchemy's and the session store's alike,
  is a span (the asyncpg instrumentation). Its SQL is kept, never its parameters.

A statement or an HTTP call that no traced operation made (a background loop's poll)
starts no trace (``_unparented``), so idle replicas export nothing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.util.types import Attributes
from structlog.typing import EventDict, WrappedLogger

from app.tavus.operations import Operation

# The SDK and the instrumentations are imported only when tracing is turned on: a
# process with it off never loads them.
if TYPE_CHECKING:
    import httpx
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.sdk.trace.sampling import Sampler

    from app.settings import Settings
    from app.tavus.client import ExchangeObserver

T = TypeVar("T")

DEFAULT_SERVICE_NAME: Final = "palisade"
TRACER_NAME: Final = "palisade"
# OTLP/HTTP appends the signal's path to the base endpoint (the OTLP exporter spec).
TRACES_PATH: Final = "/v1/traces"


@dataclass(frozen=True)
class Tracing:
    """The process's tracing, while it is on."""

    provider: TracerProvider
    tracer: trace.Tracer


_current: Tracing | None = None
_NOTHING: Final = contextlib.nullcontext()


def current() -> Tracing | None:
    return _current


def _unparented() -> Sampler:
    """A sampler that drops a client span no operation of Palisade's started: a
    background loop's poll of the database (or of Tavus) every tick would otherwise be a
    trace of its own. Anything else starts a sampled trace."""
    from opentelemetry.sdk.trace.sampling import (
        ALWAYS_ON,
        Decision,
        ParentBased,
        Sampler,
        SamplingResult,
    )

    class Unparented(Sampler):
        def should_sample(
            self,
            parent_context: Context | None,
            trace_id: int,
            name: str,
            kind: SpanKind | None = None,
            attributes: Attributes = None,
            links: Sequence[Link] | None = None,
            trace_state: trace.TraceState | None = None,
        ) -> SamplingResult:
            if kind is SpanKind.CLIENT:
                return SamplingResult(Decision.DROP)
            return ALWAYS_ON.should_sample(
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )

        def get_description(self) -> str:
            return "PalisadeUnparented"

    return ParentBased(root=Unparented())


def install(exporter: SpanExporter) -> Tracing:
    """Turn tracing on for this process, exporting to ``exporter`` in batches."""
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    global _current
    if _current is not None:
        raise RuntimeError("tracing is already on in this process")
    named = _service_named_by_env()
    resource = Resource.create({} if named else {SERVICE_NAME: DEFAULT_SERVICE_NAME})
    # OTEL_TRACES_SAMPLER, when set, replaces the default (the SDK reads it).
    sampler = None if os.environ.get("OTEL_TRACES_SAMPLER") else _unparented()
    provider = TracerProvider(resource=resource, sampler=sampler)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    AsyncPGInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
    _current = Tracing(provider, provider.get_tracer(TRACER_NAME))
    return _current


def uninstall() -> None:
    """Export what is buffered and turn tracing off."""
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    global _current
    if _current is None:
        return
    tracing, _current = _current, None
    AsyncPGInstrumentor().uninstrument()  # type: ignore[no-untyped-call]
    tracing.provider.shutdown()


def _service_named_by_env() -> bool:
    attributes = os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    return bool(os.environ.get("OTEL_SERVICE_NAME")) or "service.name=" in attributes


def otlp_exporter(endpoint: str) -> SpanExporter:
    """OTLP over HTTP (protobuf). The other ``OTEL_EXPORTER_OTLP_*`` variables (headers,
    timeout, compression, a traces-only endpoint) are read by the exporter itself."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    if os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return OTLPSpanExporter()
    return OTLPSpanExporter(endpoint=endpoint.rstrip("/") + TRACES_PATH)


@asynccontextmanager
async def tracing_for(settings: Settings) -> AsyncIterator[Tracing | None]:
    """Tracing for one app's lifetime: on when ``settings`` names an OTLP endpoint and
    nothing has turned it on already (a test's exporter), off again at the end. Tracing
    is the process's, as a process serves one app: a second app in the same process
    shares it and loses it when the first one stops."""
    if _current is not None or settings.otel_exporter_otlp_endpoint is None:
        yield _current
        return
    tracing = install(otlp_exporter(settings.otel_exporter_otlp_endpoint))
    try:
        yield tracing
    finally:
        uninstall()


def instrument_client(client: httpx.AsyncClient) -> None:
    """Trace ``client``'s requests and send ``traceparent`` on them, when tracing is on."""
    if _current is not None:
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        HTTPXClientInstrumentor.instrument_client(client, tracer_provider=_current.provider)


def span(
    name: str, attributes: Callable[[], Attributes] | None = None
) -> AbstractContextManager[Any]:
    """A span around the block, when tracing is on; otherwise nothing at all (not even
    ``attributes``, which is called only for a span)."""
    if _current is None:
        return _NOTHING
    return _span(_current, name, attributes() if attributes is not None else None)


@contextlib.contextmanager
def _span(tracing: Tracing, name: str, attributes: Attributes) -> Iterator[trace.Span]:
    """A span that records a failure by its class alone: an exception's message and
    traceback (a Tavus error body, a driver's message) are not put on spans."""
    with tracing.tracer.start_as_current_span(
        name,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as current:
        try:
            yield current
        except BaseException as error:
            current.set_attribute("error.type", type(error).__qualname__)
            current.set_status(Status(StatusCode.ERROR))
            raise


def traced_exchange(observe: ExchangeObserver) -> ExchangeObserver:
    """Wrap the Tavus transport's observer ``observe`` so that each attempt is a span;
    ``observe`` itself when tracing is off."""
    if _current is None:
        return observe
    tracing = _current

    async def traced(operation: Operation, exchange: Awaitable[T]) -> T:
        attributes = {"tavus.operation": operation.value}
        with _span(tracing, f"tavus {operation.value}", attributes):
            result: T = await observe(operation, exchange)
            return result

    return traced


class _HeaderGetter(Getter[Iterable[tuple[bytes, bytes]]]):
    def get(self, carrier: Iterable[tuple[bytes, bytes]], key: str) -> list[str] | None:
        wanted = key.lower().encode("latin-1")
        found = [value.decode("latin-1") for name, value in carrier if name == wanted]
        return found or None

    def keys(self, carrier: Iterable[tuple[bytes, bytes]]) -> list[str]:
        return [name.decode("latin-1") for name, _ in carrier]


_HEADERS: Final = _HeaderGetter()


def server_span(
    method: str, path: str, headers: Iterable[tuple[bytes, bytes]]
) -> AbstractContextManager[trace.Span | None]:
    """The server span of one HTTP request, child of the caller's ``traceparent`` if it
    sent one; None when tracing is off. The caller names it once the route is known."""
    if _current is None:
        return _NOTHING
    return _server_span(_current, method, path, headers)


@contextlib.contextmanager
def _server_span(
    tracing: Tracing, method: str, path: str, headers: Iterable[tuple[bytes, bytes]]
) -> Iterator[trace.Span]:
    parent = propagate.extract(list(headers), getter=_HEADERS)
    with tracing.tracer.start_as_current_span(
        method,
        context=parent,
        kind=SpanKind.SERVER,
        attributes={"http.request.method": method, "url.path": path},
        record_exception=False,
        set_status_on_exception=False,
    ) as current:
        yield current


def finish_server_span(current: trace.Span, method: str, route: str, status: int) -> None:
    current.update_name(f"{method} {route}")
    current.set_attribute("http.route", route)
    current.set_attribute("http.response.status_code", status)
    if status >= 500:
        current.set_status(Status(StatusCode.ERROR))


def add_trace_ids(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Put the active span's ids on a log line (structlog processor)."""
    if _current is None:
        return event_dict
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict["trace_id"] = format(context.trace_id, "032x")
        event_dict["span_id"] = format(context.span_id, "016x")
    return event_dict
