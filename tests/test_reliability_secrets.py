"""Secrets and access: a canary key through every tool, error path, log line and repr; constant-time tokens; no SSRF.

The canary is an API key that must appear only in the `authorization` header the server sends upstream. Every
test here runs with it and with logging at DEBUG for every logger; an autouse guard fails the test if any log
record mentions it. HTTP mode runs as a subprocess with `-vv` and its whole stderr is scanned too. Then the
token verifier's comparisons are counted, and two extra listeners catch any request that goes anywhere but the
configured base URL, whether a tool argument points at them or the upstream answers with a redirect to them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import traceback
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.types import CallToolResult
from pydantic import SecretStr

from person_enrich_mcp import auth
from person_enrich_mcp.api import ENRICH, SEARCH, PersonAPI, RateLimiter, RetryPolicy, SearchRequest
from person_enrich_mcp.auth import TokenFileVerifier
from person_enrich_mcp.errors import PersonEnrichError
from person_enrich_mcp.sandbox import SandboxServer
from person_enrich_mcp.server import build_server
from person_enrich_mcp.state import MemoryStore
from tests.conftest import per_revision, settings_for, text_of
from tests.http_helpers import HttpServer, mcp_over_http, write_tokens
from tests.reliability_support import (  # canary_guard: autouse, imported to apply here
    CANARY_KEY,
    Listener,
    Sandbox,
    canary_guard,  # noqa: F401  # pyright: ignore[reportUnusedImport]
    dumps,
    error_code,
    structured,
)

# What a server may send an upstream for free before its first look-up: the account reads and the contact probe.
FREE_READS = frozenset({"GET /account/endpoints?category=Person", "GET /user/credits", "POST /person/contact/enrich"})
CANONICAL_URL = re.compile(r"https://www\.linkedin\.com/in/[a-z0-9%_.\-]+")
TITLE = {"field": "experience.employment_details.current.title", "type": "(.)", "value": "a"}


@pytest.fixture
def canary_sandbox(make_sandbox: Callable[..., SandboxServer]) -> Sandbox:
    server = make_sandbox(people=200, companies=20, rate_limits_enabled=False, gated_fields=("certifications",))
    return Sandbox(server.url, CANARY_KEY)


def _everything(result: CallToolResult) -> str:
    return text_of(result) + dumps(result.structured_content) + dumps(result.model_dump(mode="json"))


Step = tuple[dict[str, Any] | None, str, dict[str, Any], str]


# Each step: the fault rule to arm first (or None), the tool, its arguments, and the outcomes allowed.
def _steps(urls: list[str], emails: list[str], revision: str) -> list[Step]:
    def by_url(first: int, last: int, rule: dict[str, Any] | None, expect: str, **extra: Any) -> Step:
        return rule, "enrich_person_by_url", {"professional_network_profile_urls": urls[first:last], **extra}, expect

    evil = ("enrich_person_by_url", {"professional_network_profile_urls": ["https://evil.example/in/x"]})
    return [
        by_url(0, 2, None, "ok"),
        (None, "enrich_person_by_email", {"business_emails": emails[:2]}, "ok"),
        (None, "search_then_enrich", {"filters": TITLE, "limit": 2}, "ok"),
        (None, "get_budget", {}, "ok"),
        (None, *evil, "invalid_input"),
        by_url(0, 2, None, "invalid_input", fields=["basic_profile.nmae"]),
        by_url(2, 5, None, "max_credits_exceeded", max_credits=1),
        by_url(2, 8, None, "confirmation_required"),
        by_url(2, 25, None, "budget_exceeded", max_credits=10_000),
        # The gated field: today's account listing names it, so it is refused locally; the overview's upstream 403s.
        by_url(
            8,
            9,
            None,
            per_revision(revision, current="not_in_plan", overview="upstream_permission_denied"),
            fields=["certifications"],
        ),
        by_url(8, 9, None, "max_credits_exceeded", max_credits=-1e26),
        by_url(9, 10, {"kind": "status", "status": 401}, "upstream_auth_failed"),
        by_url(9, 10, {"kind": "status", "status": 402}, "upstream_out_of_credits"),
        by_url(9, 10, {"kind": "status", "status": 503, "count": 3}, "upstream_unavailable"),
        by_url(10, 11, {"kind": "timeout"}, "upstream_outcome_unknown"),
        by_url(11, 12, {"kind": "reset"}, "upstream_outcome_unknown"),
        by_url(12, 13, {"kind": "malformed"}, "upstream_bad_response"),
        by_url(13, 14, {"kind": "truncated"}, "upstream_bad_response"),
        (
            {"kind": "malformed", "endpoint": "search"},
            "search_then_enrich",
            {"filters": TITLE, "limit": 3},  # another page than step 2's, which is cached now
            "upstream_bad_response",
        ),
        # Last: a 429 whose reset is beyond the bounded wait holds the endpoint locally afterwards.
        by_url(14, 15, {"kind": "status", "status": 429}, "rate_limited"),
    ]


@pytest.mark.anyio
async def test_the_canary_key_never_appears_in_any_result_error_log_or_repr(
    canary_sandbox: Sandbox, caplog: pytest.LogCaptureFixture, revision: str
) -> None:
    urls = canary_sandbox.identifiers("url", 30)
    emails = canary_sandbox.identifiers("email", 2)
    options = settings_for(
        canary_sandbox.url,
        CANARY_KEY,
        session_budget=20,
        confirm_above=5,
        max_wait_seconds=0.3,
        request_timeout=0.5,
    )
    server = build_server(options)
    seen: list[str] = [repr(options), str(options), options.model_dump_json(), dumps(options.model_dump())]
    outcomes: list[str] = []
    async with server.settings.lifespan(server) as state:  # pyright: ignore[reportOptionalCall]
        seen += [repr(state), repr(state.api), repr(state.store), repr(state.budget), repr(state.cache)]
    async with Client(server, mode="legacy") as client:
        for rule, tool, arguments, _ in _steps(urls, emails, revision):
            canary_sandbox.clear_faults()
            if rule is not None:
                canary_sandbox.arm(**{"endpoint": "enrich", **rule})
            with anyio.fail_after(20):
                result = await client.call_tool(tool, arguments)
            seen.append(_everything(result))
            outcomes.append(error_code(result) or ("crash" if result.is_error else "ok"))
        canary_sandbox.clear_faults()
    seen += [record.getMessage() + (record.exc_text or "") for record in caplog.records]

    expected = [allowed.split("|") for *_, allowed in _steps(urls, emails, revision)]
    unexpected = [(i, o, a) for i, (o, a) in enumerate(zip(outcomes, expected, strict=True)) if o not in a]
    assert not unexpected, unexpected
    assert canary_sandbox.billed() > 0  # the key did reach the upstream, where it belongs
    assert any(record.levelno == logging.DEBUG for record in caplog.records)
    leaks = [text[:200] for text in seen if CANARY_KEY in text]
    assert not leaks, leaks


@pytest.mark.anyio
async def test_no_exception_from_a_real_faulty_upstream_carries_the_canary(canary_sandbox: Sandbox) -> None:
    api = PersonAPI(
        base_url=canary_sandbox.url,
        api_key=SecretStr(CANARY_KEY),
        limiter=RateLimiter(
            MemoryStore(), limits={ENRICH: 1000, SEARCH: 1000}, window_seconds=60, max_wait=0, bucket_prefix="t"
        ),
        retry=RetryPolicy(max_retries=0, max_rate_limited_retries=0),
        timeout=httpx2.Timeout(0.5),
        user_agent="reliability-tests",
    )
    caught: list[PersonEnrichError] = []
    rules: list[dict[str, Any]] = [
        {"kind": "status", "status": status} for status in (400, 401, 402, 403, 404, 500, 502, 503, 504)
    ]
    rules += [{"kind": kind} for kind in ("timeout", "reset", "malformed", "truncated")]
    rules.append({"kind": "status", "status": 429})  # last: it holds the endpoint locally afterwards
    try:
        for rule in rules:
            canary_sandbox.arm(**rule, endpoint="search")
            try:
                await api.search(SearchRequest(filters=TITLE, limit=1, fields=["basic_profile.name"]))
            except PersonEnrichError as exc:
                caught.append(exc)
    finally:
        await api.aclose()
    assert len(caught) == len(rules)  # every fault is an exception of ours (a 404 is an error on search)
    for exc in caught:
        text = "".join(traceback.format_exception(exc)) + repr(exc) + str(exc.__dict__) + repr(exc.__context__)
        assert CANARY_KEY not in text


@pytest.mark.anyio
async def test_an_upstream_error_that_echoes_the_key_does_not_put_it_in_front_of_the_model() -> None:
    def echo(request: httpx2.Request) -> httpx2.Response:
        said = f"key {request.headers['authorization']} may not use this endpoint"
        return httpx2.Response(403, json={"error": {"type": "permission_error", "message": said}})

    options = settings_for("https://api.person.test", CANARY_KEY)
    async with Client(build_server(options, transport=httpx2.MockTransport(echo)), mode="legacy") as client:
        result = await client.call_tool(
            "enrich_person_by_url", {"professional_network_profile_urls": ["https://www.linkedin.com/in/jane-doe"]}
        )
    assert result.is_error and error_code(result) == "upstream_permission_denied"
    assert CANARY_KEY not in _everything(result)


@pytest.mark.slow
@pytest.mark.anyio
async def test_http_mode_with_debug_logging_never_writes_the_canary_or_the_clients_token(
    canary_sandbox: Sandbox, tmp_path: Path
) -> None:
    token = write_tokens(tmp_path / "tokens", "alice")["alice"]
    env = {
        "CRUSTDATA_API_KEY": CANARY_KEY,
        "PERSON_ENRICH_API_BASE_URL": canary_sandbox.url,
        "PERSON_ENRICH_TOKENS_FILE": str(tmp_path / "tokens"),
        "PERSON_ENRICH_STATE_URL": f"sqlite:///{tmp_path / 'state.db'}",
        "PERSON_ENRICH_TIMEOUT": "0.5",
    }
    server = HttpServer(env, "-vv", log=tmp_path / "server.log")
    urls = canary_sandbox.identifiers("url", 6)
    results: list[CallToolResult] = []
    try:
        with anyio.fail_after(60):
            async with mcp_over_http(server.url, token) as client:
                results.append(
                    await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": urls[:2]})
                )
                for rule in ({"kind": "status", "status": 401}, {"kind": "malformed"}, {"kind": "timeout"}):
                    canary_sandbox.arm(**rule, endpoint="enrich")
                    results.append(
                        await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": urls[2:4]})
                    )
                results.append(await client.call_tool("search_then_enrich", {"filters": TITLE, "limit": 1}))
                results.append(await client.call_tool("get_budget", {}))
            unauthorised = httpx2.post(server.url, json={}, headers={"authorization": f"Bearer {CANARY_KEY}"})
    finally:
        canary_sandbox.clear_faults()
        server.stop()
    log = server.output()
    assert unauthorised.status_code == 401  # the upstream key is not an MCP token either
    assert [error_code(r) for r in results] == [
        None, "upstream_auth_failed", "upstream_bad_response", "upstream_outcome_unknown", None, None,
    ]  # fmt: skip
    assert "DEBUG" in log and "upstream enrich -> 200" in log, log[-2000:]  # -vv really was on
    assert CANARY_KEY not in log and token not in log
    assert not any(CANARY_KEY in _everything(r) or token in _everything(r) for r in results)


# --- bearer tokens are compared in constant time ----------------------------------------------------------------


@pytest.fixture
def five_principals(tmp_path: Path) -> tuple[TokenFileVerifier, list[str]]:
    names = ["ann", "ben", "cat", "dan", "eve"]
    tokens = write_tokens(tmp_path / "tokens", *names)
    return TokenFileVerifier(tmp_path / "tokens"), [tokens[name] for name in names]


@pytest.mark.anyio
async def test_the_token_check_compares_every_entry_in_constant_time_wherever_the_match_is(
    five_principals: tuple[TokenFileVerifier, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier, tokens = five_principals
    compared: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def counting(a: Any, b: Any) -> bool:
        compared.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    calls: list[int] = []
    principals: list[str | None] = []
    for candidate in [tokens[0], tokens[2], tokens[4], "pem_not-a-token", "", "x" * 10_000]:
        before = len(compared)
        found = await verifier.verify_token(candidate)
        principals.append(found.client_id if found else None)
        calls.append(len(compared) - before)
    assert principals == ["ann", "cat", "eve", None, None, None]
    assert calls == [5] * 6, "the number of comparisons depends on where (or whether) the token matches"
    assert set(compared) == {(32, 32)}, "tokens must be compared as fixed-length digests, never as raw strings"


@pytest.mark.anyio
async def test_tokens_that_differ_only_early_or_only_late_are_both_rejected(
    five_principals: tuple[TokenFileVerifier, list[str]],
) -> None:
    verifier, tokens = five_principals
    token = tokens[1]
    flip = {"a": "b", "b": "a"}

    def changed(at: int) -> str:
        return token[:at] + flip.get(token[at], "a") + token[at + 1 :]

    early, late = changed(len(auth.TOKEN_PREFIX)), changed(len(token) - 1)
    assert (await verifier.verify_token(token)) is not None
    assert await verifier.verify_token(early) is None
    assert await verifier.verify_token(late) is None
    assert await verifier.verify_token(token + "x") is None and await verifier.verify_token(token[:-1]) is None
    assert await verifier.verify_token(hashlib.sha256(token.encode()).hexdigest()) is None


# --- the base URL is configuration only ---------------------------------------------------------------------------


def _forged_cursor(real: str, target: str) -> str:
    """The server's own cursor with the upstream cursor inside it replaced by a URL."""
    data = json.loads(base64.urlsafe_b64decode(real + "=" * (-len(real) % 4)))
    data["u"] = target
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


