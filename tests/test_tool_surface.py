"""The tool surface the model sees is pinned: any change is a visible diff of tests/snapshots/tool_surface.json.

Run `pytest tests/test_tool_surface.py --update-snapshots` after an intended change, and add a CHANGELOG line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from person_enrich_mcp.server import INSTRUCTIONS

SNAPSHOT = Path(__file__).parent / "snapshots" / "tool_surface.json"
REQUIRED_HINTS = ("readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint")


async def _surface(client: Client) -> dict[str, Any]:
    tools = (await client.list_tools()).tools
    return {
        "instructions": INSTRUCTIONS,
        "tools": [t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in tools],
    }


@pytest.mark.anyio
async def test_tool_surface_matches_the_committed_snapshot(client: Client, request: pytest.FixtureRequest) -> None:
    surface = await _surface(client)
    rendered = json.dumps(surface, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if request.config.getoption("--update-snapshots"):
        SNAPSHOT.write_text(rendered, encoding="utf-8")
    assert SNAPSHOT.read_text(encoding="utf-8") == rendered, (
        "The tool surface changed. If intended, rerun with --update-snapshots and add a CHANGELOG line."
    )


@pytest.mark.anyio
async def test_every_tool_has_a_title_all_four_hints_an_output_schema_and_states_its_cost(client: Client) -> None:
    tools = (await client.list_tools()).tools
    assert {t.name for t in tools} == {
        "enrich_person_by_url",
        "enrich_person_by_email",
        "search_then_enrich",
        "suggest_filter_values",
        "get_budget",
    }
    for tool in tools:
        hints = tool.model_dump(by_alias=True, exclude_none=True)["annotations"]
        assert tool.title, tool.name
        assert all(name in hints for name in REQUIRED_HINTS), (tool.name, hints)
        assert hints["destructiveHint"] is False and hints["readOnlyHint"] is True
        assert tool.output_schema is not None and tool.output_schema["type"] == "object"
        description = tool.description or ""
        assert "credit" in description.lower() or "free" in description.lower(), tool.name
    upstream = [t for t in tools if t.name != "get_budget"]
    assert all(t.annotations is not None and t.annotations.open_world_hint for t in upstream)
    free = {t.name: t.description or "" for t in tools if t.name in ("get_budget", "suggest_filter_values")}
    assert all("Free" in description for description in free.values()), free


# The whole `tools/list` answer a client receives stays under 4,800 bytes (bench/run measures the JSON-RPC line
# itself); its envelope around the tools takes about 50 of them.
TOOLS_LIST_BUDGET = 4_800
JSON_RPC_ENVELOPE = 50


@pytest.mark.anyio
async def test_tools_list_stays_compact(client: Client) -> None:
    tools = (await client.list_tools()).tools
    listing = {"tools": [t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in tools]}
    size = len(json.dumps(listing, separators=(",", ":"), ensure_ascii=False).encode()) + JSON_RPC_ENVELOPE
    assert size < TOOLS_LIST_BUDGET, f"tools/list grew to about {size} bytes; catalogs belong in the resources"


@pytest.mark.anyio
async def test_inputs_mirror_the_upstream_parameter_names(client: Client) -> None:
    tools = {t.name: t.input_schema for t in (await client.list_tools()).tools}
    assert set(tools["enrich_person_by_url"]["properties"]) == {
        "professional_network_profile_urls",
        "fields",
        "force_fetch",
        "enrich_realtime",
        "max_credits",
    }
    assert set(tools["enrich_person_by_email"]["properties"]) == {
        "business_emails",
        "fields",
        "min_similarity_score",
        "max_credits",
    }
    assert {"filters", "sorts", "limit", "cursor", "fields", "enrich", "max_credits"} == set(
        tools["search_then_enrich"]["properties"]
    )
    assert set(tools["suggest_filter_values"]["properties"]) == {"field", "query", "limit"}
    urls = tools["enrich_person_by_url"]["properties"]["professional_network_profile_urls"]
    assert urls["maxItems"] == 25
    # The operator is a string, so the usual spellings (>=, contains) reach the server, which reads them as the API's
    # own; its description lists the API's.
    operator = tools["search_then_enrich"]["$defs"]["Filter"]["properties"]["type"]
    assert operator["type"] == "string" and operator["description"] == "= != < =< > => in not_in (.) (!) [.]"
    refresh = tools["enrich_person_by_url"]["properties"]
    assert (
        "Live Enrich" in refresh["force_fetch"]["description"] and "7 credits" in refresh["force_fetch"]["description"]
    )
    assert refresh["enrich_realtime"]["description"] == "Same as force_fetch"


@pytest.mark.anyio
async def test_field_catalog_resource_lists_every_path_with_section_and_add_on(client: Client) -> None:
    result = await client.read_resource("person-enrich://fields")
    text = getattr(result.contents[0], "text", "")
    catalog = json.loads(text)
    by_path = {entry["path"]: entry for entry in catalog["fields"]}
    assert by_path["contact"]["addon_credits"] == "5.00"
    assert by_path["contact.phone_numbers"]["addon_credits"] == "2.00"
    assert by_path["contact.business_emails.email"]["addon_credits"] == "1.00"
    assert by_path["dev_platform_profiles"]["addon_credits"] == "1.00"
    assert "addon_credits" not in by_path["basic_profile.name"]
    assert "addon_credits" not in by_path["contact.websites"]  # a contact tier priced 0
    assert by_path["experience.employment_details.current.title"]["section"] == "experience"
    # Today's documented prices: a profile 1 (+1 developer platform, at most 2), contact tiers per tier returned (at
    # most 5), search 0.03 a result, a fresh fetch (Live Enrich) 7 a profile.
    pricing = catalog["pricing"]
    assert set(pricing) == {
        "profile",
        "contact",
        "search_per_result",
        "force_fetch_or_enrich_realtime",
        "no_match",
        "note",
    }
    assert pricing["profile"].startswith("1.00 per matched profile") and "at most 2.00" in pricing["profile"]
    assert "per tier returned" in pricing["contact"] and "at most 5.00" in pricing["contact"]
    assert pricing["search_per_result"] == "0.03"
    assert pricing["force_fetch_or_enrich_realtime"].startswith("7.00 per profile")
    assert pricing["no_match"] == "free"
    assert set(catalog["default_fields"]) <= set(by_path)
