"""`person-enrich-mcp demo`: a real MCP client session over stdio against the server in sandbox mode.

It prints, step by step, what a model would see (each result's text, shortened here) with a one-line reading of it:
free discovery, a search-only preview, the headline task (five people with their work emails, under the default
confirmation threshold), a cache hit, a mistake caught for free, a refused over-budget call and a confirmation by
elicitation. All data comes from the embedded sandbox (synthetic).
"""

from __future__ import annotations

import json
import sys
import textwrap
from typing import Any, cast

import anyio
from mcp import Client, StdioServerParameters
from mcp.client import ClientRequestContext
from mcp.client.stdio import get_default_environment
from mcp.types import CallToolResult, ElicitRequestParams, ElicitResult

from person_enrich_mcp.fields import DEFAULT_PATHS as DEFAULT_FIELDS

DEMO_BUDGET = "50"
SHOWN_CHARACTERS = 420
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


def _count(people: int) -> str:
    return "1 person" if people == 1 else f"{people} people"


def _show(result: CallToolResult) -> dict[str, Any]:
    """Print the text the model reads (shortened) and a one-line reading of it; returns the data."""
    text = "\n".join(c.text for c in result.content if c.type == "text")
    if result.is_error:
        message, _, facts = text.rpartition("\n")
        _say(textwrap.indent(f"✗ error: {message}\n  facts: {facts}", "   "))
        return {}
    shown = text if len(text) <= SHOWN_CHARACTERS else f"{text[:SHOWN_CHARACTERS]}… ({len(text.encode()):,} bytes)"
    _say(f"   ✓ the model reads: {shown}")
    data: dict[str, Any] = dict(result.structured_content or {})
    receipt: Any = data.get("receipt")
    if isinstance(receipt, dict):
        receipt = cast(dict[str, Any], receipt)
        hits = receipt.get("cache_hits", 0)
        _say(
            f"   → {_count(len(data.get('people', [])))}; charged {receipt['charged']} of an estimate of "
            f"{receipt['estimated']} credits; {hits} from cache; {receipt['session_remaining']} left"
        )
    notes: list[Any] = [*data.get("notes", []), *data.get("why_empty", [])]
    for note in notes:
        _say(f"   → note: {note}")
    return data


async def _approve(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
    _say(f"   ? the server asks the user: {params.message}")
    _say("   ! the demo user answers: approve")
    return ElicitResult(action="accept", content={"approve": True})


def _server_parameters() -> StdioServerParameters:
    env = get_default_environment()
    env.update({"PERSON_ENRICH_SESSION_BUDGET": DEMO_BUDGET, "PYTHONUNBUFFERED": "1"})
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
    _say(
        f"Synthetic data, no key, nothing billed. Session budget {DEMO_BUDGET} credits; default confirmation threshold."
    )
    async with Client(_server_parameters(), elicitation_callback=_approve) as client:
        _step(1, "tools/list: what the model sees")
        tools = (await client.list_tools()).tools
        wire = json.dumps(
            [t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in tools], separators=(",", ":")
        )
        _say(f"   {len(tools)} tools, {len(wire.encode()):,} bytes of schema in all:")
        for tool in tools:
            _say(f"   - {tool.name}: {tool.title}")

        _step(2, "suggest_filter_values (free): the exact titles that contain 'engineering'")
        _show(
            await client.call_tool(
                "suggest_filter_values",
                {"field": "experience.employment_details.current.title", "query": "engineering", "limit": 5},
            )
        )

        _step(3, "a mistake caught for free: seniority 'VP' would match no one")
        vp = {"field": "experience.employment_details.current.seniority_level", "type": "=", "value": "VP"}
        _show(await client.call_tool("search_then_enrich", {"filters": vp}))

        _step(4, "search_then_enrich with enrich=false: a look at 5 candidates for 0.03 each")
        _show(await client.call_tool("search_then_enrich", {"filters": SEARCH_FILTERS, "limit": 5, "enrich": False}))

        _step(5, "the headline task: five engineers in the United States with their work emails (no prompt)")
        found = _show(
            await client.call_tool(
                "search_then_enrich",
                {"filters": SEARCH_FILTERS, "limit": 5, "fields": [*DEFAULT_FIELDS, "contact.business_emails"]},
            )
        )
        urls = _urls(found)

        _step(6, "enrich_person_by_url: two of them again, a made-up and a malformed URL")
        ask = [*urls[:2], "https://www.linkedin.com/in/", "https://www.linkedin.com/in/not-a-real-person-0000"]
        _show(await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": ask}))

        email = _first_email(found) or "someone@northwind-labs.example"
        _step(7, f"enrich_person_by_email: {email} and a personal gmail address (rejected for free)")
        _show(
            await client.call_tool(
                "enrich_person_by_email",
                {"business_emails": [email, "jane.doe@gmail.com"], "min_similarity_score": 0.7},
            )
        )

        _step(8, "over budget: 25 people with every contact field (up to 5 credits each) is refused up front")
        many = [f"https://www.linkedin.com/in/demo-person-{i:04d}" for i in range(25)]
        _show(
            await client.call_tool(
                "enrich_person_by_url", {"professional_network_profile_urls": many, "fields": ["contact"]}
            )
        )

        _step(9, "above the confirmation threshold: six engineers with phone numbers (up to 18.18 credits)")
        phones = ["basic_profile.name", "contact.phone_numbers"]
        _show(await client.call_tool("search_then_enrich", {"filters": SEARCH_FILTERS, "limit": 6, "fields": phones}))

        _step(10, "get_budget: the session's books (free)")
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
