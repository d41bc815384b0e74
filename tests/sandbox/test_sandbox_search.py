"""POST /person/search over HTTP: operators, groups, validation, sorting, pagination, projection, billing."""

from __future__ import annotations

import itertools
import operator
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx2
import pytest

from person_enrich_mcp.sandbox import SandboxServer
from person_enrich_mcp.sandbox.dataset import (
    FUNCTION_CATEGORIES,
    HEADCOUNT_RANGES,
    SENIORITY_LEVELS,
    Person,
)
from person_enrich_mcp.sandbox.endpoints import REVISIONS, Revision
from tests.sandbox.sandbox_helpers import ledger_entry


@pytest.fixture(params=REVISIONS)
def revision(request: pytest.FixtureRequest) -> Revision:
    """Every test here runs against both revisions: the behaviour is shared."""
    return request.param


COUNTRY = "basic_profile.location.country"
CURRENT_TITLE = "experience.employment_details.current.title"


def _search(http: httpx2.Client, filters: Any, **extra: Any) -> httpx2.Response:
    return http.post("/person/search", json={"filters": filters, **extra})


def _ids(http: httpx2.Client, filters: Any, **extra: Any) -> list[int]:
    response = _search(http, filters, limit=1000, fields=["crustdata_person_id"], **extra)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["next_cursor"] is None, "use filters that match fewer than 1000 people"
    return [p["crustdata_person_id"] for p in body["profiles"]]


def _expected(sandbox: SandboxServer, predicate: Callable[[Person], bool]) -> list[int]:
    return [p.person_id for p in sandbox.state.dataset.searchable if predicate(p)]


def _roles(p: Person, scope: str = "any") -> list[dict[str, Any]]:
    details = p.data["experience"]["employment_details"]
    return details["current"] + details["past"] if scope == "any" else details[scope]


def test_equals_is_case_insensitive_and_results_come_in_id_order(client: httpx2.Client, sandbox: SandboxServer) -> None:
    got = _ids(client, {"field": COUNTRY, "type": "=", "value": "gERMANY"})
    expected = _expected(sandbox, lambda p: p.data["basic_profile"]["location"]["country"] == "Germany")
    assert got == expected
    assert got == sorted(got)
    assert len(got) > 10


def test_not_equals_on_a_multi_valued_field_means_no_value_matches(
    client: httpx2.Client, sandbox: SandboxServer
) -> None:
    filters = {
        "op": "and",
        "conditions": [
            {"field": "experience.employment_details.function_category", "type": "!=", "value": "Engineering"},
            {"field": COUNTRY, "type": "=", "value": "Japan"},
        ],
    }
    expected = _expected(
        sandbox,
        lambda p: (
            p.data["basic_profile"]["location"]["country"] == "Japan"
            and all(r["function_category"] != "Engineering" for r in _roles(p))
        ),
    )
    assert _ids(client, filters) == expected


@pytest.mark.parametrize(
    ("op", "check"),
    [
        ("<", operator.lt),
        ("=<", operator.le),
        (">", operator.gt),
        ("=>", operator.ge),
    ],
)
def test_numeric_comparisons(
    client: httpx2.Client, sandbox: SandboxServer, op: str, check: Callable[[int, int], bool]
) -> None:
    bound = 21_000 if op in (">", "=>") else 20
    filters = {"field": "professional_network.connections", "type": op, "value": bound}
    expected = _expected(sandbox, lambda p: check(p.data["professional_network"]["connections"], bound))
    assert 0 < len(expected) < 1000
    assert _ids(client, filters) == expected


def test_boundary_values_separate_strict_and_inclusive_comparisons(
    client: httpx2.Client, sandbox: SandboxServer
) -> None:
    value = sandbox.state.dataset.searchable[3].data["professional_network"]["connections"]
    pid = sandbox.state.dataset.searchable[3].person_id
    field = "professional_network.connections"
    cond = {"field": "crustdata_person_id", "type": "=", "value": pid}
    for op, included in (("<", False), ("=<", True), (">", False), ("=>", True)):
        filters = {"op": "and", "conditions": [cond, {"field": field, "type": op, "value": value}]}
        assert _ids(client, filters) == ([pid] if included else []), op


