"""What every tool call can reach: the app state built by the server's lifespan, and the session key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import Context

from person_enrich_mcp.api import PersonAPI
from person_enrich_mcp.budget import Budget
from person_enrich_mcp.cache import ProfileCache
from person_enrich_mcp.settings import Settings
from person_enrich_mcp.state import StateStore


@dataclass(slots=True)
class AppState:
    """Long-lived objects of one server (stdio process, in-memory connection, or HTTP app)."""

    settings: Settings
    api: PersonAPI
    store: StateStore
    budget: Budget
    cache: ProfileCache
    process_session: str
    sandbox: bool


ToolContext = Context[AppState, Any]


def app_state(ctx: ToolContext) -> AppState:
    """The state the server's lifespan yielded."""
    return ctx.request_context.lifespan_context


def session_key(ctx: ToolContext) -> str:
    """Who a budget belongs to: the connection where the protocol has one, else the authenticated principal.

    stdio (and the in-memory client) serve one client per process or connection: the process session.
    Over HTTP, a legacy stateful connection has an `Mcp-Session-Id`; the 2026-07-28 protocol has no session,
    so the authenticated principal is the only stable identity. Unauthenticated modern HTTP callers share
    one bucket (the HTTP transport only allows that on loopback).
    """
    headers = ctx.headers
    if headers is None:
        return app_state(ctx).process_session
    session_id = headers.get("mcp-session-id")
    if session_id:
        return f"http-session:{session_id}"
    token = get_access_token()
    if token is not None:
        return f"principal:{token.client_id}"
    return "http-anonymous"


def progress_reporter(ctx: ToolContext) -> Callable[[int, int], Awaitable[None]]:
    """A progress callback for multi-batch work (a no-op when the client asked for no progress)."""

    async def report(done: int, total: int) -> None:
        await ctx.report_progress(done, total, f"enriched {done} of {total}")

    return report
