"""Cross-cutting protocol behaviour: version header, auth, the headers every response carries, body checks."""

from __future__ import annotations

import httpx2
import pytest

from person_enrich_mcp.sandbox import SandboxServer
from person_enrich_mcp.sandbox.endpoints import REVISIONS, Revision
from tests.sandbox.sandbox_helpers import (
    API_VERSION,
    TLS,
    Configure,
    ServerFactory,
    headers_for,
    http_client,
    ledger_entry,
    sample,
)


@pytest.fixture(params=REVISIONS)
def revision(request: pytest.FixtureRequest) -> Revision:
    """Every test here runs against both revisions: the behaviour is shared."""
    return request.param


RATE_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")
SEARCH_BODY = {"filters": {"field": "basic_profile.location.country", "type": "=", "value": "Germany"}, "limit": 1}


def _assert_common_headers(response: httpx2.Response, *, rate: bool) -> None:
    assert response.headers["x-request-id"].startswith("req_")
    assert "x-credits-used" in response.headers
    for name in RATE_HEADERS:
        assert (name in response.headers) is rate, name
    if rate:
        for name in RATE_HEADERS:
            assert int(response.headers[name]) >= 0


def test_success_responses_carry_rate_credit_and_request_id_headers(client: httpx2.Client) -> None:
    urls = sample(client, "url", 1)
    enrich = client.post("/person/enrich", json={"professional_network_profile_urls": urls})
    search = client.post("/person/search", json=SEARCH_BODY)
    for response in (enrich, search):
        assert response.status_code == 200
        _assert_common_headers(response, rate=True)
    assert enrich.headers["x-credits-used"] == "1"
    assert search.headers["x-credits-used"] == "0.03"
    assert enrich.headers["x-ratelimit-limit"] == "10000"
    assert enrich.headers["x-request-id"] != search.headers["x-request-id"]


def test_error_responses_after_auth_carry_rate_headers_and_zero_credits(client: httpx2.Client) -> None:
    response = client.post("/person/enrich", json={"business_emails": ["not-an-email"]})
    assert response.status_code == 400
    _assert_common_headers(response, rate=True)
    assert response.headers["x-credits-used"] == "0"


@pytest.mark.parametrize("path", ["/person/enrich", "/person/search"])
def test_missing_version_header_is_a_400_naming_the_header(sandbox: SandboxServer, api_key: str, path: str) -> None:
    response = httpx2.post(
        sandbox.url + path, json=SEARCH_BODY, headers={"authorization": f"Bearer {api_key}"}, timeout=10, verify=TLS
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request"
    assert "x-api-version" in error["message"] and API_VERSION in error["message"]
    assert error["metadata"] == []
    _assert_common_headers(response, rate=False)


def test_wrong_version_header_is_a_400_with_expected_value(sandbox: SandboxServer, api_key: str) -> None:
    headers = {**headers_for(api_key), "x-api-version": "2024-01-01"}
    response = httpx2.post(sandbox.url + "/person/search", json=SEARCH_BODY, headers=headers, timeout=10, verify=TLS)
    assert response.status_code == 400
    assert "2024-01-01" in response.json()["error"]["message"]
    assert API_VERSION in response.json()["error"]["message"]


def test_version_is_checked_before_auth(sandbox: SandboxServer) -> None:
    response = httpx2.post(sandbox.url + "/person/search", json=SEARCH_BODY, timeout=10, verify=TLS)
    assert response.status_code == 400


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Token abc", "Basic dXNlcjpwYXNz", "abc"],
)
def test_missing_or_malformed_key_is_a_flat_401(sandbox: SandboxServer, authorization: str | None) -> None:
    headers = {"x-api-version": API_VERSION}
    if authorization is not None:
        headers["authorization"] = authorization
    response = httpx2.post(sandbox.url + "/person/enrich", json={}, headers=headers, timeout=10, verify=TLS)
    assert response.status_code == 401
    assert response.json() == {"message": "Invalid API key in request"}
    _assert_common_headers(response, rate=False)
    assert response.headers["x-credits-used"] == "0"


def test_restricted_keys_reject_others_and_accept_listed_ones(make_server: ServerFactory) -> None:
    server = make_server(api_keys=("alpha-key", "beta-key"))
    with http_client(server.url) as http:
        denied = http.post("/person/search", json=SEARCH_BODY, headers=headers_for("gamma-key"))
        allowed = http.post("/person/search", json=SEARCH_BODY, headers=headers_for("beta-key"))
        lowercase_scheme = http.post(
            "/person/search",
            json=SEARCH_BODY,
            headers={"authorization": "bearer alpha-key", "x-api-version": API_VERSION},
        )
    assert denied.status_code == 401
    assert denied.json() == {"message": "Invalid API key in request"}
    assert allowed.status_code == 200
    assert lowercase_scheme.status_code == 200
    # Rejected keys never reach the ledger.
    assert ledger_entry(server.url, "gamma-key")["requests"] == {}


def test_any_key_is_accepted_and_billed_separately_without_a_key_list(sandbox: SandboxServer) -> None:
    with http_client(sandbox.url) as http:
        for key in ("separate-key-one", "separate-key-two"):
            assert http.post("/person/search", json=SEARCH_BODY, headers=headers_for(key)).status_code == 200
    one = ledger_entry(sandbox.url, "separate-key-one")
    two = ledger_entry(sandbox.url, "separate-key-two")
    assert one["key"] != two["key"]
    assert one["credits_billed"] == two["credits_billed"] == "0.03"


@pytest.mark.parametrize("path", ["/person/enrich", "/person/search"])
def test_non_json_body_is_a_400(client: httpx2.Client, path: str) -> None:
    response = client.post(path, content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request"
    assert "JSON" in response.json()["error"]["message"]


@pytest.mark.parametrize("path", ["/person/enrich", "/person/search"])
def test_non_object_body_is_a_400(client: httpx2.Client, path: str) -> None:
    response = client.post(path, json=["a", "b"])
    assert response.status_code == 400
    assert "object" in response.json()["error"]["message"]


def test_admin_endpoints_answer_with_a_request_id(admin: httpx2.Client) -> None:
    response = admin.get("/_sandbox/health")
    assert response.status_code == 200
    assert response.headers["x-request-id"].startswith("req_")


def test_the_credits_header_can_be_switched_off_everywhere(configure: Configure, revision: Revision) -> None:
    server = configure(credits_header=False, search_rpm=2)
    with http_client(server.url) as http:
        urls = sample(http, "url", 1)
        answers = [
            http.post("/person/search", json=SEARCH_BODY, headers=headers_for("quiet")),
            http.post("/person/enrich", json={"professional_network_profile_urls": urls}, headers=headers_for("quiet")),
            http.post("/person/search", json={"filters": {}}, headers=headers_for("quiet")),  # 400
            http.post("/person/search", json=SEARCH_BODY, headers=headers_for("quiet")),  # 429
            http.post("/person/search", json=SEARCH_BODY, headers={"x-api-version": API_VERSION}),  # 401
            http.post(
                "/person/search/autocomplete", json={"field": "honors.title", "query": ""}, headers=headers_for("quiet")
            ),
            http.get("/user/credits", headers=headers_for("quiet")),  # 200 today, 404 in the overview
        ]
    assert [r.status_code for r in answers] == [200, 200, 400, 429, 401, 200, 200 if revision == "current" else 404]
    assert all("x-credits-used" not in r.headers for r in answers)
    assert ledger_entry(server.url, "quiet")["credits_billed"] == "1.03"  # billing is unchanged
