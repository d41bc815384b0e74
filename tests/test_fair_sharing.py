"""One principal can slow only itself (issue 12, finding 4): over real HTTP with two principals and the ledger.

A principal holds at most `PERSON_ENRICH_MAX_SESSIONS_PER_PRINCIPAL` legacy sessions, so opening hundreds
takes nothing from anyone else; and it may use only its share of each upstream endpoint's rate limit, paid or
free requests alike, so a burst of free misses cannot leave another principal's paid call without a slot. The
other principal's latency is measured with and without the noisy neighbour (printed with `-s`). The limiter's
queue itself is tested in `test_limiter_fairness.py`.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import anyio
import anyio.to_thread
import httpx2
import pytest
from mcp.types import CallToolResult

from person_enrich_mcp.sandbox import SandboxServer
from tests.conftest import Upstream, canary_key, sample_identifiers, text_of
from tests.http_helpers import MCP_ACCEPT, HttpServer, legacy_initialize, mcp_over_http, write_tokens

CURRENT = pytest.mark.parametrize("revision", ["current"], indirect=True)

ENRICH = "enrich_person_by_url"
SESSION_CAP = 8
SESSION_ATTEMPTS = 10_000  # the SDK's own cap for the whole server
FLOOD_CONCURRENCY = 50
BOB_CALLS = 3  # six paid calls: within his share (7) of the sandbox's 15 enrich requests a minute


def _rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))


async def _timed_paid_call(url: str, token: str, person: str) -> tuple[float, bool]:
    """One legacy-session paid look-up (a new session, as a client connecting would): seconds taken, success."""
    started = time.perf_counter()
    async with mcp_over_http(url, token, "legacy") as client:
        result = await client.call_tool(ENRICH, {"professional_network_profile_urls": [person]})
    assert not result.is_error and _matched(result) == 1, text_of(result)
    return time.perf_counter() - started, True


def _matched(result: CallToolResult) -> int:
    return len(cast(dict[str, Any], result.structured_content)["people"])


def _open_sessions(url: str, token: str, attempts: int, stop: threading.Event) -> list[int]:
    """Alice's flood, on its own thread and event loop: `initialize` after `initialize`, 50 at a time, until
    `attempts` were made (or `stop` is set, if the test fails first); returns the statuses."""
    statuses: list[int] = []

    async def flood() -> None:
        async with httpx2.AsyncClient(headers={"authorization": f"Bearer {token}"}, timeout=60) as http:

            async def worker(count: int) -> None:
                for _ in range(count):
                    if stop.is_set():
                        return
                    answer = await http.post(url, json=legacy_initialize(), headers=MCP_ACCEPT)
                    statuses.append(answer.status_code)

            async with anyio.create_task_group() as group:
                for _ in range(FLOOD_CONCURRENCY):
                    group.start_soon(worker, attempts // FLOOD_CONCURRENCY)

    anyio.run(flood)
    return statuses


@CURRENT
@pytest.mark.anyio
async def test_one_principal_holding_many_sessions_does_not_stop_anothers_paid_call(
    upstream: Upstream, tmp_path: Path
) -> None:
    tokens = write_tokens(tmp_path / "tokens", "alice", "bob")
    env = {
        "CRUSTDATA_API_KEY": upstream.key,
        "PERSON_ENRICH_API_BASE_URL": upstream.url,
        "PERSON_ENRICH_TOKENS_FILE": str(tmp_path / "tokens"),
        "PERSON_ENRICH_MAX_SESSIONS_PER_PRINCIPAL": str(SESSION_CAP),
    }
    server = HttpServer(env)
    people = sample_identifiers(upstream.url, "url", 2 * BOB_CALLS, offset=140)
    stop = threading.Event()
    flood: list[list[int]] = []
    noisy: list[tuple[float, bool]] = []
    try:
        with anyio.fail_after(180):
            quiet = [await _timed_paid_call(server.url, tokens["bob"], p) for p in people[:BOB_CALLS]]
            rss_before = _rss_kib(server.process.pid)
            async with anyio.create_task_group() as group:

                async def alice() -> None:
                    flood.append(
                        await anyio.to_thread.run_sync(
                            _open_sessions, server.url, tokens["alice"], SESSION_ATTEMPTS, stop
                        )
                    )

                group.start_soon(alice)
                while not (flood or server_has_refused(server)):  # Bob calls once Alice holds all she may get
                    await anyio.sleep(0.01)
                noisy.extend([await _timed_paid_call(server.url, tokens["bob"], p) for p in people[BOB_CALLS:]])
            statuses = flood[0]
            rss_after = _rss_kib(server.process.pid)
    finally:
        stop.set()
        server.stop()
    quiet_ms, noisy_ms = (statistics.median(t for t, _ in calls) * 1000 for calls in (quiet, noisy))
    print(
        f"\nsessions: Bob's paid call, median of {BOB_CALLS}: {quiet_ms:.0f} ms quiet, {noisy_ms:.0f} ms while Alice "
        f"flooded {len(statuses)} initialize requests ({statuses.count(200)} opened, {statuses.count(429)} refused "
        f"with 429); server RSS {rss_before // 1024} -> {rss_after // 1024} MiB"
    )
    assert [ok for _, ok in quiet + noisy] == [True] * 2 * BOB_CALLS, "a paid call of Bob's failed"
    assert statuses.count(200) == SESSION_CAP
    assert statuses.count(429) == len(statuses) - SESSION_CAP
    assert upstream.billed() == 2 * BOB_CALLS


def server_has_refused(server: HttpServer) -> bool:
    """Whether the server has refused a session for the cap yet (its metrics say so)."""
    return "person_enrich_sessions_refused_total{" in httpx2.get(f"{server.base}/metrics").text


RPM = 5
RATE_WINDOW = 60.0


@CURRENT
@pytest.mark.anyio
async def test_free_misses_of_one_principal_do_not_stop_anothers_paid_call(
    make_sandbox: Callable[..., SandboxServer], tmp_path: Path
) -> None:
    sandbox = make_sandbox(enrich_rpm=RPM, rate_window=RATE_WINDOW)
    upstream = Upstream(sandbox.url, canary_key("fair-share"))
    tokens = write_tokens(tmp_path / "tokens", "alice", "bob")
    env = {
        "CRUSTDATA_API_KEY": upstream.key,
        "PERSON_ENRICH_API_BASE_URL": upstream.url,
        "PERSON_ENRICH_TOKENS_FILE": str(tmp_path / "tokens"),
        "PERSON_ENRICH_ENRICH_RPM": str(RPM),
        "PERSON_ENRICH_RATE_WINDOW": str(RATE_WINDOW),
        "PERSON_ENRICH_MAX_WAIT": "5",
    }
    server = HttpServer(env)
    people = sample_identifiers(upstream.url, "url", 2, offset=160)
    misses = [f"https://www.linkedin.com/in/nobody-at-all-{n}" for n in range(RPM)]
    alice_results: list[str] = []
    try:
        async with mcp_over_http(server.url, tokens["bob"]) as bob:
            await bob.call_tool("get_budget", {})  # the free account reads happen here, not in the timed call
        quiet, quiet_ok = await _timed_paid_call(server.url, tokens["bob"], people[0])

        async def free_miss(person: str) -> None:
            async with mcp_over_http(server.url, tokens["alice"]) as alice:
                result = await alice.call_tool(ENRICH, {"professional_network_profile_urls": [person]})
                alice_results.append("refused" if result.is_error else "free miss")
                if result.is_error:
                    alice_results.append(text_of(result))

        with anyio.fail_after(60):
            async with anyio.create_task_group() as burst:
                for person in misses:
                    burst.start_soon(free_miss, person)
            noisy, noisy_ok = await _timed_paid_call(server.url, tokens["bob"], people[1])
        metrics = httpx2.get(f"{server.base}/metrics").text
    finally:
        server.stop()
    print(
        f"\nfree misses: Bob's paid call {quiet * 1000:.0f} ms quiet, {noisy * 1000:.0f} ms after Alice's burst of "
        f"{len(misses)} free misses at {RPM} rpm ({alice_results.count('free miss')} sent, "
        f"{alice_results.count('refused')} held to her share)"
    )
    assert quiet_ok and noisy_ok, "Bob's paid call failed"
    share = RPM // 2  # PERSON_ENRICH_PRINCIPAL_RATE_SHARE defaults to half
    assert alice_results.count("free miss") == share
    assert alice_results.count("refused") == len(misses) - share
    assert any("your share of the Person API rate limit" in text for text in alice_results)
    assert upstream.billed() == 2 and sum(upstream.requests("enrich").values()) == 2 + share
    assert "person_enrich_principal_rate_limit_waits_total{" not in metrics or "limit=" in metrics
    assert 'person_enrich_principal_upstream_requests_total{endpoint="enrich",principal="p-' in metrics
    assert "alice" not in metrics and "bob" not in metrics  # pseudonyms unless the operator opts in
