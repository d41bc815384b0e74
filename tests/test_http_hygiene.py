"""Transport hygiene of the HTTP server (issue 12 finding 5, issue 13): a real server subprocess on loopback.

The Host allowlist guards every route; `/metrics` can sit behind a token and names principals only on request;
a connection that does not finish its headers in time is closed, and the connection cap answers 503 instead of
queueing for ever; no verbosity writes request or response bodies; "serving" is said only once the port is
bound, and a port that cannot be bound is one sentence and a non-zero exit; OAuth metadata is published only
when an authorization server is configured.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import anyio
import httpx2
import pytest
from mcp.client.stdio import get_default_environment

from tests.conftest import Upstream, sample_identifiers, text_of
from tests.http_helpers import (
    MCP_ACCEPT,
    HttpServer,
    Scrape,
    free_port,
    legacy_initialize,
    mcp_over_http,
    modern_call,
    modern_headers,
    write_tokens,
)

pytestmark = pytest.mark.parametrize("revision", ["current"], indirect=True)
HEADER_TIMEOUT = 1.0
HALF_OPEN = 200


def _env(upstream: Upstream, tmp_path: Path, **settings: str) -> dict[str, str]:
    return {
        "CRUSTDATA_API_KEY": upstream.key,
        "PERSON_ENRICH_API_BASE_URL": upstream.url,
        "PERSON_ENRICH_TOKENS_FILE": str(tmp_path / "tokens"),
        **{f"PERSON_ENRICH_{name.upper()}": value for name, value in settings.items()},
    }


@pytest.fixture
def tokens(tmp_path: Path) -> dict[str, str]:
    return write_tokens(tmp_path / "tokens", "alice", "bob")


@pytest.fixture
def server(upstream: Upstream, tokens: dict[str, str], tmp_path: Path) -> Iterator[HttpServer]:
    metrics_token = tmp_path / "metrics-token"
    metrics_token.write_text("scrape-me-please\n", encoding="utf-8")
    env = _env(
        upstream,
        tmp_path,
        header_timeout=str(HEADER_TIMEOUT),
        metrics_token_file=str(metrics_token),
    )
    running = HttpServer(env)
    yield running
    running.stop()


# --- the Host allowlist and /metrics ------------------------------------------------------------------------------


def test_every_route_refuses_a_host_that_is_not_allowed(server: HttpServer) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/mcp", "/.well-known/oauth-protected-resource/mcp"):
        assert httpx2.get(f"{server.base}{path}", headers={"host": "evil.example"}).status_code == 421, path
    assert httpx2.get(f"{server.base}/healthz").status_code == 200


def test_metrics_behind_a_token_need_it_and_name_no_principal_by_default(
    server: HttpServer, upstream: Upstream, tokens: dict[str, str]
) -> None:
    async def call() -> None:
        async with mcp_over_http(server.url, tokens["alice"]) as client:
            await client.call_tool(
                "enrich_person_by_url",
                {"professional_network_profile_urls": sample_identifiers(upstream.url, "url", 1, offset=200)},
            )

    anyio.run(call)
    missing = httpx2.get(f"{server.base}/metrics")
    wrong = httpx2.get(f"{server.base}/metrics", headers={"authorization": "Bearer scrape-me"})
    right = httpx2.get(f"{server.base}/metrics", headers={"authorization": "Bearer scrape-me-please"})
    assert (missing.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    assert 'person_enrich_principal_credits_charged_total{principal="p-' in right.text
    assert "alice" not in right.text


@pytest.mark.anyio
async def test_metrics_name_principals_when_the_operator_opts_in(
    upstream: Upstream, tokens: dict[str, str], tmp_path: Path
) -> None:
    running = HttpServer(_env(upstream, tmp_path), "--metrics-principal-names")
    try:
        async with mcp_over_http(running.url, tokens["bob"]) as client:
            await client.call_tool(
                "enrich_person_by_url",
                {"professional_network_profile_urls": sample_identifiers(upstream.url, "url", 1, offset=210)},
            )
        text = httpx2.get(f"{running.base}/metrics").text
    finally:
        running.stop()
    metrics = Scrape.parse(text)
    assert metrics.value("person_enrich_principal_credits_charged_total", principal="bob") == 1
    assert metrics.value("person_enrich_principal_upstream_requests_total", endpoint="enrich", principal="bob") == 1


# --- connections: header deadline and cap ------------------------------------------------------------------------


def _half_open(port: int) -> socket.socket:
    """A connection that starts a request and never finishes its headers."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n")
    return sock


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(max(within, 0.01))
    try:
        return sock.recv(1024) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_connections_that_never_finish_their_headers_are_closed_after_the_deadline(server: HttpServer) -> None:
    opened_at = time.monotonic()
    stalled = [_half_open(server.port) for _ in range(HALF_OPEN)]
    dribbler = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    try:
        meanwhile = httpx2.get(f"{server.base}/healthz").status_code  # the server still answers others
        for byte in b"GET /healthz HTTP/1.1\r\nX-Slow: " + b"a" * 100:  # a byte at a time, never the blank line
            try:
                dribbler.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break  # closed by the server: what the test expects
            if time.monotonic() - opened_at > HEADER_TIMEOUT + 2:
                break
            time.sleep(0.05)  # the dribbling itself: the client under test is this slow on purpose
        deadline = opened_at + HEADER_TIMEOUT + 10
        closed = [_closed_by_server(sock, deadline - time.monotonic()) for sock in [*stalled, dribbler]]
        closed_after = time.monotonic() - opened_at
    finally:
        for sock in [*stalled, dribbler]:
            sock.close()
    assert meanwhile == 200
    assert closed == [True] * (HALF_OPEN + 1), f"{closed.count(False)} connections were still open"
    assert closed_after >= HEADER_TIMEOUT * 0.9


