"""Streamable HTTP for teams: bearer-token auth, Host/Origin allowlists, health, readiness and metrics.

`person-enrich-mcp --transport http [--host 127.0.0.1] [--port 8000]` serves both protocol eras the SDK
supports at `/mcp`, plus `/healthz` (liveness), `/readyz` (upstream configuration and state store) and
`/metrics` (Prometheus text or OpenMetrics, process metrics included, optionally behind a token). Budgets,
reservations and the rate limiter live in the store named by `PERSON_ENRICH_STATE_URL`, so several replicas
behind one load balancer share them through Redis; the profile cache (person data) stays in each replica's
memory unless `PERSON_ENRICH_CACHE_URL` says otherwise. `/readyz` fails while the opt-out list or the audit
log cannot be used (the server refuses every look-up then). Every route checks the Host allowlist; connections
get a header deadline, an idle timeout and a cap (`http_guards`); legacy sessions are capped per principal
(`http_sessions`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx2
import uvicorn
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend
from mcp.server.auth.provider import TokenVerifier
from mcp.server.auth.routes import build_resource_metadata_url, create_protected_resource_routes
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import AnyHttpUrl
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from person_enrich_mcp.auth import SCOPE, TokenFileVerifier
from person_enrich_mcp.errors import ConfigurationError, PrivacyUnavailableError
from person_enrich_mcp.http_guards import REALM, HostAllowlist, RequireToken, bind, header_deadline_protocol
from person_enrich_mcp.http_sessions import PrincipalSessionManager, SessionGate
from person_enrich_mcp.metrics import Metrics
from person_enrich_mcp.privacy.setup import open_privacy
from person_enrich_mcp.server import build_server
from person_enrich_mcp.settings import Settings
from person_enrich_mcp.state import StateStore, open_store

logger = logging.getLogger(__name__)

MCP_PATH = "/mcp"
HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
METRICS_PATH = "/metrics"
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def is_loopback(host: str) -> bool:
    """True for a bind address only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _is_ipv6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """Host and Origin allowlists, on for every bind address: loopback plus what the operator allows."""
    hosts = [f"{h}:*" for h in _LOOPBACK_HOSTS] + list(_LOOPBACK_HOSTS)
    for host in settings.allowed_hosts:
        if _is_ipv6(host):  # a bare IPv6 address (a pod IP, say): the Host header brackets it
            hosts.extend([f"[{host}]", f"[{host}]:*"])
        else:
            hosts.extend([host] if ":" in host.strip("[]").rsplit("]", 1)[-1] else [host, f"{host}:*"])
    origins = [f"http://{h}:*" for h in _LOOPBACK_HOSTS] + [f"http://{h}" for h in _LOOPBACK_HOSTS]
    origins.extend(settings.allowed_origins)
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


def _public_url(settings: Settings, host: str, port: int) -> str:
    if settings.public_url:
        return settings.public_url.rstrip("/")
    shown = "localhost" if host in ("0.0.0.0", "::") or is_loopback(host) else host
    return f"http://{shown}:{port}{MCP_PATH}"


@dataclass(frozen=True, slots=True)
class AuthSetup:
    """How `/mcp` is protected: the token verifier, and the authorization server's issuer when there is one."""

    verifier: TokenVerifier
    issuer: str | None
    resource_url: str


def _auth(settings: Settings, host: str, port: int) -> AuthSetup | None:
    """The token verifier (and OAuth issuer, if configured), or None for explicit loopback-only open access.

    Raises:
        ConfigurationError: when HTTP would be open to the network, or neither tokens nor the opt-in are set.
    """
    if settings.tokens_file:
        if settings.auth_issuer is not None:
            parts = urlsplit(settings.auth_issuer)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ConfigurationError("PERSON_ENRICH_AUTH_ISSUER must be the authorization server's https URL")
        verifier = TokenFileVerifier(settings.tokens_file)
        return AuthSetup(verifier, settings.auth_issuer, _public_url(settings, host, port))
    if not settings.allow_unauthenticated:
        raise ConfigurationError(
            "HTTP needs bearer tokens: set PERSON_ENRICH_TOKENS_FILE (add lines with `person-enrich-mcp token "
            "create NAME`), or pass --allow-unauthenticated to serve without them on loopback only."
        )
    if not is_loopback(host):
        raise ConfigurationError(
            f"--allow-unauthenticated is refused on {host}: unauthenticated HTTP is only allowed on a loopback "
            "address. Set PERSON_ENRICH_TOKENS_FILE to serve the network."
        )
    logger.warning("serving HTTP without authentication on %s (loopback only)", host)
    return None