def test_date_comparisons_on_role_start_dates(client: httpx2.Client, sandbox: SandboxServer) -> None:
    filters = {
        "op": "and",
        "conditions": [
            {"field": "experience.employment_details.current.start_date", "type": "=>", "value": "2025-12-01"},
            {"field": "experience.employment_details.past.start_date", "type": "<", "value": "2010-01-01T00:00:00Z"},
        ],
    }
    expected = _expected(
        sandbox,
        lambda p: (
            any(r["start_date"] >= "2025-12-01" for r in _roles(p, "current"))
            and any(r["start_date"] < "2010-01-01" for r in _roles(p, "past"))
        ),
    )
    assert expected
    assert _ids(client, filters) == expected


def test_in_and_not_in(client: httpx2.Client, sandbox: SandboxServer) -> None:
    levels = ["CXO", "Vice President"]
    field = "experience.employment_details.current.seniority_level"
    got_in = _ids(client, {"field": field, "type": "in", "value": levels})
    assert got_in == _expected(sandbox, lambda p: any(r["seniority_level"] in levels for r in _roles(p, "current")))
    not_in = {
        "op": "and",
        "conditions": [
            {
                "field": "experience.employment_details.seniority_level",
                "type": "not_in",
                "value": ["Senior", "Entry Level"],
            },
            {"field": COUNTRY, "type": "in", "value": ["kenya", "Nigeria"]},
        ],
    }
    expected = _expected(
        sandbox,
        lambda p: (
            p.data["basic_profile"]["location"]["country"] in ("Kenya", "Nigeria")
            and not any(r["seniority_level"] in ("Senior", "Entry Level") for r in _roles(p))
        ),
    )
    assert _ids(client, not_in) == expected


def test_contains_with_alternatives_is_case_insensitive_and_literal(
    client: httpx2.Client, sandbox: SandboxServer
) -> None:
    got = _ids(client, {"field": CURRENT_TITLE, "type": "(.)", "value": "chief scientist|CFO"})
    expected = _expected(
        sandbox,
        lambda p: any(
            ("chief scientist" in r["title"].lower() or "cfo" in r["title"].lower()) for r in _roles(p, "current")
        ),
    )
    assert got == expected and expected
    # Regex metacharacters are plain text, never a pattern.
    assert _ids(client, {"field": CURRENT_TITLE, "type": "(.)", "value": ".*"}) == []


def test_does_not_contain_treats_the_value_as_one_phrase(client: httpx2.Client, sandbox: SandboxServer) -> None:
    filters = {
        "op": "and",
        "conditions": [
            {"field": "basic_profile.headline", "type": "(!)", "value": "head of"},
            {"field": COUNTRY, "type": "=", "value": "Sweden"},
        ],
    }
    expected = _expected(
        sandbox,
        lambda p: (
            p.data["basic_profile"]["location"]["country"] == "Sweden"
            and "head of" not in p.data["basic_profile"]["headline"].lower()
        ),
    )
    assert _ids(client, filters) == expected
    sweden = _ids(client, {"field": COUNTRY, "type": "=", "value": "Sweden"})
    assert len(expected) < len(sweden), "the phrase must exclude someone"


def test_exact_token_match_is_case_sensitive_on_word_boundaries(client: httpx2.Client, sandbox: SandboxServer) -> None:
    field = "experience.employment_details.title"
    got = _ids(client, {"field": field, "type": "[.]", "value": "VP"})
    assert got == _expected(sandbox, lambda p: any(re.search(r"\bVP\b", r["title"]) for r in _roles(p)))
    assert got
    assert _ids(client, {"field": field, "type": "[.]", "value": "vp"}) == []
    # "Engineer" must not match inside "Engineering".
    engineers = _ids(client, {"field": field, "type": "[.]", "value": "Engineer"})
    assert engineers == _expected(sandbox, lambda p: any(re.search(r"\bEngineer\b", r["title"]) for r in _roles(p)))
    assert len(engineers) < len(_ids(client, {"field": field, "type": "(.)", "value": "engineer"}))


def test_boolean_and_recency_fields(client: httpx2.Client, sandbox: SandboxServer) -> None:
    recent = _ids(client, {"field": "recently_changed_jobs", "type": "=", "value": True})
    assert recent == [p.person_id for p in sandbox.state.dataset.searchable if p.search["recently_changed_jobs"]]
    assert 0 < len(recent) < 1000


def test_nested_groups(client: httpx2.Client, sandbox: SandboxServer) -> None:
    filters = {
        "op": "and",
        "conditions": [
            {
                "op": "or",
                "conditions": [
                    {"field": COUNTRY, "type": "=", "value": "Canada"},
                    {"op": "and", "conditions": [{"field": COUNTRY, "type": "=", "value": "Brazil"}]},
                ],
            },
            {"field": "experience.employment_details.current.function_category", "type": "=", "value": "Sales"},
        ],
    }
    expected = _expected(
        sandbox,
        lambda p: (
            p.data["basic_profile"]["location"]["country"] in ("Canada", "Brazil")
            and any(r["function_category"] == "Sales" for r in _roles(p, "current"))
        ),
    )
    assert _ids(client, filters) == expected and expected


