"""2. Overhead: ours against the pass-through reference (what a user would run instead) and against a raw HTTP call.

Three sides answer the same question in one run, interleaved in a fresh random order every round:

- `ours`: person-enrich-mcp over stdio through a real MCP client, with its cache, budget and receipts on (budgets
  and rate limits high enough never to refuse). Each round asks for people it has never seen, so every call is a
  cache miss that goes upstream and writes the cache: the whole work of a paid call;
- `passthrough`: `bench/passthrough.py`, a thin MCP wrapper on the same SDK that forwards the call and returns the
  upstream's JSON as it is. It is asked for the same information: the sections that hold our default fields (read
  back from the sandbox ledger: the very `fields` ours sent), so both sides send the same upstream request and get
  the same answer, and differ only in what the server does with it;
- `direct`: the same upstream request with httpx2, parsing the JSON answer, no MCP at all.

The upstream is the sandbox in its own process. `latency_ratio_vs_passthrough_N` is ours / pass-through (median
and p95 of each side), `result_bytes_ratio_vs_passthrough` their text content's bytes for the 25-person call (what a
model reads: both send one copy), `server_cpu_ms_per_call_N` / `passthrough_cpu_ms_per_call_N` the CPU time
each server process spent per call (user + system from /proc, summed over the timed calls), which follows the
server's code rather than the machine's other load. The `overhead_ms_*` figures are ours minus direct, and
`mcp_ping_ms_median` / `passthrough_ping_ms_median` the SDK's stdio round trip alone (an MCP `ping`).
"""

from __future__ import annotations

import json
import random
import sys
import time
import warnings
from collections.abc import Awaitable, Callable
from typing import Any, cast

import anyio
import httpx2
from mcp import Client
from mcp.types import TextContent

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
    quiet_stdio,
    sample_identifiers,
    server_env,
    stdio_params,
    upstream_headers,
)

COUNTS = (1, 25)
SIDES = ("ours", "passthrough", "direct")
PASSTHROUGH_MARKER = "bench.passthrough"


def _text_bytes(content: list[Any]) -> int:
    return sum(len(block.text.encode()) for block in content if isinstance(block, TextContent))


