"""Streamable HTTP as teams run it: a real server subprocess, real MCP clients, the sandbox upstream."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, cast

import anyio
import httpx2
import pytest

from person_enrich_mcp.http_app import transport_security
from person_enrich_mcp.settings import Settings
from tests.conftest import Upstream, sample_identifiers, text_of
from tests.http_helpers import HttpServer, free_port, mcp_over_http, scrape, write_tokens

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
}
MCP_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


@pytest.fixture
def tokens(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    path = tmp_path / "tokens"
    return path, write_tokens(path, "alice", "bob")


@pytest.fixture
def server(upstream: Upstream, tokens: tuple[Path, dict[str, str]], tmp_path: Path) -> Iterator[HttpServer]:
    env = {
        "CRUSTDATA_API_KEY": upstream.key,
        "PERSON_ENRICH_API_BASE_URL": upstream.url,
        "PERSON_ENRICH_TOKENS_FILE": str(tokens[0]),
        "PERSON_ENRICH_PRINCIPAL_BUDGET": "5",
        "PERSON_ENRICH_SESSION_BUDGET": "4",
        "PERSON_ENRICH_STATE_URL": f"sqlite:///{tmp_path / 'state.db'}",
        "PERSON_ENRICH_ALLOWED_ORIGINS": "https://app.example",
    }
    running = HttpServer(env)
    yield running
    running.stop()


def test_health_readiness_and_metrics_answer_without_a_token(server: HttpServer) -> None:
    assert httpx2.get(f"{server.base}/healthz").json() == {"ok": True}
    ready = httpx2.get(f"{server.base}/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    metrics = httpx2.get(f"{server.base}/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "# TYPE person_enrich_upstream_latency_seconds histogram" in metrics.text


def test_requests_without_a_valid_token_get_401(server: HttpServer, tokens: tuple[Path, dict[str, str]]) -> None:
    missing = httpx2.post(server.url, json=INIT, headers=MCP_HEADERS)
    wrong = httpx2.post(server.url, json=INIT, headers=MCP_HEADERS | {"authorization": "Bearer pem_not-a-token"})
    hashed = hashlib.sha256(tokens[1]["alice"].encode()).hexdigest()  # the stored hash is not a token
    as_hash = httpx2.post(server.url, json=INIT, headers=MCP_HEADERS | {"authorization": f"Bearer {hashed}"})
    assert [r.status_code for r in (missing, wrong, as_hash)] == [401, 401, 401]
    assert "Bearer" in missing.headers["www-authenticate"]


def test_bad_host_bad_origin_and_oversized_bodies_are_refused(
    server: HttpServer, tokens: tuple[Path, dict[str, str]]
) -> None:
    auth = MCP_HEADERS | {"authorization": f"Bearer {tokens[1]['alice']}"}
    host = httpx2.post(server.url, json=INIT, headers=auth | {"host": "evil.example"})
    origin = httpx2.post(server.url, json=INIT, headers=auth | {"origin": "https://evil.example"})
    allowed = httpx2.post(server.url, json=INIT, headers=auth | {"origin": "https://app.example"})
    huge = httpx2.post(server.url, content=b"{" + b" " * 1_100_000 + b"}", headers=auth)
    assert (host.status_code, origin.status_code, allowed.status_code, huge.status_code) == (421, 403, 200, 413)


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_an_authenticated_client_calls_the_tools_in_both_protocol_eras(
    server: HttpServer, upstream: Upstream, tokens: tuple[Path, dict[str, str]], mode: Literal["auto", "legacy"]
) -> None:
    urls = sample_identifiers(upstream.url, "url", 2)
    with anyio.fail_after(60):
        async with mcp_over_http(server.url, tokens[1]["alice"], mode) as client:
            result = await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": urls})
            books = cast(dict[str, Any], (await client.call_tool("get_budget", {})).structured_content)
    assert result.is_error is False, text_of(result)
    assert books["window"]["principal"] == "alice" and books["window"]["limit"] == "5.00"
    assert Decimal(books["spent"]) == upstream.billed() == 2


@pytest.mark.anyio
async def test_a_principal_budget_cannot_be_reset_by_reconnecting(
    server: HttpServer, upstream: Upstream, tokens: tuple[Path, dict[str, str]]
) -> None:
    urls = sample_identifiers(upstream.url, "url", 6, offset=10)
    outcomes: list[bool] = []
    with anyio.fail_after(60):
        for batch in (urls[0:2], urls[2:4], urls[4:6]):  # 2 credits each, three separate legacy sessions
            async with mcp_over_http(server.url, tokens[1]["alice"], "legacy") as client:
                result = await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": batch})
                outcomes.append(result.is_error)
                last = text_of(result)
        async with mcp_over_http(server.url, tokens[1]["bob"], "legacy") as other:
            bob = await other.call_tool("enrich_person_by_url", {"professional_network_profile_urls": urls[4:6]})
    assert outcomes == [False, False, True]
    assert "rolling 24-hour budget" in last and "PERSON_ENRICH_PRINCIPAL_BUDGET" in last
    assert bob.is_error is False  # another principal has a budget of its own
    assert upstream.billed() == 6


@pytest.mark.anyio
async def test_the_clients_token_is_never_sent_upstream(
    server: HttpServer, upstream: Upstream, tokens: tuple[Path, dict[str, str]]
) -> None:
    token = tokens[1]["alice"]
    async with mcp_over_http(server.url, token) as client:
        await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": ["linkedin.com/in/x-y-z"]})
    everything = httpx2.get(f"{upstream.url}/_sandbox/ledger").json()
    assert hashlib.sha256(token.encode()).hexdigest()[:16] not in everything["keys"]
    assert token not in str(upstream.ledger())
    assert upstream.requests("enrich") == {"200": 1}


def test_metrics_count_calls_and_credits(
    server: HttpServer, upstream: Upstream, tokens: tuple[Path, dict[str, str]]
) -> None:
    async def call() -> None:
        async with mcp_over_http(server.url, tokens[1]["bob"]) as client:
            await client.call_tool(
                "enrich_person_by_url",
                {"professional_network_profile_urls": sample_identifiers(upstream.url, "url", 1)},
            )

    anyio.run(call)
    metrics = scrape(server.base)
    assert metrics.value("person_enrich_tool_calls_total", outcome="ok", tool="enrich_person_by_url") == 1
    assert metrics.value("person_enrich_credits_charged_total") == 1
    assert metrics.value("person_enrich_upstream_requests_total", endpoint="enrich", status="200") == 1
    assert metrics.value("person_enrich_upstream_credits_total", endpoint="enrich") == 1
    assert metrics.value("person_enrich_tool_call_duration_seconds_count", tool="enrich_person_by_url") == 1


def test_http_without_tokens_needs_the_explicit_opt_in_and_loopback(upstream: Upstream) -> None:
    import subprocess
    import sys

    from mcp.client.stdio import get_default_environment

    env = get_default_environment() | {"CRUSTDATA_API_KEY": upstream.key}
    base = [sys.executable, "-m", "person_enrich_mcp", "--transport", "http", "--port", str(free_port())]
    plain = subprocess.run(base, env=env, capture_output=True, text=True, timeout=60, check=False)
    exposed = subprocess.run(
        [*base, "--host", "0.0.0.0", "--allow-unauthenticated"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert plain.returncode == 2 and "PERSON_ENRICH_TOKENS_FILE" in plain.stderr
    assert exposed.returncode == 2 and "only allowed on a loopback" in exposed.stderr


@pytest.mark.anyio
async def test_loopback_without_tokens_works_when_explicitly_enabled(upstream: Upstream) -> None:
    env = {"CRUSTDATA_API_KEY": upstream.key, "PERSON_ENRICH_API_BASE_URL": upstream.url}
    running = HttpServer(env, "--allow-unauthenticated")
    try:
        async with mcp_over_http(running.url, None) as client:
            tools = await client.list_tools()
    finally:
        running.stop()
    assert len(tools.tools) == 5


def test_readiness_fails_when_the_state_store_is_unreachable(upstream: Upstream, tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    write_tokens(path, "alice")
    env = {
        "CRUSTDATA_API_KEY": upstream.key,
        "PERSON_ENRICH_TOKENS_FILE": str(path),
        "PERSON_ENRICH_STATE_URL": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
    }
    running = HttpServer(env)
    try:
        ready = httpx2.get(f"{running.base}/readyz", timeout=10)
    finally:
        running.stop()
    assert ready.status_code == 503 and "state store unreachable" in ready.json()["problems"][0]


def test_every_bind_address_gets_host_and_origin_allowlists() -> None:
    settings = Settings(
        allowed_hosts=("mcp.example.com", "10.0.0.5:8000", "fd00:10:244::7"), allowed_origins=("https://app.example",)
    )
    security = transport_security(settings)
    assert security.enable_dns_rebinding_protection
    assert {"mcp.example.com", "mcp.example.com:*", "10.0.0.5:8000", "127.0.0.1:*"} <= set(security.allowed_hosts)
    assert {"[fd00:10:244::7]", "[fd00:10:244::7]:*"} <= set(security.allowed_hosts)  # a pod's IPv6 address
    assert "10.0.0.5:8000:*" not in security.allowed_hosts
    assert "https://app.example" in security.allowed_origins
