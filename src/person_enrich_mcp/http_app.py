"""Streamable HTTP for teams: bearer-token auth, Host/Origin allowlists, health, readiness and metrics.

`person-enrich-mcp --transport http [--host 127.0.0.1] [--port 8000]` serves both protocol eras the SDK
supports at `/mcp`, plus `/healthz` (liveness), `/readyz` (upstream configuration and state store) and
`/metrics` (Prometheus text). Budgets, reservations and the rate limiter live in the store named by
`PERSON_ENRICH_STATE_URL`, so several replicas behind one load balancer share them through Redis; the profile
cache (person data) stays in each replica's memory unless `PERSON_ENRICH_CACHE_URL` says otherwise. `/readyz`
fails while the opt-out list or the audit log cannot be used (the server refuses every look-up then).
"""

from __future__ import annotations

import ipaddress
import logging
from urllib.parse import urlsplit

import httpx2
import uvicorn
from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import AnyHttpUrl
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from person_enrich_mcp.auth import SCOPE, TokenFileVerifier
from person_enrich_mcp.errors import ConfigurationError, PrivacyUnavailableError
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


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """Host and Origin allowlists, on for every bind address: loopback plus what the operator allows."""
    hosts = [f"{h}:*" for h in _LOOPBACK_HOSTS] + list(_LOOPBACK_HOSTS)
    for host in settings.allowed_hosts:
        hosts.extend([host] if ":" in host.strip("[]").rsplit("]", 1)[-1] else [host, f"{host}:*"])
    origins = [f"http://{h}:*" for h in _LOOPBACK_HOSTS] + [f"http://{h}" for h in _LOOPBACK_HOSTS]
    origins.extend(settings.allowed_origins)
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


def _public_url(settings: Settings, host: str, port: int) -> str:
    if settings.public_url:
        return settings.public_url.rstrip("/")
    shown = "localhost" if host in ("0.0.0.0", "::") or is_loopback(host) else host
    return f"http://{shown}:{port}{MCP_PATH}"


def _auth(settings: Settings, host: str, port: int) -> tuple[TokenFileVerifier | None, AuthSettings | None]:
    """The token verifier and the SDK's auth settings, or neither for explicit loopback-only open access.

    Raises:
        ConfigurationError: when HTTP would be open to the network, or neither tokens nor the opt-in are set.
    """
    if settings.tokens_file:
        verifier = TokenFileVerifier(settings.tokens_file)
        resource = _public_url(settings, host, port)
        parts = urlsplit(resource)
        auth = AuthSettings(
            issuer_url=AnyHttpUrl(f"{parts.scheme}://{parts.netloc}"),
            resource_server_url=AnyHttpUrl(resource),
            required_scopes=[SCOPE],
            validate_token_resource=False,  # static tokens carry no audience; the verifier is the check
        )
        return verifier, auth
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
    return None, None


def _upstream_problem(settings: Settings) -> str | None:
    parts = urlsplit(settings.api_base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "PERSON_ENRICH_API_BASE_URL is not an http(s) URL"
    if settings.api_key is None or not settings.api_key.get_secret_value().strip():
        return "CRUSTDATA_API_KEY is not set"
    return None


def build_http_app(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    transport: httpx2.AsyncBaseTransport | None = None,
) -> Starlette:
    """The ASGI app: MCP at `/mcp` with auth and allowlists, and the operational endpoints.

    Raises:
        ConfigurationError: for an unsafe or incomplete HTTP configuration, or a bad state URL.
    """
    verifier, auth = _auth(settings, host, port)
    privacy = open_privacy(settings)
    store: StateStore = open_store(settings.state_url)
    metrics = Metrics()
    server = build_server(
        settings,
        transport=transport,
        store_factory=lambda: store,
        metrics=metrics,
        token_verifier=verifier,
        auth=auth,
        privacy=privacy,
    )

    @server.custom_route(HEALTH_PATH, methods=["GET"], include_in_schema=False)
    async def healthz(_: Request) -> Response:  # pyright: ignore[reportUnusedFunction]
        return JSONResponse({"ok": True})

    @server.custom_route(READY_PATH, methods=["GET"], include_in_schema=False)
    async def readyz(_: Request) -> Response:  # pyright: ignore[reportUnusedFunction]
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

    @server.custom_route(METRICS_PATH, methods=["GET"], include_in_schema=False)
    async def metrics_endpoint(_: Request) -> Response:  # pyright: ignore[reportUnusedFunction]
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        transport_security=transport_security(settings),
        max_request_body_size=settings.max_body_bytes,
        host=host,
    )


def run_http(settings: Settings, *, host: str, port: int) -> int:
    """Serve until interrupted; returns the exit code.

    Raises:
        ConfigurationError: see `build_http_app`.
    """
    app = build_http_app(settings, host=host, port=port)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        server_header=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=10,
        h11_max_incomplete_event_size=64 * 1024,
    )
    logger.warning("serving MCP over HTTP at http://%s:%d%s", host, port, MCP_PATH)
    uvicorn.Server(config).run()
    return 0
