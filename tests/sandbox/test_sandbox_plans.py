"""Per-key plans (`/_sandbox/plan`): gating, prices, rate limits, the key-wide token limit, and resets."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx2
import pytest

from person_enrich_mcp.sandbox import SandboxServer
from person_enrich_mcp.sandbox.plans import Plan
from tests.sandbox.sandbox_helpers import (
    FakeClock,
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
DEFAULT_TERMS = {"status": "enabled", "rpm": None, "base_credits": None, "premium_fields": None}
SEARCH_BODY = {"filters": {"field": "basic_profile.location.continent", "type": "=", "value": "Europe"}, "limit": 2}


def _plan(http: httpx2.Client, key: str, method: str = "GET", body: Any = None) -> httpx2.Response:
    return http.request(method, "/_sandbox/plan", json=body, headers={"authorization": f"Bearer {key}"})


def test_every_key_starts_on_the_default_plan(small: SandboxServer) -> None:
    with http_client(small.url) as http:
        shown = _plan(http, "fresh").json()
    assert shown == {
        "key": shown["key"],
        "endpoints": dict.fromkeys((ENRICH, CONTACT, LIVE, SEARCH, AUTOCOMPLETE), DEFAULT_TERMS),
        "disabled_fields": {},
        "token_limit_rpm": None,
        "preview": False,
        "preview_credits": "0.01",
    }
    assert len(shown["key"]) == 16 and "fresh" not in shown["key"]


def test_updates_are_partial_and_delete_and_reset_restore_the_default(small: SandboxServer) -> None:
    with http_client(small.url) as http:
        first = _plan(http, "partial", "POST", {"endpoints": {SEARCH: {"rpm": 5}}, "preview": True}).json()
        second = _plan(http, "partial", "POST", {"endpoints": {SEARCH: {"base_credits": "0.05"}}}).json()
        other = _plan(http, "bystander").json()
        assert first["endpoints"][SEARCH] == {**DEFAULT_TERMS, "rpm": 5}
        assert second["endpoints"][SEARCH] == {**DEFAULT_TERMS, "rpm": 5, "base_credits": "0.05"}
        assert second["preview"] is True
        assert other["endpoints"][SEARCH] == DEFAULT_TERMS
        deleted = _plan(http, "partial", "DELETE").json()
        assert deleted["endpoints"][SEARCH] == DEFAULT_TERMS and deleted["preview"] is False
        _plan(http, "partial", "POST", {"preview": True})
        assert http.post("/_sandbox/reset").status_code == 200
        assert _plan(http, "partial").json()["preview"] is False


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"plan": "gold"}, "unknown plan key"),
        ({"endpoints": {"/person/identify": {"status": "enabled"}}}, "unknown endpoint path"),
        ({"endpoints": {SEARCH: {"status": "disabled"}}}, "'enabled' or 'not_enabled'"),
        ({"endpoints": {SEARCH: {"rpm": 0}}}, "positive integer"),
        ({"endpoints": {SEARCH: {"base_credits": 0.05}}}, "not a float"),
        ({"endpoints": {SEARCH: {"colour": "red"}}}, "unknown plan endpoint"),
        ({"endpoints": {ENRICH: {"premium_fields": {"contact": "1"}}}}, "not returned by /person/enrich"),
        ({"disabled_fields": {ENRICH: ["contact.business_emails"]}}, "not returned by /person/enrich"),
        ({"disabled_fields": {CONTACT: ["basic_profile"]}}, "not returned by /person/contact/enrich"),
        ({"disabled_fields": {AUTOCOMPLETE: ["suggestions"]}}, "not returned by"),
        ({"disabled_fields": {ENRICH: "skills"}}, "list of field names"),
        ({"token_limit_rpm": -1}, "positive integer"),
        ({"preview": "yes"}, "true or false"),
        ({"preview_credits": None}, "not null"),
    ],
)
def test_invalid_plan_updates_are_400s_and_change_nothing(small: SandboxServer, body: Any, needle: str) -> None:
    with http_client(small.url) as http:
        response = _plan(http, "invalid", "POST", body)
        assert response.status_code == 400
        assert needle in error_of(response)["message"]
        assert _plan(http, "invalid").json()["endpoints"][SEARCH] == DEFAULT_TERMS


def test_plans_need_a_bearer_key(small: SandboxServer) -> None:
    with http_client(small.url) as http:
        for method in ("GET", "POST", "DELETE"):
            assert http.request(method, "/_sandbox/plan", json={}).status_code == 401


def test_a_plan_rate_limit_replaces_the_configs(make_server: ServerFactory) -> None:
    server = make_server()
    set_plan(server.url, "slow-key", {"endpoints": {SEARCH: {"rpm": 2}}})
    with http_client(server.url) as http:
        statuses = [http.post(SEARCH, json=SEARCH_BODY, headers=headers_for("slow-key")) for _ in range(3)]
        other = http.post(SEARCH, json=SEARCH_BODY, headers=headers_for("normal-key"))
    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert statuses[0].headers["x-ratelimit-limit"] == "2"
    assert other.headers["x-ratelimit-limit"] == "30"


def test_the_token_limit_spans_every_endpoint_and_refusals_enter_no_window(make_server: ServerFactory) -> None:
    clock = FakeClock()
    server = make_server(clock=clock, default_plan=Plan(token_limit_rpm=3))
    with http_client(server.url, "token-key") as http:
        urls = sample(http, "url", 1)
        admitted = [
            http.post(ENRICH, json={"professional_network_profile_urls": urls}),
            http.post(SEARCH, json=SEARCH_BODY),
            http.post(AUTOCOMPLETE, json={"field": "honors.title", "query": ""}),
        ]
        refused = http.get("/user/credits")
        clock.advance(30)
        assert http.post(SEARCH, json=SEARCH_BODY).status_code == 429
        clock.advance(30)  # the first three leave the window; the refused ones never entered it
        freed = [http.get("/user/credits") for _ in range(3)]
        again = http.post(SEARCH, json=SEARCH_BODY)
    assert [r.status_code for r in admitted] == [200, 200, 200]
    assert admitted[0].headers["x-ratelimit-limit"] == "15"  # admitted: the endpoint's own window is shown
    assert refused.status_code == 429
    assert refused.headers["x-ratelimit-limit"] == "3"
    assert "across all endpoints" in error_of(refused)["message"]
    assert [r.status_code for r in freed] == [200, 200, 200]
    assert again.status_code == 429
    requests = ledger_entry(server.url, "token-key")["requests"]
    assert requests["account"] == {"429": 1, "200": 3}


@pytest.mark.parametrize(
    ("path", "body", "terms", "credits"),
    [
        (
            ENRICH,
            {"fields": ["dev_platform_profiles", "experience"]},
            {"base_credits": "0.5", "premium_fields": {"dev_platform_profiles": "2", "experience": "1"}},
            "7",  # 2 x 3.5: the documented cap of 2 no longer applies
        ),
        (ENRICH, {}, {"base_credits": "3"}, "6"),
        (SEARCH, {}, {"base_credits": "0.05"}, "0.10"),
        (SEARCH, {"fields": ["basic_profile.name"]}, {"premium_fields": {"basic_profile": "0.5"}}, "1.06"),
        (SEARCH, {"fields": ["experience"]}, {"premium_fields": {"basic_profile": "0.5"}}, "0.06"),
    ],
)
def test_plan_prices_apply_per_endpoint(
    client: httpx2.Client,
    sandbox: SandboxServer,
    api_key: str,
    path: str,
    body: dict[str, Any],
    terms: dict[str, Any],
    credits: str,
) -> None:
    set_plan(sandbox.url, api_key, {"endpoints": {path: terms}})
    if path == ENRICH:
        request = {"professional_network_profile_urls": sample(client, "url", 2), **body}
    else:
        request = {**SEARCH_BODY, **body}
    response = client.post(path, json=request)
    assert response.status_code == 200
    assert response.headers["x-credits-used"] == credits
    assert Decimal(ledger_entry(sandbox.url, api_key)["credits_billed"]) == Decimal(credits)


def test_a_priced_autocomplete_bills_per_call(client: httpx2.Client, sandbox: SandboxServer, api_key: str) -> None:
    set_plan(sandbox.url, api_key, {"endpoints": {AUTOCOMPLETE: {"base_credits": "0.1"}}})
    response = client.post(AUTOCOMPLETE, json={"field": "honors.title", "query": ""})
    assert response.headers["x-credits-used"] == "0.1"


@pytest.mark.parametrize("path", [ENRICH, SEARCH, AUTOCOMPLETE])
def test_any_person_endpoint_can_be_switched_off(
    client: httpx2.Client, sandbox: SandboxServer, api_key: str, path: str
) -> None:
    set_plan(sandbox.url, api_key, {"endpoints": {path: {"status": "not_enabled"}}})
    response = client.post(path, json={})
    assert response.status_code == 403
    assert (
        error_of(response)["message"]
        == f"Your plan does not include {path}. Contact your account manager to enable it."
    )


def test_plan_gating_applies_in_the_overview_revision_too(make_server: ServerFactory) -> None:
    server = make_server(revision="overview")
    set_plan(server.url, "old-plan", {"disabled_fields": {ENRICH: ["skills"]}})
    with http_client(server.url, "old-plan") as http:
        urls = sample(http, "url", 1)
        denied = http.post(ENRICH, json={"professional_network_profile_urls": urls, "fields": ["skills"]})
    assert denied.status_code == 403
    assert denied.json()["error"] == {
        "type": "permission_error",
        "message": "Your plan does not include these fields: skills",
        "metadata": {"denied_fields": ["skills"]},
    }


def test_each_endpoint_has_its_own_default_rate_limit(small: SandboxServer) -> None:
    urls_body = {"professional_network_profile_urls": ["https://www.linkedin.com/in/nobody-limits-0"]}
    with http_client(small.url, "defaults") as http:
        answers = {
            ENRICH: http.post(ENRICH, json=urls_body),
            CONTACT: http.post(CONTACT, json=urls_body),
            LIVE: http.post(LIVE, json=urls_body),
            SEARCH: http.post(SEARCH, json=SEARCH_BODY),
            AUTOCOMPLETE: http.post(AUTOCOMPLETE, json={"field": "honors.title", "query": ""}),
            "/account/endpoints": http.get("/account/endpoints"),
        }
    limits = {path: r.headers["x-ratelimit-limit"] for path, r in answers.items()}
    assert limits == {
        ENRICH: "15",
        CONTACT: "15",
        LIVE: "10",
        SEARCH: "30",
        AUTOCOMPLETE: "300",
        "/account/endpoints": "300",
    }
    assert ledger_entry(small.url, "defaults")["requests"] == {
        name: {"200": 1} for name in ("enrich", "contact", "live", "search", "autocomplete", "account")
    }
