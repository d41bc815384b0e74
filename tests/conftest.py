"""Shared fixtures: the real sandbox over loopback HTTP, per-test upstream keys, and MCP clients.

Every test gets its own upstream API key, which the sandbox bills and rate-limits separately, so tests never
see each other's spend. The sandbox's ledger is the judge of what the server charged.

Every key carries `CANARY_MARKER`: the autouse `canary_guard` fails a test if any log record mentions it, and
`text_of` fails if a result the model reads does, so the whole suite checks that the key never leaks.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar, cast

import httpx2
import pytest
from mcp import Client
from mcp.types import CallToolResult
from pydantic import SecretStr

from person_enrich_mcp.sandbox import SandboxConfig, SandboxServer
from person_enrich_mcp.server import build_server
from person_enrich_mcp.settings import Settings

CANARY_MARKER = "CANARY-7e3b9f15c2d84a60"
T = TypeVar("T")


def canary_key(label: str) -> str:
    """A fresh upstream key (its own ledger at the sandbox) that carries the canary marker."""
    return f"{label}-{CANARY_MARKER}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(autouse=True)
def canary_guard(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every logger at DEBUG for the whole test; afterwards no record may mention an API key's canary marker."""
    caplog.set_level(logging.DEBUG)
    yield
    # In teardown `caplog.records` holds only the teardown's records: read the setup and call phases explicitly.
    for record in [*caplog.get_records("setup"), *caplog.get_records("call"), *caplog.records]:
        rendered = " ".join([record.getMessage(), record.exc_text or ""])
        assert CANARY_MARKER not in rendered, f"an API key is in a log record of {record.name}: {rendered[:300]}"


# Test settings: the real limiter and retry policy, with short backoffs so retried faults finish quickly.
FAST_RETRIES: dict[str, Any] = {"retry_base_delay": 0.01, "retry_max_delay": 0.05, "max_wait_seconds": 5.0}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-snapshots", action="store_true", default=False, help="rewrite committed snapshots instead of failing"
    )


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# The upstream revisions every integration test runs against: the Person API as served today, and the revision
# the overview page describes. A test that only makes sense for one pins it with
# `@pytest.mark.parametrize("revision", ["current"], indirect=True)`.
REVISIONS = ("current", "overview")


@pytest.fixture(scope="session", params=REVISIONS)
def revision(request: pytest.FixtureRequest) -> str:
    """The upstream revision the sandboxes of this test emulate."""
    return cast(str, request.param)


def per_revision(revision: str, *, current: T, overview: T) -> T:
    """What a test expects of the upstream revision it runs against (sent bodies, credits, endpoints)."""
    assert revision in REVISIONS, revision
    return current if revision == "current" else overview


@pytest.fixture(scope="session")
def sandbox(revision: str) -> Iterator[SandboxServer]:
    """One sandbox per revision for the session, default configuration (limits on, no faults)."""
    with SandboxServer(SandboxConfig(revision=cast(Any, revision))) as server:
        yield server


# How the upstream says what an answer cost: in `x-credits-used` (the sandbox's default), or not at all (no docs page
# mentions the header), when the server computes the charge from the answer and the account's prices. The flow and
# fault suites run in both modes: a module opts in by overriding `sandbox`/`make_sandbox` with `sandbox_in_mode` and
# `make_sandbox_in_mode` below (both take the `credits_header` fixture).
CREDIT_MODES = {"credits-header": True, "no-credits-header": False}


@pytest.fixture(scope="session", params=list(CREDIT_MODES))
def credits_header(request: pytest.FixtureRequest) -> bool:
    """Whether the upstream sends `x-credits-used` (for modules that run in both modes)."""
    return CREDIT_MODES[cast(str, request.param)]


# For a test about the header itself, in a module that runs in both modes.
ONLY_WITH_CREDITS_HEADER = pytest.mark.parametrize("credits_header", ["credits-header"], indirect=True)


def sandbox_in_mode(revision: str, credits_header: bool) -> Iterator[SandboxServer]:
    """A module's default sandbox in one credit mode (the body of its `sandbox` fixture)."""
    with SandboxServer(SandboxConfig(revision=cast(Any, revision), credits_header=credits_header)) as server:
        yield server


def make_sandbox_in_mode(make: Callable[..., SandboxServer], credits_header: bool) -> Callable[..., SandboxServer]:
    """conftest's `make_sandbox` in one credit mode (a test may still pass `credits_header` itself)."""

    def start(**config: Any) -> SandboxServer:
        return make(**{"credits_header": credits_header, **config})

    return start


@pytest.fixture
def make_sandbox(revision: str) -> Iterator[Callable[..., SandboxServer]]:
    """Start a dedicated sandbox with a special configuration (of this test's revision); stopped after the test."""
    started: list[SandboxServer] = []

    def start(**config: Any) -> SandboxServer:
        config.setdefault("revision", revision)
        config.setdefault("people", 400)
        config.setdefault("companies", 40)
        server = SandboxServer(SandboxConfig(**config)).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


