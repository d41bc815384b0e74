"""Several replicas sharing Redis: together they never overspend, never cause a 429, and lose no spend record.

A real `redis-server`, the sandbox, and three `person-enrich-mcp --transport http` processes on loopback, driven
by many concurrent MCP clients over HTTP. The sandbox's ledger is the judge.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp.types import CallToolResult

from person_enrich_mcp.sandbox import SandboxServer
from tests.conftest import Upstream, canary_key, data_of, sample_identifiers, text_of
from tests.http_helpers import HttpServer, mcp_over_http, write_tokens
from tests.state_fixtures import RedisServer
from tests.state_fixtures import redis_server as redis_server

BUDGET = Decimal(40)
RPM = 12  # per RATE_WINDOW seconds, at the sandbox and at every replica
RATE_WINDOW = 4.0
RESERVATION_TTL = 2.0
CLIENTS = 12
CALLS_PER_CLIENT = 3

pytestmark = pytest.mark.slow


def _structured(result: CallToolResult) -> dict[str, Any]:
    """Structured content of a success, the facts line of an error (both checked for their shape)."""
    return data_of(result)


@pytest.fixture
def cluster(
    redis_server: RedisServer,
    make_sandbox: Callable[..., SandboxServer],
    tmp_path: Path,
) -> Iterator[tuple[Upstream, list[HttpServer], str]]:
    redis_server.flush()
    sandbox = make_sandbox(people=600, enrich_rpm=RPM, search_rpm=RPM, rate_window=RATE_WINDOW)
    upstream = Upstream(sandbox.url, canary_key("shared-upstream"))
    token = write_tokens(tmp_path / "tokens", "team")["team"]
    env = {
        "CRUSTDATA_API_KEY": upstream.key,
        "PERSON_ENRICH_API_BASE_URL": sandbox.url,
        "PERSON_ENRICH_STATE_URL": redis_server.url,
        "PERSON_ENRICH_TOKENS_FILE": str(tmp_path / "tokens"),
        "PERSON_ENRICH_SESSION_BUDGET": str(BUDGET),
        "PERSON_ENRICH_PRINCIPAL_BUDGET": str(BUDGET),
        "PERSON_ENRICH_CONFIRM_ABOVE": "1000",
        "PERSON_ENRICH_ENRICH_RPM": str(RPM),
        "PERSON_ENRICH_SEARCH_RPM": str(RPM),
        "PERSON_ENRICH_RATE_WINDOW": str(RATE_WINDOW),
        "PERSON_ENRICH_RESERVATION_TTL": str(RESERVATION_TTL),
        "PERSON_ENRICH_MAX_WAIT": "60",
    }
    replicas: list[HttpServer] = []
    try:
        replicas.extend(HttpServer(env) for _ in range(3))
        yield upstream, replicas, token
    finally:
        for replica in replicas:
            replica.stop()


async def _books(url: str, token: str) -> dict[str, Any]:
    async with mcp_over_http(url, token) as client:
        return _structured(await client.call_tool("get_budget", {}))


@pytest.mark.anyio
async def test_replicas_share_one_budget_one_rate_limit_and_the_books(
    cluster: tuple[Upstream, list[HttpServer], str],
) -> None:
    upstream, replicas, token = cluster
    urls = sample_identifiers(upstream.url, "url", CLIENTS * CALLS_PER_CLIENT * 2)
    results: list[CallToolResult] = []

    async def client(index: int) -> None:
        replica = replicas[index % len(replicas)]
        async with mcp_over_http(replica.url, token) as session:
            for call in range(CALLS_PER_CLIENT):
                start = (index * CALLS_PER_CLIENT + call) * 2
                batch = urls[start : start + 2]  # distinct people: no cache hits, every call costs 2
                results.append(
                    await session.call_tool("enrich_person_by_url", {"professional_network_profile_urls": batch})
                )

    with anyio.fail_after(120):
        async with anyio.create_task_group() as group:
            for index in range(CLIENTS):
                group.start_soon(client, index)
        books = await _books(replicas[0].url, token)

    succeeded = [r for r in results if not r.is_error]
    refused = [r for r in results if r.is_error]
    charged = sum((Decimal(_structured(r)["receipt"]["charged"]) for r in succeeded), start=Decimal(0))
    assert len(results) == CLIENTS * CALLS_PER_CLIENT
    assert refused and all(_structured(r)["error"]["code"] == "budget_exceeded" for r in refused), [
        text_of(r) for r in refused if _structured(r)["error"]["code"] != "budget_exceeded"
    ]
    assert charged <= BUDGET
    assert Decimal(books["spent"]) == charged == upstream.billed()
    assert books["reserved"] == "0.00" and books["unverified"] == "0.00"
    requests = upstream.requests("enrich")
    assert "429" not in requests, requests  # the shared limiter kept three replicas under one upstream limit
    assert requests.get("200", 0) == len(succeeded)


@pytest.mark.anyio
async def test_killing_a_replica_mid_call_loses_no_spend_record(
    cluster: tuple[Upstream, list[HttpServer], str],
) -> None:
    upstream, replicas, token = cluster
    victim, survivor = replicas[2], replicas[0]
    urls = sample_identifiers(upstream.url, "url", 2, offset=100)
    slow = {"kind": "latency", "ms": 1500, "count": 1, "endpoint": "enrich"}
    assert upstream.post("/_sandbox/faults", slow).status_code == 200

    async def doomed_call() -> None:
        try:
            async with mcp_over_http(victim.url, token) as session:
                await session.call_tool("enrich_person_by_url", {"professional_network_profile_urls": urls})
        except Exception:  # the replica dies under it; the client sees a dropped connection
            return

    with anyio.fail_after(60):
        async with anyio.create_task_group() as group:
            group.start_soon(doomed_call)
            while httpx2.get(f"{upstream.url}/_sandbox/health").json()["in_flight"] == 0:
                await anyio.sleep(0.01)  # until the replica's request is on the wire
            victim.kill()
        while upstream.billed() == 0:  # the upstream finishes the work and bills it
            await anyio.sleep(0.05)
        while (books := await _books(survivor.url, token))["unverified"] == "0.00":
            await anyio.sleep(0.1)  # until the dead replica's reservation is reaped

    billed = upstream.billed()
    assert billed == 2
    assert Decimal(books["spent"]) == 0  # nothing was settled: the holder died first
    assert Decimal(books["unverified"]) == Decimal(2)  # its whole reservation is counted, not lost
    assert Decimal(books["spent"]) + Decimal(books["unverified"]) >= billed
    assert books["reserved"] == "0.00"
    later = await _books(survivor.url, token)
    assert Decimal(later["remaining"]) == BUDGET - 2