@pytest.mark.anyio
async def test_no_tool_argument_can_send_a_request_anywhere_but_the_configured_base_url(
    canary_sandbox: Sandbox,
) -> None:
    with Listener() as canary:
        host = f"127.0.0.1:{canary.port}"
        elsewhere = [
            f"http://{host}/in/jane-doe",
            f"https://www.linkedin.com@{host}/in/jane-doe",
            f"https://{host}/?next=https://www.linkedin.com/in/jane-doe",
            f"https://www.linkedin.com/in/jane-doe?redirect={canary.url}",
            f"//{host}/in/jane-doe",
            f"{canary.url}#https://www.linkedin.com/in/jane-doe",
            "https://www.linkedin.com/in/jane-doe/../../../" + host,
        ]
        sort = [{"field": "crustdata_person_id"}]
        first_page = {"filters": TITLE, "sorts": sort, "limit": 1}
        options = settings_for(canary_sandbox.url, CANARY_KEY, session_budget=100, confirm_above=100)
        async with Client(build_server(options), mode="legacy") as client:
            jane = ["https://www.linkedin.com/in/jane-doe"]
            calls: list[tuple[str, dict[str, Any]]] = [
                ("enrich_person_by_url", {"professional_network_profile_urls": elsewhere}),
                ("enrich_person_by_email", {"business_emails": [f"jane@{host}", "jane@[127.0.0.1]"]}),
                ("enrich_person_by_url", {"professional_network_profile_urls": jane, "fields": [canary.url]}),
                ("search_then_enrich", {"filters": {**TITLE, "value": canary.url}}),
                ("search_then_enrich", {"filters": {"field": canary.url, "type": "=", "value": 1}}),
                ("enrich_person_by_url", {"professional_network_profile_urls": jane, "api_base_url": canary.url}),
                ("get_budget", {"base_url": canary.url}),
            ]
            results = [await client.call_tool(tool, arguments) for tool, arguments in calls]
            page = structured(await client.call_tool("search_then_enrich", first_page))
            forged = _forged_cursor(page["next_cursor"], f"{canary.url}/person/search")
            results.append(await client.call_tool("search_then_enrich", {**first_page, "cursor": forged}))
            tools = (await client.list_tools()).tools

    assert canary.hits == [], f"a request reached another host: {canary.hits}"
    assert all(not r.is_error or error_code(r) for r in results), [text_of(r) for r in results]
    sent = [
        url for body in canary_sandbox.bodies("enrich") for url in body.get("professional_network_profile_urls", [])
    ]
    assert sent and all(CANONICAL_URL.fullmatch(url) for url in sent), sent  # what went out went to the sandbox
    names = {name for tool in tools for name in cast(dict[str, Any], tool.input_schema.get("properties", {}))}
    assert not names & {"api_base_url", "base_url", "host", "url", "endpoint"}


@pytest.mark.anyio
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_the_client_never_follows_an_upstream_redirect(status: int) -> None:
    with Listener() as canary, Listener(redirect_to=canary.url, redirect_status=status) as redirector:
        options = settings_for(redirector.url, CANARY_KEY)
        async with Client(build_server(options), mode="legacy") as client:
            result = await client.call_tool(
                "enrich_person_by_url", {"professional_network_profile_urls": ["https://www.linkedin.com/in/jane-doe"]}
            )
            books = structured(await client.call_tool("get_budget", {}))
    assert canary.hits == []
    # The look-up was sent once: a redirect is not retried either. Before it, the server tried its free reads of the
    # account (and, without a listing, the empty probe of the contact route), each once, each redirected unfollowed.
    assert redirector.hits.count("POST /person/enrich") == 1 and redirector.hits[-1] == "POST /person/enrich"
    assert len(set(redirector.hits)) == len(redirector.hits), redirector.hits
    assert set(redirector.hits) - {"POST /person/enrich"} <= FREE_READS, redirector.hits
    assert result.is_error and "redirect" in text_of(result) and "PERSON_ENRICH_API_BASE_URL" in text_of(result)
    assert Decimal(books["spent"]) == 0 and Decimal(books["reserved"]) == 0
