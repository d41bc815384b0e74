"""Every budget path through a real MCP client: fits, refused, confirmations, concurrency, failures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, Literal

import anyio
import pytest
from mcp import Client
from mcp.client import ClientRequestContext
from mcp.types import CallToolResult, ElicitRequestParams, ElicitResult

from person_enrich_mcp.sandbox import SandboxServer
from person_enrich_mcp.server import build_server
from tests.conftest import (
    Upstream,
    canary_key,
    data_of,
    make_sandbox_in_mode,
    sample_identifiers,
    sandbox_in_mode,
    settings_for,
    text_of,
)

BUSINESS_EMAIL = ["basic_profile.name", "contact.business_emails"]


# Every flow here runs with and without `x-credits-used` (conftest `CREDIT_MODES`): the books must match the ledger
# whether the upstream says what it billed or the server computes it from the answer.
@pytest.fixture(scope="module")
def sandbox(revision: str, credits_header: bool) -> Iterator[SandboxServer]:
    yield from sandbox_in_mode(revision, credits_header)


@pytest.fixture
def make_sandbox(make_sandbox: Callable[..., SandboxServer], credits_header: bool) -> Callable[..., SandboxServer]:
    return make_sandbox_in_mode(make_sandbox, credits_header)


def _structured(result: CallToolResult) -> dict[str, Any]:
    """Structured content of a success, the facts line of an error (both checked for their shape)."""
    return data_of(result)


class Asker:
    """An elicitation callback that records the questions and gives a fixed answer."""

    def __init__(self, action: Literal["accept", "decline", "cancel"], approve: bool = True) -> None:
        self.action: Literal["accept", "decline", "cancel"] = action
        self.approve = approve
        self.questions: list[str] = []

    async def __call__(self, context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        self.questions.append(params.message)
        content: dict[str, str | int | float | bool | list[str] | None] | None = (
            {"approve": self.approve} if self.action == "accept" else None
        )
        return ElicitResult(action=self.action, content=content)


@pytest.mark.anyio
async def test_a_call_that_fits_is_charged_and_every_result_carries_a_receipt(
    client: Client, upstream: Upstream
) -> None:
    urls = sample_identifiers(upstream.url, "url", 2, offset=100)
    result = await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": urls})
    receipt = _structured(result)["receipt"]
    assert set(receipt) >= {"estimated", "charged", "cache_hits", "session_spent", "session_remaining"}
    assert (receipt["session_spent"], receipt["session_remaining"]) == ("2.00", "48.00")
    books = _structured(await client.call_tool("get_budget", {}))
    assert (books["spent"], books["reserved"], books["remaining"]) == ("2.00", "0.00", "48.00")
    assert [r["tool"] for r in books["receipts"]] == ["enrich_person_by_url"]
    assert Decimal(books["spent"]) == upstream.billed()


@pytest.mark.anyio
async def test_a_call_over_the_budget_is_refused_with_the_figures_and_spends_nothing(upstream: Upstream) -> None:
    urls = sample_identifiers(upstream.url, "url", 4, offset=110)
    async with Client(build_server(settings_for(upstream.url, upstream.key, session_budget=5))) as client:
        result = await client.call_tool(
            "enrich_person_by_url", {"professional_network_profile_urls": urls, "fields": BUSINESS_EMAIL}
        )
    assert result.is_error
    error = _structured(result)["error"]
    assert (error["code"], error["estimate"], error["remaining"]) == ("budget_exceeded", "8.00", "5.00")
    text = text_of(result)
    assert "8.00" in text and "5.00" in text and "drop contact.business_emails" in text
    upstream.assert_nothing_billable_sent()


@pytest.mark.anyio
async def test_max_credits_below_the_estimate_refuses_before_spending(client: Client, upstream: Upstream) -> None:
    urls = sample_identifiers(upstream.url, "url", 3, offset=120)
    result = await client.call_tool(
        "enrich_person_by_url", {"professional_network_profile_urls": urls, "fields": BUSINESS_EMAIL, "max_credits": 5}
    )
    assert result.is_error and _structured(result)["error"]["code"] == "max_credits_exceeded"
    assert "max_credits=5.00" in text_of(result)
    upstream.assert_nothing_billable_sent()


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_large_spend_is_confirmed_by_elicitation_in_both_protocol_eras(
    upstream: Upstream, mode: Literal["auto", "legacy"]
) -> None:
    urls = sample_identifiers(upstream.url, "url", 8, offset=130)
    asker = Asker("accept")
    server = build_server(settings_for(upstream.url, upstream.key))
    async with Client(server, mode=mode, elicitation_callback=asker) as client:
        result = await client.call_tool(
            "enrich_person_by_url", {"professional_network_profile_urls": urls, "fields": BUSINESS_EMAIL}
        )
    assert result.is_error is False, text_of(result)
    assert len(asker.questions) == 1 and "16.00 credits" in asker.questions[0]
    assert Decimal(_structured(result)["receipt"]["charged"]) == upstream.billed() > 0


@pytest.mark.anyio
@pytest.mark.parametrize(("action", "approve"), [("decline", True), ("cancel", True), ("accept", False)])
async def test_a_declined_confirmation_spends_nothing(
    upstream: Upstream, action: Literal["accept", "decline", "cancel"], approve: bool
) -> None:
    urls = sample_identifiers(upstream.url, "url", 8, offset=140)
    server = build_server(settings_for(upstream.url, upstream.key))
    async with Client(server, elicitation_callback=Asker(action, approve)) as client:
        result = await client.call_tool(
            "enrich_person_by_url", {"professional_network_profile_urls": urls, "fields": BUSINESS_EMAIL}
        )
        books = _structured(await client.call_tool("get_budget", {}))
    assert result.is_error
    assert _structured(result)["error"]["code"] == "confirmation_declined"
    assert (books["spent"], books["reserved"]) == ("0.00", "0.00")
    upstream.assert_nothing_billable_sent()


@pytest.mark.anyio
async def test_without_elicitation_max_credits_at_or_above_the_estimate_confirms(
    client: Client, upstream: Upstream
) -> None:
    urls = sample_identifiers(upstream.url, "url", 8, offset=150)
    args = {"professional_network_profile_urls": urls, "fields": BUSINESS_EMAIL}
    refused = await client.call_tool("enrich_person_by_url", args)
    assert refused.is_error and _structured(refused)["error"]["code"] == "confirmation_required"
    assert "max_credits=16.00" in text_of(refused)
    upstream.assert_nothing_billable_sent()
    confirmed = await client.call_tool("enrich_person_by_url", {**args, "max_credits": 16})
    assert confirmed.is_error is False
    assert Decimal(_structured(confirmed)["receipt"]["charged"]) == upstream.billed()


@pytest.mark.anyio
async def test_concurrent_calls_in_one_session_can_never_overspend_together(upstream: Upstream) -> None:
    batches = [sample_identifiers(upstream.url, "url", 3, offset=200 + 3 * i) for i in range(8)]
    results: list[CallToolResult] = []
    async with Client(build_server(settings_for(upstream.url, upstream.key, session_budget=10))) as client:

        async def call(urls: list[str]) -> None:
            results.append(await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": urls}))

        with anyio.fail_after(30):
            async with anyio.create_task_group() as group:
                for urls in batches:
                    group.start_soon(call, urls)
        books = _structured(await client.call_tool("get_budget", {}))
    succeeded = [r for r in results if not r.is_error]
    refused = [r for r in results if r.is_error]
    assert len(succeeded) <= 3 and len(refused) >= 5
    assert all(_structured(r)["error"]["code"] == "budget_exceeded" for r in refused)
    assert Decimal(books["spent"]) == upstream.billed() <= 10
    assert books["reserved"] == "0.00"


@pytest.mark.anyio
async def test_a_failed_call_releases_its_whole_reservation(make_sandbox: Callable[..., SandboxServer]) -> None:
    sandbox = make_sandbox(faults=())
    upstream = Upstream(sandbox.url, canary_key("failing"))
    urls = sample_identifiers(sandbox.url, "url", 3)
    upstream_faults = {"kind": "status", "status": 503, "count": 3, "endpoint": "enrich"}
    assert upstream.post("/_sandbox/faults", upstream_faults).status_code == 200
    async with Client(build_server(settings_for(sandbox.url, upstream.key))) as client:
        failed = await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": urls})
        books = _structured(await client.call_tool("get_budget", {}))
    assert failed.is_error and "503" in text_of(failed)
    assert (books["spent"], books["reserved"], books["remaining"]) == ("0.00", "0.00", "50.00")
    assert upstream.requests("enrich") == {"503": 3}
    assert upstream.billed() == 0


@pytest.mark.anyio
async def test_each_connection_is_its_own_session_with_its_own_budget(upstream: Upstream) -> None:
    urls = sample_identifiers(upstream.url, "url", 2, offset=300)
    server = build_server(settings_for(upstream.url, upstream.key, session_budget=3))
    async with Client(server) as first:
        await first.call_tool("enrich_person_by_url", {"professional_network_profile_urls": urls})
        spent_first = _structured(await first.call_tool("get_budget", {}))["spent"]
    async with Client(server) as second:
        books = _structured(await second.call_tool("get_budget", {}))
    assert spent_first == "2.00"
    assert (books["spent"], books["remaining"]) == ("0.00", "3.00")


def test_refusals_name_the_cause_and_the_next_step() -> None:
    from person_enrich_mcp.errors import BudgetExceededError, model_message

    message = model_message(
        BudgetExceededError("Refused: x. To spend less: y.", estimate=Decimal(1), remaining=Decimal(0))
    )
    assert message.startswith("Refused") and "To spend less" in message