@pytest.mark.parametrize(
    ("filters", "needle"),
    [
        ({"field": "current_title", "type": "=", "value": "CTO"}, "Unsupported filter field: 'current_title'"),
        ({"field": "professional_network.connections", "type": ">=", "value": 5}, "use '=>'"),
        ({"field": "professional_network.connections", "type": "<=", "value": 5}, "use '=<'"),
        ({"field": COUNTRY, "type": "like", "value": "x"}, "Supported operators"),
        (
            {"field": COUNTRY, "type": "in", "value": "Germany,France"},
            "IN operator requires list or tuple value, got: <class 'str'>",
        ),
        ({"column": COUNTRY, "type": "=", "value": "x"}, "use 'field'"),
        ({"field": COUNTRY, "filter_type": "=", "value": "x"}, "use 'type'"),
        ({"op": "and", "conditions": []}, "non-empty list"),
        ({"op": "xor", "conditions": [{"field": COUNTRY, "type": "=", "value": "x"}]}, "'and' or 'or'"),
        ({"field": COUNTRY, "type": "="}, "missing 'value'"),
        ({"field": "professional_network.connections", "type": ">", "value": "many"}, "takes numbers"),
        ({"field": "metadata.updated_at", "type": ">", "value": "yesterday"}, "ISO dates"),
        ({"field": COUNTRY, "type": ">", "value": "A"}, "number or date field"),
        ({"field": "professional_network.connections", "type": "(.)", "value": "5"}, "needs a text field"),
        ("Germany", "must be an object"),
    ],
)
def test_invalid_filters_are_400s(client: httpx2.Client, filters: Any, needle: str) -> None:
    response = _search(client, filters)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request"
    assert needle in error["message"]
    assert response.headers["x-credits-used"] == "0"


def test_unsupported_field_error_lists_supported_fields_in_metadata(client: httpx2.Client) -> None:
    response = _search(
        client, {"field": "social_handles.professional_network_identifier.profile_url", "type": "=", "value": "x"}
    )
    supported = response.json()["error"]["metadata"]["supported_fields"]
    assert "experience.employment_details.current.company_name" in supported
    assert "metadata.updated_at" in supported
    assert "social_handles.professional_network_identifier.profile_url" not in supported
    assert str(supported) in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({}, "Missing required parameter 'filters'"),
        ({"filters": {"field": COUNTRY, "type": "=", "value": "x"}, "limit": 0}, "between 1 and 1000"),
        ({"filters": {"field": COUNTRY, "type": "=", "value": "x"}, "limit": 1001}, "between 1 and 1000"),
        ({"filters": {"field": COUNTRY, "type": "=", "value": "x"}, "limit": "5"}, "between 1 and 1000"),
        ({"filters": {"field": COUNTRY, "type": "=", "value": "x"}, "limit": 5, "count": 6}, "alias"),
        ({"filters": {"field": COUNTRY, "type": "=", "value": "x"}, "page": 2}, "Unknown parameter"),
        ({"filters": {"field": COUNTRY, "type": "=", "value": "x"}, "preview": True}, "PersonDB preview feature"),
        (
            {"filters": {"field": COUNTRY, "type": "=", "value": "x"}, "sorts": [{"field": "basic_profile.headline"}]},
            "Sortable fields",
        ),
        (
            {
                "filters": {"field": COUNTRY, "type": "=", "value": "x"},
                "sorts": [{"field": "crustdata_person_id", "order": "up"}],
            },
            "'asc' or 'desc'",
        ),
        (
            {"filters": {"field": COUNTRY, "type": "=", "value": "x"}, "sorts": [{"column": "crustdata_person_id"}]},
            "use 'field'",
        ),
        ({"filters": {"field": COUNTRY, "type": "=", "value": "x"}, "cursor": "not-a-cursor"}, "Invalid cursor"),
        ({"filters": {"field": COUNTRY, "type": "=", "value": "x"}, "cursor": 5}, "'cursor' must be a string"),
    ],
)
def test_invalid_search_parameters_are_400s(client: httpx2.Client, extra: dict[str, Any], needle: str) -> None:
    response = client.post("/person/search", json=extra)
    assert response.status_code == 400
    assert needle in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "extra",
    [{"post_processing": {"exclude_names": ["a"]}}, {"explain": True}],
)
def test_the_overview_revision_refuses_todays_search_extras(
    client: httpx2.Client, revision: Revision, extra: dict[str, Any]
) -> None:
    response = client.post("/person/search", json={"filters": {"field": COUNTRY, "type": "=", "value": "x"}, **extra})
    if revision == "overview":
        assert response.status_code == 400
        assert "not supported by the sandbox" in response.json()["error"]["message"]
    else:
        assert response.status_code == 200
        assert response.json()["profiles"] == []