async def run(sizes: Sizes) -> Figures:
    rounds = sizes.overhead_warmup + sizes.overhead_reps
    people = rounds * sum(COUNTS) + 2 * max(COUNTS)  # every round asks for people nobody asked for before
    # Some of the dataset's people have no profile URL to look up by (opted out, no handle): a margin.
    sandbox = SandboxProcess(people * 5 // 4 + 100, *UNLIMITED_RPM_FLAGS)
    try:
        return await _run(sandbox, sizes, people)
    finally:
        sandbox.close()


async def _run(sandbox: SandboxProcess, sizes: Sizes, people: int) -> Figures:
    api = sandbox.url
    key = new_key("overhead")
    reference = stdio_params(server_env(api, new_key("passthrough")), sys.executable, ["-m", PASSTHROUGH_MARKER])
    samples: dict[tuple[str, int], list[float]] = {(side, n): [] for side in SIDES for n in COUNTS}
    pings: dict[str, list[float]] = {"ours": [], "passthrough": []}
    async with (
        Client(stdio_params(server_env(api, key)), mode="legacy", cache=None) as ours,
        Client(quiet_stdio(reference), mode="legacy", cache=None) as theirs,
        httpx2.AsyncClient(base_url=api, headers=upstream_headers(new_key("overhead-direct"))) as http,
    ):
        await anyio.to_thread.run_sync(sandbox.wait)  # the servers started meanwhile; they connect on first use
        pool = sample_identifiers(api, "url", people)
        if len(pool) < people:
            raise RuntimeError(f"overhead: the sandbox has {len(pool)} profile URLs, {people} are needed")
        # The warm-up people are asked twice (to learn the sections ours sends); the rounds' people never repeat.
        warm = {n: pool[: max(COUNTS)][:n] for n in COUNTS}
        for n in COUNTS:
            result = await ours.call_tool("enrich_person_by_url", {"professional_network_profile_urls": warm[n]})
            if result.is_error or len(cast(dict[str, Any], result.structured_content)["people"]) != n:
                raise RuntimeError(f"overhead: the warm-up call for {n} failed: {result.content}")
        sent = [r for r in cast(list[dict[str, Any]], ledger(api, key)["recent"]) if r["endpoint"] == "enrich"]
        sections = cast(list[str], sent[-1]["body"]["fields"])
        rng = random.Random(15)
        fresh = iter(pool[max(COUNTS) :])
        ours_pid = child_pid(SERVER_COMMAND, unless="sandbox")
        theirs_pid = child_pid(PASSTHROUGH_MARKER)
        pids = {"ours": ours_pid, "passthrough": theirs_pid}
        cpu = {(side, n): 0.0 for side in pids for n in COUNTS}
        text_bytes: dict[str, int] = {}
        bytes_25 = (0, 0)

        async def call_ours(urls: list[str]) -> None:
            result = await ours.call_tool("enrich_person_by_url", {"professional_network_profile_urls": urls})
            if result.is_error:
                raise RuntimeError(f"overhead: a call of ours failed: {result.content}")
            text_bytes["ours"] = _text_bytes(result.content)

        async def call_passthrough(urls: list[str]) -> None:
            arguments = {"professional_network_profile_urls": urls, "fields": sections}
            result = await theirs.call_tool("enrich_person_by_url", arguments)
            if result.is_error:
                raise RuntimeError(f"overhead: a pass-through call failed: {result.content}")
            text_bytes["passthrough"] = _text_bytes(result.content)

        async def call_direct(urls: list[str]) -> None:
            response = await http.post(
                "/person/enrich", json={"professional_network_profile_urls": urls, "fields": sections}
            )
            response.raise_for_status()
            json.loads(response.content)

        calls: dict[str, Callable[[list[str]], Awaitable[None]]] = {
            "ours": call_ours,
            "passthrough": call_passthrough,
            "direct": call_direct,
        }
        clients = {"ours": ours, "passthrough": theirs}
        for round_ in range(sizes.overhead_warmup + sizes.overhead_reps):
            counted = round_ >= sizes.overhead_warmup
            for n in COUNTS:
                urls = [next(fresh) for _ in range(n)]
                order = list(SIDES)
                rng.shuffle(order)
                for side in order:
                    used = cpu_seconds(pids[side]) if side in pids else 0.0  # read outside the timed span
                    started = time.perf_counter()
                    await calls[side](urls)
                    elapsed = (time.perf_counter() - started) * 1000
                    if counted:
                        samples[(side, n)].append(elapsed)
                        if side in pids:
                            cpu[(side, n)] += cpu_seconds(pids[side]) - used
                if n == max(COUNTS) and counted:
                    bytes_25 = (text_bytes["ours"], text_bytes["passthrough"])
            for side, client in clients.items():
                started = time.perf_counter()
                with warnings.catch_warnings():  # ping exists in the handshake era, which is what is measured here
                    warnings.simplefilter("ignore")
                    await client.send_ping()  # pyright: ignore[reportDeprecated]
                if counted:
                    pings[side].append((time.perf_counter() - started) * 1000)
        # The same 25 people once more, without `fields`: what the pass-through returns by the upstream's default.
        last = pool[max(COUNTS) : 2 * max(COUNTS)]
        plain = await theirs.call_tool("enrich_person_by_url", {"professional_network_profile_urls": last})
        default_bytes = _text_bytes(plain.content)

    reps = sizes.overhead_reps
    figures: Figures = {}
    for n in COUNTS:
        mine, ref, raw = samples[("ours", n)], samples[("passthrough", n)], samples[("direct", n)]
        figures[f"latency_ratio_vs_passthrough_{n}"] = median(mine) / median(ref)
        figures[f"latency_ratio_vs_passthrough_p95_{n}"] = percentile(mine, 95) / percentile(ref, 95)
        figures[f"server_cpu_ms_per_call_{n}"] = cpu[("ours", n)] / reps * 1000
        figures[f"passthrough_cpu_ms_per_call_{n}"] = cpu[("passthrough", n)] / reps * 1000
        figures[f"mcp_ms_median_{n}"] = median(mine)
        figures[f"mcp_ms_p95_{n}"] = percentile(mine, 95)
        figures[f"passthrough_ms_median_{n}"] = median(ref)
        figures[f"passthrough_ms_p95_{n}"] = percentile(ref, 95)
        figures[f"direct_ms_median_{n}"] = median(raw)
        figures[f"direct_ms_p95_{n}"] = percentile(raw, 95)
        figures[f"overhead_ms_median_{n}"] = median(mine) - median(raw)
        figures[f"overhead_ms_p95_{n}"] = percentile(mine, 95) - percentile(raw, 95)
        figures[f"passthrough_overhead_ms_median_{n}"] = median(ref) - median(raw)
    figures["result_bytes_ratio_vs_passthrough"] = bytes_25[0] / bytes_25[1]
    figures["result_bytes_25"] = bytes_25[0]
    figures["result_bytes_25_passthrough"] = bytes_25[1]
    figures["result_bytes_25_passthrough_upstream_default"] = default_bytes
    figures["result_bytes_ratio_vs_passthrough_upstream_default"] = bytes_25[0] / default_bytes
    figures["mcp_ping_ms_median"] = median(pings["ours"])
    figures["passthrough_ping_ms_median"] = median(pings["passthrough"])
    figures["overhead_samples"] = reps
    return figures
