"""Crashes: kill -9 the HTTP server in the middle of a multi-batch call, restart it on the same SQLite books.

The upstream may finish (and bill) the batch that was on the wire when the server died; the server never got to
record it. After a restart on the same state file, the dead call's reservation must be reaped into `unverified`
(so every credit the upstream billed is on the books, and nothing is counted as settled that was not), no
reservation may stay open, and the server must serve a new call with exact books.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import anyio
import httpx2
import pytest

from person_enrich_mcp.sandbox import SandboxServer
from tests.conftest import text_of
from tests.http_helpers import HttpServer, mcp_over_http, write_tokens
from tests.reliability_support import (  # canary_guard: autouse, imported to apply here
    ZERO,
    Books,
    Sandbox,
    books,
    canary_guard,  # noqa: F401  # pyright: ignore[reportUnusedImport]
    canary_key,
    faults_applied,
    in_flight,
)

RESERVATION_TTL = 2.0
EVERYONE = {"field": "crustdata_person_id", "type": ">", "value": 0}
LIMIT = 50  # two enrich batches of 25 after the search
QUOTE = Decimal("0.03") * LIMIT + LIMIT  # search 50 × 0.03, then 50 profiles × 1


async def _books_over_http(url: str, token: str) -> Books:
    async with mcp_over_http(url, token) as client:
        return await books(client)


@pytest.mark.slow
@pytest.mark.anyio
async def test_a_server_killed_mid_batch_restarts_with_every_billed_credit_on_the_books_and_nothing_twice(
    make_sandbox: Callable[..., SandboxServer], tmp_path: Path
) -> None:
    sandbox = make_sandbox(people=300, companies=30, rate_limits_enabled=False)
    upstream = Sandbox(sandbox.url, canary_key("crash"))
    token = write_tokens(tmp_path / "tokens", "alice")["alice"]
    env = {
        "CRUSTDATA_API_KEY": upstream.key,
        "PERSON_ENRICH_API_BASE_URL": sandbox.url,
        "PERSON_ENRICH_TOKENS_FILE": str(tmp_path / "tokens"),
        "PERSON_ENRICH_STATE_URL": f"sqlite:///{tmp_path / 'state.db'}",
        "PERSON_ENRICH_SESSION_BUDGET": "200",
        "PERSON_ENRICH_PRINCIPAL_BUDGET": "200",
        "PERSON_ENRICH_CONFIRM_ABOVE": "1000",
        "PERSON_ENRICH_RESERVATION_TTL": str(RESERVATION_TTL),
    }
    upstream.arm(kind="latency", ms=1500, count=2, endpoint="enrich")  # each batch is slow enough to be caught
    victim = HttpServer(env)
    died_under: list[str] = []
    try:
        async with httpx2.AsyncClient(timeout=10) as http:

            async def doomed_call() -> None:
                try:
                    async with mcp_over_http(victim.url, token) as client:
                        await client.call_tool("search_then_enrich", {"filters": EVERYONE, "limit": LIMIT})
                except Exception as exc:  # the server dies under it: the client sees the connection drop
                    died_under.append(type(exc).__name__)

            with anyio.fail_after(60):
                async with anyio.create_task_group() as group:
                    group.start_soon(doomed_call)
                    while await faults_applied(http, sandbox.url) < 1 or await in_flight(http, sandbox.url) < 1:
                        await anyio.sleep(0.01)  # until the first enrich batch is on the wire
                    victim.kill()
                while await in_flight(http, sandbox.url):
                    await anyio.sleep(0.02)  # the upstream finishes (and bills) what it was given
    finally:
        victim.stop()
    billed = upstream.billed()
    assert died_under, "the call finished before the server was killed"
    assert upstream.requests("search") == {"200": 1}
    assert upstream.total_requests("enrich") <= 1, "a batch was sent after the one in flight"

    survivor = HttpServer(env)  # same SQLite file
    try:
        with anyio.fail_after(30):
            while (after := await _books_over_http(survivor.url, token)).reserved != ZERO:
                await anyio.sleep(0.1)  # until the dead call's reservation outlives its TTL and is reaped
            async with mcp_over_http(survivor.url, token) as client:
                fresh = await client.call_tool(
                    "enrich_person_by_url", {"professional_network_profile_urls": upstream.identifiers("url", 2)}
                )
                final = await books(client)
    finally:
        survivor.stop()

    assert Decimal("1.50") <= billed <= QUOTE
    assert after.spent <= billed <= after.spent + after.unverified, f"{after} against {billed} billed"
    assert after.unverified == QUOTE  # the whole dead reservation is held as possibly spent, nothing dropped
    assert after.committed == after.spent + after.unverified  # no reservation is left open
    assert fresh.is_error is False, text_of(fresh)
    assert final.spent - after.spent == upstream.billed() - billed == Decimal(2)  # the new call is exact
    assert final.unverified == after.unverified and final.reserved == ZERO
