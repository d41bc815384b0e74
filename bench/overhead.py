"""2. Overhead: a tool call through a real MCP client over stdio, against the same request sent straight upstream.

The cache is off and budgets and rate limits are out of the way, so every tool call goes upstream. The upstream
is the sandbox in a process of its own, as a real upstream is never inside the client. The direct side posts,
with httpx2, the very body the server sent (read back from the sandbox ledger) and parses the JSON answer. The
two sides alternate, in both orders, after a warm-up that is not counted; the difference of the medians is what
the server adds: the stdio hop and the SDK's JSON-RPC, validation, budget, projection and the result.

`mcp_ping_ms_median` is the floor under any tool call: an MCP `ping` round trip over the same connection.
`server_cpu_ms_per_call_N` is the CPU time the server process spent per tool call (its own code and the SDK's),
summed from /proc over all timed calls: it moves with the server's code, not with the machine's other load.
"""

from __future__ import annotations

import json
import time
import warnings
from typing import Any, cast

import anyio
import httpx2
from mcp import Client

from bench.common import (
    SERVER_COMMAND,
    UNLIMITED_RPM_FLAGS,
    Figures,
    SandboxProcess,
    Sizes,
    child_pid,
    cpu_seconds,
    ledger,
    median,
    new_key,
    percentile,
    sample_identifiers,
    server_env,
    stdio_params,
    upstream_headers,
)

COUNTS = (1, 25)


async def run(sizes: Sizes) -> Figures:
    sandbox = SandboxProcess(min(sizes.people, 1000), *UNLIMITED_RPM_FLAGS)  # lookups by URL: size is irrelevant
    try:
        return await _run(sandbox, sizes)
    finally:
        sandbox.close()


async def _run(sandbox: SandboxProcess, sizes: Sizes) -> Figures:
    api = sandbox.url
    key = new_key("overhead")
    env = server_env(api, key, PERSON_ENRICH_CACHE_TTL="0")
    samples: dict[tuple[str, int], list[float]] = {(side, n): [] for side in ("mcp", "direct") for n in COUNTS}
    async with (
        Client(stdio_params(env), mode="legacy", cache=None) as client,
        httpx2.AsyncClient(base_url=api, headers=upstream_headers(new_key("overhead-direct"))) as http,
    ):
        await anyio.to_thread.run_sync(sandbox.wait)  # the server started meanwhile; it connects on first use
        urls = sample_identifiers(api, "url", 25)
        arguments = {n: {"professional_network_profile_urls": urls[:n]} for n in COUNTS}
        for n in COUNTS:
            result = await client.call_tool("enrich_person_by_url", arguments[n])
            if result.is_error or len(cast(dict[str, Any], result.structured_content)["people"]) != n:
                raise RuntimeError(f"overhead: the warm-up call for {n} failed")
        server = child_pid(SERVER_COMMAND, unless="sandbox")
        cpu: dict[int, float] = dict.fromkeys(COUNTS, 0.0)
        recent = cast(list[dict[str, Any]], ledger(api, key)["recent"])
        sent = [r for r in recent if r["endpoint"] == "enrich"]  # not the free account reads before them
        bodies = {n: cast(dict[str, Any], sent[i]["body"]) for i, n in enumerate(COUNTS)}

        async def through_mcp(n: int) -> None:
            result = await client.call_tool("enrich_person_by_url", arguments[n])
            if result.is_error:
                raise RuntimeError("overhead: a tool call failed")

        async def direct(n: int) -> None:
            response = await http.post("/person/enrich", json=bodies[n])
            response.raise_for_status()
            json.loads(response.content)

        async def ping(n: int) -> None:
            del n
            with warnings.catch_warnings():  # ping exists in the handshake era, which is what is measured here
                warnings.simplefilter("ignore")
                await client.send_ping()  # pyright: ignore[reportDeprecated]

        sides = {"mcp": through_mcp, "direct": direct, "ping": ping}
        warm = dict.fromkeys(COUNTS, 0.0)
        samples[("ping", 0)] = []
        for rep in range(sizes.overhead_warmup + sizes.overhead_reps):
            if rep == sizes.overhead_warmup:
                warm = dict(cpu)
            for n in COUNTS:
                for side in ("mcp", "direct") if rep % 2 == 0 else ("direct", "mcp"):
                    used = cpu_seconds(server)  # read outside the timed span
                    started = time.perf_counter()
                    await sides[side](n)
                    elapsed = (time.perf_counter() - started) * 1000
                    if side == "mcp":
                        cpu[n] += cpu_seconds(server) - used
                    if rep >= sizes.overhead_warmup:
                        samples[(side, n)].append(elapsed)
            started = time.perf_counter()
            await ping(0)
            if rep >= sizes.overhead_warmup:
                samples[("ping", 0)].append((time.perf_counter() - started) * 1000)

    figures: Figures = {}
    for n in COUNTS:
        ours, theirs = samples[("mcp", n)], samples[("direct", n)]
        figures[f"overhead_ms_median_{n}"] = median(ours) - median(theirs)
        figures[f"overhead_ms_p95_{n}"] = percentile(ours, 95) - percentile(theirs, 95)
        figures[f"overhead_ratio_median_{n}"] = median(ours) / median(theirs)
        figures[f"overhead_ratio_p95_{n}"] = percentile(ours, 95) / percentile(theirs, 95)
        figures[f"mcp_ms_median_{n}"] = median(ours)
        figures[f"mcp_ms_p95_{n}"] = percentile(ours, 95)
        figures[f"direct_ms_median_{n}"] = median(theirs)
        figures[f"direct_ms_p95_{n}"] = percentile(theirs, 95)
        figures[f"server_cpu_ms_per_call_{n}"] = (cpu[n] - warm[n]) / sizes.overhead_reps * 1000
    figures["mcp_ping_ms_median"] = median(samples[("ping", 0)])
    figures["overhead_samples"] = sizes.overhead_reps
    return figures
