"""Today's account endpoints (GET /account/endpoints, /user/credits, /account/credits), and the overview
revision's 404s for every endpoint it did not have."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx2
import pytest

from person_enrich_mcp.sandbox import SandboxServer
from person_enrich_mcp.sandbox.config import FaultRule
from tests.sandbox.sandbox_helpers import (
    API_VERSION,
    TLS,
    Configure,
    ServerFactory,
    error_of,
    headers_for,
    http_client,
    ledger_entry,
    sample,
    set_plan,
)

ENRICH = "/person/enrich"
CONTACT = "/person/contact/enrich"
LIVE = "/person/professional_network/enrich/live"
SEARCH = "/person/search"
AUTOCOMPLETE = "/person/search/autocomplete"
PERSON_PATHS = [ENRICH, CONTACT, LIVE, SEARCH, AUTOCOMPLETE]
ENTRY_KEYS = {
    "path",
    "category",
    "status",
    "effective_rate_limit_rpm",
    "base_credits",
    "premium_fields",
    "premium_filters",
    "fields",
}


def _endpoints(http: httpx2.Client, **params: str) -> list[dict[str, Any]]:
    response = http.get("/account/endpoints", params=params)
    assert response.status_code == 200, response.text
    endpoints: list[dict[str, Any]] = response.json()["endpoints"]
    return endpoints


def _entry(http: httpx2.Client, path: str) -> dict[str, Any]:
    [entry] = _endpoints(http, path=path)
    return entry


def test_the_unfiltered_list_has_every_person_endpoint_and_two_company_ones(client: httpx2.Client) -> None:
    response = client.get("/account/endpoints")
    body = response.json()
    assert set(body) == {"api_version", "token_limit_rpm", "endpoints"}
    assert body["api_version"] == "2025-11-01"
    assert body["token_limit_rpm"] is None
    assert [e["path"] for e in body["endpoints"]] == [*PERSON_PATHS, "/company/enrich", "/company/search"]
    assert all(set(e) == ENTRY_KEYS for e in body["endpoints"])
    assert [e["category"] for e in body["endpoints"]] == ["Person"] * 5 + ["Company"] * 2
    assert [e["status"] for e in body["endpoints"]] == ["enabled"] * 5 + ["not_enabled"] * 2
    assert response.headers["x-credits-used"] == "0"


def test_documented_prices_and_limits(client: httpx2.Client) -> None:
    entries = {e["path"]: e for e in _endpoints(client)}
    summary = {
        path: (e["base_credits"], e["premium_fields"], e["effective_rate_limit_rpm"])
        for path, e in entries.items()
        if path in PERSON_PATHS
    }
    high = 10_000  # the shared test server's limits
    assert summary == {
        ENRICH: (1, [{"field": "dev_platform_profiles", "credits": 1}], high),
        CONTACT: (
            0,
            [
                {"field": "contact.business_emails", "credits": 1},
                {"field": "contact.personal_emails", "credits": 2},
                {"field": "contact.phone_numbers", "credits": 2},
            ],
            high,
        ),
        LIVE: (7, [], high),
        SEARCH: (0.03, [], high),
        AUTOCOMPLETE: (0, [], high),
    }
    assert all(e["premium_filters"] == [] for e in entries.values())


def test_default_rate_limits_are_the_documented_ones(small: SandboxServer) -> None:
    with http_client(small.url, "limits") as http:
        limits = {e["path"]: e["effective_rate_limit_rpm"] for e in _endpoints(http)}
    assert limits == {
        ENRICH: 15,
        CONTACT: 15,
        LIVE: 10,
        SEARCH: 30,
        AUTOCOMPLETE: 300,
        "/company/enrich": None,
        "/company/search": None,
    }


def test_field_lists_name_leaf_paths_per_endpoint(client: httpx2.Client) -> None:
    enrich = _entry(client, ENRICH)["fields"]
    assert enrich["disabled"] == []
    enabled = enrich["enabled"]
    assert enabled == sorted(enabled)
    for path in (
        "basic_profile.name",
        "experience.employment_details.current.title",
        "dev_platform_profiles.metadata.created_at",
        "assessment",
        "crustdata_person_id",
    ):
        assert path in enabled, path
    assert not [p for p in enabled if p.startswith("contact")]
    assert "experience" not in enabled  # leaves only
    assert _entry(client, LIVE)["fields"] == enrich
    assert _entry(client, CONTACT)["fields"]["enabled"] == [
        "contact.business_emails",
        "contact.personal_emails",
        "contact.phone_numbers",
        "contact.websites",
    ]
    assert "experience.employment_details.current.company_name" in _entry(client, SEARCH)["fields"]["enabled"]


@pytest.mark.parametrize(
    ("params", "paths"),
    [
        ({"path": ENRICH}, [ENRICH]),
        ({"path": "/person/enrich/"}, []),
        ({"path": "/web/enrich/live"}, []),
        ({"category": "person"}, PERSON_PATHS),
        ({"category": "COMPANY"}, ["/company/enrich", "/company/search"]),
        ({"category": "Jobs"}, []),
        ({"status": "enabled"}, PERSON_PATHS),
        ({"status": "not_enabled"}, ["/company/enrich", "/company/search"]),
        ({"category": "Person", "status": "not_enabled"}, []),
        ({"path": "/company/search", "category": "company", "status": "not_enabled"}, ["/company/search"]),
    ],
)
def test_filters_combine_with_and_and_nothing_matching_is_an_empty_list(
    client: httpx2.Client, params: dict[str, str], paths: list[str]
) -> None:
    assert [e["path"] for e in _endpoints(client, **params)] == paths


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"status": "disabled"}, "status must be 'enabled' or 'not_enabled'"),
        ({"status": "ENABLED"}, "status must be"),
        ({"include_fields": "true"}, "Unknown query parameter(s): 'include_fields'"),
    ],
)
def test_invalid_queries_are_400s(client: httpx2.Client, params: dict[str, str], needle: str) -> None:
    response = client.get("/account/endpoints", params=params)
    assert response.status_code == 400
    assert needle in error_of(response)["message"]


def test_the_list_reflects_the_keys_plan(client: httpx2.Client, sandbox: SandboxServer, api_key: str) -> None:
    set_plan(
        sandbox.url,
        api_key,
        {
            "endpoints": {
                CONTACT: {"status": "not_enabled"},
                ENRICH: {"rpm": 5, "base_credits": "0.5", "premium_fields": {"skills": "0.25"}},
            },
            "disabled_fields": {ENRICH: ["certifications", "honors.title"]},
            "token_limit_rpm": 50,
        },
    )
    body = client.get("/account/endpoints").json()
    assert body["token_limit_rpm"] == 50
    entries = {e["path"]: e for e in body["endpoints"]}
    assert entries[CONTACT]["status"] == "not_enabled"
    enrich = entries[ENRICH]
    assert (enrich["effective_rate_limit_rpm"], enrich["base_credits"]) == (5, 0.5)
    assert enrich["premium_fields"] == [{"field": "skills", "credits": 0.25}]
    assert enrich["fields"]["disabled"] == ["certifications", "honors.title"]
    assert not [f for f in enrich["fields"]["enabled"] if f.startswith(("certifications", "honors"))]
    assert entries[LIVE]["fields"]["disabled"] == []
    assert [e["path"] for e in _endpoints(client, status="not_enabled")] == [
        CONTACT,
        "/company/enrich",
        "/company/search",
    ]


def test_global_gated_fields_show_as_disabled_on_enrich_and_live(configure: Configure) -> None:
    server = configure(gated_fields=["skills"])
    with http_client(server.url, "gated-list") as http:
        entries = {e["path"]: e["fields"]["disabled"] for e in _endpoints(http)}
    assert entries[ENRICH] == entries[LIVE] == ["skills"]
    assert entries[SEARCH] == entries[CONTACT] == []


@pytest.mark.parametrize("path", ["/account/endpoints", "/user/credits", "/account/credits"])
def test_account_endpoints_need_the_version_header_and_a_key(sandbox: SandboxServer, path: str) -> None:
    with httpx2.Client(base_url=sandbox.url, timeout=10, verify=TLS) as http:
        no_version = http.get(path, headers={"authorization": "Bearer someone"})
        no_key = http.get(path, headers={"x-api-version": API_VERSION})
        wrong_version = http.get(path, headers={**headers_for("someone"), "x-api-version": "2024-01-01"})
    assert no_version.status_code == 400
    assert "x-api-version" in error_of(no_version)["message"]
    assert wrong_version.status_code == 400
    assert no_key.status_code == 401
    assert no_key.json() == {"message": "Invalid API key in request"}


def test_the_three_account_endpoints_share_one_rate_limit(make_server: ServerFactory) -> None:
    server = make_server(account_rpm=2)
    with http_client(server.url, "acct-limit") as http:
        statuses = [
            http.get("/account/endpoints").status_code,
            http.get("/user/credits").status_code,
            http.get("/account/credits").status_code,
        ]
        limited = http.get("/user/credits")
    assert statuses == [200, 200, 429]
    assert limited.headers["x-ratelimit-limit"] == "2"
    entry = ledger_entry(server.url, "acct-limit")
    assert entry["requests"] == {"account": {"200": 2, "429": 2}}
    assert entry["recent"][0]["body"] == {"path": "/account/endpoints", "query": {}}


def test_user_credits_count_down_from_a_million_for_an_unlimited_key(client: httpx2.Client) -> None:
    assert client.get("/user/credits").json() == {"credits": 1_000_000}
    client.post(ENRICH, json={"professional_network_profile_urls": sample(client, "url", 2)})
    client.post(
        SEARCH, json={"filters": {"field": "basic_profile.location.country", "type": "=", "value": "Kenya"}, "limit": 1}
    )
    response = client.get("/user/credits")
    assert response.json() == {"credits": 999997.97}
    assert response.headers["x-credits-used"] == "0"


def test_credits_report_the_keys_balance(client: httpx2.Client, sandbox: SandboxServer, api_key: str) -> None:
    with http_client(sandbox.url) as admin:
        admin.post("/_sandbox/balance", json={"credits": "10"}, headers={"authorization": f"Bearer {api_key}"})
    assert client.get("/user/credits").json() == {"credits": 10}
    client.post(ENRICH, json={"professional_network_profile_urls": sample(client, "url", 1)})
    assert client.get("/account/credits").json() == {
        "account": {
            "credits": 9,
            "recurring_credits": 0,
            "recurring_credits_frequency": None,
            "recurring_credits_refresh_date": None,
            "credit_rollover": False,
        }
    }
    assert ledger_entry(sandbox.url, api_key)["balance"] == str(Decimal("9.00"))


@pytest.mark.parametrize("path", ["/user/credits", "/account/credits"])
def test_credit_endpoints_take_no_parameters(client: httpx2.Client, path: str) -> None:
    response = client.get(path, params={"key": "x"})
    assert response.status_code == 400
    assert "takes no parameters" in error_of(response)["message"]


def test_fault_rules_can_target_the_account_endpoints(make_server: ServerFactory) -> None:
    server = make_server(faults=(FaultRule.from_spec("kind=status,status=503,endpoint=account"),))
    with http_client(server.url, "acct-fault") as http:
        search = http.post(SEARCH, json={"filters": {"field": "crustdata_person_id", "type": "=", "value": 1}})
        failed = http.get("/user/credits")
        ok = http.get("/user/credits")
    assert (search.status_code, failed.status_code, ok.status_code) == (200, 503, 200)
    assert ledger_entry(server.url, "acct-fault")["faults"] == {"status": 1}


@pytest.mark.parametrize("endpoint", ["enrich", "contact", "live", "search", "autocomplete", "account"])
def test_fault_rules_accept_every_endpoint_name(endpoint: str) -> None:
    assert FaultRule.from_spec(f"kind=reset,endpoint={endpoint}").endpoint == endpoint


# --- the overview revision -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", CONTACT),
        ("POST", LIVE),
        ("GET", "/account/endpoints"),
        ("GET", "/user/credits"),
        ("GET", "/account/credits"),
    ],
)
def test_the_overview_revision_has_no_such_routes(configure: Configure, method: str, path: str) -> None:
    server = configure(revision="overview")
    with http_client(server.url) as http:
        keyed = http.request(method, path, json={} if method == "POST" else None, headers=headers_for("old"))
        bare = http.request(method, path)
    for response in (keyed, bare):
        assert response.status_code == 404
        assert response.json() == {"message": "Not Found"}
        assert response.headers["x-credits-used"] == "0"
        assert "x-ratelimit-limit" not in response.headers
    requests = ledger_entry(server.url, "old")["requests"]
    assert sum(counts.get("404", 0) for counts in requests.values()) == 1  # the keyed probe is counted


def test_switching_revision_at_run_time_brings_the_routes_back(configure: Configure) -> None:
    server = configure(revision="overview")
    with http_client(server.url, "switch") as http:
        before = http.get("/user/credits")
        assert http.post("/_sandbox/config", json={"revision": "current"}).json()["revision"] == "current"
        after = http.get("/user/credits")
    assert (before.status_code, after.status_code) == (404, 200)