# The sandbox's names of the endpoints that bill. The account reads (`account`) are free; so is the empty request
# a server sends to `/person/contact/enrich` to learn whether the route exists (an overview upstream answers it
# 404 without reading it, today's 400), which is why a request counts only when it carried a body.
BILLABLE_ENDPOINTS = ("enrich", "contact", "live", "search")

# One connection pool for every admin call: a fresh client per call costs a TLS context setup, even for http://.
ADMIN = httpx2.Client(timeout=30)


@dataclass(frozen=True)
class Upstream:
    """The sandbox as seen by one API key: its ledger and the bodies the server sent it."""

    url: str
    key: str

    def ledger(self) -> dict[str, Any]:
        response = ADMIN.get(f"{self.url}/_sandbox/ledger", headers={"authorization": f"Bearer {self.key}"})
        response.raise_for_status()
        return cast(dict[str, Any], response.json())

    def billed(self) -> Decimal:
        return Decimal(str(self.ledger().get("credits_billed", "0")))

    def requests(self, endpoint: str) -> dict[str, int]:
        return cast(dict[str, int], self.ledger().get("requests", {}).get(endpoint, {}))

    def bodies(self, endpoint: str) -> list[dict[str, Any]]:
        recent = cast(list[dict[str, Any]], self.ledger().get("recent", []))
        return [cast(dict[str, Any], r["body"]) for r in recent if r["endpoint"] == endpoint and r.get("body")]

    def paid_requests(self) -> list[dict[str, Any]]:
        """This key's requests to an endpoint that bills (endpoint, status, credits, body), oldest first: every
        look-up the server sent, but not its free account reads or its empty probe of the contact route."""
        recent = cast(list[dict[str, Any]], self.ledger().get("recent", []))
        return [r for r in recent if r["endpoint"] in BILLABLE_ENDPOINTS and r.get("body")]

    def assert_nothing_billable_sent(self) -> None:
        """Nothing billable reached the upstream with this key: no look-up of any kind, and no credit billed.

        Reading the account (today's revision) and probing for the contact route (the overview's) are free and
        allowed: "refused before anything was sent" means before anything billable was sent.
        """
        paid = self.paid_requests()
        assert paid == [], f"billable requests reached the upstream: {paid}"
        assert self.billed() == 0, self.ledger()

    def post(self, path: str, payload: Any) -> httpx2.Response:
        headers = {"authorization": f"Bearer {self.key}", "x-api-version": "2025-11-01"}
        return ADMIN.post(f"{self.url}{path}", json=payload, headers=headers)


@pytest.fixture
def api_key() -> str:
    return canary_key("test-key")


@pytest.fixture
def upstream(sandbox: SandboxServer, api_key: str) -> Upstream:
    return Upstream(sandbox.url, api_key)


def settings_for(url: str, key: str, **overrides: Any) -> Settings:
    """Settings pointing at a sandbox with the given key."""
    return Settings(api_key=SecretStr(key), api_base_url=url, **{**FAST_RETRIES, **overrides})


@pytest.fixture
def settings(upstream: Upstream) -> Settings:
    return settings_for(upstream.url, upstream.key)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with Client(build_server(settings)) as connected:
        yield connected


def sample_identifiers(url: str, kind: str, n: int, offset: int = 0) -> list[str]:
    """Valid identifiers from the sandbox's dataset (free: the admin endpoint bills nothing)."""
    response = ADMIN.get(f"{url}/_sandbox/identifiers", params={"kind": kind, "n": n, "offset": offset})
    response.raise_for_status()
    return cast(list[str], response.json()["identifiers"])


def text_of(result: CallToolResult) -> str:
    """The text a model reads from a tool result (and a check that no key's canary is in anything it reads)."""
    text = "\n".join(block.text for block in result.content if block.type == "text")
    assert CANARY_MARKER not in text + json.dumps(result.structured_content), "an API key reached the model"
    return text


def error_facts(result: CallToolResult) -> dict[str, Any]:
    """The facts of an error result: it has no structured content, and its text ends in one compact JSON line."""
    assert result.is_error is True, text_of(result)
    assert result.structured_content is None, "an error result must not carry structured content"
    message, _, facts = text_of(result).rpartition("\n")
    assert message and "\n" not in message, "an error's message is one line, followed by one line of facts"
    return cast(dict[str, Any], json.loads(facts))


def data_of(result: CallToolResult) -> dict[str, Any]:
    """What a result says as data: the structured content of a success, the facts line of an error."""
    if result.is_error:
        return error_facts(result)
    structured = cast(dict[str, Any], result.structured_content)
    assert json.loads(text_of(result)) == structured, "a success's text is its structured content as JSON"
    return structured
