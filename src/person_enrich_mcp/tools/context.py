"""What every tool call can reach: the app state built by the server's lifespan, and the session key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult

from person_enrich_mcp.account import AccountService
from person_enrich_mcp.api import PersonAPI
from person_enrich_mcp.budget import Budget, Owner
from person_enrich_mcp.cache import ProfileCache
from person_enrich_mcp.errors import PersonEnrichError
from person_enrich_mcp.privacy.audit import AuditCall, AuditLog, DisabledAudit
from person_enrich_mcp.privacy.guard import OptOuts
from person_enrich_mcp.privacy.policy import FieldPolicy
from person_enrich_mcp.seen import SeenProfiles
from person_enrich_mcp.settings import Settings
from person_enrich_mcp.state import StateStore
from person_enrich_mcp.tools.results import failure


@dataclass(slots=True)
class AppState:
    """Long-lived objects of one server (stdio process, in-memory connection, or HTTP app)."""

    settings: Settings
    api: PersonAPI
    account: AccountService
    store: StateStore
    budget: Budget
    cache: ProfileCache
    seen: SeenProfiles
    process_session: str
    sandbox: bool
    opt_outs: OptOuts
    audit: AuditLog | DisabledAudit
    policy: FieldPolicy


ToolContext = Context[AppState, Any]


def app_state(ctx: ToolContext) -> AppState:
    """The state the server's lifespan yielded."""
    return ctx.request_context.lifespan_context


def owner_of(ctx: ToolContext) -> Owner:
    """Who a call is charged to: its session (the connection, where the protocol has one) and its principal.

    stdio (and the in-memory client) serve one client per process or connection: the process session.
    Over HTTP, a legacy stateful connection has an `Mcp-Session-Id`; the 2026-07-28 protocol has no session,
    so the authenticated principal is the only stable identity and is the session too. Unauthenticated
    HTTP callers (allowed only on loopback, when enabled) share one bucket.
    """
    headers = ctx.headers
    if headers is None:
        return Owner(app_state(ctx).process_session)
    token = get_access_token()
    principal = token.client_id if token is not None else None
    session_id = headers.get("mcp-session-id")
    if session_id:
        return Owner(f"http-session:{session_id}", principal)
    if principal is not None:
        return Owner(f"principal:{principal}", principal)
    return Owner("http-anonymous")


def audit_call(ctx: ToolContext, tool: str) -> AuditCall:
    """The audit records of this tool call, naming its session and principal."""
    owner = owner_of(ctx)
    return app_state(ctx).audit.call(tool, owner.session, owner.principal)


def progress_reporter(ctx: ToolContext) -> Callable[[int, int], Awaitable[None]]:
    """A progress callback for multi-batch work (a no-op when the client asked for no progress)."""

    async def report(done: int, total: int) -> None:
        await ctx.report_progress(done, total, f"enriched {done} of {total}")

    return report


def failed(app: AppState, tool: str, exc: PersonEnrichError, **details: Any) -> CallToolResult:
    """The `isError` result for `exc`, counted in the metrics by tool and error code."""
    app.budget.metrics.inc("person_enrich_tool_calls_total", tool=tool, outcome=exc.code)
    return failure(exc, **details)
