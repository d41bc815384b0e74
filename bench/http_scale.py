"""6. The team server at scale (`bench/run --http`): replicas over streamable HTTP, Redis, many sessions.

Everything is real and on loopback: the sandbox in its own process (rate limits off), a private `redis-server`, and
`person-enrich-mcp --transport http` replicas sharing it (`PERSON_ENRICH_STATE_URL` on Redis,
`PERSON_ENRICH_CACHE_URL=shared` so a profile one replica fetched is a hit on the others, bearer tokens,
`PERSON_ENRICH_PRINCIPAL_RATE_SHARE=1` since one principal is the whole load). The clients speak raw JSON-RPC over
httpx2, half of the sessions in each era: handshake-era (legacy) sessions `initialize` once and carry
`Mcp-Session-Id`; 2026-07-28 (modern) ones send the envelope `_meta` and the `Mcp-Method` header on every call.
Every call is `enrich_person_by_url` with one profile URL; a call counts only if its result is not an error.

- `http_calls_per_second_hit` / `_miss`: one replica, `throughput_sessions` sessions calling back to back (closed
  loop) for `throughput_seconds`, median of `repeats` runs. Hits: people the principal already looked up; misses:
  people never looked up before, so each call reserves, goes upstream, settles and writes the cache.
  `http_cpu_ms_per_call_hit` / `_miss` is the replica's CPU time per call over those runs.
- `http_p50_ms_N_sessions` / `http_p99_ms_N_sessions` (N = 1, 50, 200): one replica, cache hits, at one offered
  load that does not depend on N: half of the hit capacity just measured (`LOAD_FRACTION`), spread over N sessions
  that each call at random (exponential) intervals; one session calls back to back with a pause of the same mean.
  What grows with N is then what N open sessions cost, not the queue of a saturated server.
- `http_rss_kb_per_session`: VmRSS of a fresh replica after opening `rss_sessions` idle legacy sessions
  (`initialize` and `notifications/initialized`, then nothing), minus VmRSS after 20 warm-up sessions, per session.
- `store_round_trips_per_call`: state-store calls per tool call, counted by `bench/counting_store.py` in a replica
  started as `python -m bench.replica` (the same app with its store wrapped); a miss of one URL, the worse era.
  Each call of the Redis store is one round trip (one command, script or pipeline). Hit and per-method figures too,
  and the same for calls of 25 URLs (`_25`), with their latency (`http_ms_median_25_<miss|hit>`, one at a time).
- `http_scaling_efficiency_3`: calls/s of three replicas over three times the calls/s of one, on misses, with the
  upstream's latency as the bottleneck: the sandbox delays every enrich answer by `UPSTREAM_LATENCY_MS`, and each
  replica gets the same `scaling_sessions_per_replica` closed-loop sessions. Each replica then serves at most
  sessions / latency calls/s; what is left to lose is the shared parts (Redis, the sandbox, the client, 2 cores).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import anyio
import httpx2

from bench.common import (
    UNLIMITED_RPM_FLAGS,
    Figures,
    HttpReplica,
    RedisServer,
    SandboxProcess,
    cpu_seconds,
    median,
    new_key,
    percentile,
    rss_kib,
    sample_identifiers,
    server_env,
)
from bench.replica import COUNTS_PATH
from person_enrich_mcp.auth import create_token

Era = Literal["legacy", "modern"]
LEGACY = "2025-11-25"
MODERN = "2026-07-28"
ACCEPT = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
TOOL = "enrich_person_by_url"
LOAD_FRACTION = 0.5
LATENCY_SESSIONS = (1, 50, 200)
UPSTREAM_LATENCY_MS = 400
RSS_WARM_SESSIONS = 20
ROUND_TRIP_CALLS = 20
BATCH = 25  # the most identifiers one call takes
BATCH_CALLS = 4
SETTLE_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class HttpSizes:
    """How much work `--http` does in one mode."""

    people: int
    repeats: int
    throughput_sessions: int
    throughput_seconds: float
    latency_seconds: float
    rss_sessions: int
    scaling_sessions_per_replica: int
    scaling_seconds: float


HTTP_SIZES: dict[str, HttpSizes] = {
    "full": HttpSizes(12_000, 5, 16, 6.0, 12.0, 1000, 8, 8.0),
    "quick": HttpSizes(6_000, 3, 16, 4.0, 6.0, 1000, 8, 5.0),
    "smoke": HttpSizes(2_000, 1, 4, 1.0, 1.0, 100, 2, 1.5),
}


def _rpc(method: str, params: dict[str, Any], request_id: int, era: Era) -> dict[str, Any]:
    if era == "modern":
        meta = {
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "0"},
            "io.modelcontextprotocol/clientCapabilities": {},
        }
        params = {**params, "_meta": meta}
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def _message(response: httpx2.Response) -> dict[str, Any]:
    """The JSON-RPC answer, whether sent as JSON or as an SSE stream (its last data event)."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        events = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
        return cast(dict[str, Any], json.loads([e for e in events if e][-1]))
    return cast(dict[str, Any], response.json())


