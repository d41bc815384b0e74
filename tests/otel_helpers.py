"""Seeing the spans a server exports: in this process (an in-memory exporter behind the global provider), or from a
server subprocess (a local OTLP/HTTP receiver that decodes what the real exporter sends)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


@dataclass(frozen=True)
class SeenSpan:
    """One finished span, whichever way it was seen: ids in hex, attributes as plain values."""

    name: str
    trace_id: str
    span_id: str
    parent_id: str | None
    kind: str
    attributes: dict[str, Any]
    status: str = ""
    events: tuple[dict[str, Any], ...] = field(default=())

    def texts(self) -> Iterator[str]:
        """Every value the span carries, as text: its name, attribute values, status, events (not the attribute
        names, which are the code's own)."""
        yield self.name
        yield self.status
        for value in self.attributes.values():
            yield str(value)
        for event in self.events:
            yield str(event)


class _Gate(SpanProcessor):
    """Hands finished spans to the exporter only while a test captures (the provider is global for the session)."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter
        self.open = False

    def on_start(self, span: SdkSpan, parent_context: Context | None = None) -> None:
        del span, parent_context

    def on_end(self, span: ReadableSpan) -> None:
        if self.open:
            self.exporter.export([span])


_EXPORTER = InMemorySpanExporter()
_GATE = _Gate(_EXPORTER)


def install_provider() -> None:
    """The process's global tracer provider (once): an SDK provider feeding the gated in-memory exporter."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(_GATE)
        trace.set_tracer_provider(provider)
    assert isinstance(trace.get_tracer_provider(), TracerProvider), "another tracer provider was installed first"


@contextmanager
def captured_spans() -> Generator[list[SeenSpan]]:
    """The spans finished in this process while the block runs, filled in when it ends."""
    install_provider()
    _EXPORTER.clear()
    _GATE.open = True
    seen: list[SeenSpan] = []
    try:
        yield seen
    finally:
        _GATE.open = False
        seen.extend(_from_sdk(s) for s in _EXPORTER.get_finished_spans())
        _EXPORTER.clear()


def _from_sdk(span: ReadableSpan) -> SeenSpan:
    context = span.get_span_context()
    assert context is not None
    return SeenSpan(
        name=span.name,
        trace_id=format(context.trace_id, "032x"),
        span_id=format(context.span_id, "016x"),
        parent_id=format(span.parent.span_id, "016x") if span.parent is not None else None,
        kind=span.kind.name,
        attributes=dict(span.attributes or {}),
        status=f"{span.status.status_code.name} {span.status.description or ''}",
        events=tuple({"name": e.name, **dict(e.attributes or {})} for e in span.events),
    )


def _value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    return None if which is None else getattr(value, which)


def _from_proto(span: Any) -> SeenSpan:
    return SeenSpan(
        name=span.name,
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_id=span.parent_span_id.hex() or None,
        kind=_KINDS.get(span.kind, str(span.kind)),
        attributes={a.key: _value(a.value) for a in span.attributes},
        status=f"{span.status.code} {span.status.message}",
        events=tuple({"name": e.name} for e in span.events),
    )


_KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}


class OtlpReceiver:
    """An OTLP/HTTP trace receiver on loopback: what a collector would get from the server's real exporter."""

    def __init__(self) -> None:
        self.spans: list[SeenSpan] = []
        self.resources: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if self.path == "/v1/traces":
                    receiver._add(body)
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _add(self, body: bytes) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        spans: list[SeenSpan] = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                spans.extend(_from_proto(span) for span in scope.spans)
            with self._changed:
                self.resources.append(resource)
        with self._changed:
            self.spans.extend(spans)
            self._changed.notify_all()

    def wait_for(self, done: Callable[[list[SeenSpan]], bool], timeout: float = 30.0) -> list[SeenSpan]:
        """The spans received, once `done` holds of them (bounded by `timeout`).

        Raises:
            AssertionError: when `done` does not hold within the timeout.
        """
        with self._changed:
            if not self._changed.wait_for(lambda: done(self.spans), timeout):
                raise AssertionError(f"spans not received in {timeout} s: {[s.name for s in self.spans]}")
            return list(self.spans)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def by_name(spans: Iterable[SeenSpan], name: str) -> list[SeenSpan]:
    """The spans called `name`."""
    return [s for s in spans if s.name == name]


def ancestors(span: SeenSpan, spans: Iterable[SeenSpan]) -> list[SeenSpan]:
    """The span's parents, nearest first, as far as they are among `spans`."""
    index = {s.span_id: s for s in spans}
    chain: list[SeenSpan] = []
    parent = span.parent_id
    while parent is not None and parent in index:
        chain.append(index[parent])
        parent = index[parent].parent_id
    return chain
