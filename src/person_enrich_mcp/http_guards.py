"""What stands between the network and the HTTP app: the Host allowlist on every route, the bearer-token gate of
`/mcp`, a deadline for request headers, and a listening socket bound before anything says it is serving.
"""

from __future__ import annotations

import asyncio
import errno
import json
import socket
from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from person_enrich_mcp.errors import ConfigurationError

REALM = "person-enrich-mcp"
# What a client without a (valid) token is told: these are static tokens from an operator, not an OAuth flow.
STATIC_TOKEN_HINT = (
    "this server takes a bearer token from its operator (person-enrich-mcp token create NAME): "
    "send it as 'Authorization: Bearer <token>'"
)


def host_allowed(host: str | None, allowed: list[str]) -> bool:
    """Whether a Host header is on the allowlist (exact, or `name:*` for any port), as the SDK's check reads it."""
    if not host:
        return False
    if host in allowed:
        return True
    return any(entry.endswith(":*") and host.startswith(entry[:-1]) for entry in allowed)


class HostAllowlist:
    """421 for a Host that is not allowed, on every route (health, readiness and metrics included)."""

    def __init__(self, app: ASGIApp, allowed_hosts: list[str]) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not host_allowed(Headers(scope=scope).get("host"), self.allowed_hosts):
            await _plain(send, 421, b"Invalid Host header")
            return
        await self.app(scope, receive, send)


class RequireToken:
    """401 for a request without a valid bearer token, 403 without the scope; the rest reach `app`.

    The challenge says what to send. It points at protected-resource metadata (RFC 9728) only when an
    authorization server is configured: with static tokens there is no OAuth flow to start.
    """

    def __init__(self, app: ASGIApp, *, scope: str, resource_metadata_url: str | None) -> None:
        self.app = app
        self.scope = scope
        self.resource_metadata_url = resource_metadata_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        user = scope.get("user")
        if not isinstance(user, AuthenticatedUser):
            sent_one = "authorization" in Headers(scope=scope)
            await self._challenge(send, 401, "invalid_token" if sent_one else None)
            return
        if self.scope not in user.scopes:
            await self._challenge(send, 403, "insufficient_scope")
            return
        await self.app(scope, receive, send)

    async def _challenge(self, send: Send, status: int, error: str | None) -> None:
        if self.resource_metadata_url is not None:
            description = "Authentication required"
            parts = [f'resource_metadata="{self.resource_metadata_url}"']
        else:
            description = f"Authentication required: {STATIC_TOKEN_HINT}"
            parts = [f'realm="{REALM}"']
        if error is not None:  # RFC 6750 §3.1: no error code when the request carried no credentials at all
            parts += [f'error="{error}"', f'error_description="{description}"']
        body = json.dumps({"error": error or "invalid_request", "error_description": description}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", ("Bearer " + ", ".join(parts)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


async def _plain(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def header_deadline_protocol(seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol, closing a connection that takes more than `seconds` to send a request's headers.

    uvicorn has no such timeout: a client that opens a connection and never finishes its headers (or dribbles
    them a byte at a time) would hold the connection, and a slot under the connection cap, for ever.
    """

    class HeaderDeadlineH11(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None
        _armed_cycle: Any = None

        def _arm(self) -> None:
            """Start the clock for the next request's headers (the cycle now current is the one being waited past)."""
            self._disarm()
            self._armed_cycle = self.cycle
            self._deadline = self.loop.call_later(seconds, self._expire)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self) -> None:
            self._deadline = None
            if self.cycle is self._armed_cycle and not self.transport.is_closing():  # still no new request
                self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # pyright: ignore[reportIncompatibleMethodOverride]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._deadline is not None and self.cycle is not self._armed_cycle:  # headers complete
                self._disarm()

        def on_response_complete(self) -> None:
            self._arm()  # before the base class, which may start a pipelined request at once
            super().on_response_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeaderDeadlineH11


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on `host:port`.

    Raises:
        ConfigurationError: one sentence naming the address and what to do, when it cannot be bound.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror:
        raise ConfigurationError(
            f"cannot listen on {host}:{port}: {host!r} is not an address of this machine; pass --host with one "
            "that is (127.0.0.1 for this machine only, 0.0.0.0 for every interface)"
        ) from None
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(2048)
    except OSError as exc:
        listener.close()
        raise ConfigurationError(_bind_problem(host, port, exc)) from None
    return listener


def _bind_problem(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"cannot listen on {host}:{port}: the port is already in use (is another server running there?); stop "
            "that process or pick a free port with --port"
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return (
            f"cannot listen on {host}:{port}: permission denied (ports below 1024 need privileges); use a port "
            "above 1023 with --port, e.g. --port 8000"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"cannot listen on {host}:{port}: {host} is not an address of this machine; pass --host with one that "
            "is (127.0.0.1 for this machine only, 0.0.0.0 for every interface)"
        )
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}; check --host and --port"
