"""What every benchmark shares: run sizes, statistics, the token estimate, and the processes they start."""

from __future__ import annotations

import functools
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, cast

import httpx2
from mcp import StdioServerParameters
from mcp.client import Transport
from mcp.client.stdio import get_default_environment, stdio_client

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SERVER_COMMAND = str(BIN / "person-enrich-mcp")
API_VERSION = "2025-11-01"
# Budgets and thresholds that never get in a benchmark's way (the budget logic still runs on every call).
UNLIMITED = "1000000"
# Rate limits of a sandbox that never get in a benchmark's way. `rate_limits_enabled=False` alone is not enough: the
# sandbox's `/account/endpoints` still lists its configured limits, and the server paces each endpoint at the
# account's listed limit (its own settings can only lower it).
UNLIMITED_RPM: dict[str, Any] = {
    f"{endpoint}_rpm": 100_000 for endpoint in ("enrich", "contact", "live", "search", "autocomplete", "account")
} | {"rate_limits_enabled": False}
# The same for a sandbox process (`person-enrich-mcp sandbox` flags).
UNLIMITED_RPM_FLAGS: tuple[str, ...] = (
    "--no-rate-limit",
    *(
        arg
        for name, value in UNLIMITED_RPM.items()
        if name.endswith("_rpm")
        for arg in (f"--{name.replace('_', '-')}", str(value))
    ),
)

Figures = dict[str, float]


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much work each benchmark does in one mode (`full`, `quick` or `smoke`)."""

    name: str
    people: int  # sandbox dataset size
    context_people: int  # people per selection in the context benchmark (calls of 25)
    overhead_reps: int  # timed repetitions per side and batch size
    overhead_warmup: int
    throughput_profiles: int  # profiles enriched per throughput scenario
    throughput_limit: int  # sandbox enrich requests admitted per window
    throughput_window: float  # seconds
    parallel_calls: int  # concurrent enrich_person_by_url calls
    replica_clients: int  # concurrent MCP clients over three HTTP replicas
    cold_rounds: int  # measured spawns of each server (after one warm-up spawn each when more than one)
    rss_calls: int
    rss_warmup: int
    rss_calls_reference: int  # the reference's fetches are slow (a new TLS context each), so fewer of them


SIZES: dict[str, Sizes] = {
    # 80 enrich requests of 25 at 16 per 15 s: five bursts, the last four windows (60 s) after the first. The
    # upstream's reset header counts whole seconds, so a window much shorter than this exaggerates its rounding.
    "full": Sizes("full", 5000, 100, 300, 30, 2000, 16, 15.0, 8, 6, 8, 1000, 100, 200),
    "quick": Sizes("quick", 5000, 50, 80, 10, 300, 6, 5.0, 4, 3, 2, 200, 20, 40),
    "smoke": Sizes("smoke", 1000, 25, 15, 5, 100, 2, 2.0, 2, 3, 1, 30, 10, 15),
}


def median(values: list[float]) -> float:
    """The median (mean of the middle two for an even count)."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile `q` (0-100)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


# One approximate token per run of word characters and per other non-space character. JSON is mostly short
# keys, values and punctuation, which real tokenizers split much the same way; it is used for both sides.
_TOKEN_RE = re.compile(r"\w+|[^\w\s]")


def approx_tokens(text: str) -> int:
    """The approximate token count of `text` (see `_TOKEN_RE`)."""
    return len(_TOKEN_RE.findall(text))


