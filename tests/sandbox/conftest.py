"""Fixtures for the sandbox tests: real SandboxServers on ephemeral loopback ports, and one key per test.

Every server-providing fixture follows the `revision` fixture ("current" unless a module overrides it, for
example to run its tests against each revision).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import httpx2
import pytest

from person_enrich_mcp.sandbox import SandboxConfig, SandboxServer
from person_enrich_mcp.sandbox.endpoints import Revision
from tests.sandbox.sandbox_helpers import SMALL, FakeClock, ServerFactory, http_client

# Rate limits high enough not to interfere with tests that share a server.
HIGH_LIMITS: dict[str, Any] = {
    f"{name}_rpm": 10_000 for name in ("enrich", "contact", "live", "search", "autocomplete", "account")
}


@pytest.fixture
def revision() -> Revision:
    """The revision the test's servers emulate; modules override it (see `both_revisions`)."""
    return "current"


def _shared_server(revision: Revision) -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(revision=revision, **HIGH_LIMITS)) as server:
        yield server


@pytest.fixture(scope="session")
def current_sandbox() -> Iterator[SandboxServer]:
    """One shared server of today's revision with the default 5,000-person dataset."""
    yield from _shared_server("current")


@pytest.fixture(scope="session")
def overview_sandbox() -> Iterator[SandboxServer]:
    """One shared server of the overview revision (same dataset, built once for both)."""
    yield from _shared_server("overview")


@pytest.fixture
def sandbox(request: pytest.FixtureRequest, revision: Revision) -> SandboxServer:
    """The shared 5,000-person server of the test's revision."""
    server: SandboxServer = request.getfixturevalue(f"{revision}_sandbox")
    return server


@pytest.fixture
def api_key(request: pytest.FixtureRequest) -> str:
    """A key unique to the test, so tests never share a ledger entry or a rate-limit window."""
    return "test-" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:20]


@pytest.fixture
def client(sandbox: SandboxServer, api_key: str) -> Iterator[httpx2.Client]:
    """An HTTP client for the shared server, authenticated with this test's key."""
    with http_client(sandbox.url, api_key) as http:
        yield http


@pytest.fixture
def admin(sandbox: SandboxServer) -> Iterator[httpx2.Client]:
    """An unauthenticated client for the shared server's `/_sandbox/*` endpoints."""
    with http_client(sandbox.url) as http:
        yield http


@pytest.fixture
def make_server(revision: Revision) -> Iterator[ServerFactory]:
    """Start dedicated servers (small dataset unless told otherwise); all are stopped after the test."""
    servers: list[SandboxServer] = []

    def start(**overrides: Any) -> SandboxServer:
        settings: dict[str, Any] = {**SMALL, "revision": revision, **overrides}
        server = SandboxServer(SandboxConfig(**settings)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def _small_world() -> Iterator[tuple[SandboxServer, FakeClock]]:
    clock = FakeClock()
    with SandboxServer(SandboxConfig(**SMALL, clock=clock)) as server:
        yield server, clock


@pytest.fixture
def small(_small_world: tuple[SandboxServer, FakeClock], revision: Revision) -> SandboxServer:
    """A small-dataset server with default settings, shared by a module and reset before each test."""
    server, _clock = _small_world
    with http_client(server.url) as http:
        assert http.post("/_sandbox/reset").status_code == 200
        assert http.post("/_sandbox/config", json={"revision": revision}).status_code == 200
    return server


@pytest.fixture
def small_clock(_small_world: tuple[SandboxServer, FakeClock]) -> FakeClock:
    """The injected clock of the `small` server: advance it to slide rate-limit windows."""
    return _small_world[1]


@pytest.fixture
def configure(small: SandboxServer) -> Callable[..., SandboxServer]:
    """Apply run-time settings (`POST /_sandbox/config`) to the freshly reset `small` server."""

    def apply(**settings: Any) -> SandboxServer:
        with http_client(small.url) as http:
            response = http.post("/_sandbox/config", json=settings)
        assert response.status_code == 200, response.text
        return small

    return apply
