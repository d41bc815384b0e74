"""How long each tool call takes to answer, as the histogram `person_enrich_tool_call_duration_seconds`.

A server middleware, so the time covers everything the client waits for: the confirmation step, rate-limit waits,
every upstream request and the result. Tool names come from the request, so only the server's own tools get a
label of their own; anything else is counted as `unknown` (a client cannot grow the label set).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

from person_enrich_mcp.metrics import Metrics

UNKNOWN_TOOL = "unknown"


class ToolCallTimer:
    """Times `tools/call` requests; every other request passes straight through."""

    def __init__(self, metrics: Metrics, tools: Iterable[str]) -> None:
        self._metrics = metrics
        self._tools = frozenset(tools)

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != "tools/call":
            return await call_next(ctx)
        name = ctx.params.get("name") if ctx.params else None
        tool = name if isinstance(name, str) and name in self._tools else UNKNOWN_TOOL
        started = time.perf_counter()
        try:
            return await call_next(ctx)
        finally:
            self._metrics.observe("person_enrich_tool_call_duration_seconds", time.perf_counter() - started, tool=tool)
