"""6. Tracing: what turning OpenTelemetry tracing on costs, at start-up and per call, against it off (the default).

Cold start: spawn -> `tools/list` over stdio, as in the footprint benchmark, alternating a server without OTEL_*
variables and one exporting over OTLP/HTTP to a local receiver (which answers 200 and counts what it gets).

Per call: two stdio servers side by side, tracing off and on, the cache off so every call goes upstream (the
sandbox in its own process), calls alternating between them after a warm-up. Figures are the median call time and
the server's CPU time per call (from /proc), with the spans exported counted to show tracing really was on.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
from mcp import Client

from bench.common import (
    SERVER_COMMAND,
    UNLIMITED_RPM_FLAGS,
    Figures,
    SandboxProcess,
    Sizes,
    child_pids,
    cpu_seconds,
    median,
    new_key,
    quiet_stdio,
    sample_identifiers,
    server_env,
    stdio_params,
)


class _Receiver:
    """An OTLP/HTTP endpoint on loopback that accepts every export and counts the requests and bytes."""

    def __init__(self) -> None:
        self.exports = 0
        self.bytes = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("content-length", "0"))
                self.rfile.read(size)
                receiver.exports += 1
                receiver.bytes += size
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _children(marker: str) -> set[int]:
    """Pids of this process's children whose command line contains `marker` (not the sandbox's)."""
    return set(child_pids(marker, unless="sandbox"))


async def _cold_start(env: dict[str, str]) -> float:
    started = time.perf_counter()
    async with Client(quiet_stdio(stdio_params(env)), mode="legacy", cache=None) as client:
        tools = await client.list_tools()
    if not tools.tools:
        raise RuntimeError("tracing: no tools listed")
    return (time.perf_counter() - started) * 1000


async def run(sizes: Sizes) -> Figures:
    receiver = _Receiver()
    sandbox = SandboxProcess(min(sizes.people, 1000), *UNLIMITED_RPM_FLAGS)
    try:
        return await _run(sandbox, receiver, sizes)
    finally:
        sandbox.close()
        receiver.close()


async def _run(sandbox: SandboxProcess, receiver: _Receiver, sizes: Sizes) -> Figures:
    await anyio.to_thread.run_sync(sandbox.wait)
    api = sandbox.url
    tracing = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "200"}
    envs = {
        "off": server_env(api, new_key("tracing-off"), PERSON_ENRICH_CACHE_TTL="0"),
        "on": server_env(api, new_key("tracing-on"), PERSON_ENRICH_CACHE_TTL="0") | tracing,
    }
    cold: dict[str, list[float]] = {"off": [], "on": []}
    rounds = max(sizes.cold_rounds, 2)
    for index in range(rounds + 1):  # the first round warms the page cache and is not counted
        for side in ("off", "on") if index % 2 == 0 else ("on", "off"):
            elapsed = await _cold_start(envs[side])
            if index:
                cold[side].append(elapsed)

    url = sample_identifiers(api, "url", 1)
    arguments = {"professional_network_profile_urls": url}
    calls: dict[str, list[float]] = {"off": [], "on": []}
    cpu = {"off": 0.0, "on": 0.0}
    async with Client(quiet_stdio(stdio_params(envs["off"])), mode="legacy", cache=None) as off:
        await off.call_tool("enrich_person_by_url", arguments)
        [off_pid] = _children(SERVER_COMMAND)
        async with Client(quiet_stdio(stdio_params(envs["on"])), mode="legacy", cache=None) as on:
            await on.call_tool("enrich_person_by_url", arguments)
            [on_pid] = _children(SERVER_COMMAND) - {off_pid}
            clients = {"off": (off, off_pid), "on": (on, on_pid)}
            for rep in range(sizes.overhead_warmup + sizes.overhead_reps):
                for side in ("off", "on") if rep % 2 == 0 else ("on", "off"):
                    client, pid = clients[side]
                    used = cpu_seconds(pid)
                    started = time.perf_counter()
                    result = await client.call_tool("enrich_person_by_url", arguments)
                    elapsed = (time.perf_counter() - started) * 1000
                    if result.is_error:
                        raise RuntimeError("tracing: a tool call failed")
                    if rep >= sizes.overhead_warmup:
                        calls[side].append(elapsed)
                        cpu[side] += cpu_seconds(pid) - used
    # Exports went out while the calls ran, in batches; the last batch goes at exit.
    exports = receiver.exports
    reps = sizes.overhead_reps
    return {
        "tracing_cold_start_ms_median_off": median(cold["off"]),
        "tracing_cold_start_ms_median_on": median(cold["on"]),
        "tracing_cold_start_ms_added": median(cold["on"]) - median(cold["off"]),
        "tracing_call_ms_median_off": median(calls["off"]),
        "tracing_call_ms_median_on": median(calls["on"]),
        "tracing_call_ms_added_median": median(calls["on"]) - median(calls["off"]),
        "tracing_server_cpu_ms_per_call_off": cpu["off"] / reps * 1000,
        "tracing_server_cpu_ms_per_call_on": cpu["on"] / reps * 1000,
        "tracing_otlp_exports": exports,
        "tracing_samples": reps,
    }