def test_return_query_is_accepted_and_ignored_and_count_is_an_alias(client: httpx2.Client) -> None:
    filters = {"field": COUNTRY, "type": "=", "value": "Germany"}
    plain = _search(client, filters, limit=3).json()
    aliased = _search(client, filters, count=3, return_query=True).json()
    assert aliased == plain
    assert len(plain["profiles"]) == 3
    assert "query" not in aliased


def test_default_projection_is_the_search_profile_shape(client: httpx2.Client, sandbox: SandboxServer) -> None:
    body = _search(client, {"field": COUNTRY, "type": "=", "value": "India"}, limit=50).json()
    assert body["total_count"] > 50
    for profile in body["profiles"]:
        assert set(profile) == {
            "crustdata_person_id",
            "basic_profile",
            "professional_network",
            "social_handles",
            "experience",
            "education",
            "contact",
            "certifications",
            "honors",
            "metadata",
            "recently_changed_jobs",
            "years_of_experience",
            "years_of_experience_raw",
        }
        assert set(profile["contact"]) == {"has_business_email", "has_personal_email", "has_phone_number"}
        assert set(profile["professional_network"]) == {"connections", "profile_picture_permalink"}
        for role in (
            profile["experience"]["employment_details"]["current"] + profile["experience"]["employment_details"]["past"]
        ):
            assert "company_name" in role and "title" in role
            assert "name" not in role and "seniority_level" not in role and "function_category" not in role
        person = sandbox.state.dataset.by_id[profile["crustdata_person_id"]]
        assert profile["metadata"]["updated_at"] == person.data["updated_at"]
        assert profile["contact"]["has_phone_number"] is bool(person.data["contact"]["phone_numbers"])


def test_fields_projection_is_exact_and_accepts_groups(client: httpx2.Client) -> None:
    filters = {"field": COUNTRY, "type": "=", "value": "France"}
    body = _search(client, filters, limit=5, fields=["basic_profile.name", CURRENT_TITLE, "contact"]).json()
    for profile in body["profiles"]:
        assert set(profile) <= {"basic_profile", "experience", "contact"}
        assert set(profile["basic_profile"]) == {"name"}
        for role in profile["experience"]["employment_details"]["current"]:
            assert set(role) == {"title"}
        assert set(profile["contact"]) == {"has_business_email", "has_personal_email", "has_phone_number"}


def test_unknown_search_fields_are_a_400_with_available_fields(client: httpx2.Client) -> None:
    response = _search(
        client, {"field": COUNTRY, "type": "=", "value": "France"}, fields=["skills.professional_network_skills"]
    )
    assert response.status_code == 400
    available = response.json()["error"]["metadata"]["available_fields"]
    assert "experience.employment_details.current.company_name" in available
    assert "skills" not in available and "dev_platform_profiles" not in available
    assert "experience.employment_details.current.name" not in available


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_sorts_order_results_and_break_ties_by_id(client: httpx2.Client, sandbox: SandboxServer, order: str) -> None:
    filters = {"field": COUNTRY, "type": "=", "value": "United States"}
    sorts = [{"field": "professional_network.connections", "order": order}]
    body = _search(client, filters, limit=1000, sorts=sorts, fields=["crustdata_person_id"]).json()
    ids = [p["crustdata_person_id"] for p in body["profiles"]]
    by_id = sandbox.state.dataset.by_id
    keys = [by_id[i].data["professional_network"]["connections"] for i in ids]
    assert keys == sorted(keys, reverse=order == "desc")
    for (k1, i1), (k2, i2) in itertools.pairwise(zip(keys, ids, strict=True)):
        if k1 == k2:
            assert i1 < i2  # ties broken by ascending id in both directions
    assert len(set(keys)) < len(keys), "the test needs ties"


