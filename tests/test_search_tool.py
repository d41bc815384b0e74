"""search_then_enrich through a real MCP client against the sandbox over HTTP."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

import anyio
import pytest
from mcp import Client

from person_enrich_mcp.fields import PROFILE_URL_PATH
from tests.conftest import Upstream, error_facts, text_of

US = {"field": "basic_profile.location.country", "type": "=", "value": "United States"}
ENGINEERS = {
    "op": "and",
    "conditions": [
        US,
        {"field": "experience.employment_details.current.function_category", "type": "=", "value": "Engineering"},
    ],
}


def _ok(result: Any) -> dict[str, Any]:
    assert result.is_error is False, text_of(result)
    return cast(dict[str, Any], result.structured_content)


@pytest.mark.anyio
async def test_search_asks_only_for_profile_urls_then_enriches_what_it_found(
    client: Client, upstream: Upstream
) -> None:
    found = _ok(await client.call_tool("search_then_enrich", {"filters": ENGINEERS, "limit": 5}))
    assert len(found["people"]) == 5
    assert found["total_count"] > 5 and found["next_cursor"]
    [search] = upstream.bodies("search")
    assert search["fields"] == [PROFILE_URL_PATH] and search["limit"] == 5
    [enrich] = upstream.bodies("enrich")
    assert enrich["professional_network_profile_urls"] == [p["matched_on"] for p in found["people"]]
    assert found["receipt"]["charged"] == "5.15"  # 5 × 0.03 + 5 × 1
    assert upstream.billed() == Decimal("5.15")


@pytest.mark.anyio
async def test_more_than_25_people_are_enriched_in_batches_with_progress(client: Client, upstream: Upstream) -> None:
    seen: list[tuple[float, float | None]] = []

    async def progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total))

    with anyio.fail_after(30):
        result = await client.call_tool(
            "search_then_enrich", {"filters": US, "limit": 30, "max_credits": 40}, progress_callback=progress
        )
    assert len(_ok(result)["people"]) == 30
    assert [len(b["professional_network_profile_urls"]) for b in upstream.bodies("enrich")] == [25, 5]
    assert seen == [(25, 30), (30, 30)]


@pytest.mark.anyio
async def test_the_cursor_continues_the_same_search_without_overlap(client: Client, upstream: Upstream) -> None:
    first = _ok(await client.call_tool("search_then_enrich", {"filters": ENGINEERS, "limit": 4}))
    second = _ok(
        await client.call_tool("search_then_enrich", {"filters": ENGINEERS, "limit": 4, "cursor": first["next_cursor"]})
    )
    one = {p["matched_on"] for p in first["people"]}
    two = {p["matched_on"] for p in second["people"]}
    assert len(two) == 4 and not one & two
    assert second["total_count"] == first["total_count"]
    assert upstream.bodies("search")[1].get("cursor")


@pytest.mark.anyio
async def test_a_cursor_from_another_search_is_refused_before_spending(client: Client, upstream: Upstream) -> None:
    first = _ok(await client.call_tool("search_then_enrich", {"filters": ENGINEERS, "limit": 2}))
    billed = upstream.billed()
    other = await client.call_tool("search_then_enrich", {"filters": US, "limit": 2, "cursor": first["next_cursor"]})
    garbage = await client.call_tool("search_then_enrich", {"filters": US, "limit": 2, "cursor": "not-ours"})
    assert other.is_error and "different search" in text_of(other)
    assert garbage.is_error and "cursor" in text_of(garbage)
    assert upstream.billed() == billed and len(upstream.bodies("search")) == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"field": "basic_profile.name", "type": "in", "value": "Jane"}, "needs an array"),
        ({"field": "basic_profile.name", "type": "=", "value": ["a", "b"]}, "use 'in'"),
        ({"field": "basic_profile.name", "type": "=", "value": "x", "op": "and"}, "either a leaf"),
        ({"op": "and", "conditions": []}, "at least one condition"),
        ({"field": "basic_profile.name", "type": "=", "value": {"nested": 1}}, "string, number or boolean"),
        ({"field": "basic_profile.name", "type": "~", "value": "x"}, "unknown type '~'. Operators: = equals"),
        ({"field": "basic_profile.name", "type": "=", "value": "x", "op": "xor"}, "either a leaf"),
        ({"op": "xor", "conditions": [US]}, "op is 'and' or 'or'"),
    ],
)
async def test_malformed_filters_are_refused_locally(
    client: Client, upstream: Upstream, filters: dict[str, Any], expected: str
) -> None:
    result = await client.call_tool("search_then_enrich", {"filters": filters})
    assert result.is_error and expected in text_of(result)
    upstream.assert_nothing_billable_sent()


@pytest.mark.anyio
async def test_filters_too_deep_or_too_many_are_refused_locally(client: Client, upstream: Upstream) -> None:
    deep: dict[str, Any] = US
    for _ in range(7):
        deep = {"op": "and", "conditions": [deep]}
    wide = {"op": "or", "conditions": [US] * 101}
    for filters in (deep, wide):
        result = await client.call_tool("search_then_enrich", {"filters": filters})
        assert result.is_error and "Nothing was sent or spent" in text_of(result)
    upstream.assert_nothing_billable_sent()


@pytest.mark.anyio
async def test_nested_groups_and_text_operators_reach_the_upstream_unchanged(
    client: Client, upstream: Upstream
) -> None:
    filters = {
        "op": "and",
        "conditions": [
            {
                "op": "or",
                "conditions": [US, {"field": "basic_profile.location.country", "type": "=", "value": "Germany"}],
            },
            {"field": "experience.employment_details.current.title", "type": "(.)", "value": "Director|VP"},
            {"field": "experience.employment_details.current.title", "type": "(!)", "value": "Assistant"},
        ],
    }
    sorts = [{"field": "professional_network.connections", "order": "desc"}]
    result = _ok(await client.call_tool("search_then_enrich", {"filters": filters, "sorts": sorts, "limit": 3}))
    assert result["total_count"] > 0
    [sent] = upstream.bodies("search")
    assert sent["filters"] == filters and sent["sorts"] == sorts


@pytest.mark.anyio
async def test_an_unknown_filter_field_is_refused_locally_with_the_nearest_names_and_spends_nothing(
    client: Client, upstream: Upstream
) -> None:
    result = await client.call_tool(
        "search_then_enrich", {"filters": {"field": "current_title", "type": "=", "value": "CEO"}}
    )
    text = text_of(result)
    assert error_facts(result)["error"]["code"] == "invalid_input"
    assert "'current_title' (nearest: experience.employment_details.current.title)" in text
    assert "person-enrich://search-fields" in text and "Nothing was sent or spent" in text
    books = _ok(await client.call_tool("get_budget", {}))
    assert (books["spent"], books["reserved"]) == ("0.00", "0.00")
    upstream.assert_nothing_billable_sent()


@pytest.mark.anyio
async def test_a_search_with_no_results_is_free(client: Client, upstream: Upstream) -> None:
    nobody = {"field": "basic_profile.name", "type": "=", "value": "Nobody Withthisname"}
    result = _ok(await client.call_tool("search_then_enrich", {"filters": nobody}))
    assert result["people"] == [] and result["total_count"] == 0 and "next_cursor" not in result
    assert result["receipt"]["charged"] == "0.00" and upstream.billed() == 0


@pytest.mark.anyio
async def test_people_already_enriched_come_from_the_cache(client: Client, upstream: Upstream) -> None:
    _ok(await client.call_tool("search_then_enrich", {"filters": ENGINEERS, "limit": 3}))
    other_page = _ok(await client.call_tool("search_then_enrich", {"filters": US, "limit": 4}))
    assert Decimal(other_page["receipt"]["charged"]) > 0
    assert len(upstream.bodies("search")) == 2  # another query is another page: searched and paid for
    again = _ok(await client.call_tool("search_then_enrich", {"filters": ENGINEERS, "limit": 3}))
    assert again["receipt"]["cache_hits"] == 3  # its three people (a cached page is free, but is not a person)
    assert again["receipt"]["charged"] == "0.00"
    assert len(upstream.bodies("search")) == 2 and len(upstream.bodies("enrich")) == 2


@pytest.mark.anyio
async def test_a_page_read_again_is_free_and_quoted_without_the_search(client: Client, upstream: Upstream) -> None:
    first = _ok(await client.call_tool("search_then_enrich", {"filters": US, "limit": 2}))
    second = _ok(await client.call_tool("search_then_enrich", {"filters": US, "limit": 2}))
    assert [p["matched_on"] for p in second["people"]] == [p["matched_on"] for p in first["people"]]
    assert second["next_cursor"] == first["next_cursor"] and second["total_count"] == first["total_count"]
    # The page and its people are cached, so the quote is what the call really costs: nothing.
    assert (second["receipt"]["estimated"], second["receipt"]["charged"]) == ("0.00", "0.00")
    assert upstream.billed() == Decimal(first["receipt"]["charged"])
