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
    error = _structured(result)["error"]
    assert (error["code"], error["estimate"], error["remaining"]) == ("confirmation_declined", "16.00", "50.00")
    assert "the user did not approve spending up to 16.00 credits" in text_of(result)
    assert (books["spent"], books["reserved"]) == ("0.00", "0.00")
    upstream.assert_nothing_billable_sent()


@pytest.mark.anyio
async def test_without_elicitation_max_credits_at_or_above_the_estimate_confirms(
    client: Client, upstream: Upstream
) -> None:
    urls = sample_identifiers(upstream.url, "url", 8, offset=150)
    args = {"professional_network_profile_urls": urls, "fields": BUSINESS_EMAIL}
    refused = await client.call_tool("enrich_person_by_url", args)
    error = _structured(refused)["error"]
    assert (error["code"], error["estimate"], error["remaining"]) == ("confirmation_required", "16.00", "50.00")
    assert "above the confirmation threshold of 15.00" in text_of(refused)
    assert "max_credits=16.00" in text_of(refused)
    # The ways to spend less are named, after the way to confirm.
    assert "or lower the cost (drop contact.business_emails (+1.00 a profile); look up fewer people)." in text_of(
        refused
    )
    upstream.assert_nothing_billable_sent()
    confirmed = await client.call_tool("enrich_person_by_url", {**args, "max_credits": 16})
    assert confirmed.is_error is False
    assert Decimal(_structured(confirmed)["receipt"]["charged"]) == upstream.billed()


@pytest.mark.anyio
async def test_a_call_costing_exactly_the_confirmation_threshold_runs_without_asking(upstream: Upstream) -> None:
    urls = sample_identifiers(upstream.url, "url", 2, offset=160)
    asker = Asker("decline")
    server = build_server(settings_for(upstream.url, upstream.key, confirm_above=Decimal(2)))
    async with Client(server, elicitation_callback=asker) as client:
        result = await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": urls})
    assert result.is_error is False, text_of(result)
    assert asker.questions == []  # 2.00 is not above a threshold of 2.00
    assert Decimal(_structured(result)["receipt"]["charged"]) == upstream.billed() == 2


@pytest.mark.anyio
async def test_a_large_call_over_its_own_max_credits_is_refused_without_asking_the_user(upstream: Upstream) -> None:
    urls = sample_identifiers(upstream.url, "url", 8, offset=170)
    asker = Asker("accept")
    async with Client(build_server(settings_for(upstream.url, upstream.key)), elicitation_callback=asker) as client:
        result = await client.call_tool(
            "enrich_person_by_url",
            {"professional_network_profile_urls": urls, "fields": BUSINESS_EMAIL, "max_credits": 10},
        )
    assert asker.questions == []  # the call's own ceiling already refuses 16.00: no question to ask
    error = _structured(result)["error"]
    assert (error["code"], error["estimate"], error["remaining"]) == ("max_credits_exceeded", "16.00", "50.00")
    assert "above max_credits=10.00" in text_of(result)
    upstream.assert_nothing_billable_sent()


@pytest.mark.anyio
async def test_a_large_call_over_the_budget_is_refused_with_the_figures_without_asking_the_user(
    upstream: Upstream,
) -> None:
    urls = sample_identifiers(upstream.url, "url", 8, offset=180)
    asker = Asker("accept")
    server = build_server(settings_for(upstream.url, upstream.key, session_budget=10))
    async with Client(server, elicitation_callback=asker) as client:
        result = await client.call_tool(
            "enrich_person_by_url", {"professional_network_profile_urls": urls, "fields": BUSINESS_EMAIL}
        )
    assert asker.questions == []  # no approval could make 16.00 fit in 10.00
    error = _structured(result)["error"]
    assert (error["code"], error["estimate"], error["remaining"]) == ("budget_exceeded", "16.00", "10.00")
    upstream.assert_nothing_billable_sent()


@pytest.mark.anyio
async def test_a_large_call_that_uses_exactly_the_whole_budget_still_asks_the_user(upstream: Upstream) -> None:
    urls = sample_identifiers(upstream.url, "url", 8, offset=190)
    asker = Asker("decline")
    server = build_server(settings_for(upstream.url, upstream.key, session_budget=16))
    async with Client(server, elicitation_callback=asker) as client:
        result = await client.call_tool(
            "enrich_person_by_url", {"professional_network_profile_urls": urls, "fields": BUSINESS_EMAIL}
        )
    assert len(asker.questions) == 1 and "16.00 credits" in asker.questions[0]
    assert _structured(result)["error"]["code"] == "confirmation_declined"
    upstream.assert_nothing_billable_sent()