class Session:
    """One MCP client session over raw HTTP: a legacy session (after `open`) or a modern, sessionless caller."""

    def __init__(self, http: httpx2.AsyncClient, url: str, era: Era) -> None:
        self.http, self.url = http, url
        self.era: Era = era
        self.headers: dict[str, str] = dict(ACCEPT)
        self._ids = itertools.count(1)

    async def open(self) -> None:
        """The handshake of a legacy session (nothing for a modern one).

        Raises:
            RuntimeError: when the server refuses it.
        """
        if self.era == "modern":
            self.headers |= {"mcp-protocol-version": MODERN, "mcp-method": "tools/call", "mcp-name": TOOL}
            return
        params = {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}
        response = await self.http.post(self.url, json=_rpc("initialize", params, 0, "legacy"), headers=self.headers)
        session_id = response.headers.get("mcp-session-id")
        if response.status_code != 200 or not session_id:
            raise RuntimeError(f"http: initialize answered {response.status_code}: {response.text[:300]}")
        self.headers |= {"mcp-session-id": session_id, "mcp-protocol-version": LEGACY}
        done = await self.http.post(
            self.url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=self.headers
        )
        if done.status_code >= 300:
            raise RuntimeError(f"http: notifications/initialized answered {done.status_code}")

    async def call(self, url: str | list[str]) -> float:
        """One `enrich_person_by_url` of `url` (or of a list of them); its latency in ms.

        Raises:
            RuntimeError: for an HTTP error or a tool error.
        """
        urls = [url] if isinstance(url, str) else url
        body = _rpc("tools/call", {"name": TOOL, "arguments": {"professional_network_profile_urls": urls}},
                    next(self._ids), self.era)  # fmt: skip
        started = time.perf_counter()
        response = await self.http.post(self.url, json=body, headers=self.headers)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"http: tools/call answered {response.status_code}: {response.text[:300]}")
        result = cast(dict[str, Any], _message(response).get("result") or {})
        if result.get("isError") or "structuredContent" not in result:
            raise RuntimeError(f"http: the tool failed: {json.dumps(result)[:300]}")
        return elapsed


class Clients:
    """The HTTP clients of the bench's users: one per session, as each user runs a client of their own (one
    pool shared by hundreds of sessions would scan every connection on each request and time the bench)."""

    def __init__(self, token: str) -> None:
        self.headers = {"authorization": f"Bearer {token}"}
        self._open: list[httpx2.AsyncClient] = []

    def new(self, connections: int = 1) -> httpx2.AsyncClient:
        """A client of its own (closed with the others)."""
        limits = httpx2.Limits(max_connections=connections, max_keepalive_connections=connections)
        client = httpx2.AsyncClient(headers=self.headers, limits=limits, timeout=httpx2.Timeout(120, connect=10))
        self._open.append(client)
        return client

    async def aclose(self) -> None:
        for client in self._open:
            await client.aclose()
        self._open.clear()


@asynccontextmanager
async def _clients(token: str) -> AsyncGenerator[Clients]:
    clients = Clients(token)
    try:
        yield clients
    finally:
        await clients.aclose()