def test_multiple_sorts_and_name_sort(client: httpx2.Client, sandbox: SandboxServer) -> None:
    filters = {"field": COUNTRY, "type": "=", "value": "Germany"}
    sorts = [{"field": "basic_profile.name", "order": "asc"}, {"field": "metadata.updated_at", "order": "desc"}]
    body = _search(client, filters, limit=1000, sorts=sorts, fields=["crustdata_person_id"]).json()
    people = [sandbox.state.dataset.by_id[p["crustdata_person_id"]] for p in body["profiles"]]
    keys = [(p.data["basic_profile"]["name"].casefold(), p.data["updated_at"]) for p in people]
    for (name1, upd1), (name2, upd2) in itertools.pairwise(keys):
        assert name1 <= name2
        if name1 == name2:
            assert upd1 >= upd2


def test_pagination_walks_every_match_once_and_ends_with_a_null_cursor(
    client: httpx2.Client, sandbox: SandboxServer, api_key: str
) -> None:
    filters = {"field": "experience.employment_details.current.seniority_level", "type": "=", "value": "Director"}
    sorts = [{"field": "experience.employment_details.start_date", "order": "desc"}]
    expected = _expected(sandbox, lambda p: any(r["seniority_level"] == "Director" for r in _roles(p, "current")))
    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    total = None
    while True:
        body = _search(client, filters, limit=37, sorts=sorts, cursor=cursor, fields=["crustdata_person_id"]).json()
        pages += 1
        total = body["total_count"]
        seen.extend(p["crustdata_person_id"] for p in body["profiles"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert cursor.startswith("H4sI")
        assert len(body["profiles"]) == 37
    assert total == len(expected)
    assert sorted(seen) == expected  # no gaps, no duplicates
    assert len(seen) == len(set(seen))
    assert pages == -(-len(expected) // 37)
    assert Decimal(ledger_entry(sandbox.url, api_key)["credits_billed"]) == Decimal("0.03") * len(expected)


def test_a_cursor_only_works_with_the_query_it_came_from(client: httpx2.Client) -> None:
    filters = {"field": COUNTRY, "type": "=", "value": "Germany"}
    first = _search(client, filters, limit=5).json()
    cursor = first["next_cursor"]
    assert cursor is not None
    assert _search(client, filters, limit=5, cursor=cursor).status_code == 200
    for changed in (
        {"filters": {"field": COUNTRY, "type": "=", "value": "France"}, "limit": 5},
        {"filters": filters, "limit": 6},
        {"filters": filters, "limit": 5, "sorts": [{"field": "crustdata_person_id", "order": "desc"}]},
        {"filters": filters, "limit": 5, "fields": ["basic_profile"]},
    ):
        response = client.post("/person/search", json={**changed, "cursor": cursor})
        assert response.status_code == 400
        assert "different query" in response.json()["error"]["message"]


def test_search_bills_three_hundredths_per_profile_and_zero_results_are_free(
    client: httpx2.Client, sandbox: SandboxServer, api_key: str
) -> None:

    seven = _search(client, {"field": COUNTRY, "type": "=", "value": "Germany"}, limit=7)
    assert seven.headers["x-credits-used"] == "0.21"
    empty = _search(client, {"field": COUNTRY, "type": "=", "value": "Atlantis"})
    assert empty.status_code == 200
    assert empty.json() == {"profiles": [], "next_cursor": None, "total_count": 0}
    assert empty.headers["x-credits-used"] == "0"
    count_only = _search(client, {"field": COUNTRY, "type": "=", "value": "Germany"}, limit=1)
    assert count_only.headers["x-credits-used"] == "0.03"
    assert count_only.json()["total_count"] > 1
    entry = ledger_entry(sandbox.url, api_key)
    assert entry["credits_billed"] == "0.24"
    assert entry["requests"] == {"search": {"200": 3}}


def test_opted_out_people_are_never_returned(client: httpx2.Client, sandbox: SandboxServer) -> None:
    opted_out = [p for p in sandbox.state.dataset.people if p.opted_out]
    assert opted_out
    ids = [p.person_id for p in opted_out[:20]]
    assert _ids(client, {"field": "crustdata_person_id", "type": "in", "value": ids}) == []


def test_closed_value_sets_are_searchable(client: httpx2.Client) -> None:
    for field, values in (
        ("experience.employment_details.seniority_level", SENIORITY_LEVELS),
        ("experience.employment_details.function_category", FUNCTION_CATEGORIES),
        ("experience.employment_details.company_headcount_range", HEADCOUNT_RANGES),
    ):
        body = _search(client, {"field": field, "type": "in", "value": list(values)}, limit=1).json()
        assert body["total_count"] > 4000, field