@pytest.mark.anyio
@pytest.mark.parametrize("revision", ["current"], indirect=True)
async def test_a_large_call_above_the_account_balance_is_refused_without_asking_the_user(upstream: Upstream) -> None:
    assert upstream.post("/_sandbox/balance", {"credits": "10"}).status_code == 200
    urls = sample_identifiers(upstream.url, "url", 8, offset=185)
    asker = Asker("accept")
    async with Client(build_server(settings_for(upstream.url, upstream.key)), elicitation_callback=asker) as client:
        result = await client.call_tool(
            "enrich_person_by_url", {"professional_network_profile_urls": urls, "fields": BUSINESS_EMAIL}
        )
    assert asker.questions == []  # no approval could make 16.00 fit in the account's 10.00
    assert _structured(result)["error"]["code"] == "account_balance_low"
    assert "Crustdata account has only 10.00 credits left" in text_of(result)
    lower = "To spend less: drop contact.business_emails (+1.00 a profile); look up fewer people. Tell the user"
    assert lower in text_of(result)
    upstream.assert_nothing_billable_sent()


@pytest.mark.anyio
@pytest.mark.parametrize("revision", ["current"], indirect=True)
async def test_a_call_costing_exactly_the_account_balance_runs_and_the_next_is_refused(
    client: Client, upstream: Upstream
) -> None:
    assert upstream.post("/_sandbox/balance", {"credits": "2"}).status_code == 200
    urls = sample_identifiers(upstream.url, "url", 3, offset=230)
    fits = await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": urls[:2]})
    assert fits.is_error is False, text_of(fits)  # 2.00 is not above a balance of 2.00
    refused = await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": urls[2:]})
    error = _structured(refused)["error"]
    assert (error["code"], error["estimate"], error["remaining"]) == ("account_balance_low", "1.00", "0.00")
    # One profile with the default fields: no cheaper way to offer.
    assert "Refused before spending anything: this call could cost up to 1.00 credits" in text_of(refused)
    assert "the Crustdata account has only 0.00 credits left. Tell the user to top up" in text_of(refused)
    assert upstream.billed() == 2


@pytest.mark.anyio
async def test_max_credits_approves_a_call_costing_exactly_the_model_approval_limit(upstream: Upstream) -> None:
    urls = sample_identifiers(upstream.url, "url", 8, offset=175)
    server = build_server(settings_for(upstream.url, upstream.key, model_approval_limit=Decimal(16)))
    async with Client(server) as client:  # cannot show a prompt: only max_credits can approve
        result = await client.call_tool(
            "enrich_person_by_url",
            {"professional_network_profile_urls": urls, "fields": BUSINESS_EMAIL, "max_credits": 16},
        )
    assert result.is_error is False, text_of(result)  # 16.00 is not above a limit of 16.00
    assert Decimal(_structured(result)["receipt"]["charged"]) == upstream.billed() > 0


@pytest.mark.anyio
async def test_max_credits_zero_allows_a_call_served_wholly_from_the_cache(client: Client, upstream: Upstream) -> None:
    urls = sample_identifiers(upstream.url, "url", 2, offset=195)
    first = await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": urls})
    billed = upstream.billed()
    again = await client.call_tool(
        "enrich_person_by_url", {"professional_network_profile_urls": urls, "max_credits": 0}
    )
    assert first.is_error is False and again.is_error is False, text_of(again)
    receipt = _structured(again)["receipt"]
    assert (receipt["estimated"], receipt["charged"], receipt["cache_hits"]) == ("0.00", "0.00", 2)
    assert upstream.billed() == billed == 2


@pytest.mark.anyio
async def test_a_negative_max_credits_is_refused_naming_the_value(client: Client, upstream: Upstream) -> None:
    urls = sample_identifiers(upstream.url, "url", 1, offset=198)
    result = await client.call_tool(
        "enrich_person_by_url", {"professional_network_profile_urls": urls, "max_credits": -1}
    )
    error = _structured(result)["error"]
    assert (error["code"], error["estimate"], error["remaining"]) == ("max_credits_exceeded", "1.00", "50.00")
    assert "max_credits must be 0 or more (got -1); it is the most this call may spend. Nothing was spent." in text_of(
        result
    )
    upstream.assert_nothing_billable_sent()


@pytest.mark.anyio
async def test_a_refusal_with_no_cheaper_way_offers_none(upstream: Upstream) -> None:
    # One profile with the default fields: nothing to drop and no fewer people to look up.
    urls = sample_identifiers(upstream.url, "url", 1, offset=165)
    server = build_server(settings_for(upstream.url, upstream.key, confirm_above=Decimal(0)))
    async with Client(server) as client:
        result = await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": urls})
    error = _structured(result)["error"]
    assert (error["code"], error["estimate"], error["remaining"]) == ("confirmation_required", "1.00", "50.00")
    assert "more than the 0.00 credits a call's own max_credits may approve" in text_of(result)
    assert "or lower the cost. Nothing was spent." in text_of(result)
    upstream.assert_nothing_billable_sent()


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
