"""POST /person/contact/enrich (today's revision): strict keys, contact-only answers, per-tier billing,
`verified`, plan gating and plan-disabled tiers."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx2
import pytest

from person_enrich_mcp.sandbox import SandboxServer
from person_enrich_mcp.sandbox.dataset import Person
from person_enrich_mcp.sandbox.endpoints import CONTACT_PATH
from person_enrich_mcp.sandbox.plans import Plan
from tests.sandbox.sandbox_helpers import (
    ServerFactory,
    error_of,
    headers_for,
    http_client,
    ledger_entry,
    sample,
    set_plan,
)

URLS = "professional_network_profile_urls"
EMAILS = "business_emails"
CONTACT_FIELDS = ["contact.business_emails", "contact.personal_emails", "contact.phone_numbers", "contact.websites"]


def _find(sandbox: SandboxServer, predicate: Callable[[dict[str, Any]], Any]) -> Person:
    return next(p for p in sandbox.state.dataset.searchable if predicate(p.data["contact"]))


def _contact(client: httpx2.Client, **body: Any) -> httpx2.Response:
    return client.post(CONTACT_PATH, json=body)


def _only_match(response: httpx2.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    [entry] = response.json()
    [match] = entry["matches"]
    data: dict[str, Any] = match["person_data"]
    return data


def test_a_profile_url_gives_one_match_holding_only_the_id_and_the_three_default_tiers(
    client: httpx2.Client, sandbox: SandboxServer
) -> None:
    person = _find(sandbox, lambda c: c["business_emails"] and c["websites"])
    response = _contact(client, **{URLS: [person.profile_url]})
    [entry] = response.json()
    assert entry["matched_on"] == person.profile_url
    assert entry["match_type"] == "professional_network_profile_url"
    assert entry["matches"][0]["confidence_score"] == 1.0
    contact = person.data["contact"]
    assert entry["matches"][0]["person_data"] == {
        "crustdata_person_id": person.person_id,
        "contact": {
            "business_emails": contact["business_emails"],
            "personal_emails": contact["personal_emails"],
            "phone_numbers": contact["phone_numbers"],
        },
    }


def test_business_emails_give_the_scored_candidates_best_first_with_contact_data_only(
    client: httpx2.Client, sandbox: SandboxServer
) -> None:
    emails = sample(client, "multi_email", 3)
    body = _contact(client, **{EMAILS: emails, "fields": ["contact.business_emails"]}).json()
    assert [e["matched_on"] for e in body] == emails
    for entry in body:
        assert entry["match_type"] == "business_email"
        expected = sandbox.state.dataset.email_candidates(entry["matched_on"])
        assert [m["confidence_score"] for m in entry["matches"]] == [c.score for c in expected]
        assert len(expected) >= 2
        for match, candidate in zip(entry["matches"], expected, strict=True):
            assert match["person_data"] == {
                "crustdata_person_id": candidate.person.person_id,
                "contact": {"business_emails": candidate.person.data["contact"]["business_emails"]},
            }


def test_a_tier_with_nothing_on_file_is_an_empty_list(client: httpx2.Client, sandbox: SandboxServer) -> None:
    person = _find(sandbox, lambda c: not any(c.values()))
    data = _only_match(_contact(client, **{URLS: [person.profile_url], "fields": CONTACT_FIELDS}))
    assert data["contact"] == {"business_emails": [], "personal_emails": [], "phone_numbers": [], "websites": []}


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({}, "Missing identifier"),
        ({URLS: ["https://www.linkedin.com/in/a-b"], EMAILS: ["a@b.example"]}, "not both"),
        ({EMAILS: []}, "at least 1"),
        ({EMAILS: [f"p{i}@b.example" for i in range(26)]}, "at most 25"),
        ({EMAILS: ["a@b.example", "jane at example"]}, "Invalid business email: 'jane at example'"),
        ({URLS: ["https://www.example.com/in/a-b"]}, "Invalid professional network profile URL"),
        ({EMAILS: ["a@b.example"], "min_similarity_score": 0.5}, "Unknown parameter(s): 'min_similarity_score'"),
        ({EMAILS: ["a@b.example"], "preview": True}, "Unknown parameter(s): 'preview'"),
        ({EMAILS: ["a@b.example"], "enrich_realtime": True}, "Unknown parameter(s): 'enrich_realtime'"),
        ({EMAILS: ["a@b.example"], "verified": "yes"}, "'verified' must be true or false"),
        ({EMAILS: ["a@b.example"], "fields": []}, "at least 1"),
    ],
)
def test_strict_400s(client: httpx2.Client, body: dict[str, Any], needle: str) -> None:
    response = _contact(client, **body)
    assert response.status_code == 400
    assert error_of(response)["type"] == "invalid_request"
    assert needle in error_of(response)["message"]
    assert response.headers["x-credits-used"] == "0"


@pytest.mark.parametrize("fields", [["contact"], ["basic_profile"], ["contact.business_emails.email"], ["contact.fax"]])
def test_fields_outside_the_four_contact_tiers_are_400_listing_them(client: httpx2.Client, fields: list[str]) -> None:
    response = _contact(client, **{EMAILS: ["a@b.example"], "fields": fields})
    assert response.status_code == 400
    assert error_of(response)["metadata"] == {"available_fields": CONTACT_FIELDS}
    assert repr(fields[0]) in error_of(response)["message"]


def _tiers(contact: dict[str, Any]) -> tuple[bool, bool, bool]:
    return bool(contact["business_emails"]), bool(contact["personal_emails"]), bool(contact["phone_numbers"])


@pytest.mark.parametrize(
    ("has", "fields", "credits"),
    [
        ((True, True, True), None, "5"),  # 1 + 2 + 2: at the cap
        ((True, False, False), None, "1"),  # tiers with nothing on file cost nothing
        ((False, True, False), None, "2"),
        ((False, False, True), None, "2"),
        ((True, True, False), None, "3"),
        ((False, False, False), None, "0"),  # matched, but nothing on file
        ((True, True, True), ["contact.phone_numbers"], "2"),
        ((True, True, True), ["contact.websites"], "0"),
        ((False, True, True), ["contact.business_emails"], "0"),
    ],
)
def test_billing_is_per_tier_returned(
    client: httpx2.Client,
    sandbox: SandboxServer,
    api_key: str,
    has: tuple[bool, bool, bool],
    fields: list[str] | None,
    credits: str,
) -> None:
    person = _find(sandbox, lambda c: _tiers(c) == has)
    body: dict[str, Any] = {URLS: [person.profile_url, "https://www.linkedin.com/in/nobody-contact-1"]}
    if fields is not None:
        body["fields"] = fields
    response = _contact(client, **body)
    assert response.status_code == 200
    assert response.headers["x-credits-used"] == credits
    assert Decimal(ledger_entry(sandbox.url, api_key)["credits_billed"]) == Decimal(credits)


def test_an_email_identifier_is_billed_once_for_the_tiers_any_candidate_has(
    client: httpx2.Client, sandbox: SandboxServer
) -> None:
    [email] = sample(client, "multi_email", 1, offset=2)
    candidates = sandbox.state.dataset.email_candidates(email)
    union = [any(_tiers(c.person.data["contact"])[i] for c in candidates) for i in range(3)]
    expected = sum(price for present, price in zip(union, (1, 2, 2), strict=True) if present)
    response = _contact(client, **{EMAILS: [email]})
    assert len(response.json()[0]["matches"]) == len(candidates) > 1
    assert response.headers["x-credits-used"] == str(expected)


def test_verified_keeps_only_deliverable_business_emails_and_adds_half_a_credit(
    client: httpx2.Client, sandbox: SandboxServer
) -> None:
    mixed = _find(
        sandbox,
        lambda c: (
            not c["personal_emails"]
            and not c["phone_numbers"]
            and {e["status"] for e in c["business_emails"]} == {"verified", "unverified"}
        ),
    )
    response = _contact(client, **{URLS: [mixed.profile_url], "verified": True})
    data = _only_match(response)
    kept = [e for e in mixed.data["contact"]["business_emails"] if e["status"] == "verified"]
    assert data["contact"]["business_emails"] == kept
    assert "business_emails_message" not in data["contact"]
    assert response.headers["x-credits-used"] == "1.5"


def test_verified_with_nothing_deliverable_says_so_and_bills_no_email(
    client: httpx2.Client, sandbox: SandboxServer
) -> None:
    person = _find(
        sandbox,
        lambda c: c["business_emails"] and all(e["status"] == "unverified" for e in c["business_emails"]),
    )
    response = _contact(client, **{URLS: [person.profile_url], "fields": ["contact.business_emails"], "verified": True})
    assert _only_match(response)["contact"] == {
        "business_emails": [],
        "business_emails_message": "No deliverable business email found",
    }
    assert response.headers["x-credits-used"] == "0"


def test_opted_out_people_never_match_and_are_free(client: httpx2.Client) -> None:
    opted_out = sample(client, "opted_out_url", 2)
    response = _contact(client, **{URLS: opted_out})
    assert [e["matches"] for e in response.json()] == [[], []]
    assert response.headers["x-credits-used"] == "0"


def test_a_plan_without_contact_enrich_answers_403_naming_the_endpoint(make_server: ServerFactory) -> None:
    server = make_server(default_plan=Plan().with_status(CONTACT_PATH, "not_enabled"))
    with http_client(server.url, "self-serve") as http:
        response = _contact(http, **{EMAILS: sample(http, "email", 1)})
    assert response.status_code == 403
    assert response.json() == {
        "error": {
            "type": "permission_error",
            "message": "Your plan does not include /person/contact/enrich. Contact your account manager to enable it.",
            "metadata": [],
        }
    }
    assert response.headers["x-credits-used"] == "0"
    assert ledger_entry(server.url, "self-serve")["requests"] == {"contact": {"403": 1}}


def test_gating_is_checked_before_the_body(client: httpx2.Client, sandbox: SandboxServer, api_key: str) -> None:
    set_plan(sandbox.url, api_key, {"endpoints": {CONTACT_PATH: {"status": "not_enabled"}}})
    assert _contact(client, nonsense=True).status_code == 403


def test_plan_disabled_tiers_are_403_when_asked_for_and_withheld_otherwise(
    client: httpx2.Client, sandbox: SandboxServer, api_key: str
) -> None:
    set_plan(sandbox.url, api_key, {"disabled_fields": {CONTACT_PATH: ["contact.phone_numbers"]}})
    person = _find(sandbox, lambda c: all(_tiers(c)))
    denied = _contact(client, **{URLS: [person.profile_url], "fields": ["contact.phone_numbers"]})
    assert denied.status_code == 403
    assert denied.json()["error"]["metadata"] == [{"denied_fields": ["contact.phone_numbers"]}]
    withheld = _contact(client, **{URLS: [person.profile_url]})
    assert set(_only_match(withheld)["contact"]) == {"business_emails", "personal_emails"}
    assert withheld.headers["x-credits-used"] == "3"


def test_plan_prices_replace_the_documented_ones_and_lift_the_cap(
    client: httpx2.Client, sandbox: SandboxServer, api_key: str
) -> None:
    prices = {"contact.business_emails": "2", "contact.personal_emails": "3", "contact.phone_numbers": "3"}
    set_plan(sandbox.url, api_key, {"endpoints": {CONTACT_PATH: {"base_credits": "0.25", "premium_fields": prices}}})
    person = _find(sandbox, lambda c: all(_tiers(c)))
    nobody = _find(sandbox, lambda c: not any(c.values()))
    response = _contact(client, **{URLS: [person.profile_url, nobody.profile_url]})
    assert response.headers["x-credits-used"] == "8.50"  # 0.25 + 8 (no cap at 5), then 0.25 for the empty match


def test_the_contact_endpoint_has_its_own_rate_limit(make_server: ServerFactory) -> None:
    server = make_server(contact_rpm=1)
    with http_client(server.url) as http:
        body = {EMAILS: sample(http, "email", 1)}
        first = http.post(CONTACT_PATH, json=body, headers=headers_for("c-limit"))
        second = http.post(CONTACT_PATH, json=body, headers=headers_for("c-limit"))
        enrich = http.post("/person/enrich", json={URLS: sample(http, "url", 1)}, headers=headers_for("c-limit"))
    assert (first.status_code, second.status_code, enrich.status_code) == (200, 429, 200)
    assert first.headers["x-ratelimit-limit"] == "1"
    assert "on /person/contact/enrich" in error_of(second)["message"]
    assert ledger_entry(server.url, "c-limit")["requests"] == {"contact": {"200": 1, "429": 1}, "enrich": {"200": 1}}
