"""Turning tracing on: the OpenTelemetry SDK, configured by the standard `OTEL_*` variables (the `otel` extra).

Imported only when the settings ask for tracing, so a server without it loads none of the SDK. The SDK and its
exporters read their own variables (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_HEADERS`,
`OTEL_TRACES_SAMPLER`, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, ...); this module picks the exporters
`OTEL_TRACES_EXPORTER` names. A provider someone else installed first (`opentelemetry-instrument`, a test) is
used as it is.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from opentelemetry import trace

from person_enrich_mcp import __version__
from person_enrich_mcp.settings import Settings
from person_enrich_mcp.tracing import NO_TRACING, Tracer

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter

logger = logging.getLogger(__name__)

SERVICE_NAME = "person-enrich-mcp"
TRACER_NAME = "person_enrich_mcp"
EXTRA_HINT = "install the otel extra (from a checkout: pip install '.[otel]'; the Docker image has it)"


def start_tracing(settings: Settings) -> Tracer:
    """The server's tracer: `NO_TRACING` unless the settings ask for traces and the SDK is installed."""
    if not settings.tracing:
        return NO_TRACING
    provider = trace.get_tracer_provider()
    try:
        from opentelemetry.sdk.trace import TracerProvider
    except ImportError:
        logger.warning("OTEL_* variables ask for traces, but the OpenTelemetry SDK is not installed: %s", EXTRA_HINT)
        return NO_TRACING
    if not isinstance(provider, TracerProvider):
        installed = _provider(settings)
        if installed is None:
            return NO_TRACING
        trace.set_tracer_provider(installed)
        provider = trace.get_tracer_provider()
    logger.info("tracing on: exporting spans to %s", ", ".join(settings.otel_traces_exporters) or "the installed SDK")
    return Tracer(provider.get_tracer(TRACER_NAME, __version__))


def _provider(settings: Settings) -> trace.TracerProvider | None:
    """A provider with the exporters `OTEL_TRACES_EXPORTER` names, batching spans off the request path."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    exporters: list[SpanExporter] = []
    for name in settings.otel_traces_exporters:
        if name == "console":
            exporters.append(ConsoleSpanExporter(out=sys.stderr))  # stdout carries the protocol in stdio mode
        elif name == "otlp":
            exporter = _otlp(settings.otel_protocol)
            if exporter is not None:
                exporters.append(exporter)
        else:
            logger.warning("OTEL_TRACES_EXPORTER: %r is not an exporter this server ships (otlp, console)", name)
    if not exporters:
        return None
    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win; without them the service is this server.
    resource = Resource.create({"service.version": __version__})
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
    provider = TracerProvider(resource=resource)
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def _otlp(protocol: str) -> SpanExporter | None:
    """The OTLP exporter for `protocol`, built on its first export (see `_Deferred`)."""
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc import (  # pyright: ignore[reportMissingImports]
                trace_exporter as grpc,  # pyright: ignore[reportUnknownVariableType]
            )
        except ImportError:
            logger.warning(
                "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs opentelemetry-exporter-otlp-proto-grpc, which the otel extra "
                "does not ship; install it, or use http/protobuf (the default)"
            )
            return None
        return cast("SpanExporter", grpc.OTLPSpanExporter())  # pyright: ignore[reportUnknownMemberType]
    return _deferred_http()


def _deferred_http() -> SpanExporter:
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class _Deferred(SpanExporter):
        """The OTLP/HTTP exporter, imported and built when the batch processor's thread first exports: its import
        (requests, protobuf) is most of a tenth of a second a server would otherwise spend before `initialize`."""

        def __init__(self) -> None:
            self._exporter: SpanExporter | None = None
            self._lock = threading.Lock()

        def _real(self) -> SpanExporter:
            with self._lock:
                if self._exporter is None:
                    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

                    self._exporter = OTLPSpanExporter()
                return self._exporter

        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return self._real().export(spans)

        def shutdown(self) -> None:
            if self._exporter is not None:
                self._exporter.shutdown()

        def force_flush(self, timeout_millis: int = 30_000) -> bool:
            return self._exporter.force_flush(timeout_millis) if self._exporter is not None else True

    return _Deferred()
