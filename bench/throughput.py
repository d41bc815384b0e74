"""3. Throughput at the rate limit: enrich many profiles with the sandbox's enrich limit as the only brake.

Three scenarios run at once, a third of a window apart, each with its own upstream key (the sandbox limits each
key separately):

- `search`: one stdio server, `search_then_enrich` page after page (limit 100, cursors);
- `parallel`: one stdio server, concurrent `enrich_person_by_url` calls of 25;
- `replicas`: three `--transport http` replicas sharing a private redis-server, several MCP clients each.

The sandbox admits `limit` enrich requests per sliding `window`. Its limiter is wrapped to record when it
admitted each request, so the elapsed time is the upstream's own: from the first admitted request to the last.
A sliding window admits at most `limit * (floor(elapsed / window) + 1)` requests over that span (the first
burst counts), and the figure is the number admitted over that bound; 429s come from the sandbox ledger.
"""

from __future__ import annotations

import math
import tempfile
from collections import defaultdict
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, cast

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from bench.common import (
    Figures,
    HttpReplica,
    RedisServer,
    Sizes,
    ledger,
    new_key,
    sample_identifiers,
    server_env,
    stdio_params,
)
from person_enrich_mcp.auth import create_token
from person_enrich_mcp.sandbox import SandboxConfig, SandboxServer
from person_enrich_mcp.sandbox.billing import fingerprint
from person_enrich_mcp.sandbox.ratelimit import RateDecision, RateLimiter

BATCH = 25
PAGE = 100
SCENARIOS = ("search", "parallel", "replicas")
EVERYONE = {"field": "crustdata_person_id", "type": ">", "value": 0}
SORTS = [{"field": "crustdata_person_id", "order": "asc"}]


class RecordingLimiter(RateLimiter):
    """The sandbox's limiter, noting when it admitted each request per (key fingerprint, endpoint)."""

    def __init__(self, limiter: RateLimiter) -> None:
        super().__init__(limiter.clock)
        self.admitted: defaultdict[tuple[str, str], list[float]] = defaultdict(list)

    def check(self, key: str, endpoint: str, limit: int, window: float, enabled: bool = True) -> RateDecision:
        decision = super().check(key, endpoint, limit, window, enabled)
        if decision.allowed:
            self.admitted[(key, endpoint)].append(self.clock())
        return decision


def bound(elapsed: float, limit: int, window: float) -> int:
    """The most requests a sliding window of `limit` per `window` seconds admits within `elapsed` seconds."""
    return limit * (math.floor(elapsed / window) + 1)


async def _drain(session: Client, queue: list[list[str]], done: list[int]) -> None:
    while queue:
        batch = queue.pop()
        result = await session.call_tool("enrich_person_by_url", {"professional_network_profile_urls": batch})
        if result.is_error:
            raise RuntimeError(f"throughput: a call failed: {result.structured_content}")
        done[0] += len(cast(dict[str, Any], result.structured_content)["people"])


