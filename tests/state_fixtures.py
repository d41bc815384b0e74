"""Fixtures for the state-store contract: every backend, a real throwaway redis-server, and time control.

`backend` is parametrized over memory, SQLite and Redis. Memory and SQLite read an injected `FakeClock`, so
time-dependent behaviour is tested by moving it. Redis reads its own clock (`TIME`), so the same tests run in
real time with short durations: `Backend.becomes_true` polls under a deadline and `Backend.check_at` fails
loudly if the machine was too slow for the check to mean anything; no assertion rests on a bare sleep.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import pytest

from person_enrich_mcp.state import MemoryStore, StateStore
from person_enrich_mcp.state.redis import RedisStore
from person_enrich_mcp.state.sqlite import SQLiteStore
from tests.http_helpers import free_port

BACKENDS = ("memory", "sqlite", "redis")
REDIS_MISSING = "redis-server is not on the PATH: run ./scripts/test, which installs it (apt-get install redis-server)"
REDIS_START_SECONDS = 10.0
POLL_INTERVAL = 0.01
# How far a real-clock condition may be noticed early (Redis TIME and the local clock are read separately).
CLOCK_TOLERANCE = 0.01


class FakeClock:
    """A clock that only moves when told to (starts on a whole number of 1/64-second buckets)."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def redis_command(port: int, command: str, timeout: float = 1.0) -> bytes:
    """Send one inline command to the Redis on `port` and return its reply line (a tiny, typed client)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(command.encode() + b"\r\n")
        return sock.recv(256)


@dataclass
class RedisServer:
    """A redis-server subprocess owned by the test session."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def flush(self) -> None:
        """Forget every key, so each test starts from empty books."""
        reply = redis_command(self.port, "FLUSHALL")
        assert reply.startswith(b"+OK"), f"FLUSHALL answered {reply!r}"


def _wait_for_ping(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + REDIS_START_SECONDS
    while True:
        if process.poll() is not None:
            pytest.fail(f"redis-server exited with {process.returncode} on start:\n{log.read_text()}")
        try:
            if redis_command(port, "PING", timeout=0.5).startswith(b"+PONG"):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"redis-server did not answer PING within {REDIS_START_SECONDS}s:\n{log.read_text()}")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A private redis-server on a free port, without persistence; killed when the test session ends."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(REDIS_MISSING)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="pe-redis-") as workdir:
        log = Path(workdir, "redis.log")
        command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        command += ["--dir", workdir, "--logfile", str(log)]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            _wait_for_ping(port, process, log)
            yield RedisServer(port, process, log)
        finally:
            process.kill()
            process.wait(timeout=10)


@dataclass
class Backend:
    """One backend under test: its store, a way to open a second store on the same state, and its time."""

    name: str
    store: StateStore
    clock: FakeClock | None
    opener: Callable[[], StateStore] | None = None
    opened: list[StateStore] = field(default_factory=list[StateStore])
    mark_at: float = 0.0

    @property
    def real_time(self) -> bool:
        return self.clock is None

    def another(self) -> StateStore:
        """A second store object on the same state: another process, or another replica (not for memory)."""
        assert self.opener is not None, f"{self.name} has no shared state to open twice"
        store = self.opener()
        self.opened.append(store)
        return store

    def now(self) -> float:
        return self.clock() if self.clock is not None else time.monotonic()

    def mark(self) -> None:
        """Start a stopwatch; the time helpers below count from here. Call it just before the action."""
        self.mark_at = self.now()

    def elapsed(self) -> float:
        return self.now() - self.mark_at

    async def wait(self, seconds: float) -> None:
        """Let time pass until `seconds` after the mark (for conditions that hold however late they are checked)."""
        target = self.mark_at + seconds
        if self.clock is not None:
            self.clock.now = max(self.clock.now, target)
        else:
            await anyio.sleep(max(target - time.monotonic(), 0.0))

    async def check_at(self, seconds: float, check: Callable[[], Awaitable[bool]], *, before: float) -> None:
        """`check` holds `seconds` after the mark; with a real clock the check must also finish before `before`."""
        await self.wait(seconds)
        result = await check()
        if self.real_time:
            elapsed = self.elapsed()
            assert elapsed < before, f"too slow to tell: checked {elapsed:.3f}s after the mark, needed < {before}s"
        assert result, f"condition false {self.elapsed():.3f}s after the mark"

    async def becomes_true(
        self,
        seconds: float,
        check: Callable[[], Awaitable[bool]],
        *,
        earliest: float | None = None,
        slack: float = 3.0,
    ) -> float:
        """`check` is true `seconds` after the mark, and was not seen true before `earliest` (default `seconds`).

        Fake clock: move to exactly `seconds` after the mark and check. Real clock: poll until true, under a
        deadline of `seconds + slack`, then require that at least `earliest` had passed. Returns that time.
        """
        if self.clock is not None:
            await self.wait(seconds)
            assert await check(), f"condition still false {seconds}s after the mark"
            return self.elapsed()
        with anyio.fail_after(seconds + slack):
            while not await check():
                await anyio.sleep(POLL_INTERVAL)
        elapsed = self.elapsed()
        lower = (seconds if earliest is None else earliest) - CLOCK_TOLERANCE
        assert elapsed >= lower, f"came true after {elapsed:.3f}s, expected no sooner than {lower:.3f}s"
        return elapsed


def open_sqlite(path: Path, clock: FakeClock | None) -> SQLiteStore:
    return SQLiteStore(path) if clock is None else SQLiteStore(path, clock=clock)


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """Each backend in turn, with fresh state; Redis starts (once per session) only when a test needs it."""
    name = str(request.param)
    if name == "memory":
        clock = FakeClock()
        chosen = Backend(name, MemoryStore(clock=clock), clock)
    elif name == "sqlite":
        clock = FakeClock()
        path = tmp_path / "state.db"
        chosen = Backend(name, open_sqlite(path, clock), clock, lambda: open_sqlite(path, clock))
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        server.flush()
        chosen = Backend(name, RedisStore(server.url), None, lambda: RedisStore(server.url))
    try:
        yield chosen
    finally:
        for store in [chosen.store, *chosen.opened]:
            await store.aclose()
