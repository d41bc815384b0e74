"""Who a budget belongs to, over real HTTP with two principals and the sandbox's ledger (issue 12, findings 1-2).

A session is never more than its principal says: a legacy `Mcp-Session-Id` is the SDK's, checked against the
credential that opened it; on a 2026-07-28 request (which has no session) any such header is ignored, so a
principal can neither read nor spend another's session, nor mint budget with made-up ids. Sessionless clients
get the session budget over a rolling window, which recovers on every backend and across a restart.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult

from person_enrich_mcp.state.base import WINDOW_BUCKETS
from tests.conftest import Upstream, sample_identifiers, text_of
from tests.http_helpers import (
    LEGACY_PROTOCOL,
    MCP_ACCEPT,
    HttpServer,
    forged_session_client,
    mcp_over_http,
    write_tokens,
)
from tests.state_fixtures import RedisServer
from tests.state_fixtures import redis_server as redis_server  # re-exported: the session's redis-server

pytestmark = pytest.mark.parametrize("revision", ["current"], indirect=True)

ENRICH = "enrich_person_by_url"
# Room to notice a recovery late on a busy machine; recovering early is what the tests rule out.
SLACK_SECONDS = 20.0
POLL_SECONDS = 0.1
CLOCK_TOLERANCE = 0.05


def _env(upstream: Upstream, tokens_file: Path | None, state_url: str, **settings: str) -> dict[str, str]:
    env = {
        "CRUSTDATA_API_KEY": upstream.key,
        "PERSON_ENRICH_API_BASE_URL": upstream.url,
        "PERSON_ENRICH_STATE_URL": state_url,
        "PERSON_ENRICH_PRINCIPAL_BUDGET": "100",
        **{f"PERSON_ENRICH_{name.upper()}": value for name, value in settings.items()},
    }
    if tokens_file is not None:
        env["PERSON_ENRICH_TOKENS_FILE"] = str(tokens_file)
    return env


def _structured(result: CallToolResult) -> dict[str, Any]:
    return cast(dict[str, Any], result.structured_content)


async def _enrich(client: Client, url: str) -> CallToolResult:
    return await client.call_tool(ENRICH, {"professional_network_profile_urls": [url]})


@pytest.fixture
def team(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    path = tmp_path / "tokens"
    return path, write_tokens(path, "alice", "bob")


# --- finding 2: a session id a principal did not open is never adopted ------------------------------------------


@pytest.mark.anyio
async def test_a_session_id_another_principal_opened_is_refused_or_ignored_never_adopted(
    upstream: Upstream, team: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    path, tokens = team
    server = HttpServer(_env(upstream, path, f"sqlite:///{tmp_path / 'state.db'}", session_budget="10"))
    urls = sample_identifiers(upstream.url, "url", 2, offset=40)
    opened: list[str] = []

    async def remember(response: httpx2.Response) -> None:
        if sid := response.headers.get("mcp-session-id"):
            opened.append(sid)

    alice_http = httpx2.AsyncClient(
        headers={"authorization": f"Bearer {tokens['alice']}"}, event_hooks={"response": [remember]}
    )
    try:
        with anyio.fail_after(90):
            async with (
                alice_http,
                Client(streamable_http_client(server.url, http_client=alice_http), mode="legacy") as alice,
            ):
                paid = await _enrich(alice, urls[0])
                alice_sid = opened[0]
                # Bob presents Alice's session id on a legacy request: the SDK answers as if it did not exist.
                hijack = httpx2.post(
                    server.url,
                    json={
                        "jsonrpc": "2.0",
                        "id": 9,
                        "method": "tools/call",
                        "params": {"name": "get_budget", "arguments": {}},
                    },
                    headers=MCP_ACCEPT
                    | {
                        "authorization": f"Bearer {tokens['bob']}",
                        "mcp-session-id": alice_sid,
                        "mcp-protocol-version": LEGACY_PROTOCOL,
                    },
                )
                # ... and on 2026-07-28 requests, where nothing checks the header: it is ignored.
                async with forged_session_client(server.url, tokens["bob"], lambda: alice_sid) as bob:
                    bob_before = _structured(await bob.call_tool("get_budget", {}))
                    bob_paid = await _enrich(bob, urls[1])
                    bob_after = _structured(await bob.call_tool("get_budget", {}))
                alice_books = _structured(await alice.call_tool("get_budget", {}))
    finally:
        server.stop()
    assert paid.is_error is False and bob_paid.is_error is False, text_of(bob_paid)
    assert hijack.status_code == 404
    assert bob_before["receipts"] == [] and Decimal(bob_before["spent"]) == 0, "Bob read Alice's session"
    assert bob_before["window"]["principal"] == "bob"
    assert Decimal(bob_after["spent"]) == 1 and len(bob_after["receipts"]) == 1
    assert Decimal(alice_books["spent"]) == 1 and len(alice_books["receipts"]) == 1, "Bob was charged to Alice"
    assert upstream.billed() == 2


@pytest.mark.anyio
async def test_a_fresh_random_session_id_on_every_call_mints_no_budget(
    upstream: Upstream, team: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    path, tokens = team
    server = HttpServer(_env(upstream, path, f"sqlite:///{tmp_path / 'state.db'}", session_budget="2"))
    urls = sample_identifiers(upstream.url, "url", 4, offset=60)
    try:
        with anyio.fail_after(90):
            async with forged_session_client(server.url, tokens["alice"], lambda: uuid.uuid4().hex) as alice:
                outcomes = [await _enrich(alice, url) for url in urls[:3]]
            async with mcp_over_http(server.url, tokens["bob"]) as bob:
                other = await _enrich(bob, urls[3])
    finally:
        server.stop()
    assert [r.is_error for r in outcomes] == [False, False, True]
    refusal = text_of(outcomes[2])
    assert "of this client's session budget of 2.00 credits per 1-hour window" in refusal, refusal
    assert "credits free up in" in refusal and "PERSON_ENRICH_SESSION_BUDGET" in refusal
    assert other.is_error is False  # Bob's budget is his own
    assert upstream.billed() == 3


@pytest.mark.anyio
async def test_without_authentication_random_session_ids_still_share_one_session_budget(upstream: Upstream) -> None:
    env = _env(upstream, None, "memory://", session_budget="2")
    server = HttpServer(env, "--allow-unauthenticated")
    urls = sample_identifiers(upstream.url, "url", 3, offset=80)
    try:
        with anyio.fail_after(90):
            async with forged_session_client(server.url, None, lambda: uuid.uuid4().hex) as anyone:
                outcomes = [await _enrich(anyone, url) for url in urls]
    finally:
        server.stop()
    assert [r.is_error for r in outcomes] == [False, False, True]
    assert upstream.billed() == 2


# --- finding 1: a sessionless client's budget rolls over its window ---------------------------------------------

WINDOW = 2.4  # seconds: 24 buckets of 0.1 s
BUCKET = WINDOW / WINDOW_BUCKETS


@pytest.fixture(params=["memory", "sqlite", "redis"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "memory":
        yield "memory://"
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
    else:
        redis: RedisServer = request.getfixturevalue("redis_server")
        redis.flush()
        yield redis.url


async def _until_granted(client: Client, url: str, deadline: float) -> CallToolResult:
    """Call until the budget lets the call through (a refused call spends nothing), within `deadline` seconds."""
    with anyio.fail_after(deadline):
        while True:
            result = await _enrich(client, url)
            if not result.is_error:
                return result
            assert "session budget" in text_of(result), text_of(result)
            await anyio.sleep(POLL_SECONDS)


@pytest.mark.anyio
async def test_a_sessionless_clients_budget_recovers_once_its_window_has_passed(
    upstream: Upstream, team: tuple[Path, dict[str, str]], state_url: str
) -> None:
    path, tokens = team
    env = _env(upstream, path, state_url, session_budget="1", session_window=str(WINDOW))
    server = HttpServer(env)
    urls = sample_identifiers(upstream.url, "url", 3, offset=100)
    try:
        async with mcp_over_http(server.url, tokens["alice"]) as alice:
            spent_at = time.monotonic()
            first = await _enrich(alice, urls[0])
            refused = await _enrich(alice, urls[1])
            again = await _until_granted(alice, urls[1], WINDOW + SLACK_SECONDS)
            recovered_after = time.monotonic() - spent_at
    finally:
        server.stop()
    print(
        f"\nsessionless budget on {state_url.split(':')[0]}: refused, then granted "
        f"{recovered_after:.2f} s after the spend"
    )
    assert first.is_error is False and refused.is_error is True and again.is_error is False
    assert "per 2.4-second window" in text_of(refused), text_of(refused)
    assert recovered_after >= WINDOW - BUCKET - CLOCK_TOLERANCE, f"recovered after {recovered_after:.2f} s"
    assert upstream.billed() == 2


RESTART_WINDOW = 9.6  # seconds: long enough to restart the server inside it on a busy machine


@pytest.mark.anyio
@pytest.mark.parametrize("state_url", ["sqlite", "redis"], indirect=True)
async def test_a_sessionless_clients_spent_budget_survives_a_restart_and_then_recovers(
    upstream: Upstream, team: tuple[Path, dict[str, str]], state_url: str
) -> None:
    path, tokens = team
    env = _env(upstream, path, state_url, session_budget="1", session_window=str(RESTART_WINDOW))
    urls = sample_identifiers(upstream.url, "url", 3, offset=120)
    server = HttpServer(env)
    try:
        async with mcp_over_http(server.url, tokens["alice"]) as alice:
            spent_at = time.monotonic()
            first = await _enrich(alice, urls[0])
    finally:
        server.stop()
    server = HttpServer(env, port=server.port)
    try:
        async with mcp_over_http(server.url, tokens["alice"]) as alice:
            right_after = await _enrich(alice, urls[1])
            checked_after = time.monotonic() - spent_at
            again = await _until_granted(alice, urls[1], RESTART_WINDOW + SLACK_SECONDS)
            recovered_after = time.monotonic() - spent_at
    finally:
        server.stop()
    print(
        f"\nrestart on {state_url.split(':')[0]}: still refused {checked_after:.1f} s after the spend (restart "
        f"included), granted again {recovered_after:.2f} s after it"
    )
    assert first.is_error is False and again.is_error is False
    assert checked_after < RESTART_WINDOW - 2 * BUCKET, f"too slow to tell: the restart took {checked_after:.1f} s"
    assert right_after.is_error is True, "a restart gave the spent budget back"
    assert recovered_after >= RESTART_WINDOW - RESTART_WINDOW / WINDOW_BUCKETS - CLOCK_TOLERANCE
    assert upstream.billed() == 2


@pytest.mark.anyio
async def test_an_ended_legacy_sessions_books_are_forgotten_and_its_spend_stays_with_the_principal(
    upstream: Upstream, team: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    path, tokens = team
    database = tmp_path / "state.db"
    server = HttpServer(_env(upstream, path, f"sqlite:///{database}", session_budget="10"))
    people = sample_identifiers(upstream.url, "url", 3, offset=180)
    try:
        with anyio.fail_after(90):
            for person in people:  # three legacy sessions, one paid call each, each closed by the client
                async with mcp_over_http(server.url, tokens["alice"], "legacy") as alice:
                    assert (await _enrich(alice, person)).is_error is False
            async with mcp_over_http(server.url, tokens["alice"]) as alice:
                books = _structured(await alice.call_tool("get_budget", {}))
    finally:
        server.stop()
    with sqlite3.connect(database) as db:
        receipts = [row[0] for row in db.execute("SELECT DISTINCT account FROM receipts")]
        accounts = {row[0] for row in db.execute("SELECT DISTINCT account FROM spend")}
    assert receipts == [], "an ended session's receipts are kept"
    assert accounts == {"principal:alice"}, "an ended session's books are kept"
    assert Decimal(books["window"]["committed"]) == 3 == upstream.billed()


# --- caches belong to a principal too ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_one_principals_cached_look_ups_are_never_served_or_revealed_to_another(
    upstream: Upstream, team: tuple[Path, dict[str, str]]
) -> None:
    tokens_file, tokens = team
    [url] = sample_identifiers(upstream.url, "url", 1, offset=160)
    server = HttpServer(_env(upstream, tokens_file, "memory://"))
    try:
        with anyio.fail_after(60):
            async with mcp_over_http(server.url, tokens["alice"]) as alice:
                first = _structured(await _enrich(alice, url))
                again = _structured(await _enrich(alice, url))
            async with mcp_over_http(server.url, tokens["bob"]) as bob:
                bobs = _structured(await _enrich(bob, url))
    finally:
        server.stop()
    assert again["people"][0]["cached"] is True and again["receipt"]["charged"] == "0.00"  # Alice's own cache
    # Bob pays for his own look-up, and nothing tells him Alice looked this person up.
    assert "cached" not in bobs["people"][0] and bobs["receipt"]["charged"] == first["receipt"]["charged"] != "0.00"
    assert upstream.billed() == Decimal(first["receipt"]["charged"]) * 2
