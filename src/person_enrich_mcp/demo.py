"""`person-enrich-mcp demo`: a real MCP client session over stdio against the server in sandbox mode.

It prints, step by step, what a model would see: trimmed results, receipts, a cache hit, a refused
over-budget call and a confirmation by elicitation. All data comes from the embedded sandbox (synthetic).
"""

from __future__ import annotations

import json
import sys
import textwrap
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from mcp.client import ClientRequestContext
from mcp.client.stdio import get_default_environment
from mcp.types import CallToolResult, ElicitRequestParams, ElicitResult

DEMO_BUDGET = "50"
DEMO_CONFIRM_ABOVE = "10"
SEARCH_FILTERS: dict[str, Any] = {
    "op": "and",
    "conditions": [
        {"field": "experience.employment_details.current.function_category", "type": "=", "value": "Engineering"},
        {"field": "basic_profile.location.country", "type": "=", "value": "United States"},
    ],
}


def _say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _step(number: int, title: str) -> None:
    _say()
    _say(f"── {number}. {title}")


def _show(result: CallToolResult) -> dict[str, Any]:
    text = "\n".join(c.text for c in result.content if c.type == "text")
    marker = "✗ error" if result.is_error else "✓"
    _say(textwrap.indent(f"{marker} {text}", "   "))
    return result.structured_content or {}


async def _approve(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
    _say(f"   ? the server asks the user: {params.message}")
    _say("   ! the demo user answers: approve")
    return ElicitResult(action="accept", content={"approve": True})


def _server_parameters() -> StdioServerParameters:
    env = get_default_environment()
    env.update(
        {
            "PERSON_ENRICH_SESSION_BUDGET": DEMO_BUDGET,
            "PERSON_ENRICH_CONFIRM_ABOVE": DEMO_CONFIRM_ABOVE,
            "PYTHONUNBUFFERED": "1",
        }
    )
    return StdioServerParameters(command=sys.executable, args=["-m", "person_enrich_mcp", "--sandbox"], env=env)


def _urls(structured: dict[str, Any]) -> list[str]:
    return [str(p["matched_on"]) for p in structured.get("people", [])]


def _first_email(structured: dict[str, Any]) -> str | None:
    for person in structured.get("people", []):
        for item in person.get("person_data", {}).get("contact", {}).get("business_emails", []):
            if item.get("email"):
                return str(item["email"])
    return None


async def _session() -> None:
    _say("person-enrich-mcp demo: a real MCP session over stdio, against the embedded sandbox.")
    _say(f"Synthetic data, no key, nothing billed. Session budget {DEMO_BUDGET} credits; confirmation above "
         f"{DEMO_CONFIRM_ABOVE}.")  # fmt: skip
    async with Client(_server_parameters(), elicitation_callback=_approve) as client:
        _step(1, "tools/list: what the model sees")
        tools = (await client.list_tools()).tools
        wire = json.dumps(
            [t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in tools], separators=(",", ":")
        )
        _say(f"   {len(tools)} tools, {len(wire.encode()):,} bytes of schema in all:")
        for tool in tools:
            _say(f"   - {tool.name}: {tool.title}")

        _step(2, "search_then_enrich: engineers in the United States, 4 people, default fields")
        found = _show(await client.call_tool("search_then_enrich", {"filters": SEARCH_FILTERS, "limit": 4}))
        urls = _urls(found)

        _step(
            3,
            "enrich_person_by_url: work emails for two of them (names cached: 1 credit per email found), "
            "a made-up and a malformed URL",
        )
        ask = [*urls[:2], "https://www.linkedin.com/in/", "https://www.linkedin.com/in/not-a-real-person-0000"]
        first = _show(
            await client.call_tool(
                "enrich_person_by_url",
                {"professional_network_profile_urls": ask, "fields": ["basic_profile.name", "contact.business_emails"]},
            )
        )

        _step(4, "enrich_person_by_url: the first two again with the default fields, served from the cache")
        _show(await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": urls[:2]}))

        email = _first_email(first) or "someone@northwind-labs.example"
        _step(5, f"enrich_person_by_email: {email} and a personal gmail address (rejected for free)")
        _show(
            await client.call_tool(
                "enrich_person_by_email",
                {"business_emails": [email, "jane.doe@gmail.com"], "min_similarity_score": 0.7},
            )
        )

        _step(6, "over budget: 25 people with every contact field (up to 5 credits each) is refused up front")
        many = [f"https://www.linkedin.com/in/demo-person-{i:04d}" for i in range(25)]
        _show(
            await client.call_tool(
                "enrich_person_by_url", {"professional_network_profile_urls": many, "fields": ["contact"]}
            )
        )

        _step(7, "above the confirmation threshold: six engineers with work emails (up to 12.18 credits)")
        _show(
            await client.call_tool(
                "search_then_enrich",
                {
                    "filters": SEARCH_FILTERS,
                    "limit": 6,
                    "fields": ["basic_profile.name", "basic_profile.current_title", "contact.business_emails"],
                },
            )
        )

        _step(8, "get_budget: the session's books (free)")
        budget = _show(await client.call_tool("get_budget", {}))
        for receipt in budget.get("receipts", []):
            _say(
                f"   receipt {receipt['tool']}: estimated {receipt['estimated']}, charged {receipt['charged']}, "
                f"cache hits {receipt['cache_hits']}"
            )
    _say()
    _say("Done. Run `person-enrich-mcp --sandbox` to connect your own MCP client to the same sandbox.")


def run_demo() -> int:
    """Run the demo session; returns the process exit code."""
    anyio.run(_session)
    return 0
