"""Legacy (handshake-era) HTTP sessions per principal: a cap on how many one principal may hold open, and the
books of a session forgotten when it ends.

The SDK caps sessions per server (10,000 by default), so one token could hold them all and lock everyone else
out. Here each principal may hold `max_sessions_per_principal`; the next `initialize` of that principal gets
429, and other principals are unaffected. The SDK already refuses a session id to any credential but the one
that opened it.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import anyio
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, AuthorizationContext
from mcp.server.streamable_http import MCP_SESSION_ID_HEADER, StreamableHTTPServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from person_enrich_mcp.budget import Owner
from person_enrich_mcp.metrics import Metrics
from person_enrich_mcp.tools.context import ANONYMOUS, AppState

logger = logging.getLogger(__name__)


class SessionCapReached(Exception):
    """A principal already holds as many legacy sessions as it may (raised at admission, answered with 429)."""


def _principal(requestor: AuthorizationContext | None) -> str:
    return requestor["client_id"] if requestor is not None else ANONYMOUS


class PrincipalSessionManager(StreamableHTTPSessionManager):
    """The SDK's session manager, with open sessions counted per principal and their books dropped at the end."""

    def __init__(self, app: Any, *, max_per_principal: int, **options: Any) -> None:
        super().__init__(app, **options)
        self.max_per_principal = max_per_principal
        self._owner_of_session: dict[str, str] = {}
        self._open: Counter[str] = Counter()

    def open_sessions(self, principal: str) -> int:
        """How many legacy sessions `principal` holds open now."""
        return self._open[principal]

    def _admit_session(self, requestor: AuthorizationContext | None) -> StreamableHTTPServerTransport | None:
        # Runs under the SDK's session-creation lock: the cap holds even when many `initialize`s race. Nothing is
        # admitted yet, so the exception leaves no state behind; the gate answers it.
        principal = _principal(requestor)
        if self._open[principal] >= self.max_per_principal:
            raise SessionCapReached(principal)
        transport = super()._admit_session(requestor)
        if transport is not None and transport.mcp_session_id is not None:
            self._owner_of_session[transport.mcp_session_id] = principal
            self._open[principal] += 1
        return transport

    async def _discard_session(self, session_id: str, transport: StreamableHTTPServerTransport) -> None:
        principal = self._owner_of_session.pop(session_id, None)  # the SDK may discard a session more than once
        if principal is not None:
            self._open[principal] -= 1
            if self._open[principal] <= 0:
                del self._open[principal]
            await self._forget_books(Owner.legacy(principal, session_id))
        await super()._discard_session(session_id, transport)

    async def _forget_books(self, owner: Owner) -> None:
        state = self._lifespan_state
        if not isinstance(state, AppState):
            return
        with anyio.CancelScope(shield=True):
            try:
                await state.budget.session_ended(owner)
            except Exception:  # the store being down must not stop a session from ending; the books age out
                logger.warning("could not forget the books of an ended session; they will expire", exc_info=True)


def _opens_a_session(scope: Scope) -> bool:
    """A legacy-era POST without a session id: the SDK would open a new session for it."""
    headers = Headers(scope=scope)
    version = headers.get(MCP_PROTOCOL_VERSION_HEADER)
    legacy = version is None or version in HANDSHAKE_PROTOCOL_VERSIONS
    return scope.get("method") == "POST" and legacy and MCP_SESSION_ID_HEADER not in headers


class SessionGate:
    """The ASGI app at `/mcp`: a principal at its cap is told so (429) before a new legacy session is attempted;
    everything else goes to the session manager."""

    def __init__(self, sessions: PrincipalSessionManager, metrics: Metrics) -> None:
        self.sessions = sessions
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _opens_a_session(scope):
            user = scope.get("user")
            principal = user.access_token.client_id if isinstance(user, AuthenticatedUser) else ANONYMOUS
            if self.sessions.open_sessions(principal) >= self.sessions.max_per_principal:
                await self._refuse(principal, scope, receive, send)
                return
            try:
                await self.sessions.handle_request(scope, receive, send)
            except SessionCapReached:  # others of this principal were admitted while this one waited
                await self._refuse(principal, scope, receive, send)
            return
        await self.sessions.handle_request(scope, receive, send)

    async def _refuse(self, principal: str, scope: Scope, receive: Receive, send: Send) -> None:
        cap = self.sessions.max_per_principal
        self._metrics.inc("person_enrich_sessions_refused_total", principal=self._metrics.principal(principal))
        message = (
            f"Too many open sessions for this principal ({cap}): close one (HTTP DELETE) or wait until an idle one "
            "expires; other users are not affected."
        )
        response = JSONResponse(
            {"jsonrpc": "2.0", "id": None, "error": {"code": -32000, "message": message}},
            status_code=429,
            headers={"retry-after": "60"},
        )
        await response(scope, receive, send)
