"""POST /person/search/autocomplete: allowlist, matching, ordering, counts, filters, validation, cost."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from person_enrich_mcp.sandbox import SandboxServer
from person_enrich_mcp.sandbox.autocomplete import AUTOCOMPLETE_FIELDS
from person_enrich_mcp.sandbox.dataset import Person
from person_enrich_mcp.sandbox.endpoints import REVISIONS, Revision
from tests.sandbox.sandbox_helpers import error_of, ledger_entry

PATH = "/person/search/autocomplete"
CURRENT_TITLE = "experience.employment_details.current.title"
# Upstream PERSON_AUTOCOMPLETE_FIELDS entries the sandbox refuses (see docs/sandbox.md).
LEFT_OUT = [
    "professional_network.location",
    "experience.employment_details.employment_type",
    "open_to_cards",
    "employment_type",
]


def _suggest(http: httpx2.Client, **body: Any) -> httpx2.Response:
    return http.post(PATH, json=body)


def _suggestions(http: httpx2.Client, **body: Any) -> list[tuple[str, int]]:
    response = _suggest(http, **body)
    assert response.status_code == 200, response.text
    return [(s["value"], s["document_count"]) for s in response.json()["suggestions"]]


def _counts(
    sandbox: SandboxServer, values: Callable[[Person], list[str]], keep: Callable[[Person], bool]
) -> Counter[str]:
    counts: Counter[str] = Counter()
    for person in sandbox.state.dataset.searchable:
        if keep(person):
            counts.update(set(values(person)))
    return counts


def _expected(
    counts: Counter[str], limit: int, accept: Callable[[str], bool] = lambda _v: True
) -> list[tuple[str, int]]:
    ranked = sorted(((v, n) for v, n in counts.items() if accept(v)), key=lambda item: (-item[1], item[0]))
    return ranked[:limit]


def _current_titles(person: Person) -> list[str]:
    return [r["title"] for r in person.data["experience"]["employment_details"]["current"] if r["title"]]


def test_the_allowlist_keeps_42_of_the_upstreams_46_fields() -> None:
    assert len(AUTOCOMPLETE_FIELDS) == len(set(AUTOCOMPLETE_FIELDS)) == 42
    assert not set(LEFT_OUT) & set(AUTOCOMPLETE_FIELDS)


@pytest.mark.parametrize("field", AUTOCOMPLETE_FIELDS)
def test_every_allowlisted_field_answers_with_values(client: httpx2.Client, field: str) -> None:
    suggestions = _suggestions(client, field=field, query="", limit=5)
    assert suggestions, field
    counts = [count for _value, count in suggestions]
    assert counts == sorted(counts, reverse=True)
    assert all(isinstance(value, str) and value for value, _count in suggestions)


def test_every_token_must_be_a_case_insensitive_substring(client: httpx2.Client, sandbox: SandboxServer) -> None:
    got = _suggestions(client, field=CURRENT_TITLE, query="  senior ENG ", limit=100)
    counts = _counts(sandbox, _current_titles, lambda _p: True)
    expected = _expected(counts, 100, lambda v: "senior" in v.lower() and "eng" in v.lower())
    assert got == expected
    assert got, "the query must match something"


def test_an_empty_query_gives_the_most_frequent_values_with_document_counts(
    client: httpx2.Client, sandbox: SandboxServer
) -> None:
    got = _suggestions(client, field="basic_profile.location.country", query="")
    counts = _counts(sandbox, lambda p: [p.data["basic_profile"]["location"]["country"]], lambda _p: True)
    assert got == _expected(counts, 20)
    assert len(got) == 20  # the default limit


def test_list_fields_contribute_each_element_once_per_person(client: httpx2.Client, sandbox: SandboxServer) -> None:
    got = _suggestions(client, field="skills.professional_network_skills", query="", limit=100)
    counts = _counts(sandbox, lambda p: p.data["skills"]["professional_network_skills"], lambda _p: True)
    assert got == _expected(counts, 100)
    languages = dict(_suggestions(client, field="basic_profile.languages", query="english"))
    assert languages == {"English": len(sandbox.state.dataset.searchable)}


def test_ties_are_ordered_by_value(client: httpx2.Client) -> None:
    got = _suggestions(client, field="basic_profile.name", query="a", limit=100)
    assert got == sorted(got, key=lambda item: (-item[1], item[0]))
    assert len({count for _v, count in got}) < len(got), "the test needs ties"


def test_filters_count_only_the_people_they_match(client: httpx2.Client, sandbox: SandboxServer) -> None:
    filters = {"field": "basic_profile.location.continent", "type": "=", "value": "Africa"}
    got = _suggestions(client, field=CURRENT_TITLE, query="", limit=50, filters=filters)
    counts = _counts(sandbox, _current_titles, lambda p: p.data["basic_profile"]["location"]["continent"] == "Africa")
    assert got == _expected(counts, 50)
    unfiltered = dict(_suggestions(client, field=CURRENT_TITLE, query="", limit=100))
    assert any(count < unfiltered.get(value, 0) for value, count in got)


def test_nothing_matching_is_an_empty_list(client: httpx2.Client) -> None:
    response = _suggest(client, field=CURRENT_TITLE, query="zzzz-no-such-title")
    assert response.status_code == 200
    assert response.json() == {"suggestions": []}


def test_an_unknown_field_is_a_400_listing_every_accepted_field(client: httpx2.Client) -> None:
    response = _suggest(client, field="current_title", query="vp")
    assert response.status_code == 400
    message = error_of(response)["message"]
    assert message.startswith("Field 'current_title' is not valid for autocomplete. Available fields are: ")
    listed = message.split("Available fields are: ", 1)[1].split(", ")
    assert listed == list(AUTOCOMPLETE_FIELDS)  # every one, untruncated
    assert error_of(response)["metadata"] == {"available_fields": list(AUTOCOMPLETE_FIELDS)}


@pytest.mark.parametrize("field", LEFT_OUT)
def test_upstream_fields_the_sandbox_cannot_answer_are_refused(client: httpx2.Client, field: str) -> None:
    assert _suggest(client, field=field, query="").status_code == 400


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"query": "vp"}, "Missing required parameter 'field'"),
        ({"field": CURRENT_TITLE}, "Missing required parameter 'query'"),
        ({"field": CURRENT_TITLE, "query": 5}, "'query' must be a string"),
        ({"field": CURRENT_TITLE, "query": "", "limit": 0}, "between 1 and 100"),
        ({"field": CURRENT_TITLE, "query": "", "limit": 101}, "between 1 and 100"),
        ({"field": CURRENT_TITLE, "query": "", "limit": "5"}, "between 1 and 100"),
        ({"field": CURRENT_TITLE, "query": "", "fields": ["x"]}, "Unknown parameter(s): 'fields'"),
        ({"field": CURRENT_TITLE, "query": "", "count": 5}, "Unknown parameter(s): 'count'"),
        (
            {"field": CURRENT_TITLE, "query": "", "filters": {"field": "x.y", "type": "=", "value": 1}},
            "Failed to get autocomplete suggestions: Unsupported filter field: 'x.y'",
        ),
        (
            {
                "field": CURRENT_TITLE,
                "query": "",
                "filters": {"field": "basic_profile.location.country", "type": "in", "value": "A,B"},
            },
            "Failed to get autocomplete suggestions: IN operator requires list or tuple value, got: <class 'str'>",
        ),
    ],
)
def test_invalid_requests_are_400s(client: httpx2.Client, body: dict[str, Any], needle: str) -> None:
    response = _suggest(client, **body)
    assert response.status_code == 400
    assert needle in error_of(response)["message"]


def test_a_limit_of_100_is_accepted(client: httpx2.Client) -> None:
    assert len(_suggestions(client, field="basic_profile.name", query="", limit=100)) == 100


@pytest.mark.parametrize("revision", REVISIONS)
def test_autocomplete_is_free_and_exists_in_both_revisions(
    client: httpx2.Client, sandbox: SandboxServer, api_key: str, revision: Revision
) -> None:
    response = _suggest(client, field="honors.title", query="")
    assert response.status_code == 200
    assert response.json()["suggestions"]
    assert response.headers["x-credits-used"] == "0"
    entry = ledger_entry(sandbox.url, api_key)
    assert entry["requests"] == {"autocomplete": {"200": 1}}
    assert entry["credits_billed"] == "0.00"
