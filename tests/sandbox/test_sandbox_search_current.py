"""Today's POST /person/search extras: `post_processing`, `explain` remarks, plan-gated `preview`, and
plan-disabled search fields."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from person_enrich_mcp.sandbox import SandboxServer
from tests.sandbox.sandbox_helpers import error_of, ledger_entry, set_plan

COUNTRY = "basic_profile.location.country"
GERMANY = {"field": COUNTRY, "type": "=", "value": "Germany"}
BY_ID = [{"field": "crustdata_person_id", "order": "asc"}]


def _search(http: httpx2.Client, filters: Any, **extra: Any) -> httpx2.Response:
    return http.post("/person/search", json={"filters": filters, **extra})


def _ids(response: httpx2.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [p["crustdata_person_id"] for p in response.json()["profiles"]]


def test_excluded_profiles_leave_a_short_page_that_is_not_the_last(
    client: httpx2.Client, sandbox: SandboxServer, api_key: str
) -> None:
    plain = _search(client, GERMANY, limit=10, sorts=BY_ID).json()
    by_id = sandbox.state.dataset.by_id
    first_page = [p["crustdata_person_id"] for p in plain["profiles"]]
    dropped = [by_id[i] for i in first_page[1:4]]
    exclusions = {"exclude_profiles": [p.profile_url for p in dropped]}
    short = _search(client, GERMANY, limit=10, sorts=BY_ID, post_processing=exclusions)
    body = short.json()
    assert _ids(short) == [i for i in first_page if i not in {p.person_id for p in dropped}]
    assert body["total_count"] == plain["total_count"]
    assert body["next_cursor"] is not None  # seven rows, yet more pages follow
    assert short.headers["x-credits-used"] == "0.21"  # excluded rows are not billed
    following = _search(client, GERMANY, limit=10, sorts=BY_ID, post_processing=exclusions, cursor=body["next_cursor"])
    unfiltered_next = _search(client, GERMANY, limit=10, sorts=BY_ID, cursor=plain["next_cursor"])
    assert _ids(following) == _ids(unfiltered_next)  # the page boundary did not move
    assert ledger_entry(sandbox.url, api_key)["credits_billed"] == "1.11"


def test_names_are_excluded_case_insensitively(client: httpx2.Client, sandbox: SandboxServer) -> None:
    plain = _search(client, GERMANY, limit=5, sorts=BY_ID).json()["profiles"]
    name = plain[0]["basic_profile"]["name"]
    response = _search(client, GERMANY, limit=5, sorts=BY_ID, post_processing={"exclude_names": [name.upper()]})
    names = [p["basic_profile"]["name"] for p in response.json()["profiles"]]
    assert name not in names
    assert len(names) == 5 - sum(p["basic_profile"]["name"] == name for p in plain)


@pytest.mark.parametrize(
    ("post_processing", "needle"),
    [
        ("exclude", "must be an object"),
        ({"exclude_urls": ["https://www.linkedin.com/in/a-b"]}, "Unknown key(s) in 'post_processing': 'exclude_urls'"),
        ({"exclude_profiles": "https://www.linkedin.com/in/a-b"}, "must be an array of strings"),
        ({"exclude_profiles": []}, "at least 1"),
        ({"exclude_profiles": ["not a url"]}, "Invalid professional network profile URL"),
        ({"exclude_names": [7]}, "must be a non-empty string"),
        ({"exclude_profiles": ["https://www.linkedin.com/in/a-b"] * 50_001}, "at most 50000"),
    ],
)
def test_invalid_post_processing_is_a_400(client: httpx2.Client, post_processing: Any, needle: str) -> None:
    response = _search(client, GERMANY, post_processing=post_processing)
    assert response.status_code == 400
    assert needle in error_of(response)["message"]


def test_fifty_thousand_excluded_profiles_are_accepted(client: httpx2.Client) -> None:
    urls = [f"https://www.linkedin.com/in/excluded-{i}" for i in range(50_000)]
    response = _search(client, GERMANY, limit=3, post_processing={"exclude_profiles": urls})
    assert len(_ids(response)) == 3


# --- explain -----------------------------------------------------------------------------------------------


def _remarks(client: httpx2.Client, filters: Any) -> list[dict[str, Any]]:
    response = _search(client, filters, explain=True)
    body = response.json()
    assert body["profiles"] == [] and body["total_count"] == 0
    remarks: list[dict[str, Any]] = body["remarks"]
    assert all(r["type"] == "empty_result" for r in remarks)
    return remarks


def _named(remarks: list[dict[str, Any]]) -> list[tuple[str, str, Any]]:
    return [(r["field"], r["type_operator"], r["value"]) for r in remarks]


def test_explain_names_the_condition_whose_addition_emptied_the_result(client: httpx2.Client) -> None:
    filters = {
        "op": "and",
        "conditions": [
            {"field": "basic_profile.location.continent", "type": "=", "value": "Europe"},
            {"field": "professional_network.connections", "type": ">", "value": 10},
            {"field": COUNTRY, "type": "=", "value": "Japan"},
            {"field": "basic_profile.languages", "type": "=", "value": "English"},
        ],
    }
    [remark] = _remarks(client, filters)
    assert _named([remark]) == [(COUNTRY, "=", "Japan")]
    assert "none that also match the conditions before it" in remark["message"]


def test_explain_names_a_condition_that_matches_nothing_on_its_own(client: httpx2.Client) -> None:
    filters = {
        "op": "and",
        "conditions": [
            {"field": "basic_profile.location.continent", "type": "=", "value": "Europe"},
            {"field": "experience.employment_details.current.title", "type": "(.)", "value": "Astronaut"},
        ],
    }
    [remark] = _remarks(client, filters)
    assert _named([remark]) == [("experience.employment_details.current.title", "(.)", "Astronaut")]
    assert "matches nothing on its own" in remark["message"]


def test_explain_names_every_empty_alternative_of_an_or(client: httpx2.Client) -> None:
    filters = {
        "op": "and",
        "conditions": [
            {"field": "basic_profile.location.continent", "type": "=", "value": "Asia"},
            {
                "op": "or",
                "conditions": [
                    {"field": COUNTRY, "type": "in", "value": ["Atlantis", "Mu"]},
                    {"field": COUNTRY, "type": "=", "value": "Lemuria"},
                ],
            },
        ],
    }
    assert _named(_remarks(client, filters)) == [(COUNTRY, "in", ["Atlantis", "Mu"]), (COUNTRY, "=", "Lemuria")]


def test_explain_descends_into_a_group_that_empties_the_result(client: httpx2.Client) -> None:
    filters = {
        "op": "and",
        "conditions": [
            {"field": COUNTRY, "type": "=", "value": "Kenya"},
            {
                "op": "or",
                "conditions": [
                    {"field": "basic_profile.location.city", "type": "=", "value": "Berlin"},
                    {"field": "basic_profile.location.city", "type": "=", "value": "Paris"},
                ],
            },
        ],
    }
    remarks = _remarks(client, filters)
    assert _named(remarks) == [
        ("basic_profile.location.city", "=", "Berlin"),
        ("basic_profile.location.city", "=", "Paris"),
    ]
    assert all("conditions before it" in r["message"] for r in remarks)


def test_no_remarks_when_rows_are_found_or_explain_is_off(client: httpx2.Client) -> None:
    found = _search(client, GERMANY, explain=True, limit=1).json()
    assert "remarks" not in found and found["profiles"]
    silent = _search(client, {"field": COUNTRY, "type": "=", "value": "Atlantis"}).json()
    assert silent == {"profiles": [], "next_cursor": None, "total_count": 0}


def test_return_query_is_accepted_and_changes_nothing(client: httpx2.Client) -> None:
    assert _search(client, GERMANY, limit=2, return_query=True).json() == _search(client, GERMANY, limit=2).json()


# --- preview -----------------------------------------------------------------------------------------------


def test_preview_without_the_plan_is_the_documented_400(client: httpx2.Client) -> None:
    response = _search(client, GERMANY, preview=True)
    assert response.status_code == 400
    assert error_of(response)["message"] == "error: PersonDB preview feature is not available for your account."


def test_preview_rows_are_lighter_and_billed_at_the_preview_price(
    client: httpx2.Client, sandbox: SandboxServer, api_key: str
) -> None:
    set_plan(sandbox.url, api_key, {"preview": True})
    response = _search(client, GERMANY, preview=True, limit=4)
    assert response.headers["x-credits-used"] == "0.04"
    for row in response.json()["profiles"]:
        assert set(row) == {"crustdata_person_id", "basic_profile", "social_handles"}
        assert set(row["basic_profile"]) == {"name", "headline", "location"}
        person = sandbox.state.dataset.by_id[row["crustdata_person_id"]]
        assert row["social_handles"] == person.data["social_handles"]
    set_plan(sandbox.url, api_key, {"preview_credits": "0.02"})
    projected = _search(client, GERMANY, preview=True, limit=4, fields=["basic_profile.name"])
    assert projected.headers["x-credits-used"] == "0.08"
    assert all(set(row) == {"basic_profile"} for row in projected.json()["profiles"])


# --- plan-disabled fields ----------------------------------------------------------------------------------


def test_plan_disabled_search_fields_are_denied_or_withheld(
    client: httpx2.Client, sandbox: SandboxServer, api_key: str
) -> None:
    set_plan(sandbox.url, api_key, {"disabled_fields": {"/person/search": ["honors"]}})
    denied = _search(client, GERMANY, fields=["basic_profile.name", "honors.title"])
    assert denied.status_code == 403
    assert denied.json()["error"]["metadata"] == [{"denied_fields": ["honors"]}]
    rows = _search(client, GERMANY, limit=3).json()["profiles"]
    assert rows and all("honors" not in row and "certifications" in row for row in rows)
