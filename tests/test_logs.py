"""Structured logs: `--log-format json` writes one JSON object a line, whatever the message holds."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

from opentelemetry.sdk.trace import TracerProvider

from person_enrich_mcp.logs import JsonFormatter
from person_enrich_mcp.settings import early_log_format, load_settings


def _record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            info = sys.exc_info()
    return logging.LogRecord("person_enrich_mcp.test", logging.WARNING, __file__, 1, message, args, info)


def test_a_record_is_one_line_of_json_with_time_level_logger_and_message() -> None:
    line = JsonFormatter().format(_record("first line\nsecond line\u2028 and %s", "an arg"))
    assert "\n" not in line and "\u2028" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "first line\nsecond line\u2028 and an arg"
    assert (parsed["level"], parsed["logger"]) == ("WARNING", "person_enrich_mcp.test")
    assert parsed["time"].endswith("+00:00") and "trace_id" not in parsed  # no span: no ids


def test_an_exception_is_one_field_of_the_same_line() -> None:
    parsed = json.loads(JsonFormatter().format(_record("failed", exc=True)))
    assert "ValueError: boom" in parsed["exception"] and parsed["message"] == "failed"


def test_inside_a_recording_span_the_line_carries_its_trace_and_span_ids() -> None:
    tracer = TracerProvider().get_tracer("test")  # not the global provider: this span is local to the test
    with tracer.start_as_current_span("work") as span:
        parsed = json.loads(JsonFormatter().format(_record("inside")))
    context = span.get_span_context()
    assert parsed["trace_id"] == format(context.trace_id, "032x")
    assert parsed["span_id"] == format(context.span_id, "016x")


def test_the_format_comes_from_the_flag_then_the_environment_and_anything_else_is_refused() -> None:
    assert early_log_format(None, {}) == "text"
    assert early_log_format(None, {"PERSON_ENRICH_LOG_FORMAT": "json"}) == "json"
    assert early_log_format("text", {"PERSON_ENRICH_LOG_FORMAT": "json"}) == "text"
    assert load_settings({"log_format": "json"}, {}).log_format == "json"
    done = subprocess.run(
        [sys.executable, "-m", "person_enrich_mcp", "--log-format", "yaml", "--sandbox", "check"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and "--log-format" in done.stderr and "'text' or 'json'" in done.stderr


def test_the_cli_writes_json_lines_to_stderr_and_nothing_else_to_stdout() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "person_enrich_mcp", "--log-format", "json", "-v", "--sandbox", "check", "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    json.loads(done.stdout)  # the report, alone on stdout
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert lines and {"embedded sandbox"} <= {line["message"].split(" at ")[0] for line in lines}
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
