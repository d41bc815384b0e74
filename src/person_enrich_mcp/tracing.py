"""Spans for what happens inside a tool call: plan and quote, the reservation, each upstream request, settle.

The SDK's `OpenTelemetryMiddleware` opens the server span of each MCP request (`tools/call <tool>`, continuing a
trace context the client sent in `_meta`); these spans are its children. Tracing is off unless the operator sets
the standard `OTEL_*` variables (`tracing_setup.start_tracing`): then the server holds a `Tracer`, and otherwise
`NO_TRACING`, whose spans are one shared object that does nothing.

No person data in a span: attributes are counts, credits, statuses, endpoint names and the request path, never an
identifier, name, email, key or message text. `Tracer.span` keeps to that by construction: strings are accepted
only under the keys in `STRING_KEYS`, whose values come from the code's own vocabulary (others are dropped).
"""

from __future__ import annotations

import logging
from decimal import Decimal
from types import TracebackType
from typing import Literal

from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from person_enrich_mcp.errors import PersonEnrichError

logger = logging.getLogger(__name__)

Attribute = str | bool | int | float | Decimal
Kind = Literal["internal", "client"]
PREFIX = "person_enrich."
# The only attributes that may hold a string; each is set from a fixed vocabulary (endpoint names, error codes,
# HTTP methods, paths of the upstream's routes), never from what a caller or the upstream sent.
STRING_KEYS = frozenset(
    {
        "person_enrich.endpoint",
        "person_enrich.tool",
        "person_enrich.outcome",
        "person_enrich.reason",
        "person_enrich.dialect",
        "person_enrich.identifier_kind",
        "person_enrich.principal",  # the metrics label: a pseudonym unless the operator opted in to names
        "http.request.method",
        "url.path",
        "server.address",
        "error.type",
    }
)
_KINDS = {"internal": SpanKind.INTERNAL, "client": SpanKind.CLIENT}


def _key(name: str) -> str:
    return name if "." in name else PREFIX + name


def clean(attributes: dict[str, Attribute | None]) -> dict[str, str | bool | int | float]:
    """The attributes a span may carry: names prefixed `person_enrich.` unless namespaced, credits as numbers,
    strings only under `STRING_KEYS`, nothing None."""
    out: dict[str, str | bool | int | float] = {}
    for name, value in attributes.items():
        key = _key(name)
        if value is None:
            continue
        if isinstance(value, Decimal):
            out[key] = float(value)
        elif isinstance(value, str):
            if key in STRING_KEYS:
                out[key] = value
            else:  # dropped, never sent: the value could be anything a caller or the upstream wrote
                logger.warning("span attribute %s dropped: only the attributes in tracing.STRING_KEYS hold text", key)
        else:
            out[key] = value
    return out


class Span:
    """One open span: add attributes as they become known, or mark it failed with an error code."""

    def set(self, **attributes: Attribute | None) -> None:
        """Add attributes (see `clean`)."""

    def fail(self, code: str) -> None:
        """Mark the span failed, with an error code as its only description (messages can name people)."""

    def __enter__(self) -> Span:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


# The one span of `NO_TRACING`: entering, setting and leaving it costs a method call each.
_NO_SPAN = Span()


class _LiveSpan(Span):
    def __init__(self, tracer: trace.Tracer, name: str, kind: Kind, attributes: dict[str, Attribute | None]) -> None:
        self._scope = tracer.start_as_current_span(
            name,
            kind=_KINDS[kind],
            attributes=clean(attributes),
            record_exception=False,  # an exception's text can hold an identifier or an upstream message
            set_status_on_exception=False,
        )
        self._span: trace.Span = trace.INVALID_SPAN

    def set(self, **attributes: Attribute | None) -> None:
        self._span.set_attributes(clean(attributes))

    def fail(self, code: str) -> None:
        self._span.set_attribute("error.type", code)
        self._span.set_status(StatusCode.ERROR, code)

    def __enter__(self) -> Span:
        self._span = self._scope.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None and self._span.is_recording():
            if isinstance(exc, PersonEnrichError):
                self.fail(exc.code)
            elif isinstance(exc, Exception):
                self.fail(type(exc).__qualname__)
            else:  # a cancellation or an exit: the span ends, not as an error of ours
                self._span.set_attribute("error.type", "cancelled")
        self._scope.__exit__(exc_type, exc, tb)


class Tracer:
    """Opens this server's spans; `NO_TRACING` when tracing is off."""

    def __init__(self, tracer: trace.Tracer | None) -> None:
        self._tracer = tracer

    @property
    def enabled(self) -> bool:
        """Whether spans are recorded at all."""
        return self._tracer is not None

    def span(self, name: str, *, kind: Kind = "internal", **attributes: Attribute | None) -> Span:
        """A span as a context manager, child of the current one; attribute names without a dot get `PREFIX`."""
        if self._tracer is None:
            return _NO_SPAN
        return _LiveSpan(self._tracer, name, kind, attributes)


NO_TRACING = Tracer(None)


def current_ids() -> tuple[str, str] | None:
    """The current trace and span ids in hex, when a span is recording (for log lines)."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")