def test_above_the_connection_cap_new_requests_get_503_until_the_stalled_ones_are_closed(
    upstream: Upstream, tokens: dict[str, str], tmp_path: Path
) -> None:
    running = HttpServer(_env(upstream, tmp_path, header_timeout="2", max_connections="8"))
    stalled = [_half_open(running.port) for _ in range(8)]
    try:
        at_cap = httpx2.get(f"{running.base}/healthz").status_code
        deadline = time.monotonic() + 15
        while (status := httpx2.get(f"{running.base}/healthz").status_code) != 200 and time.monotonic() < deadline:
            time.sleep(0.1)  # polling until the header deadline frees the cap, bounded by `deadline`
    finally:
        for sock in stalled:
            sock.close()
        running.stop()
    assert at_cap == 503
    assert status == 200


# --- logs ---------------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_no_verbosity_writes_request_or_response_bodies(
    upstream: Upstream, tokens: dict[str, str], tmp_path: Path
) -> None:
    running = HttpServer(_env(upstream, tmp_path), "-vv", log=tmp_path / "server.log")
    email = sample_identifiers(upstream.url, "email", 1, offset=5)[0]
    try:
        with anyio.fail_after(60):
            async with mcp_over_http(running.url, tokens["alice"], "legacy") as client:
                found = await client.call_tool("enrich_person_by_email", {"business_emails": [email]})
            async with mcp_over_http(running.url, tokens["alice"]) as client:
                again = await client.call_tool("enrich_person_by_email", {"business_emails": [email]})
    finally:
        running.stop()
    log = running.output()
    people = cast(dict[str, Any], found.structured_content)["people"]
    name = people[0]["person_data"]["basic_profile"]["name"]
    assert found.is_error is False and again.is_error is False, text_of(found)
    assert "DEBUG" in log and "upstream" in log  # -vv really was on
    assert email not in log and email.split("@")[0] not in log
    assert name not in log


# --- binding ------------------------------------------------------------------------------------------------------


def test_a_port_in_use_is_one_sentence_and_a_non_zero_exit_and_nothing_claims_to_be_serving(
    upstream: Upstream, tokens: dict[str, str], tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "person_enrich_mcp", "--transport", "http", "--port", str(port)],
            env=get_default_environment() | _env(upstream, tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode != 0
    assert "serving MCP over HTTP" not in done.stderr
    assert len(lines) == 1, done.stderr
    assert str(port) in lines[0] and "already in use" in lines[0] and "--port" in lines[0]


def test_serving_is_said_once_the_port_is_bound(server: HttpServer) -> None:
    assert f"serving MCP over HTTP at http://127.0.0.1:{server.port}/mcp" in server.output()


# --- OAuth metadata only with an authorization server -----------------------------------------------------------


def _challenge(server: HttpServer, token: str | None) -> tuple[int, str]:
    headers = modern_headers("tools/list", token)
    answer = httpx2.post(server.url, json=modern_call("tools/list"), headers=headers)
    return answer.status_code, answer.headers.get("www-authenticate", "")


def test_static_tokens_publish_no_oauth_metadata_and_the_401_asks_for_a_token(server: HttpServer) -> None:
    missing = _challenge(server, None)
    wrong = _challenge(server, "pem_not-a-token")
    legacy = httpx2.post(server.url, json=legacy_initialize(), headers=MCP_ACCEPT)

    assert missing == (401, 'Bearer realm="person-enrich-mcp"')
    assert wrong[0] == 401 and 'error="invalid_token"' in wrong[1] and "token create" in wrong[1]
    assert "resource_metadata" not in wrong[1] + legacy.headers.get("www-authenticate", "")
    for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"):
        assert httpx2.get(f"{server.base}{path}").status_code == 404
    assert "Authorization: Bearer" in legacy.json()["error_description"]


def test_with_an_issuer_the_protected_resource_metadata_names_it(
    upstream: Upstream, tokens: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    env = _env(upstream, tmp_path, auth_issuer="https://auth.example.com", public_url=f"http://127.0.0.1:{port}/mcp")
    running = HttpServer(env, port=port)
    try:
        status, challenge = _challenge(running, None)
        metadata = httpx2.get(f"{running.base}/.well-known/oauth-protected-resource/mcp")
        works = _challenge(running, tokens["alice"])[0]
    finally:
        running.stop()
    assert status == 401
    assert f'resource_metadata="http://127.0.0.1:{port}/.well-known/oauth-protected-resource/mcp"' in challenge
    assert metadata.status_code == 200
    assert metadata.json()["authorization_servers"] == ["https://auth.example.com/"]
    assert metadata.json()["resource"] == f"http://127.0.0.1:{port}/mcp"
    assert works == 200
