"""Logging to stderr (stdout carries the protocol in stdio mode), as text lines or one JSON object a line.

No request or response bodies at any verbosity: the loggers of libraries that write whole messages at DEBUG are held
at INFO, and the server's own lines name endpoints, statuses, counts and credits, never what was sent or returned.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

from person_enrich_mcp.tracing import current_ids

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Third-party loggers that log request or response bodies at DEBUG (an SSE chunk is a tool result: person data).
BODY_LOGGERS = ("sse_starlette", "mcp.server.sse", "mcp.client")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message; the trace and span ids while a span is
    recording (tracing on); the exception's type and traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if (ids := current_ids()) is not None:  # only while a span records: never with tracing off
            line["trace_id"], line["span_id"] = ids
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        # ensure_ascii: a message can never break the one-object-a-line framing or a log pipeline's decoder.
        return json.dumps(line, ensure_ascii=True, separators=(",", ":"))


def configure_logging(verbosity: int, log_format: LogFormat = "text") -> None:
    """Log to stderr only, at WARNING, INFO (-v) or DEBUG (-vv), in `log_format`."""
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for existing in list(root.handlers):  # configured once per process; a second call replaces the first
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # One line per HTTP request is noise below -vv.
    logging.getLogger("httpx2").setLevel(logging.DEBUG if verbosity >= 2 else logging.WARNING)
    for name in BODY_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)
