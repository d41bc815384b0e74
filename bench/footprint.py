"""5. Cold start and footprint, paired with the reference server `mcp-server-fetch` in the same run.

Cold start: from spawning a server over stdio to the answer of `tools/list`, with a real MCP client (the
initialize handshake, as both servers' existing clients speak it). Spawns alternate between the two servers;
one warm-up spawn of each is not counted (it writes bytecode caches), and medians are compared.

Footprint: resident memory (VmRSS) at idle after start, after a warm-up of calls, and after all calls. Our
calls are mostly cache hits with a miss every tenth call (upstream is the sandbox, rate limits off); the
reference fetches a small local page. The growth ratio is RSS after all calls over RSS after the warm-up.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.client import Transport

from bench.common import (
    ROOT,
    SERVER_COMMAND,
    Figures,
    Sizes,
    child_pid,
    median,
    new_key,
    quiet_stdio,
    rss_kib,
    sample_identifiers,
    server_env,
    stdio_params,
)
from bench.context import SELECTION_FIELDS
from person_enrich_mcp.sandbox import SandboxServer

REFERENCE_SPEC = "mcp-server-fetch==2026.10.24"
REFERENCE_VENV = ROOT / "bench" / ".venv-ref"
REFERENCE_COMMAND = str(REFERENCE_VENV / "bin" / "mcp-server-fetch")
_MARKER = REFERENCE_VENV / "bench-reference.txt"
IDLE_SETTLE_SECONDS = 0.5


def ensure_reference() -> None:
    """Create `bench/.venv-ref` with the pinned reference server (once; about half a minute)."""
    if Path(REFERENCE_COMMAND).exists() and _MARKER.exists() and _MARKER.read_text().strip() == REFERENCE_SPEC:
        return
    print(f"bench: installing {REFERENCE_SPEC} into {REFERENCE_VENV} (once)", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(REFERENCE_VENV)], check=True)
    pip = [str(REFERENCE_VENV / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    done = subprocess.run([*pip, REFERENCE_SPEC], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"could not install {REFERENCE_SPEC}: {done.stderr[-2000:]}")
    _MARKER.write_text(REFERENCE_SPEC + "\n")


def _reference() -> Transport:
    # Loopback fetches for the footprint calls need both flags; neither changes start-up.
    return quiet_stdio(stdio_params({}, REFERENCE_COMMAND, ["--ignore-robots-txt", "--allow-private-ips"]))


@dataclass
class Footprint:
    """VmRSS (MiB) of one server: at idle after start, after the warm-up calls, after all calls."""

    idle: float = 0.0
    warm: float = 0.0
    after: float = 0.0


Call = Callable[[Client, int], Awaitable[None]]


async def _spawn(
    transport: Transport, marker: str, calls: int, warmup: int, call: Call | None
) -> tuple[float, Footprint]:
    """Spawn, time spawn -> tools/list (ms), then, with `call`, measure the footprint over `calls` calls."""
    started = time.perf_counter()
    footprint = Footprint()
    async with Client(transport, mode="legacy", cache=None) as client:
        tools = await client.list_tools()
        elapsed = (time.perf_counter() - started) * 1000
        if not tools.tools:
            raise RuntimeError("cold start: no tools listed")
        if call is not None:
            await anyio.sleep(IDLE_SETTLE_SECONDS)
            pid = child_pid(marker)
            footprint.idle = footprint.warm = rss_kib(pid) / 1024
            for index in range(calls):
                await call(client, index)
                if index + 1 == warmup:
                    footprint.warm = rss_kib(pid) / 1024
            await anyio.sleep(IDLE_SETTLE_SECONDS)
            footprint.after = rss_kib(pid) / 1024
    return elapsed, footprint


async def run(sandbox: SandboxServer, sizes: Sizes) -> Figures:
    api = sandbox.url
    ensure_reference()
    pool = sample_identifiers(api, "url", 100)
    misses = sample_identifiers(api, "url", sizes.rss_calls // 10 + 1, offset=len(pool))
    rng = random.Random(7)

    async def our_call(client: Client, index: int) -> None:
        urls = [misses[index // 10]] if index % 10 == 9 else rng.sample(pool, rng.randint(1, 3))
        arguments: dict[str, Any] = {"professional_network_profile_urls": urls}
        if index % 4 == 3:
            arguments["fields"] = list(SELECTION_FIELDS)
        if (await client.call_tool("enrich_person_by_url", arguments)).is_error:
            raise RuntimeError("footprint: a tool call failed")

    async def reference_call(client: Client, index: int) -> None:
        del index
        result = await client.call_tool("fetch", {"url": f"{api}/_sandbox/health", "max_length": 500})
        if result.is_error:
            raise RuntimeError(f"footprint: the reference's fetch failed: {result.content}")

    ours_params = stdio_params(server_env(api, new_key("footprint")))
    ours: list[float] = []
    theirs: list[float] = []
    mine, reference = Footprint(), Footprint()
    # Bytecode is written before the run (`compile_sources`); a long run also discards one round of spawns, which
    # warms the page cache for both servers alike.
    warmup = 1 if sizes.cold_rounds >= 4 else 0
    rounds = sizes.cold_rounds + warmup
    for round_ in range(rounds):
        last = round_ == rounds - 1  # the last spawn of each goes on to the footprint calls
        pair = ("ours", "reference") if round_ % 2 == 0 else ("reference", "ours")
        for which in pair:
            if which == "ours":
                elapsed, seen = await _spawn(
                    quiet_stdio(ours_params),
                    SERVER_COMMAND,
                    sizes.rss_calls,
                    sizes.rss_warmup,
                    our_call if last else None,
                )
                times, mine = ours, seen if last else mine
            else:
                elapsed, seen = await _spawn(
                    _reference(),
                    REFERENCE_COMMAND,
                    sizes.rss_calls_reference,
                    sizes.rss_warmup,
                    reference_call if last else None,
                )
                times, reference = theirs, seen if last else reference
            if round_ >= warmup:
                times.append(elapsed)
    idle, warm, after = mine.idle, mine.warm, mine.after
    ref_idle, ref_warm, ref_after = reference.idle, reference.warm, reference.after
    return {
        "cold_start_ratio_vs_reference": median(ours) / median(theirs),
        "cold_start_ms_median": median(ours),
        "cold_start_ms_median_reference": median(theirs),
        "cold_start_rounds": len(ours),
        "rss_growth_ratio": after / warm,
        "rss_idle_mib": idle,
        "rss_after_warmup_mib": warm,
        "rss_after_calls_mib": after,
        "rss_calls": sizes.rss_calls,
        "rss_idle_ratio_vs_reference": idle / ref_idle,
        "rss_idle_mib_reference": ref_idle,
        "rss_after_calls_mib_reference": ref_after,
        "rss_growth_ratio_reference": ref_after / ref_warm,
        "rss_calls_reference": sizes.rss_calls_reference,
    }