async def _open_sessions(clients: Clients, urls: list[str], n: int) -> list[Session]:
    """`n` sessions spread over `urls` (replicas), alternating eras, each with its own client, opened 50 at a time."""
    sessions = [Session(clients.new(), urls[i % len(urls)], "legacy" if i % 2 == 0 else "modern") for i in range(n)]
    limiter = anyio.CapacityLimiter(50)

    async def open_one(session: Session) -> None:
        async with limiter:
            await session.open()

    async with anyio.create_task_group() as group:
        for session in sessions:
            group.start_soon(open_one, session)
    return sessions


async def _closed_loop(sessions: list[Session], seconds: float, people: Callable[[], str]) -> tuple[float, list[float]]:
    """Every session calls back to back for `seconds`; (calls per second, latencies)."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(session: Session) -> None:
        while time.perf_counter() < deadline:
            latencies.append(await session.call(people()))

    started = time.perf_counter()
    async with anyio.create_task_group() as group:
        for session in sessions:
            group.start_soon(worker, session)
    return len(latencies) / (time.perf_counter() - started), latencies


async def _offered_load(
    sessions: list[Session], rate: float, seconds: float, people: Callable[[], str], rng: random.Random
) -> list[tuple[Era, float]]:
    """Sessions calling at random intervals so that together they offer `rate` calls a second; (era, ms) of each."""
    latencies: list[tuple[Era, float]] = []
    pause = len(sessions) / rate  # each session's mean interval
    deadline = time.perf_counter() + seconds

    async def worker(session: Session, first: float) -> None:
        await anyio.sleep(min(first, max(deadline - time.perf_counter(), 0)))
        while time.perf_counter() < deadline:
            latencies.append((session.era, await session.call(people())))
            # Never past the deadline: the run ends on time whatever the last pause drawn.
            await anyio.sleep(min(rng.expovariate(1 / pause), max(deadline - time.perf_counter(), 0)))

    async with anyio.create_task_group() as group:
        for session in sessions:
            group.start_soon(worker, session, rng.uniform(0, pause))
    return latencies


def _replica_pid(replica: HttpReplica) -> int:
    return replica.process.pid


def _load() -> float:
    return os.getloadavg()[0]


class Cluster:
    """Redis, a sandbox and replicas of one configuration, torn down together."""

    def __init__(self, sizes: HttpSizes, workdir: Path, *sandbox_args: str) -> None:
        self.sandbox = SandboxProcess(sizes.people, *UNLIMITED_RPM_FLAGS, *sandbox_args)
        self.redis = RedisServer()
        self.token, line = create_token("bench")
        tokens = workdir / "tokens"
        tokens.write_text(line + "\n")
        self.env = server_env(
            self.sandbox.url,
            new_key("http"),
            PERSON_ENRICH_STATE_URL=self.redis.url,
            PERSON_ENRICH_CACHE_URL="shared",
            PERSON_ENRICH_TOKENS_FILE=str(tokens),
            PERSON_ENRICH_PRINCIPAL_RATE_SHARE="1",
            PERSON_ENRICH_MAX_SESSIONS_PER_PRINCIPAL=str(sizes.rss_sessions + RSS_WARM_SESSIONS + 100),
        )
        self.replicas: list[HttpReplica] = []
        self.sandbox.wait()
        self._people: Iterator[str] = iter(sample_identifiers(self.sandbox.url, "url", sizes.people))

    def start(self, count: int, command: list[str] | None = None) -> list[HttpReplica]:
        """`count` more replicas, ready."""
        started = [HttpReplica(self.env, command) for _ in range(count)]
        self.replicas.extend(started)
        for replica in started:
            replica.wait()
        return started

    def fresh(self) -> str:
        """A profile URL no call has asked for yet.

        Raises:
            RuntimeError: when the dataset is used up (raise `people` in `HTTP_SIZES`).
        """
        try:
            return next(self._people)
        except StopIteration:
            raise RuntimeError("http: the sandbox ran out of people never looked up; raise HttpSizes.people") from None

    def close(self) -> None:
        for replica in self.replicas:
            replica.close()
        self.redis.close()
        self.sandbox.close()


async def _scaling(sizes: HttpSizes, workdir: Path) -> Figures:
    latency = f"kind=latency,ms={UPSTREAM_LATENCY_MS},rate=1,endpoint=enrich"
    cluster = Cluster(sizes, workdir, "--fault", latency)
    try:
        replicas = cluster.start(3)
        per = sizes.scaling_sessions_per_replica
        rates: dict[int, list[float]] = {1: [], 3: []}
        loads: list[float] = []
        async with _clients(cluster.token) as http:
            sessions = {
                n: await _open_sessions(http, [r.url for r in replicas[:n]], n * per) for n in (1, 3)
            }  # fmt: skip
            await _closed_loop(sessions[3], 1.0, cluster.fresh)  # warm-up, every replica
            for _ in range(sizes.repeats):
                for n in (1, 3):
                    loads.append(_load())
                    rate, _ = await _closed_loop(sessions[n], sizes.scaling_seconds, cluster.fresh)
                    rates[n].append(rate)
        one, three = median(rates[1]), median(rates[3])
        return {
            "http_scaling_efficiency_3": three / (3 * one),
            "http_scaling_calls_per_second_1": one,
            "http_scaling_calls_per_second_3": three,
            "http_scaling_bound_calls_per_second_1": per / (UPSTREAM_LATENCY_MS / 1000),
            "http_scaling_sessions_per_replica": per,
            "http_scaling_upstream_latency_ms": UPSTREAM_LATENCY_MS,
            "load_avg_http_scaling": median(loads),
        }
    finally:
        cluster.close()


async def _one_replica(sizes: HttpSizes, workdir: Path) -> Figures:
    cluster = Cluster(sizes, workdir)
    figures: Figures = {}
    rng = random.Random(15)
    try:
        counting, main, idle = cluster.start(1, [sys.executable, "-m", "bench.replica"]) + cluster.start(2)
        hot = [cluster.fresh() for _ in range(200)]

        def hit() -> str:
            return rng.choice(hot)

        async with _clients(cluster.token) as http:
            figures |= await _round_trips(http, counting, cluster)
            # Throughput, hits then misses, on `main`.
            sessions = await _open_sessions(http, [main.url], sizes.throughput_sessions)
            for url in hot:  # the principal's cache now holds them
                await sessions[0].call(url)
            await _closed_loop(sessions, 1.0, hit)  # warm-up
            for kind, people in (("hit", hit), ("miss", cluster.fresh)):
                rates: list[float] = []
                loads: list[float] = []
                pid = _replica_pid(main)
                used, calls = cpu_seconds(pid), 0
                for _ in range(sizes.repeats):
                    loads.append(_load())
                    rate, latencies = await _closed_loop(sessions, sizes.throughput_seconds, people)
                    rates.append(rate)
                    calls += len(latencies)
                figures[f"http_calls_per_second_{kind}"] = median(rates)
                figures[f"http_cpu_ms_per_call_{kind}"] = (cpu_seconds(pid) - used) / calls * 1000
                figures[f"load_avg_http_{kind}"] = median(loads)
            # Latency at one offered load, for 1, 50 and 200 sessions.
            rate = LOAD_FRACTION * figures["http_calls_per_second_hit"]
            figures["http_latency_offered_calls_per_second"] = rate
            loads = []
            for n in LATENCY_SESSIONS:
                group = await _open_sessions(http, [main.url], n)
                tagged: list[tuple[Era, float]] = []
                for _ in range(sizes.repeats):
                    loads.append(_load())
                    tagged += await _offered_load(group, rate, sizes.latency_seconds, hit, rng)
                samples = [ms for _, ms in tagged]
                label = "1_session" if n == 1 else f"{n}_sessions"
                figures[f"http_p50_ms_{label}"] = median(samples)
                figures[f"http_p99_ms_{label}"] = percentile(samples, 99)
                figures[f"http_latency_samples_{label}"] = len(samples)
                if n > 1:  # the eras apart (one session is legacy)
                    for era in ("legacy", "modern"):
                        figures[f"http_p50_ms_{label}_{era}"] = median([ms for e, ms in tagged if e == era])
            figures["load_avg_http_latency"] = median(loads)
            figures |= await _rss_per_session(http, idle, sizes.rss_sessions)
    finally:
        cluster.close()
    return figures


async def _round_trips(clients: Clients, replica: HttpReplica, cluster: Cluster) -> Figures:
    """State-store calls per tool call, per era, on misses then hits (the same people again)."""

    http = clients.new()

    async def counts() -> dict[str, int]:
        response = await http.get(replica.base + COUNTS_PATH)
        response.raise_for_status()
        return cast(dict[str, int], response.json())

    figures: Figures = {}
    worst: dict[str, float] = {"miss": 0.0, "hit": 0.0}
    eras: tuple[Era, ...] = ("legacy", "modern")
    for era in eras:
        session = Session(clients.new(), replica.url, era)
        await session.open()
        await session.call(cluster.fresh())  # the first call of a session reads the account listing once
        people = [cluster.fresh() for _ in range(ROUND_TRIP_CALLS)]
        for kind in ("miss", "hit"):
            before = await counts()
            for url in people:
                await session.call(url)
            after = await counts()
            delta = {k: (after.get(k, 0) - before.get(k, 0)) / ROUND_TRIP_CALLS for k in after}
            total = sum(delta.values())
            figures[f"store_round_trips_per_call_{kind}_{era}"] = total
            worst[kind] = max(worst[kind], total)
            for method, per_call in delta.items():
                if per_call:
                    figures[f"store_calls_{kind}_{era}_{method}"] = per_call
    figures["store_round_trips_per_call"] = worst["miss"]
    figures["store_round_trips_per_call_hit"] = worst["hit"]
    # Calls of 25 people (a legacy session): round trips, and the latency they add up to, misses then hits.
    session = Session(clients.new(), replica.url, "legacy")
    await session.open()
    await session.call(cluster.fresh())
    batches = [[cluster.fresh() for _ in range(BATCH)] for _ in range(BATCH_CALLS)]
    for kind in ("miss", "hit"):
        before = await counts()
        latencies = [await session.call(batch) for batch in batches]
        after = await counts()
        calls = {k: (after.get(k, 0) - before.get(k, 0)) / BATCH_CALLS for k in after}
        suffix = "" if kind == "miss" else "_hit"
        figures[f"store_round_trips_per_call_25{suffix}"] = sum(calls.values())
        figures[f"http_ms_median_25_{kind}"] = median(latencies)
        for method, per_call in calls.items():
            if per_call:
                figures[f"store_calls_{kind}_25_{method}"] = per_call
    return figures


async def _rss_per_session(clients: Clients, replica: HttpReplica, n: int) -> Figures:
    """VmRSS per idle legacy session of a replica that served nothing else (the connections closed: idle
    sessions hold none)."""
    pid = _replica_pid(replica)
    http = clients.new(50)
    warm = [Session(http, replica.url, "legacy") for _ in range(RSS_WARM_SESSIONS)]
    for session in warm:
        await session.open()
    await http.aclose()
    http = clients.new(50)
    await anyio.sleep(SETTLE_SECONDS)
    before = rss_kib(pid)
    load = _load()
    limiter = anyio.CapacityLimiter(50)

    async def open_one() -> None:
        async with limiter:
            await Session(http, replica.url, "legacy").open()

    async with anyio.create_task_group() as group:
        for _ in range(n):
            group.start_soon(open_one)
    await clients.aclose()
    await anyio.sleep(SETTLE_SECONDS)
    after = rss_kib(pid)
    return {
        "http_rss_kb_per_session": (after - before) / n,
        "http_rss_sessions": n,
        "http_rss_mib_before_sessions": before / 1024,
        "http_rss_mib_after_sessions": after / 1024,
        "load_avg_http_rss": load,
    }


async def run(mode: str) -> Figures:
    sizes = HTTP_SIZES[mode]
    figures: Figures = {}
    with tempfile.TemporaryDirectory(prefix="bench-http-") as workdir:
        figures |= await _one_replica(sizes, Path(workdir))
        figures |= await _scaling(sizes, Path(workdir))
    return figures
