"""Shared helpers of the reliability suite: the sandbox's admin API, the books, message checks, listeners.

Everything here observes; nothing patches the server. The sandbox's ledger is the judge of what was billed,
`get_budget` is what the server believes, and the two must agree.
"""

from __future__ import annotations

import http.server
import json
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

import anyio
import httpx2
from mcp import Client
from mcp.types import CallToolResult

from tests.conftest import ADMIN, CANARY_MARKER, Upstream, canary_guard, canary_key, sample_identifiers, text_of

__all__ = ["CANARY_KEY", "CANARY_MARKER", "canary_guard", "canary_key"]

ZERO = Decimal(0)
# The canary marker, keys carrying it and the log guard live in conftest (suite-wide); re-exported here.
CANARY_KEY = f"sk-live-{CANARY_MARKER}-never-print-me"


# Sandbox settings for "no rate limits": none enforced, and none listed worth pacing at. The sandbox's account
# endpoints list the configured limits, and the server paces each endpoint at the account's listed limit (its own
# settings can only lower it), so `rate_limits_enabled=False` alone would still hold enrich to 15 a minute.
NO_RATE_LIMITS: dict[str, Any] = {
    f"{endpoint}_rpm": 100_000 for endpoint in ("enrich", "contact", "live", "search", "autocomplete", "account")
} | {"rate_limits_enabled": False}


# Phrases the server's messages use to tell the model what to do next (errors.py, budget.py, tools/).
NEXT_STEPS = (
    "retry",
    "call again",
    "top up",
    "must set",
    "fix the",
    "raise ",
    "lower ",
    "ask the user",
    "check ",
    "see get_budget",
    "flatten",
    "simplify",
    "use ",
    "pass ",
    "omit ",
    "repeat ",
)
GENERIC_PREFIX = "Error executing tool"
MAX_MESSAGE_BYTES = 4_096


class InvariantBroken(AssertionError):
    """A reliability invariant (books vs ledger, truthful messages) does not hold; distinct from a plain assert."""


def structured(result: CallToolResult) -> dict[str, Any]:
    """Structured content of a success, the facts line of an error (their shapes are checked by the tests)."""
    if result.is_error:
        text = "".join(block.text for block in result.content if block.type == "text")
        _, _, facts = text.rpartition("\n")
        try:
            return cast(dict[str, Any], json.loads(facts))
        except ValueError:
            return {}  # the SDK's own errors (arguments it rejects) carry no facts line
    return cast(dict[str, Any], result.structured_content or {})


def error_code(result: CallToolResult) -> str | None:
    error = structured(result).get("error")
    return cast(dict[str, Any], error).get("code") if isinstance(error, dict) else None


def credits(value: Any) -> Decimal:
    return Decimal(str(value))


@dataclass(frozen=True)
class Books:
    """The server's view of one session: settled, held, and possibly spent credits."""

    limit: Decimal
    spent: Decimal
    reserved: Decimal
    unverified: Decimal

    @property
    def committed(self) -> Decimal:
        return self.spent + self.reserved + self.unverified


async def books(client: Client) -> Books:
    result = await client.call_tool("get_budget", {})
    assert not result.is_error, text_of(result)
    data = structured(result)
    return Books(credits(data["limit"]), credits(data["spent"]), credits(data["reserved"]), credits(data["unverified"]))


async def settled_books(client: Client, *, within: float = 20.0) -> Books:
    """The books once no reservation is open (calls cancelled by the client may still be finishing)."""
    with anyio.fail_after(within):
        while (current := await books(client)).reserved != ZERO:
            await anyio.sleep(0.02)
    return current


def assert_books_match_ledger(current: Books, billed: Decimal, *, outcome_unknown: bool) -> None:
    """Exact agreement, or, when an answer was lost, billed bracketed by spent and spent + unverified."""
    if current.reserved != ZERO:
        raise InvariantBroken(f"a reservation is still open after the call: {current}")
    if outcome_unknown:
        if not current.spent <= billed <= current.spent + current.unverified:
            raise InvariantBroken(f"billed {billed} is outside [spent, spent + unverified] of {current}")
    elif current.spent != billed or current.unverified != ZERO:
        raise InvariantBroken(f"books {current} disagree with the {billed} credits the upstream billed")


def assert_actionable(message: str, *causes: str) -> None:
    """A model-facing error: bounded, specific, names one of `causes` and says what to do next."""
    assert message.strip(), "empty error message"
    assert len(message.encode()) < MAX_MESSAGE_BYTES, f"error message of {len(message.encode())} bytes"
    lowered = message.lower()
    if causes:
        assert any(cause.lower() in lowered for cause in causes), f"no cause among {causes} in: {message}"
    assert any(step in lowered for step in NEXT_STEPS), f"no next step in: {message}"


def assert_truthful(message: str, books_delta: Books) -> None:
    """An error must not say nothing was charged when the session was charged (or holds possible spend)."""
    if "nothing was charged" in message.lower() and (books_delta.spent or books_delta.unverified):
        raise InvariantBroken(f"the message says nothing was charged, but the books moved by {books_delta}: {message}")
    if "stay counted" in message.lower() and not books_delta.unverified:
        raise InvariantBroken(f"the message says credits stay counted, but nothing is unverified: {message}")


def delta(after: Books, before: Books) -> Books:
    return Books(
        after.limit,
        after.spent - before.spent,
        after.reserved - before.reserved,
        after.unverified - before.unverified,
    )


# --- the sandbox's admin API -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sandbox(Upstream):
    """The sandbox as seen by one API key (conftest's `Upstream`), plus its fault and sample admin endpoints."""

    def total_requests(self, endpoint: str) -> int:
        return sum(self.requests(endpoint).values())

    def arm(self, **rule: Any) -> None:
        response = ADMIN.post(f"{self.url}/_sandbox/faults", json=rule)
        assert response.status_code == 200, response.text

    def clear_faults(self) -> None:
        assert ADMIN.delete(f"{self.url}/_sandbox/faults").status_code == 200

    def fault_rules(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], ADMIN.get(f"{self.url}/_sandbox/faults").json()["rules"])

    def applied(self) -> int:
        """How many times the armed fault rules fired."""
        return sum(int(rule["applied"]) for rule in self.fault_rules())

    def identifiers(self, kind: str, n: int, offset: int = 0) -> list[str]:
        return sample_identifiers(self.url, kind, n, offset)


async def in_flight(http: httpx2.AsyncClient, url: str) -> int:
    """Requests the sandbox is working on right now."""
    return int((await http.get(f"{url}/_sandbox/health")).json()["in_flight"])


async def faults_applied(http: httpx2.AsyncClient, url: str) -> int:
    rules = cast(list[dict[str, Any]], (await http.get(f"{url}/_sandbox/faults")).json()["rules"])
    return sum(int(rule["applied"]) for rule in rules)


# --- a listener that records every request it gets (for SSRF and redirects) -----------------------------------------


@dataclass
class Listener:
    """A loopback HTTP server that records each request; answers 200, or redirects when `redirect_to` is set."""

    redirect_to: str | None = None
    redirect_status: int = 302
    hits: list[str] = field(default_factory=list[str])
    port: int = 0
    _server: http.server.ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Listener:
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                owner.hits.append(f"{self.command} {self.path}")
                if owner.redirect_to is not None:
                    self.send_response(owner.redirect_status)
                    self.send_header("location", owner.redirect_to + self.path)
                else:
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"[]")

            do_GET = do_POST = do_PUT = _answer

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
