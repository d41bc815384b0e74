"""The upstream errors of reference Part 1, and the client-side limiter, end to end against the sandbox.

Each case checks three things: what the model reads (cause and next step), what the books say, and what the
sandbox billed. Faults come from the sandbox's own injection, so nothing of ours is patched.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.types import CallToolResult

from person_enrich_mcp.sandbox import SandboxServer
from person_enrich_mcp.server import build_server
from tests.conftest import CANARY_MARKER, Upstream, canary_key, data_of, sample_identifiers, settings_for, text_of

KEY = canary_key("upstream-errors")


def _structured(result: CallToolResult) -> dict[str, Any]:
    """Structured content of a success, the facts line of an error (both checked for their shape)."""
    return data_of(result)


async def _enrich(upstream: Upstream, urls: list[str], **settings: Any) -> tuple[CallToolResult, dict[str, Any]]:
    """One enrich call and the books after it, through a fresh connection."""
    async with Client(build_server(settings_for(upstream.url, upstream.key, **settings))) as client:
        with anyio.fail_after(30):
            result = await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": urls})
            books = _structured(await client.call_tool("get_budget", {}))
    return result, books


def _fault(upstream: Upstream, **rule: Any) -> None:
    response = upstream.post("/_sandbox/faults", rule)
    assert response.status_code == 200, response.text


async def _after_the_account_is_read(
    upstream: Upstream, change: Callable[[], None], arguments: dict[str, Any]
) -> CallToolResult:
    """One enrich call by a server that read the account before `change` was made upstream, so it meets the
    upstream's answer rather than refusing locally from what today's account endpoints said."""
    async with Client(build_server(settings_for(upstream.url, upstream.key))) as client:
        with anyio.fail_after(30):
            await client.call_tool("get_budget", {})  # the account is read (today's revision) and kept for minutes
            change()
            result = await client.call_tool("enrich_person_by_url", arguments)
            books = _structured(await client.call_tool("get_budget", {}))
    assert (books["spent"], books["reserved"]) == ("0.00", "0.00")
    return result


@pytest.fixture
def faulty(make_sandbox: Callable[..., SandboxServer]) -> Upstream:
    return Upstream(make_sandbox().url, KEY)


@pytest.mark.anyio
async def test_a_rejected_key_says_which_variable_to_fix(make_sandbox: Callable[..., SandboxServer]) -> None:
    sandbox = make_sandbox(api_keys=("the-right-key",))
    upstream = Upstream(sandbox.url, canary_key("a-wrong"))
    result, books = await _enrich(upstream, sample_identifiers(sandbox.url, "url", 1))
    assert result.is_error and _structured(result)["error"]["code"] == "upstream_auth_failed"
    assert "CRUSTDATA_API_KEY" in text_of(result) and CANARY_MARKER not in text_of(result)
    assert books["spent"] == "0.00"


@pytest.mark.anyio
async def test_an_empty_upstream_balance_is_terminal_and_not_retried(faulty: Upstream) -> None:
    # The balance runs out after the server read it: the upstream's 402 decides. (A balance known to be too low is
    # refused before anything is sent: test_contract_flows.)
    def empty_the_balance() -> None:
        assert faulty.post("/_sandbox/balance", {"credits": "1"}).status_code == 200

    urls = sample_identifiers(faulty.url, "url", 3)
    result = await _after_the_account_is_read(faulty, empty_the_balance, {"professional_network_profile_urls": urls})
    assert result.is_error and _structured(result)["error"]["code"] == "upstream_out_of_credits"
    assert "top up" in text_of(result)
    assert faulty.requests("enrich") == {"402": 1}
    assert faulty.billed() == 0


@pytest.mark.anyio
async def test_a_403_for_insufficient_credits_reads_as_out_of_credits(faulty: Upstream) -> None:
    _fault(faulty, kind="status", status=403, reason="credits", count=1, endpoint="enrich")
    result, _ = await _enrich(faulty, sample_identifiers(faulty.url, "url", 1))
    assert _structured(result)["error"]["code"] == "upstream_out_of_credits"
    assert faulty.requests("enrich") == {"403": 1}


@pytest.mark.anyio
async def test_plan_gated_fields_are_named_with_the_way_out(faulty: Upstream) -> None:
    # The field is gated after the server read the account: the upstream's 403 names it. (A field today's account
    # listing already withholds is refused before anything is sent: test_contract_flows.)
    def gate_certifications() -> None:
        assert faulty.post("/_sandbox/config", {"gated_fields": ["certifications"]}).status_code == 200

    urls = sample_identifiers(faulty.url, "url", 1)
    arguments = {"professional_network_profile_urls": urls, "fields": ["certifications"]}
    result = await _after_the_account_is_read(faulty, gate_certifications, arguments)
    assert result.is_error and _structured(result)["error"]["code"] == "upstream_permission_denied"
    assert "certifications" in text_of(result) and "without them" in text_of(result)
    assert faulty.requests("enrich") == {"403": 1}
    assert faulty.billed() == 0


@pytest.mark.anyio
async def test_a_404_no_data_answer_reads_as_no_match(make_sandbox: Callable[..., SandboxServer]) -> None:
    sandbox = make_sandbox(no_match_status=404)
    upstream = Upstream(sandbox.url, KEY)
    missing = "https://www.linkedin.com/in/no-such-person-404"
    result, books = await _enrich(upstream, [missing])
    assert result.is_error is False
    assert _structured(result)["not_found"] == [missing]
    assert upstream.requests("enrich") == {"404": 1} and books["spent"] == "0.00"


@pytest.mark.anyio
async def test_a_transient_500_is_retried_and_charged_once(faulty: Upstream) -> None:
    _fault(faulty, kind="status", status=500, count=1, endpoint="enrich")
    urls = sample_identifiers(faulty.url, "url", 2)
    result, books = await _enrich(faulty, urls)
    assert result.is_error is False and len(_structured(result)["people"]) == 2
    assert faulty.requests("enrich") == {"500": 1, "200": 1}
    assert Decimal(books["spent"]) == faulty.billed() == 2


@pytest.mark.anyio
async def test_a_429_waits_for_the_reset_then_succeeds(make_sandbox: Callable[..., SandboxServer]) -> None:
    sandbox = make_sandbox(rate_window=1.0)
    upstream = Upstream(sandbox.url, KEY)
    _fault(upstream, kind="status", status=429, count=1, endpoint="enrich")
    result, books = await _enrich(upstream, sample_identifiers(sandbox.url, "url", 1))
    assert result.is_error is False
    assert upstream.requests("enrich") == {"429": 1, "200": 1}
    assert Decimal(books["spent"]) == upstream.billed() == 1


@pytest.mark.anyio
async def test_a_429_longer_than_the_bounded_wait_becomes_an_actionable_error(faulty: Upstream) -> None:
    _fault(faulty, kind="status", status=429, count=2, endpoint="enrich")  # reset: the 60 s window
    result, books = await _enrich(faulty, sample_identifiers(faulty.url, "url", 1), max_wait_seconds=0.5)
    assert result.is_error and _structured(result)["error"]["code"] == "rate_limited"
    assert "Retry in about" in text_of(result) and "Nothing was charged" in text_of(result)
    assert faulty.requests("enrich") == {"429": 1}
    assert books["spent"] == "0.00" and faulty.billed() == 0


@pytest.mark.anyio
async def test_the_upstream_saying_nothing_remains_holds_the_next_call_instead_of_causing_a_429(
    make_sandbox: Callable[..., SandboxServer],
) -> None:
    sandbox = make_sandbox(enrich_rpm=1)  # the upstream allows less than our limiter assumes
    upstream = Upstream(sandbox.url, KEY)
    urls = sample_identifiers(sandbox.url, "url", 2)
    async with Client(build_server(settings_for(sandbox.url, KEY, max_wait_seconds=0.5))) as client:
        first = await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": urls[:1]})
        second = await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": urls[1:]})
        books = _structured(await client.call_tool("get_budget", {}))
    assert first.is_error is False
    assert second.is_error and _structured(second)["error"]["code"] == "rate_limited"
    assert upstream.requests("enrich") == {"200": 1}
    assert Decimal(books["spent"]) == upstream.billed() == 1


@pytest.mark.anyio
async def test_our_own_limiter_refuses_rather_than_cause_a_429(faulty: Upstream) -> None:
    urls = sample_identifiers(faulty.url, "url", 3)
    async with Client(build_server(settings_for(faulty.url, KEY, enrich_rpm=2, max_wait_seconds=0))) as client:
        results = [
            await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": [url]}) for url in urls
        ]
    assert [r.is_error for r in results] == [False, False, True]
    assert _structured(results[2])["error"]["code"] == "rate_limited"
    assert faulty.requests("enrich") == {"200": 2}


@pytest.mark.anyio
async def test_our_own_limiter_waits_for_a_slot_so_the_upstream_never_answers_429(
    make_sandbox: Callable[..., SandboxServer],
) -> None:
    sandbox = make_sandbox(enrich_rpm=1, rate_window=0.3)
    upstream = Upstream(sandbox.url, KEY)
    urls = sample_identifiers(sandbox.url, "url", 3)
    settings = settings_for(sandbox.url, KEY, enrich_rpm=1, rate_window_seconds=0.4)
    async with Client(build_server(settings)) as client:
        with anyio.fail_after(10):
            results = [
                await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": [url]})
                for url in urls
            ]
    assert not any(r.is_error for r in results)
    assert upstream.requests("enrich") == {"200": 3}


@pytest.mark.anyio
async def test_a_timeout_is_not_retried_and_its_reservation_stays_counted(faulty: Upstream) -> None:
    _fault(faulty, kind="timeout", count=1, endpoint="enrich")
    urls = sample_identifiers(faulty.url, "url", 2)
    result, books = await _enrich(faulty, urls, request_timeout=0.5)
    assert result.is_error and _structured(result)["error"]["code"] == "upstream_outcome_unknown"
    assert "not retried" in text_of(result)
    assert faulty.requests("enrich") == {"timeout": 1} or sum(faulty.requests("enrich").values()) == 1
    assert (books["spent"], books["unverified"]) == ("0.00", "2.00")
    assert faulty.billed() == 0


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["malformed", "truncated"])
async def test_an_unreadable_answer_records_what_the_upstream_billed_and_is_not_retried(
    faulty: Upstream, kind: str
) -> None:
    _fault(faulty, kind=kind, count=1, endpoint="enrich")
    urls = sample_identifiers(faulty.url, "url", 2)
    result, books = await _enrich(faulty, urls)
    assert result.is_error and _structured(result)["error"]["code"] == "upstream_bad_response"
    assert "would be charged again" in text_of(result)
    assert sum(faulty.requests("enrich").values()) == 1
    assert Decimal(books["spent"]) == faulty.billed() == 2


@pytest.mark.anyio
async def test_a_reset_connection_is_not_retried_and_nothing_is_lost(faulty: Upstream) -> None:
    _fault(faulty, kind="reset", count=1, endpoint="enrich")
    result, books = await _enrich(faulty, sample_identifiers(faulty.url, "url", 1))
    assert result.is_error and _structured(result)["error"]["code"] == "upstream_outcome_unknown"
    assert faulty.billed() == 0 and books["unverified"] == "1.00"


@pytest.mark.anyio
async def test_the_server_keeps_serving_after_every_fault(faulty: Upstream) -> None:
    urls = sample_identifiers(faulty.url, "url", 8)
    rules = [
        {"kind": "status", "status": 502, "count": 3},
        {"kind": "malformed", "count": 1},
        {"kind": "reset", "count": 1},
        {"kind": "latency", "ms": 200, "count": 1},
    ]
    async with Client(build_server(settings_for(faulty.url, KEY, request_timeout=2))) as client:
        outcomes: list[bool] = []
        for index, rule in enumerate(rules):
            _fault(faulty, **rule, endpoint="enrich")
            with anyio.fail_after(20):
                result = await client.call_tool(
                    "enrich_person_by_url", {"professional_network_profile_urls": [urls[index]]}
                )
            outcomes.append(result.is_error)
        healthy = await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": urls[4:6]})
        books = _structured(await client.call_tool("get_budget", {}))
    assert outcomes == [True, True, True, False]
    assert healthy.is_error is False and len(_structured(healthy)["people"]) == 2
    assert Decimal(books["spent"]) == faulty.billed()
