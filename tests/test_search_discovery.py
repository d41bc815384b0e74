"""Getting a search right before paying: the free discovery resource and tool, and mistakes caught locally.

`person-enrich://search-fields` explains every filterable field, the operators, value sets and ISO-3 columns;
`suggest_filter_values` looks exact values up through the upstream's free autocomplete. Unknown fields, operator
spellings and values that would silently match no one are caught before anything is reserved or sent, and a search
that matches no one asks the upstream (for free) which condition emptied it.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pytest
from mcp import Client

from person_enrich_mcp.api.contract import (
    ISO3_COLUMNS,
    OPERATORS,
    PERSON_AUTOCOMPLETE_FIELDS,
    PERSON_FILTER_FIELDS,
    PERSON_SORTABLE_FIELDS,
)
from person_enrich_mcp.search_fields import CLOSED_VALUES, expand, nearest
from person_enrich_mcp.server import build_server
from tests.conftest import Upstream, error_facts, per_revision, settings_for, text_of

GERMANY = {"field": "basic_profile.location.country", "type": "=", "value": "Germany"}


def _ok(result: Any) -> dict[str, Any]:
    assert result.is_error is False, text_of(result)
    return cast(dict[str, Any], result.structured_content)


async def _resource(client: Client) -> dict[str, Any]:
    contents = (await client.read_resource("person-enrich://search-fields")).contents
    return cast(dict[str, Any], json.loads(getattr(contents[0], "text", "")))


# --- the resource ------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_search_fields_resource_gives_every_filterable_field_one_line_of_meaning(client: Client) -> None:
    catalog = await _resource(client)
    fields = cast(dict[str, str], catalog["filter_fields"])
    expanded = [path for pattern in fields for path in expand(pattern)]
    assert sorted(expanded) == sorted(PERSON_FILTER_FIELDS)  # every one, each once, nothing invented
    assert all(meaning and "\n" not in meaning and len(meaning) < 120 for meaning in fields.values())
    assert "ISO-3" in fields["experience.employment_details{,.current,.past}.company_headquarters_country"]
    assert "full English name" in fields["basic_profile.location.country"]


@pytest.mark.anyio
async def test_the_search_fields_resource_lists_sorts_operators_values_iso3_and_autocomplete(client: Client) -> None:
    catalog = await _resource(client)
    assert sorted(p for g in catalog["sortable_fields"] for p in expand(g)) == sorted(PERSON_SORTABLE_FIELDS)
    assert sorted(p for g in catalog["autocomplete_fields"] for p in expand(g)) == sorted(PERSON_AUTOCOMPLETE_FIELDS)
    operators = catalog["operators"]
    assert set(operators) == {"=", "!=", "<", "=<", ">", "=>", "in", "not_in", "(.)", "(!)", "[.]"}
    assert all(operators[op] == OPERATORS[op] for op in operators)
    assert "not >=" in operators["=>"] and "not <=" in operators["=<"]
    assert catalog["operator_spellings_accepted"][">="] == "=>" and catalog["operator_spellings_accepted"]["<="] == "=<"
    assert set(catalog["combinators"]) == {"and", "or"}
    assert set(catalog["iso3_columns"]) == set(ISO3_COLUMNS) and catalog["iso3_examples"]["Germany"] == "DEU"
    assert catalog["closed_values"]["seniority_level"] == list(CLOSED_VALUES["seniority_level"])
    assert set(catalog["closed_values"]) >= {"seniority_level", "function_category", "company_headcount_range"}
    assert catalog["closed_values"]["company_status"] == ["active", "deleted"]


@pytest.mark.anyio
async def test_the_search_description_points_at_the_free_discovery(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    description = tools["search_then_enrich"].description or ""
    assert "person-enrich://search-fields" in description and "suggest_filter_values (no credits)" in description
    hints = tools["suggest_filter_values"].annotations
    assert hints is not None and hints.read_only_hint and not hints.destructive_hint


# --- suggest_filter_values ---------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_suggest_filter_values_returns_exact_indexed_values_for_free(client: Client, upstream: Upstream) -> None:
    result = _ok(
        await client.call_tool(
            "suggest_filter_values", {"field": "experience.employment_details.current.title", "query": "vp"}
        )
    )
    values = [s["value"] for s in result["suggestions"]]
    assert values and all("vp" in v.lower() for v in values)
    assert all(isinstance(s["count"], int) and s["count"] > 0 for s in result["suggestions"])
    assert [s["count"] for s in result["suggestions"]] == sorted(
        (s["count"] for s in result["suggestions"]), reverse=True
    )
    [sent] = upstream.bodies("autocomplete")
    assert sent == {"field": "experience.employment_details.current.title", "query": "vp", "limit": 10}
    assert upstream.billed() == 0
    books = _ok(await client.call_tool("get_budget", {}))
    assert (books["spent"], books["reserved"], books["receipts"]) == ("0.00", "0.00", [])  # no reservation, no receipt


@pytest.mark.anyio
async def test_suggestions_asked_again_are_served_from_the_cache_without_a_rate_limit_slot(
    client: Client, upstream: Upstream
) -> None:
    arguments = {"field": "basic_profile.location.country", "query": "", "limit": 5}
    first = _ok(await client.call_tool("suggest_filter_values", arguments))
    again = _ok(await client.call_tool("suggest_filter_values", arguments))
    assert first == again and len(first["suggestions"]) == 5
    assert len(upstream.bodies("autocomplete")) == 1


@pytest.mark.anyio
async def test_a_closed_value_set_is_answered_locally_without_asking_the_upstream(
    client: Client, upstream: Upstream
) -> None:
    result = _ok(
        await client.call_tool(
            "suggest_filter_values", {"field": "experience.employment_details.company_headcount_range", "query": "0"}
        )
    )
    assert [s["value"] for s in result["suggestions"]] == [
        v for v in CLOSED_VALUES["company_headcount_range"] if "0" in v
    ]
    assert "closed value set" in result["note"]
    assert upstream.bodies("autocomplete") == []


@pytest.mark.anyio
async def test_a_field_autocomplete_does_not_serve_is_refused_with_the_nearest_ones_it_does(
    client: Client, upstream: Upstream
) -> None:
    result = await client.call_tool("suggest_filter_values", {"field": "current_title"})
    assert error_facts(result)["error"]["code"] == "invalid_input"
    assert "Nearest: experience.employment_details.current.title" in text_of(result)
    free_text = await client.call_tool("suggest_filter_values", {"field": "basic_profile.summary"})
    assert "It is filterable, but has no value list: use (.)" in text_of(free_text)
    assert upstream.bodies("autocomplete") == []


@pytest.mark.anyio
@pytest.mark.parametrize("revision", ["current"], indirect=True)
async def test_suggestions_use_their_own_rate_limit_bucket_and_a_plan_without_autocomplete_is_refused(
    upstream: Upstream,
) -> None:
    plan = {"endpoints": {"/person/search/autocomplete": {"status": "not_enabled"}}}
    assert upstream.post("/_sandbox/plan", plan).status_code == 200
    async with Client(build_server(settings_for(upstream.url, upstream.key, autocomplete_rpm=1))) as client:
        refused = await client.call_tool("suggest_filter_values", {"field": "basic_profile.location.country"})
        # The search bucket is untouched by the autocomplete limit of 1.
        searched = await client.call_tool("search_then_enrich", {"filters": GERMANY, "limit": 1, "enrich": False})
        again = await client.call_tool("search_then_enrich", {"filters": GERMANY, "limit": 2, "enrich": False})
    assert error_facts(refused)["error"]["code"] == "not_in_plan"
    assert "/person/search/autocomplete" in text_of(refused) and "closed value sets" in text_of(refused)
    assert not searched.is_error and not again.is_error
    assert upstream.bodies("autocomplete") == []


# --- mistakes caught locally -------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_unknown_filter_and_sort_fields_get_the_nearest_whole_names_and_nothing_is_sent(
    client: Client, upstream: Upstream
) -> None:
    filters = {
        "op": "and",
        "conditions": [
            {"field": "experience.employment_details.name", "type": "=", "value": "Acme"},
            {"field": "basic_profile.location.contry", "type": "=", "value": "Germany"},
        ],
    }
    result = await client.call_tool("search_then_enrich", {"filters": filters})
    text = text_of(result)
    assert error_facts(result)["error"]["code"] == "invalid_input"
    # Both unknown fields in one answer, so one retry fixes both; every suggestion is a whole valid name.
    assert "'experience.employment_details.name' (nearest: experience.employment_details.current.company_name" in text
    assert "'basic_profile.location.contry' (nearest: basic_profile.location.country" in text
    suggested = [name for part in text.split("(nearest: ")[1:] for name in part.split(")")[0].split(", ")]
    assert suggested and all(name in PERSON_FILTER_FIELDS for name in suggested)
    assert "Filter names differ from the names results use" in text
    sort = await client.call_tool(
        "search_then_enrich", {"filters": GERMANY, "sorts": [{"field": "connections", "order": "DESC"}]}
    )
    assert "Cannot sort on 'connections'. Nearest sortable: professional_network.connections" in text_of(sort)
    upstream.assert_nothing_billable_sent()


def test_nearest_names_come_whole_and_prefer_the_filter_name_of_a_result_name() -> None:
    assert nearest("basic_profile.current_title", PERSON_FILTER_FIELDS)[0] == (
        "experience.employment_details.current.title"
    )
    assert nearest("current.name", PERSON_FILTER_FIELDS)[0] == "experience.employment_details.current.company_name"
    assert nearest("headcount", PERSON_FILTER_FIELDS)
    for name in ("titel", "contry", "senority", "company_industry", "x" * 300):
        assert all(found in PERSON_FILTER_FIELDS for found in nearest(name, PERSON_FILTER_FIELDS))


@pytest.mark.anyio
async def test_common_operator_spellings_are_read_as_the_apis_own_and_the_result_says_so(
    client: Client, upstream: Upstream
) -> None:
    filters = {
        "op": "AND",
        "conditions": [
            {"field": "basic_profile.location.country", "type": "==", "value": "Germany"},
            {"field": "professional_network.connections", "type": ">=", "value": 10},
            {"field": "professional_network.connections", "type": "<=", "value": 100000},
            {"field": "experience.employment_details.current.title", "type": "contains", "value": "Engineer"},
            {"field": "experience.employment_details.current.title", "type": "not_contains", "value": "Intern"},
        ],
    }
    result = _ok(await client.call_tool("search_then_enrich", {"filters": filters, "limit": 1, "enrich": False}))
    [sent] = upstream.bodies("search")
    assert sent["filters"]["op"] == "and"
    assert [c["type"] for c in sent["filters"]["conditions"]] == ["=", "=>", "=<", "(.)", "(!)"]
    notes = result["notes"]
    assert "op 'AND' was read as 'and'." in notes
    assert "type '>=' was read as '=>' (greater than or equal), the API's spelling." in notes
    assert "type 'contains' was read as '(.)' (contains all the words, case-insensitive; | separates alternatives)" in (
        " ".join(notes)
    )


@pytest.mark.anyio
async def test_values_that_would_silently_match_no_one_are_refused_with_the_value_to_use(
    client: Client, upstream: Upstream
) -> None:
    hq = "experience.employment_details.current.company_headquarters_country"
    filters = {
        "op": "and",
        "conditions": [
            {"field": hq, "type": "in", "value": ["Germany", "USA"]},
            {"field": "basic_profile.location.country", "type": "=", "value": "DE"},
            {"field": "experience.employment_details.current.seniority_level", "type": "=", "value": "VP"},
            {"field": "experience.employment_details.current.company_headcount_range", "type": "=", "value": "50-200"},
        ],
    }
    result = await client.call_tool("search_then_enrich", {"filters": filters})
    text = text_of(result)
    assert error_facts(result)["error"]["code"] == "invalid_input"
    assert f"Filter on '{hq}': this column takes ISO-3 country codes" in text and "use 'DEU' for 'Germany'" in text
    assert "'DE' is a country code, but this column takes the full English name: use 'Germany'" in text
    assert "'VP' is not one of its values ('VP' is 'Vice President')" in text
    assert "'50-200' is not one of its values; use one of: myself only, 2-10, 11-50, 51-200" in text
    upstream.assert_nothing_billable_sent()


@pytest.mark.anyio
async def test_a_lower_case_iso3_code_is_upper_cased_with_a_note(client: Client) -> None:
    from person_enrich_mcp.tools.filters import Filter, check_filters

    hq = "experience.employment_details.current.company_headquarters_country"
    normalised, notes = check_filters(Filter(field=hq, type="=", value="deu"))
    assert normalised.value == "DEU" and notes == [f"'deu' in {hq} was read as 'DEU' (ISO-3 codes are upper case)."]


# --- an empty search explained -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_search_that_matches_no_one_asks_the_upstream_which_condition_emptied_it_for_free(
    client: Client, upstream: Upstream, revision: str
) -> None:
    filters = {
        "op": "and",
        "conditions": [
            GERMANY,
            {"field": "experience.employment_details.current.title", "type": "(.)", "value": "Astronaut"},
        ],
    }
    result = _ok(await client.call_tool("search_then_enrich", {"filters": filters}))
    sent = upstream.bodies("search")
    assert result["people"] == [] and result["receipt"]["charged"] == "0.00" and upstream.billed() == 0
    if revision == "current":
        assert [bool(body.get("explain")) for body in sent] == [False, True]
        assert sent[1]["filters"] == sent[0]["filters"]
        [why] = result["why_empty"]
        assert "Astronaut" in why and "matches nothing on its own" in why
    else:  # the overview's upstream has no `explain`: not asked, and the result says how to find values instead
        assert len(sent) == 1 and "explain" not in sent[0]
        assert "why_empty" not in result and any("suggest_filter_values" in n for n in result["notes"])
    again = _ok(await client.call_tool("search_then_enrich", {"filters": filters}))
    assert again.get("why_empty") == result.get("why_empty") and len(upstream.bodies("search")) == len(sent)


# --- search-only mode ----------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_search_only_returns_the_rows_projected_to_the_fields_for_003_a_result(
    client: Client, upstream: Upstream
) -> None:
    result = _ok(await client.call_tool("search_then_enrich", {"filters": GERMANY, "limit": 4, "enrich": False}))
    people = result["people"]
    assert len(people) == 4 and all(p["match_type"] == "search" and "confidence_score" not in p for p in people)
    for person in people:
        data = person["person_data"]
        assert data["basic_profile"]["name"] and "Germany" in data["basic_profile"]["location"]["full_location"]
        assert data["experience"]["employment_details"]["current"][0][
            "name"
        ]  # the row's company_name, as enrich names it
        assert data["social_handles"]["professional_network_identifier"]["profile_url"] == person["matched_on"]
        assert set(data) <= {"basic_profile", "experience", "social_handles"}
    assert (result["receipt"]["estimated"], result["receipt"]["charged"]) == ("0.12", "0.12")
    assert upstream.billed() == Decimal("0.12") and upstream.bodies("enrich") == []
    [sent] = upstream.bodies("search")
    assert "experience.employment_details.current" in sent["fields"]  # the whole role: its keys differ by source
    assert "contact" not in json.dumps(sent["fields"])


@pytest.mark.anyio
async def test_search_only_refuses_fields_search_rows_cannot_carry_before_anything_is_sent(
    client: Client, upstream: Upstream
) -> None:
    result = await client.call_tool(
        "search_then_enrich",
        {"filters": GERMANY, "enrich": False, "fields": ["basic_profile.name", "contact.business_emails", "skills"]},
    )
    assert "cannot carry contact.business_emails, skills" in text_of(result) and "enrich: true" in text_of(result)
    upstream.assert_nothing_billable_sent()


@pytest.mark.anyio
async def test_a_search_only_cursor_belongs_to_search_only_pages(client: Client, upstream: Upstream) -> None:
    first = _ok(await client.call_tool("search_then_enrich", {"filters": GERMANY, "limit": 2, "enrich": False}))
    second = _ok(
        await client.call_tool(
            "search_then_enrich", {"filters": GERMANY, "limit": 2, "enrich": False, "cursor": first["next_cursor"]}
        )
    )
    assert not {p["matched_on"] for p in first["people"]} & {p["matched_on"] for p in second["people"]}
    mixed = await client.call_tool(
        "search_then_enrich", {"filters": GERMANY, "limit": 2, "cursor": first["next_cursor"]}
    )
    assert "different search" in text_of(mixed) and "enrich" in text_of(mixed)


# --- people the session already has --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_paid_search_leaves_out_people_this_session_already_has_and_says_how_many(
    upstream: Upstream, revision: str
) -> None:
    async with Client(build_server(settings_for(upstream.url, upstream.key))) as client:
        first = _ok(await client.call_tool("search_then_enrich", {"filters": GERMANY, "limit": 3}))
        wider = _ok(await client.call_tool("search_then_enrich", {"filters": GERMANY, "limit": 6, "enrich": False}))
    had = {p["matched_on"] for p in first["people"]}
    shown = {p["matched_on"] for p in wider["people"]}
    bodies = upstream.bodies("search")
    if revision == "current":
        assert sorted(bodies[1]["post_processing"]["exclude_profiles"]) == sorted(had)
        assert not had & shown and len(shown) == 3
        assert any(
            n.startswith("3 people this session already has with these fields were left out") for n in wider["notes"]
        )
        assert wider["receipt"]["charged"] == "0.09"  # only the rows returned are billed
    else:  # the overview's search has no post_processing: nothing left out, nothing claimed
        assert "post_processing" not in bodies[1] and had <= shown
        assert wider["receipt"]["charged"] == "0.18"
    assert Decimal(first["receipt"]["charged"]) + Decimal(wider["receipt"]["charged"]) == upstream.billed()


@pytest.mark.anyio
@pytest.mark.parametrize("revision", ["current"], indirect=True)
async def test_what_one_session_has_is_never_left_out_of_another_sessions_search(
    upstream: Upstream, tmp_path: Path
) -> None:
    # Two sessions over one durable store (as replicas share one): each has its own record.
    settings = settings_for(upstream.url, upstream.key, state_url=f"sqlite:///{tmp_path / 'state.db'}")
    async with Client(build_server(settings)) as alice:
        _ok(await alice.call_tool("search_then_enrich", {"filters": GERMANY, "limit": 3}))
        own = _ok(await alice.call_tool("search_then_enrich", {"filters": GERMANY, "limit": 6, "enrich": False}))
    async with Client(build_server(settings)) as bob:
        seen = _ok(await bob.call_tool("search_then_enrich", {"filters": GERMANY, "limit": 6, "enrich": True}))
    assert len(own["people"]) == 3 and own["notes"][0].startswith("3 people this session already has")
    assert len(seen["people"]) == 6 and "notes" not in seen
    bodies = upstream.bodies("search")
    assert len(bodies[1]["post_processing"]["exclude_profiles"]) == 3 and "post_processing" not in bodies[2]


# --- receipts agree with what happened -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_confirmation_and_the_receipt_quote_the_same_figure_for_a_cached_page(
    upstream: Upstream, revision: str
) -> None:
    from mcp.client import ClientRequestContext
    from mcp.types import ElicitRequestParams, ElicitResult

    questions: list[str] = []

    async def approve(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        questions.append(params.message)
        return ElicitResult(action="accept", content={"approve": True})

    fields = ["basic_profile.name", "contact.business_emails", "contact.phone_numbers"]
    server = build_server(settings_for(upstream.url, upstream.key, session_budget=100))
    async with Client(server, elicitation_callback=approve) as client:
        # 10 results and profiles: 10.30, under the threshold. Then the same page again with contact tiers.
        first = _ok(await client.call_tool("search_then_enrich", {"filters": GERMANY, "limit": 10}))
        second = _ok(await client.call_tool("search_then_enrich", {"filters": GERMANY, "limit": 10, "fields": fields}))
    # The second call found its page cached: the question, the reservation and the receipt all say the same figure
    # (the page free; today each cached profile needs only its tiers, 10 × 3; the overview re-fetches it, 10 × 4).
    assert first["receipt"]["estimated"] == "10.30" and len(questions) == 1, questions
    estimate = per_revision(revision, current="30.00", overview="40.00")
    assert second["receipt"]["estimated"] == estimate
    assert f"up to {estimate} credits (search page cached (free) + 10 profiles" in questions[0]
    assert Decimal(second["receipt"]["charged"]) == upstream.billed() - Decimal(first["receipt"]["charged"])


@pytest.mark.anyio
async def test_cache_hits_count_people_never_a_cached_page(client: Client, upstream: Upstream) -> None:
    first = _ok(await client.call_tool("search_then_enrich", {"filters": GERMANY, "limit": 4}))
    again = _ok(await client.call_tool("search_then_enrich", {"filters": GERMANY, "limit": 4}))
    assert again["receipt"]["cache_hits"] == len(again["people"]) == len(first["people"]) == 4
    assert all(p.get("cached") for p in again["people"])
