"""Today's POST /person/enrich and POST /person/professional_network/enrich/live: strict keys, group fields,
default families, preview, plan-denied fields, billing, gating and latency."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx2
import pytest

from person_enrich_mcp.sandbox import SandboxServer
from person_enrich_mcp.sandbox.dataset import Person
from tests.sandbox.sandbox_helpers import (
    Configure,
    error_of,
    http_client,
    ledger_entry,
    profile_slug,
    sample,
    set_plan,
)

URLS = "professional_network_profile_urls"
ENRICH = "/person/enrich"
LIVE = "/person/professional_network/enrich/live"
GROUPS = [
    "basic_profile",
    "professional_network",
    "skills",
    "social_handles",
    "experience",
    "education",
    "certifications",
    "honors",
    "dev_platform_profiles",
    "assessment",
    "social_posts",
]
NOBODY = "https://www.linkedin.com/in/nobody-here-000000"


def _person(sandbox: SandboxServer, url: str) -> Person:
    person = sandbox.state.dataset.lookup_slug(profile_slug(url))
    assert person is not None
    return person


def _find(sandbox: SandboxServer, predicate: Callable[[Person], Any]) -> Person:
    return next(p for p in sandbox.state.dataset.searchable if predicate(p))


def _data(response: httpx2.Response, index: int = 0) -> dict[str, Any]:
    data: dict[str, Any] = response.json()[index]["matches"][0]["person_data"]
    return data


@pytest.mark.parametrize("path", [ENRICH, LIVE])
def test_the_answer_is_the_array_with_id_updated_at_and_the_default_families(
    client: httpx2.Client, sandbox: SandboxServer, path: str
) -> None:
    urls = sample(client, "url", 2)
    response = client.post(path, json={URLS: [urls[1], NOBODY, urls[0]]})
    assert response.status_code == 200
    body = response.json()
    assert [e["matched_on"] for e in body] == [urls[1], NOBODY, urls[0]]
    assert all(e["match_type"] == "professional_network_profile_url" for e in body)
    assert body[1]["matches"] == []
    for index, url in ((0, urls[1]), (2, urls[0])):
        [match] = body[index]["matches"]
        assert match["confidence_score"] == 1.0
        person = _person(sandbox, url)
        assert match["person_data"] == {
            "crustdata_person_id": person.person_id,
            "updated_at": person.data["updated_at"],
            "basic_profile": person.data["basic_profile"],
            "social_handles": person.data["social_handles"],
        }


def test_requested_groups_come_back_whole_with_the_default_families_and_never_contact(
    client: httpx2.Client, sandbox: SandboxServer
) -> None:
    person = _find(
        sandbox, lambda p: p.data["skills"]["professional_network_skills"] and p.data["contact"]["phone_numbers"]
    )
    response = client.post(ENRICH, json={URLS: [person.profile_url], "fields": ["experience", "skills"]})
    data = _data(response)
    assert set(data) == {
        "crustdata_person_id",
        "updated_at",
        "basic_profile",
        "social_handles",
        "experience",
        "skills",
    }
    assert data["experience"] == person.data["experience"]
    assert "contact" not in data  # contact data lives on /person/contact/enrich only


def test_groups_the_synthetic_people_lack_are_accepted_and_return_nothing(client: httpx2.Client) -> None:
    urls = sample(client, "url", 1, offset=3)
    response = client.post(ENRICH, json={URLS: urls, "fields": ["assessment", "social_posts"]})
    assert response.status_code == 200
    assert set(_data(response)) == {"crustdata_person_id", "updated_at", "basic_profile", "social_handles"}
    assert response.headers["x-credits-used"] == "1"


def test_default_families_can_be_left_out_of_an_explicit_list(configure: Configure) -> None:
    server = configure(include_default_families=False)
    with http_client(server.url, "no-families") as http:
        urls = sample(http, "url", 1)
        explicit = http.post(ENRICH, json={URLS: urls, "fields": ["honors"]})
        omitted = http.post(ENRICH, json={URLS: urls})
    assert set(_data(explicit)) == {"crustdata_person_id", "updated_at", "honors"}
    assert set(_data(omitted)) == {"crustdata_person_id", "updated_at", "basic_profile", "social_handles"}


def test_all_mode_returns_every_group_but_contact_and_bills_two(configure: Configure) -> None:
    server = configure(default_fields="all")
    with http_client(server.url, "all-current") as http:
        urls = sample(http, "url", 3)
        response = http.post(ENRICH, json={URLS: urls})
    data = _data(response)
    assert "contact" not in data
    assert {"experience", "education", "skills", "certifications", "dev_platform_profiles"} <= set(data)
    assert response.headers["x-credits-used"] == "6"


@pytest.mark.parametrize("path", [ENRICH, LIVE])
@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"business_emails": ["a@b.example"]}, "Unknown parameter(s): 'business_emails'"),
        ({"min_similarity_score": 0.5}, "Unknown parameter(s): 'min_similarity_score'"),
        ({"force_fetch": True}, "Unknown parameter(s): 'force_fetch'"),
        ({"enrich_realtime": True}, "Unknown parameter(s): 'enrich_realtime'"),
        ({"linkedin_profile_url": "x"}, "Unknown parameter(s): 'linkedin_profile_url'"),
        ({"fields": ["contact"]}, "Unsupported field(s) in 'fields': 'contact'"),
        ({"fields": ["contact.business_emails"]}, "'contact.business_emails'"),
        ({"fields": ["basic_profile.name"]}, "'basic_profile.name'"),
        ({"fields": ["updated_at"]}, "'updated_at'"),
        ({"fields": []}, "at least 1"),
        ({"fields": "basic_profile"}, "'fields' must be an array"),
    ],
)
def test_strict_400s_for_unknown_keys_and_misplaced_fields(
    client: httpx2.Client, api_key: str, sandbox: SandboxServer, path: str, extra: dict[str, Any], needle: str
) -> None:
    urls = sample(client, "url", 1)
    response = client.post(path, json={URLS: urls, **extra})
    assert response.status_code == 400
    error = error_of(response)
    assert error["type"] == "invalid_request"
    assert needle in error["message"]
    if "fields" in extra and isinstance(extra["fields"], list) and extra["fields"]:
        assert error["metadata"] == {"available_fields": GROUPS}
    assert response.headers["x-credits-used"] == "0"
    assert ledger_entry(sandbox.url, api_key)["credits_billed"] == "0.00"


def test_live_enrich_has_no_preview_parameter(client: httpx2.Client) -> None:
    urls = sample(client, "url", 1)
    response = client.post(LIVE, json={URLS: urls, "preview": False})
    assert response.status_code == 400
    assert "Unknown parameter(s): 'preview'" in error_of(response)["message"]


@pytest.mark.parametrize("path", [ENRICH, LIVE])
@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({}, "Missing required parameter 'professional_network_profile_urls'"),
        ({URLS: []}, "at least 1"),
        ({URLS: [f"https://www.linkedin.com/in/p-{i}" for i in range(26)]}, "at most 25"),
        ({URLS: ["https://www.linkedin.com/in/a-b?trk=x"]}, "Invalid professional network profile URL"),
        ({URLS: ["https://www.linkedin.com/in/a-b", 7]}, "[1] must be a non-empty string"),
    ],
)
def test_identifier_validation_is_as_strict_as_before(
    client: httpx2.Client, path: str, body: dict[str, Any], needle: str
) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 400
    assert needle in error_of(response)["message"]


@pytest.mark.parametrize(
    ("fields", "unit"),
    [
        (None, "1"),
        (["basic_profile", "experience", "education", "skills", "certifications", "honors"], "1"),
        (["dev_platform_profiles"], "2"),
        (["dev_platform_profiles", "experience"], "2"),
        (GROUPS, "2"),
    ],
)
def test_enrich_bills_base_one_plus_developer_platform_capped_at_two(
    client: httpx2.Client, sandbox: SandboxServer, api_key: str, fields: list[str] | None, unit: str
) -> None:
    urls = sample(client, "url", 2, offset=20)
    body: dict[str, Any] = {URLS: [*urls, NOBODY]}
    if fields is not None:
        body["fields"] = fields
    response = client.post(ENRICH, json=body)
    assert response.status_code == 200
    assert response.headers["x-credits-used"] == str(Decimal(unit) * 2)
    assert Decimal(ledger_entry(sandbox.url, api_key)["credits_billed"]) == Decimal(unit) * 2


def test_preview_needs_the_plan_and_then_is_free_and_basic(
    client: httpx2.Client, sandbox: SandboxServer, api_key: str
) -> None:
    urls = sample(client, "url", 2, offset=30)
    refused = client.post(ENRICH, json={URLS: urls, "preview": True})
    assert refused.status_code == 400
    assert error_of(refused)["message"] == "Preview feature is not available for your account"
    set_plan(sandbox.url, api_key, {"preview": True})
    preview = client.post(ENRICH, json={URLS: urls, "preview": True, "fields": ["experience"]})
    assert preview.status_code == 200
    assert preview.headers["x-credits-used"] == "0"
    person = _person(sandbox, urls[0])
    assert _data(preview) == {"crustdata_person_id": person.person_id, "basic_profile": person.data["basic_profile"]}
    assert client.post(ENRICH, json={URLS: urls, "preview": False}).headers["x-credits-used"] == "2"


@pytest.mark.parametrize("path", [ENRICH, LIVE])
def test_plan_disabled_fields_fail_the_call_with_a_list_of_denied_entries(
    client: httpx2.Client, sandbox: SandboxServer, api_key: str, path: str
) -> None:
    set_plan(sandbox.url, api_key, {"disabled_fields": {path: ["certifications", "basic_profile.summary"]}})
    urls = sample(client, "url", 2)
    denied = client.post(path, json={URLS: urls, "fields": ["skills", "certifications"]})
    assert denied.status_code == 403
    assert denied.json() == {
        "error": {
            "type": "permission_error",
            "message": "Access denied to fields: certifications",
            "metadata": [{"denied_fields": ["certifications"]}],
        }
    }
    assert denied.headers["x-credits-used"] == "0"
    # A group that contains a disabled path is denied too; without fields the path is silently withheld.
    assert client.post(path, json={URLS: urls, "fields": ["basic_profile"]}).status_code == 403
    allowed = client.post(path, json={URLS: urls})
    assert allowed.status_code == 200
    assert "summary" not in _data(allowed)["basic_profile"]
    assert "headline" in _data(allowed)["basic_profile"]


@pytest.mark.parametrize("path", [ENRICH, LIVE])
def test_global_gated_fields_join_every_keys_disabled_fields(configure: Configure, path: str) -> None:
    server = configure(gated_fields=["honors"])
    with http_client(server.url, "gated-current") as http:
        urls = sample(http, "url", 1)
        denied = http.post(path, json={URLS: urls, "fields": ["honors"]})
    assert denied.status_code == 403
    assert denied.json()["error"]["metadata"] == [{"denied_fields": ["honors"]}]


@pytest.mark.parametrize("path", [ENRICH, LIVE, "/person/contact/enrich"])
def test_404_mode_applies_to_every_enrich_endpoint(configure: Configure, path: str) -> None:
    server = configure(no_match_status=404)
    with http_client(server.url, "no-match-current") as http:
        [url] = sample(http, "url", 1)
        missing = http.post(path, json={URLS: [NOBODY]})
        mixed = http.post(path, json={URLS: [url, NOBODY]})
    assert missing.status_code == 404
    assert missing.json() == {"error": {"type": "not_found", "message": "No data found", "metadata": []}}
    assert mixed.status_code == 200
    assert mixed.json()[1]["matches"] == []


@pytest.mark.parametrize("path", [ENRICH, LIVE])
def test_opted_out_people_never_match(client: httpx2.Client, path: str) -> None:
    opted_out = sample(client, "opted_out_url", 2)
    response = client.post(path, json={URLS: opted_out})
    assert [e["matches"] for e in response.json()] == [[], []]
    assert response.headers["x-credits-used"] == "0"


# --- live enrich -------------------------------------------------------------------------------------------


def test_live_enrich_bills_seven_per_matched_profile_and_answers_like_enrich(
    client: httpx2.Client, sandbox: SandboxServer, api_key: str
) -> None:
    urls = sample(client, "url", 3, offset=50)
    body = {URLS: [*urls, NOBODY], "fields": ["dev_platform_profiles", "education"]}
    live = client.post(LIVE, json=body)
    cached = client.post(ENRICH, json=body)
    assert live.status_code == 200
    assert live.headers["x-credits-used"] == "21"
    assert live.json() == cached.json()
    entry = ledger_entry(sandbox.url, api_key)
    assert entry["requests"] == {"live": {"200": 1}, "enrich": {"200": 1}}
    assert entry["credits_billed"] == "27.00"


def test_live_enrich_is_plan_gated(client: httpx2.Client, sandbox: SandboxServer, api_key: str) -> None:
    set_plan(sandbox.url, api_key, {"endpoints": {LIVE: {"status": "not_enabled"}}})
    response = client.post(LIVE, json={URLS: sample(client, "url", 1)})
    assert response.status_code == 403
    assert response.json() == {
        "error": {
            "type": "permission_error",
            "message": f"Your plan does not include {LIVE}. Contact your account manager to enable it.",
            "metadata": [],
        }
    }
    assert response.headers["x-credits-used"] == "0"
    assert ledger_entry(sandbox.url, api_key)["requests"] == {"live": {"403": 1}}


def test_a_live_enrich_price_set_by_the_plan_replaces_the_documented_one(
    client: httpx2.Client, sandbox: SandboxServer, api_key: str
) -> None:
    terms = {"base_credits": "5", "premium_fields": {"dev_platform_profiles": "1.5"}}
    set_plan(sandbox.url, api_key, {"endpoints": {LIVE: terms}})
    urls = sample(client, "url", 2, offset=60)
    plain = client.post(LIVE, json={URLS: urls})
    with_dev = client.post(LIVE, json={URLS: urls, "fields": ["dev_platform_profiles"]})
    assert plain.headers["x-credits-used"] == "10"
    assert with_dev.headers["x-credits-used"] == "13"


def test_live_enrich_waits_live_latency_ms_before_answering(configure: Configure) -> None:
    server = configure(live_latency_ms=250)
    with http_client(server.url, "slow-live") as http:
        urls = sample(http, "url", 1)
        started = time.monotonic()
        slow = http.post(LIVE, json={URLS: urls})
        live_elapsed = time.monotonic() - started
        started = time.monotonic()
        fast = http.post(ENRICH, json={URLS: urls})
        cached_elapsed = time.monotonic() - started
    assert slow.status_code == fast.status_code == 200
    assert live_elapsed >= 0.25 > cached_elapsed
