"""Helpers shared by the sandbox tests (fixtures live in conftest.py)."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

import httpx2

from person_enrich_mcp.sandbox import SandboxServer

API_VERSION = "2025-11-01"
SMALL: dict[str, Any] = {"people": 400, "companies": 40}
ServerFactory = Callable[..., SandboxServer]
Configure = Callable[..., SandboxServer]
# Building a client's default TLS context costs ~0.1 s; the sandbox is plain HTTP, so every client shares one.
TLS = ssl.create_default_context()


class FakeClock:
    """A clock the tests move by hand, so rate-limit windows slide without sleeping."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def http_client(base_url: str, key: str | None = None) -> httpx2.Client:
    """A client for a sandbox, authenticated with `key` when given."""
    return httpx2.Client(base_url=base_url, headers=headers_for(key) if key else None, timeout=10, verify=TLS)


def headers_for(key: str) -> dict[str, str]:
    """The headers a well-behaved client sends."""
    return {"authorization": f"Bearer {key}", "x-api-version": API_VERSION}


def sample(http: httpx2.Client, kind: str, n: int = 5, offset: int = 0) -> list[str]:
    """Valid identifiers from the server's dataset."""
    response = http.get("/_sandbox/identifiers", params={"kind": kind, "n": n, "offset": offset})
    assert response.status_code == 200, response.text
    identifiers: list[str] = response.json()["identifiers"]
    assert len(identifiers) == n
    return identifiers


def ledger_entry(base_url: str, key: str) -> dict[str, Any]:
    """The key's ledger entry, fetched with its bearer header."""
    with http_client(base_url) as http:
        response = http.get("/_sandbox/ledger", headers={"authorization": f"Bearer {key}"})
    assert response.status_code == 200
    entry: dict[str, Any] = response.json()
    return entry


def profile_slug(url: str) -> str:
    """The slug of a profile URL as the sandbox hands them out."""
    return url.rstrip("/").rsplit("/", 1)[-1]


def set_plan(base_url: str, key: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Partially update one key's plan through `POST /_sandbox/plan`; returns the plan as served."""
    with http_client(base_url) as http:
        response = http.post("/_sandbox/plan", json=changes, headers={"authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    plan: dict[str, Any] = response.json()
    return plan


def error_of(response: httpx2.Response) -> dict[str, Any]:
    """The `error` object of an upstream-style error answer."""
    error: dict[str, Any] = response.json()["error"]
    return error
