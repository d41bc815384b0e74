"""Start the real server over HTTP as a subprocess, and connect MCP clients to it with a bearer token."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import httpx2
from mcp import Client
from mcp.client.stdio import get_default_environment
from mcp.client.streamable_http import streamable_http_client
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from person_enrich_mcp.auth import create_token
from tests.conftest import CANARY_MARKER


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_tokens(path: Path, *principals: str) -> dict[str, str]:
    """A tokens file for `principals`; returns each principal's token."""
    tokens: dict[str, str] = {}
    lines: list[str] = []
    for principal in principals:
        token, line = create_token(principal)
        tokens[principal] = token
        lines.append(line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tokens


class HttpServer:
    """`person-enrich-mcp --transport http` in a subprocess, ready when `/healthz` answers.

    Its stderr goes to a file (`log`, or a temporary one), so even `-vv` logging can never fill a pipe and
    stall the server; `stop()` fails if it ever wrote an API key's canary marker there.
    """

    def __init__(self, env: dict[str, str], *args: str, port: int | None = None, log: Path | None = None) -> None:
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base}/mcp"
        self._tempdir = tempfile.TemporaryDirectory(prefix="pe-http-") if log is None else None
        self.log = log if log is not None else Path(self._tempdir.name if self._tempdir else ".", "server.log")
        command = [sys.executable, "-m", "person_enrich_mcp", "--transport", "http", "--port", str(self.port), *args]
        with self.log.open("w", encoding="utf-8") as sink:
            self.process = subprocess.Popen(
                command, env=get_default_environment() | env, stdout=subprocess.DEVNULL, stderr=sink, text=True
            )
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}: {self.stderr()}")
            try:
                if httpx2.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server did not answer /healthz in 30 s: {self.stderr()}")
            time.sleep(0.05)  # waiting for a subprocess to bind, bounded by the deadline above

    def output(self) -> str:
        """Everything the server wrote to stderr so far."""
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        """The end of the server's stderr, with any canary masked (for error messages)."""
        return self.output()[-3000:].replace(CANARY_MARKER, "<canary>")

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to settle anything."""
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        """Terminate, then fail if the server ever wrote an API key's canary marker to stderr."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        written = self.output()
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None
        assert CANARY_MARKER not in written, "the server wrote an API key to its log"


@asynccontextmanager
async def mcp_over_http(
    url: str, token: str | None, mode: Literal["auto", "legacy"] = "auto", **client: Any
) -> AsyncGenerator[Client]:
    """An MCP client over streamable HTTP, authenticated with `token`."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(60, connect=5))
    async with http, Client(streamable_http_client(url, http_client=http), mode=mode, **client) as connected:
        yield connected


def forging_client(headers: dict[str, str], session_id: Callable[[], str]) -> httpx2.AsyncClient:
    """An HTTP client that puts an `Mcp-Session-Id` of its own choosing on every request (a forger's client)."""

    async def forge(request: httpx2.Request) -> None:
        request.headers["mcp-session-id"] = session_id()

    return httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(60, connect=5), event_hooks={"request": [forge]})


@asynccontextmanager
async def forged_session_client(url: str, token: str | None, session_id: Callable[[], str]) -> AsyncGenerator[Client]:
    """A 2026-07-28 MCP client whose every request claims the session `session_id()` returns."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    http = forging_client(headers, session_id)
    async with http, Client(streamable_http_client(url, http_client=http), mode="auto") as connected:
        assert connected.protocol_version == MODERN_PROTOCOL
        yield connected


MODERN_PROTOCOL = "2026-07-28"
LEGACY_PROTOCOL = "2025-11-25"
MCP_ACCEPT = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


def modern_call(method: str, params: dict[str, Any] | None = None, request_id: int = 1) -> dict[str, Any]:
    """A 2026-07-28 JSON-RPC request body (the envelope carries the protocol version and capabilities)."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN_PROTOCOL,
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": {**(params or {}), "_meta": meta}}


def modern_headers(method: str, token: str | None = None, name: str | None = None, **extra: str) -> dict[str, str]:
    """The headers of a 2026-07-28 request (`name`: the tool a `tools/call` names, mirrored in `Mcp-Name`)."""
    auth = {"authorization": f"Bearer {token}"} if token else {}
    named = {"mcp-name": name} if name else {}
    return MCP_ACCEPT | {"mcp-protocol-version": MODERN_PROTOCOL, "mcp-method": method} | auth | named | extra


def legacy_initialize(request_id: int = 1) -> dict[str, Any]:
    """A handshake-era `initialize` body (opens a legacy session)."""
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "initialize",
        "params": {
            "protocolVersion": LEGACY_PROTOCOL,
            "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"},
        },
    }


def rpc_result(response: httpx2.Response) -> dict[str, Any]:
    """The JSON-RPC message of an answer, whether sent as JSON or as an SSE stream (the last data event)."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        events = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
        return cast(dict[str, Any], json.loads([e for e in events if e][-1]))
    return cast(dict[str, Any], response.json())


@dataclass(frozen=True)
class Scrape:
    """A `/metrics` answer read with prometheus-client's own text parser: families by name, and sample values."""

    families: dict[str, Metric]

    @classmethod
    def parse(cls, text: str) -> Scrape:
        return cls({family.name: family for family in text_string_to_metric_families(text)})

    def value(self, sample: str, **labels: str) -> float | None:
        """The value of the sample with exactly these labels (None if there is none)."""
        for family in self.families.values():
            for found in family.samples:
                if found.name == sample and found.labels == labels:
                    return found.value
        return None

    def samples(self, sample: str) -> list[tuple[dict[str, str], float]]:
        """Every sample of that name, with its labels."""
        return [(s.labels, s.value) for f in self.families.values() for s in f.samples if s.name == sample]


def scrape(base: str, **headers: str) -> Scrape:
    """GET `/metrics` and parse it (it must parse)."""
    response = httpx2.get(f"{base}/metrics", headers=headers)
    response.raise_for_status()
    return Scrape.parse(response.text)