def compact_json(value: Any) -> str:
    """Compact JSON text, UTF-8 as is (how results and minimal answers are measured)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def new_key(purpose: str) -> str:
    """A fresh upstream API key: the sandbox bills and rate-limits each key separately."""
    return f"bench-{purpose}-{uuid.uuid4().hex[:12]}"


def server_env(api_url: str, key: str, **overrides: str) -> dict[str, str]:
    """The environment of a server under test: the sandbox, a key, and budgets that never refuse."""
    env = {
        "CRUSTDATA_API_KEY": key,
        "PERSON_ENRICH_API_BASE_URL": api_url,
        "PERSON_ENRICH_SESSION_BUDGET": UNLIMITED,
        "PERSON_ENRICH_PRINCIPAL_BUDGET": UNLIMITED,
        "PERSON_ENRICH_CONFIRM_ABOVE": UNLIMITED,
        "PERSON_ENRICH_ENRICH_RPM": "100000",
        "PERSON_ENRICH_SEARCH_RPM": "100000",
    }
    env.update(overrides)
    return env


def _passthrough() -> dict[str, str]:
    """PYTHONPATH, if set, reaches every server started here (to benchmark another checkout's `src`)."""
    path = os.getenv("PYTHONPATH")
    return {"PYTHONPATH": path} if path else {}


def compile_sources() -> None:
    """Write the bytecode of the package under test, as `pip install` does (an editable install does not)."""
    import compileall

    import person_enrich_mcp

    compileall.compile_dir(str(Path(person_enrich_mcp.__file__).parent), quiet=1)


def stdio_params(
    env: dict[str, str], command: str = SERVER_COMMAND, args: list[str] | None = None
) -> StdioServerParameters:
    """Spawn parameters of a server over stdio, as an MCP client configuration would give them."""
    return StdioServerParameters(command=command, args=args or [], env=get_default_environment() | _passthrough() | env)


def quiet_stdio(params: StdioServerParameters) -> Transport:
    """A stdio transport whose server's stderr is discarded (the reference logs every HTTP request it makes)."""
    return stdio_client(params, errlog=_devnull())


@functools.cache
def _devnull() -> TextIO:
    return open(os.devnull, "w")


def sample_identifiers(api_url: str, kind: str, n: int, offset: int = 0) -> list[str]:
    """Valid identifiers from the sandbox's dataset (the admin endpoint bills nothing; it gives 10,000 at most a
    request, so larger samples are read in pages)."""
    found: list[str] = []
    while len(found) < n:
        page = min(n - len(found), 10_000)
        params: dict[str, Any] = {"kind": kind, "n": page, "offset": offset + len(found)}
        response = httpx2.get(f"{api_url}/_sandbox/identifiers", params=params)
        response.raise_for_status()
        identifiers = cast(list[str], response.json()["identifiers"])
        if not identifiers:
            break
        found += identifiers
    return found


def ledger(api_url: str, key: str) -> dict[str, Any]:
    """The sandbox's ledger entry of one key: credits billed, requests by status, recent bodies."""
    response = httpx2.get(f"{api_url}/_sandbox/ledger", headers={"authorization": f"Bearer {key}"})
    response.raise_for_status()
    return cast(dict[str, Any], response.json())


def upstream_headers(key: str) -> dict[str, str]:
    """The headers the server sends upstream (for the direct, server-less side of a comparison)."""
    return {"authorization": f"Bearer {key}", "x-api-version": API_VERSION, "content-type": "application/json"}


def rss_kib(pid: int) -> int:
    """Resident memory of a process (VmRSS, KiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def child_pids(marker: str, *, unless: str | None = None) -> list[int]:
    """Pids of this process's children whose command line contains `marker` (and not `unless`)."""
    me = os.getpid()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == me and marker in cmdline and (unless is None or unless not in cmdline):
            found.append(int(entry.name))
    return found


def child_pid(marker: str, *, unless: str | None = None) -> int:
    """The pid of this process's one child whose command line contains `marker` (and not `unless`)."""
    found = child_pids(marker, unless=unless)
    if len(found) != 1:
        raise RuntimeError(f"expected one child process matching {marker!r}, found {found}")
    return found[0]


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (clock-tick resolution)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(ready: Any, what: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Poll `ready()` until it is true; fail with `what` if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} while starting")
        try:
            if ready():
                return
        except (OSError, httpx2.TransportError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start within {timeout:.0f} s")
        time.sleep(0.05)  # polling a subprocess that is binding its port, bounded by the deadline


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate a process we started, killing it if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


class RedisServer:
    """A private redis-server on a free loopback port, without persistence."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not found (apt-get install redis-server)")
        self.port = free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="bench-redis-")
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        command += ["--dir", self._dir.name, "--logfile", str(Path(self._dir.name, "redis.log"))]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_until(self._ping, "redis-server", self.process)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _ping(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")

    def close(self) -> None:
        stop(self.process)
        self._dir.cleanup()


class HttpReplica:
    """`person-enrich-mcp --transport http` in a subprocess; ready once `/healthz` answers."""

    def __init__(self, env: dict[str, str], command: list[str] | None = None) -> None:
        """Start it; `command` (given `--port N`) replaces `person-enrich-mcp --transport http`."""
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base}/mcp"
        command = [*(command or [SERVER_COMMAND, "--transport", "http"]), "--port", str(self.port)]
        self.process = subprocess.Popen(
            command,
            env=get_default_environment() | _passthrough() | env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait(self) -> None:
        wait_until(lambda: httpx2.get(f"{self.base}/healthz", timeout=1).status_code == 200, "replica", self.process)

    def close(self) -> None:
        stop(self.process)


class SandboxProcess:
    """The sandbox in its own process (`person-enrich-mcp sandbox`), so that, as a real upstream would, it
    shares no interpreter with the client that times it."""

    def __init__(self, people: int, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [SERVER_COMMAND, "sandbox", "--port", str(self.port), "--people", str(people), *args]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait(self) -> None:
        """Return once it answers (it generates its dataset first)."""
        wait_until(
            lambda: httpx2.get(f"{self.url}/_sandbox/health", timeout=1).status_code == 200, "sandbox", self.process
        )

    def close(self) -> None:
        stop(self.process)
