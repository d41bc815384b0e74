"""What every tool call can reach: the app state built by the server's lifespan, and the session key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from person_enrich_mcp.account import AccountService
from person_enrich_mcp.api import PersonAPI
from person_enrich_mcp.api.limiter import act_for
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
from person_enrich_mcp.tracing import NO_TRACING, Tracer


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
    tracer: Tracer = NO_TRACING


ToolContext = Context[AppState, Any]

# The principal of unauthenticated HTTP (loopback only, by explicit opt-in): every such caller is this one.
# '~' cannot appear in a tokens-file name, so no token holder ever shares these books.
ANONYMOUS = "~anonymous"


def app_state(ctx: ToolContext) -> AppState:
    """The state the server's lifespan yielded, with the profile cache scoped to the caller's principal over HTTP.

    Caches belong to a principal like budgets do: one user's look-ups are never served (or revealed as cached) to
    another. stdio and the in-memory client serve one user, so their cache is the server's own.
    """
    state = ctx.request_context.lifespan_context
    if ctx.headers is None:
        return state
    return replace(state, cache=state.cache.for_principal(_principal()))


def _principal() -> str:
    token = get_access_token()
    return token.client_id if token is not None else ANONYMOUS


def owner_of(ctx: ToolContext) -> Owner:
    """Who a call is charged to: its session and its principal; the call's upstream requests count for that principal.

    stdio (and the in-memory client) serve one client per process or connection: the process session.
    Over HTTP the principal is the token's (or `ANONYMOUS` without auth). A legacy connection's session is its
    `Mcp-Session-Id`, which the SDK's session manager has already checked exists and was opened with this
    principal's credential (else the request got a 404). A 2026-07-28 request has no session, and the SDK
    checks no header on it: any `Mcp-Session-Id` it carries is ignored, and the call is charged to the
    principal's rolling session window.
    """
    headers = ctx.headers
    if headers is None:
        return Owner(app_state(ctx).process_session)
    principal = _principal()
    act_for(principal)
    session_id = headers.get("mcp-session-id")
    if session_id and ctx.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS:
        return Owner.legacy(principal, session_id)
    return Owner.sessionless(principal)


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
