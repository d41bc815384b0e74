"""Every result of every tool, success and error, is one a strict client can read.

The TypeScript SDK (the MCP Inspector, the desktop clients) validates `structuredContent` against the tool's
published `outputSchema` even on errors, and text-only clients (LangChain, the OpenAI Agents SDK by default) see only
the text. So: a success's structured content validates against the published schema and against the full result
model, and its one text block is the same object as compact JSON; an error has `isError`, no structured content, and
a text of one message line (cause and next step) followed by one compact JSON line of facts.

The calls below drive each tool through the flows that produce its results: successes, cached repeats, no-matches,
invalid input (ours and the SDK's), refusals (budget, max_credits, confirmation, the model approval limit, a declined
prompt), upstream faults and an outright rejected key.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import anyio
import jsonschema
import pytest
from mcp import Client
from mcp.client import ClientRequestContext
from mcp.types import CallToolResult, ElicitRequestParams, ElicitResult
from pydantic import BaseModel

from person_enrich_mcp.sandbox import SandboxServer
from person_enrich_mcp.server import build_server
from person_enrich_mcp.tools.results import BudgetResult, EnrichResult
from person_enrich_mcp.tools.suggest import SuggestResult
from tests.conftest import Upstream, canary_key, sample_identifiers, settings_for, text_of

MODELS: dict[str, type[BaseModel]] = {
    "enrich_person_by_url": EnrichResult,
    "enrich_person_by_email": EnrichResult,
    "search_then_enrich": EnrichResult,
    "suggest_filter_values": SuggestResult,
    "get_budget": BudgetResult,
}
GERMANY = {"field": "basic_profile.location.country", "type": "=", "value": "Germany"}
NOBODY = {"field": "basic_profile.name", "type": "=", "value": "Nobody Withthisname"}
EMAIL_FIELDS = ["basic_profile.name", "contact.business_emails"]


@dataclass
class Seen:
    """Every result the calls produced, by tool, and the error codes met (to prove the flows were covered)."""

    results: list[tuple[str, CallToolResult]] = field(default_factory=list[tuple[str, CallToolResult]])

    async def call(self, client: Client, tool: str, arguments: dict[str, Any]) -> CallToolResult:
        with anyio.fail_after(60):
            result = await client.call_tool(tool, arguments)
        self.results.append((tool, result))
        return result

    def codes(self) -> set[str]:
        return {_facts(r)["error"]["code"] for _, r in self.results if r.is_error and _facts(r)}


def _facts(result: CallToolResult) -> dict[str, Any]:
    """The facts line of one of our error results ({} for the SDK's own argument errors, which have none)."""
    _, _, last = text_of(result).rpartition("\n")
    try:
        return cast(dict[str, Any], json.loads(last))
    except ValueError:
        return {}


class Decline:
    """An elicitation callback that says no."""

    async def __call__(self, context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        return ElicitResult(action="decline")


async def _drive(upstream: Upstream, make_sandbox: Callable[..., SandboxServer]) -> Seen:
    seen = Seen()
    urls = sample_identifiers(upstream.url, "url", 9, offset=700)
    fresh = sample_identifiers(upstream.url, "url", 9, offset=720)
    emails = sample_identifiers(upstream.url, "email", 2, offset=700)
    async with Client(build_server(settings_for(upstream.url, upstream.key))) as client:
        # Successes, a cached repeat, a no-match, contact tiers (with people who have none: `missing`).
        await seen.call(client, "enrich_person_by_url", {"professional_network_profile_urls": urls[:2]})
        await seen.call(client, "enrich_person_by_url", {"professional_network_profile_urls": urls[:2]})
        await seen.call(
            client, "enrich_person_by_url", {"professional_network_profile_urls": urls[2:5], "fields": EMAIL_FIELDS}
        )
        await seen.call(
            client,
            "enrich_person_by_url",
            {"professional_network_profile_urls": ["https://www.linkedin.com/in/nobody-by-this-name-0000", "bogus"]},
        )
        await seen.call(client, "enrich_person_by_email", {"business_emails": emails})
        await seen.call(client, "search_then_enrich", {"filters": GERMANY, "limit": 2})
        await seen.call(client, "search_then_enrich", {"filters": GERMANY, "limit": 3, "enrich": False})
        await seen.call(client, "search_then_enrich", {"filters": NOBODY})
        await seen.call(client, "suggest_filter_values", {"field": "basic_profile.location.country", "query": "united"})
        await seen.call(
            client, "suggest_filter_values", {"field": "experience.employment_details.current.seniority_level"}
        )
        await seen.call(client, "get_budget", {})
        # Invalid input: ours, then the SDK's (an argument outside its schema).
        await seen.call(client, "enrich_person_by_url", {"professional_network_profile_urls": ["bogus"]})
        await seen.call(
            client, "enrich_person_by_url", {"professional_network_profile_urls": urls[:1], "fields": ["x"]}
        )
        await seen.call(
            client, "enrich_person_by_url", {"professional_network_profile_urls": urls[:1], "max_credits": "NaN"}
        )
        await seen.call(client, "enrich_person_by_email", {"business_emails": ["jane@gmail.com"]})
        await seen.call(
            client, "search_then_enrich", {"filters": {"field": "current_title", "type": "=", "value": "CEO"}}
        )
        await seen.call(client, "search_then_enrich", {"filters": GERMANY, "cursor": "not-ours"})
        await seen.call(client, "search_then_enrich", {"filters": GERMANY, "enrich": False, "fields": ["skills"]})
        await seen.call(client, "suggest_filter_values", {"field": "current_title"})
        await seen.call(client, "search_then_enrich", {"filters": GERMANY, "limit": 0})
        # Refusals: above max_credits, above the confirmation threshold with no prompt, above the model's limit.
        big = {"professional_network_profile_urls": fresh, "fields": EMAIL_FIELDS}
        await seen.call(client, "enrich_person_by_url", {**big, "max_credits": 3})
        await seen.call(client, "enrich_person_by_url", big)
    async with Client(build_server(settings_for(upstream.url, upstream.key, session_budget=200))) as client:
        await seen.call(client, "search_then_enrich", {"filters": GERMANY, "limit": 50, "max_credits": 100})
    async with Client(build_server(settings_for(upstream.url, upstream.key, session_budget=2))) as client:
        await seen.call(client, "enrich_person_by_url", {"professional_network_profile_urls": urls[5:9]})
    async with Client(build_server(settings_for(upstream.url, upstream.key)), elicitation_callback=Decline()) as client:
        await seen.call(client, "enrich_person_by_url", big)
    # Upstream faults: a 503 that outlasts the retries, a lost answer, and a rejected key.
    faulty = Upstream(make_sandbox().url, canary_key("schema-faults"))
    assert faulty.post(
        "/_sandbox/faults", {"kind": "status", "status": 503, "count": 3, "endpoint": "enrich"}
    ).is_success
    async with Client(build_server(settings_for(faulty.url, faulty.key))) as client:
        await seen.call(client, "enrich_person_by_url", {"professional_network_profile_urls": urls[:1]})
        assert faulty.post("/_sandbox/faults", {"kind": "reset", "count": 1, "endpoint": "search"}).is_success
        await seen.call(client, "search_then_enrich", {"filters": GERMANY, "limit": 2})
    locked = make_sandbox(api_keys=("the-right-key",))
    async with Client(build_server(settings_for(locked.url, canary_key("schema-wrong")))) as client:
        await seen.call(client, "suggest_filter_values", {"field": "basic_profile.location.country"})
        await seen.call(client, "get_budget", {})
    return seen


@pytest.mark.anyio
async def test_every_result_of_every_tool_validates_against_its_published_output_schema(
    client: Client, upstream: Upstream, make_sandbox: Callable[..., SandboxServer]
) -> None:
    published = {t.name: t.output_schema for t in (await client.list_tools()).tools}
    seen = await _drive(upstream, make_sandbox)
    assert {tool for tool, _ in seen.results} == set(published) == set(MODELS)
    for tool, result in seen.results:
        schema = published[tool]
        assert schema is not None, tool
        if result.is_error:
            # No structured content at all: there is nothing for a strict client to reject.
            assert result.structured_content is None, (tool, text_of(result))
            assert [block.type for block in result.content] == ["text"], tool
            continue
        structured = result.structured_content
        jsonschema.validate(structured, schema)  # what every client checks
        jsonschema.validate(structured, MODELS[tool].model_json_schema())  # the server's whole contract
        assert [block.type for block in result.content] == ["text"], tool
        text = text_of(result)
        assert json.loads(text) == structured, tool
        assert text == json.dumps(structured, separators=(",", ":"), ensure_ascii=False), tool
    # The flows above met every kind of result they were written for.
    assert seen.codes() >= {
        "invalid_input",
        "max_credits_exceeded",
        "confirmation_required",
        "confirmation_declined",
        "budget_exceeded",
        "upstream_unavailable",
        "upstream_outcome_unknown",
        "upstream_auth_failed",
    }, seen.codes()
    assert any(not r.is_error and "missing" in json.dumps(r.structured_content) for _, r in seen.results)


@pytest.mark.anyio
async def test_an_error_is_one_message_line_with_the_next_step_then_one_line_of_facts(
    client: Client, upstream: Upstream
) -> None:
    urls = sample_identifiers(upstream.url, "url", 9, offset=760)
    result = await client.call_tool(
        "enrich_person_by_url",
        {"professional_network_profile_urls": urls, "fields": EMAIL_FIELDS},
    )
    message, facts_line = text_of(result).split("\n")
    facts = json.loads(facts_line)
    assert facts == {
        "error": {"code": "confirmation_required", "estimate": "18.00", "remaining": "50.00"},
        "budget": {"spent": "0.00", "remaining": "50.00"},
    }
    assert "18.00 credits" in message and "max_credits=18.00" in message
    assert facts_line == json.dumps(facts, separators=(",", ":"))
    upstream.assert_nothing_billable_sent()


@pytest.mark.anyio
async def test_an_error_after_a_paid_request_carries_the_receipt_of_what_was_charged(
    make_sandbox: Callable[..., SandboxServer],
) -> None:
    sandbox = make_sandbox()
    upstream = Upstream(sandbox.url, canary_key("schema-receipt"))
    # The search is paid; the enrichment after it fails outright.
    assert upstream.post(
        "/_sandbox/faults", {"kind": "status", "status": 503, "count": 3, "endpoint": "enrich"}
    ).is_success
    async with Client(build_server(settings_for(sandbox.url, upstream.key))) as client:
        result = await client.call_tool("search_then_enrich", {"filters": GERMANY, "limit": 2})
    facts = _facts(result)
    assert result.is_error and result.structured_content is None
    assert facts["error"]["code"] == "upstream_unavailable"
    assert facts["receipt"]["charged"] == "0.06" and "budget" not in facts
    assert "this call had already spent 0.06 credits" in text_of(result)