def _upstream_problem(settings: Settings) -> str | None:
    parts = urlsplit(settings.api_base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "PERSON_ENRICH_API_BASE_URL is not an http(s) URL"
    if settings.api_key is None or not settings.api_key.get_secret_value().strip():
        return "CRUSTDATA_API_KEY is not set"
    return None


class MetricsGate:
    """`/metrics`, open, or behind the bearer token in `PERSON_ENRICH_METRICS_TOKEN_FILE` (re-read each time;
    a file that cannot be read lets nobody in)."""

    def __init__(self, metrics: Metrics, token_file: str | None) -> None:
        self._metrics = metrics
        self._token_file = Path(token_file) if token_file else None

    def _allowed(self, request: Request) -> bool:
        if self._token_file is None:
            return True
        try:
            expected = self._token_file.read_text(encoding="utf-8").strip()
        except OSError:
            return False
        presented = request.headers.get("authorization", "")
        scheme, _, token = presented.partition(" ")
        if not expected or scheme.lower() != "bearer":
            return False
        digest = hashlib.sha256(token.strip().encode()).digest()
        return hmac.compare_digest(digest, hashlib.sha256(expected.encode()).digest())

    async def respond(self, request: Request) -> Response:
        """The metrics, or 401."""
        if not self._allowed(request):
            return PlainTextResponse(
                "metrics need 'Authorization: Bearer <the token in PERSON_ENRICH_METRICS_TOKEN_FILE>'",
                status_code=401,
                headers={"www-authenticate": f'Bearer realm="{REALM}-metrics"'},
            )
        body, content_type = self._metrics.exposition(request.headers.get("accept"))
        return Response(body, headers={"content-type": content_type})


def build_http_app(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    transport: httpx2.AsyncBaseTransport | None = None,
    store: StateStore | None = None,
) -> Starlette:
    """The ASGI app: MCP at `/mcp` with auth and allowlists, and the operational endpoints.

    `store` replaces the one `PERSON_ENRICH_STATE_URL` names (the benchmarks wrap it to count its calls).

    Raises:
        ConfigurationError: for an unsafe or incomplete HTTP configuration, a bad state URL, or a multi-process
            metrics directory that does not exist.
    """
    auth = _auth(settings, host, port)
    privacy = open_privacy(settings)
    if store is None:
        store = open_store(settings.state_url)
    shared = settings.metrics_multiprocess_dir
    if shared is not None and not Path(shared).is_dir():
        raise ConfigurationError(
            f"PROMETHEUS_MULTIPROC_DIR={shared} is not a directory: create it (empty) before the workers start, or "
            "unset it to serve this process's metrics alone"
        )
    metrics = Metrics(principal_names=settings.metrics_principal_names, multiprocess_dir=shared)
    server = build_server(settings, transport=transport, store_factory=lambda: store, metrics=metrics, privacy=privacy)
    security = transport_security(settings)
    # The SDK builds its session manager inside `streamable_http_app()`, with no seam for a per-principal cap:
    # the same app is assembled here around our manager, from the SDK's public parts.
    lowlevel = server._lowlevel_server  # pyright: ignore[reportPrivateUsage]
    sessions = PrincipalSessionManager(
        lowlevel,
        max_per_principal=settings.max_sessions_per_principal,
        security_settings=security,
        max_request_body_size=settings.max_body_bytes,
        session_idle_timeout=settings.session_idle_seconds,
    )

    async def healthz(_: Request) -> Response:
        return JSONResponse({"ok": True})

    async def readyz(_: Request) -> Response:
        problems: list[str] = []
        upstream = _upstream_problem(settings)
        if upstream:
            problems.append(upstream)
        try:
            await store.ping()
        except Exception as exc:  # any failure to reach the store means "not ready", whatever the backend
            problems.append(f"state store unreachable ({type(exc).__name__})")
        try:  # a server that refuses every look-up (fail closed) should not be sent traffic
            privacy.opt_outs.require()
        except PrivacyUnavailableError:
            problems.append("opt-out list unreadable (PERSON_ENRICH_SUPPRESSION_FILE)")
        try:
            privacy.audit.require()
        except PrivacyUnavailableError:
            problems.append("audit log unwritable (PERSON_ENRICH_AUDIT_LOG)")
        return JSONResponse({"ready": not problems, "problems": problems}, status_code=503 if problems else 200)

    mcp_endpoint: ASGIApp = SessionGate(sessions, metrics)
    middleware = [Middleware(HostAllowlist, allowed_hosts=security.allowed_hosts)]
    routes: list[BaseRoute] = []
    if auth is not None:
        resource_metadata: str | None = None
        if auth.issuer is not None:
            resource = AnyHttpUrl(auth.resource_url)
            resource_metadata = str(build_resource_metadata_url(resource))
            routes.extend(
                create_protected_resource_routes(
                    resource_url=resource, authorization_servers=[AnyHttpUrl(auth.issuer)], scopes_supported=[SCOPE]
                )
            )
        mcp_endpoint = RequireToken(mcp_endpoint, scope=SCOPE, resource_metadata_url=resource_metadata)
        middleware += [
            Middleware(AuthenticationMiddleware, backend=BearerAuthBackend(auth.verifier)),
            Middleware(AuthContextMiddleware),
        ]
    routes += [
        Route(MCP_PATH, endpoint=mcp_endpoint),
        Route(HEALTH_PATH, healthz, methods=["GET"]),
        Route(READY_PATH, readyz, methods=["GET"]),
        Route(METRICS_PATH, MetricsGate(metrics, settings.metrics_token_file).respond, methods=["GET"]),
    ]
    return Starlette(routes=routes, middleware=middleware, lifespan=lambda _: sessions.run())


def run_http(settings: Settings, *, host: str, port: int) -> int:
    """Serve until interrupted; returns the exit code.

    Raises:
        ConfigurationError: see `build_http_app`; and when the address cannot be bound (one sentence: the port
            and what to do).
    """
    app = build_http_app(settings, host=host, port=port)
    listener = bind(host, port)
    shown = f"[{host}]" if ":" in host else host
    logger.warning("serving MCP over HTTP at http://%s:%d%s", shown, port, MCP_PATH)
    uvicorn.Server(uvicorn_config(app, settings)).run(sockets=[listener])
    return 0


def uvicorn_config(app: ASGIApp, settings: Settings) -> uvicorn.Config:
    """How uvicorn serves the app: header deadline, keep-alive, connection cap, quiet logs."""
    return uvicorn.Config(
        app,
        log_level="warning",
        log_config=None,  # uvicorn's lines go through the server's own handler, in its format (text or JSON)
        access_log=False,
        server_header=False,
        http=header_deadline_protocol(settings.header_timeout_seconds),
        timeout_keep_alive=settings.keepalive_timeout_seconds,
        limit_concurrency=settings.max_connections,
        timeout_graceful_shutdown=10,
        h11_max_incomplete_event_size=64 * 1024,
    )