async def run(sizes: Sizes) -> Figures:
    limit, window, profiles = sizes.throughput_limit, sizes.throughput_window, sizes.throughput_profiles
    config = SandboxConfig(people=sizes.people, enrich_rpm=limit, search_rpm=100_000, rate_window=window)
    keys = {scenario: new_key(f"throughput-{scenario}") for scenario in SCENARIOS}
    done = {scenario: [0] for scenario in SCENARIOS}
    rate = {
        "PERSON_ENRICH_ENRICH_RPM": str(limit),
        "PERSON_ENRICH_RATE_WINDOW": str(window),
        "PERSON_ENRICH_MAX_WAIT": "600",
        # Pages of 100 default profiles are over the default result cap; trimming would hide enriched people.
        "PERSON_ENRICH_MAX_RESULT_BYTES": "5000000",
    }
    with SandboxServer(config) as sandbox, tempfile.TemporaryDirectory(prefix="bench-tokens-") as workdir:
        recorder = RecordingLimiter(sandbox.state.limiter)
        sandbox.state.limiter = recorder
        api = sandbox.url
        urls = sample_identifiers(api, "url", profiles)
        redis = RedisServer()
        token, line = create_token("bench")
        tokens = Path(workdir, "tokens")
        tokens.write_text(line + "\n")
        replica_env = server_env(
            api,
            keys["replicas"],
            PERSON_ENRICH_STATE_URL=redis.url,
            PERSON_ENRICH_TOKENS_FILE=str(tokens),
            # One principal is the whole load here; its default share (0.5) would hold it to half the limit.
            PERSON_ENRICH_PRINCIPAL_RATE_SHARE="1",
            **rate,
        )
        replicas = [HttpReplica(replica_env) for _ in range(3)]
        try:
            async with AsyncExitStack() as stack:
                search = await stack.enter_async_context(
                    Client(stdio_params(server_env(api, keys["search"], **rate)), mode="legacy", cache=None)
                )
                parallel = await stack.enter_async_context(
                    Client(stdio_params(server_env(api, keys["parallel"], **rate)), mode="legacy", cache=None)
                )
                for replica in replicas:  # they started alongside the two stdio servers
                    await anyio.to_thread.run_sync(replica.wait)
                sessions: list[Client] = []
                for index in range(sizes.replica_clients):
                    http = await stack.enter_async_context(
                        httpx2.AsyncClient(
                            headers={"authorization": f"Bearer {token}"}, timeout=httpx2.Timeout(600, connect=10)
                        )
                    )
                    transport = streamable_http_client(replicas[index % 3].url, http_client=http)
                    sessions.append(await stack.enter_async_context(Client(transport, mode="legacy", cache=None)))

                async def by_search() -> None:
                    cursor: str | None = None
                    for _ in range(math.ceil(profiles / PAGE)):
                        arguments: dict[str, Any] = {"filters": EVERYONE, "sorts": SORTS, "limit": min(PAGE, profiles)}
                        if cursor:
                            arguments["cursor"] = cursor
                        result = await search.call_tool("search_then_enrich", arguments)
                        structured = cast(dict[str, Any], result.structured_content)
                        if result.is_error:
                            raise RuntimeError(f"throughput: search_then_enrich failed: {structured}")
                        done["search"][0] += len(structured["people"])
                        cursor = cast(str | None, structured.get("next_cursor"))

                def batches() -> list[list[str]]:
                    return [urls[i : i + BATCH] for i in range(0, len(urls), BATCH)][::-1]

                async def by_url() -> None:
                    queue = batches()
                    async with anyio.create_task_group() as group:
                        for _ in range(sizes.parallel_calls):
                            group.start_soon(_drain, parallel, queue, done["parallel"])

                async def by_replicas() -> None:
                    queue = batches()
                    async with anyio.create_task_group() as group:
                        for session in sessions:
                            group.start_soon(_drain, session, queue, done["replicas"])

                async def after(delay: float, scenario: Callable[[], Awaitable[None]]) -> None:
                    await anyio.sleep(delay)
                    await scenario()

                # Each scenario has its own key and so its own window; their bursts are spread over a window so
                # that the one sandbox is not asked to admit all three at the same instant.
                async with anyio.create_task_group() as group:
                    for index, scenario in enumerate((by_search, by_url, by_replicas)):
                        group.start_soon(after, index * window / len(SCENARIOS), scenario)
        finally:
            for replica in replicas:
                replica.close()
            redis.close()

        figures: Figures = {}
        ratios: list[float] = []
        rejected = 0
        for scenario, key in keys.items():
            admitted = recorder.admitted[(fingerprint(key), "enrich")]
            elapsed = admitted[-1] - admitted[0]
            most = bound(elapsed, limit, window)
            ideal = window * (math.ceil(len(admitted) / limit) - 1)
            too_many = int(cast(dict[str, Any], ledger(api, key)["requests"]).get("enrich", {}).get("429", 0))
            ratios.append(len(admitted) / most)
            rejected += too_many
            figures[f"throughput_ratio_{scenario}"] = len(admitted) / most
            figures[f"throughput_pacing_{scenario}"] = ideal / elapsed if elapsed else 1.0
            figures[f"throughput_rpm_{scenario}"] = len(admitted) / elapsed * 60 if elapsed else 0.0
            figures[f"throughput_bound_rpm_{scenario}"] = most / elapsed * 60 if elapsed else 0.0
            figures[f"throughput_seconds_{scenario}"] = elapsed
            figures[f"throughput_requests_{scenario}"] = len(admitted)
            figures[f"throughput_profiles_{scenario}"] = done[scenario][0]
            figures[f"upstream_429s_{scenario}"] = too_many
        figures["throughput_ratio"] = min(ratios)
        figures["upstream_429s"] = rejected
        figures["throughput_limit"] = limit
        figures["throughput_window_seconds"] = window
        figures["throughput_profiles_requested"] = profiles
        return figures
