"""POST /person/enrich in the overview revision: identifiers, shapes, field selection, privacy, e-mail
candidates, gating, billing (the contract the sandbox first emulated, kept behind `revision="overview"`)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx2
import pytest

from person_enrich_mcp.sandbox import SandboxServer
from person_enrich_mcp.sandbox.dataset import Person
from person_enrich_mcp.sandbox.endpoints import Revision
from tests.sandbox.sandbox_helpers import Configure, http_client, ledger_entry, sample

URLS = "professional_network_profile_urls"


@pytest.fixture
def revision() -> Revision:
    """Every test here pins the overview revision."""
    return "overview"


def _enrich(http: httpx2.Client, **body: Any) -> httpx2.Response:
    return http.post("/person/enrich", json=body)


def _person(sandbox: SandboxServer, url: str) -> Person:
    person = sandbox.state.dataset.lookup_slug(url.rstrip("/").rsplit("/", 1)[-1])
    assert person is not None
    return person


def _find(sandbox: SandboxServer, predicate: Callable[[Person], Any]) -> Person:
    return next(p for p in sandbox.state.dataset.searchable if predicate(p))


def test_enrich_by_url_returns_one_entry_per_input_in_input_order(
    client: httpx2.Client, sandbox: SandboxServer
) -> None:
    urls = sample(client, "url", 4)
    unknown = "https://www.linkedin.com/in/nobody-here-000000"
    inputs = [urls[2], unknown, urls[0], urls[3]]
    response = _enrich(client, **{URLS: inputs})
    assert response.status_code == 200
    assert response.text.startswith("[")  # a top-level array, no wrapper object
    body: list[dict[str, Any]] = response.json()
    assert [entry["matched_on"] for entry in body] == inputs
    assert all(entry["match_type"] == "professional_network_profile_url" for entry in body)
    assert body[1]["matches"] == []
    for entry in (body[0], body[2], body[3]):
        [match] = entry["matches"]
        assert match["confidence_score"] == 1.0
        data = match["person_data"]
        expected = _person(sandbox, entry["matched_on"])
        assert data["crustdata_person_id"] == expected.person_id
        assert data["social_handles"]["professional_network_identifier"]["profile_url"] == entry["matched_on"]
    assert response.headers["x-credits-used"] == "3"


@pytest.mark.parametrize(
    "variant",
    [
        "https://www.linkedin.com/in/{slug}/",
        "http://www.linkedin.com/in/{slug}",
        "https://linkedin.com/in/{slug}",
        "https://uk.linkedin.com/in/{slug}",
        "https://WWW.LinkedIn.COM/in/{slug}",
        "https://www.linkedin.com/in/{upper}",
    ],
)
def test_url_variants_match_the_same_person_and_echo_the_input(
    client: httpx2.Client, sandbox: SandboxServer, variant: str
) -> None:
    [url] = sample(client, "url", 1, offset=7)
    slug = url.rsplit("/", 1)[-1]
    given = variant.format(slug=slug, upper=slug.upper())
    [entry] = _enrich(client, **{URLS: [given]}).json()
    assert entry["matched_on"] == given
    [match] = entry["matches"]
    assert match["person_data"]["crustdata_person_id"] == _person(sandbox, url).person_id


@pytest.mark.parametrize(
    "bad",
    [
        "https://www.linkedin.com/in/{slug}?trk=public",
        "https://www.linkedin.com/in/{slug}#about",
        "https://www.example.com/in/{slug}",
        "https://www.linkedin.com/in/",
        "https://www.linkedin.com/company/12345",
        "www.linkedin.com/in/{slug}",
        "ftp://www.linkedin.com/in/{slug}",
        "https://www.linkedin.com/in/{slug}/details",
        "https://abc.linkedin.com/in/{slug}",
    ],
)
def test_one_malformed_url_fails_the_whole_batch_and_bills_nothing(
    client: httpx2.Client, sandbox: SandboxServer, api_key: str, bad: str
) -> None:
    urls = sample(client, "url", 3)
    malformed = bad.format(slug=urls[0].rsplit("/", 1)[-1])
    response = _enrich(client, **{URLS: [urls[1], malformed, urls[2]]})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request"
    assert repr(malformed) in error["message"]
    assert response.headers["x-credits-used"] == "0"
    assert ledger_entry(sandbox.url, api_key)["credits_billed"] == "0.00"


def test_one_malformed_email_fails_the_whole_batch(client: httpx2.Client) -> None:
    emails = sample(client, "email", 2)
    response = _enrich(client, business_emails=[emails[0], "jane at example", emails[1]])
    assert response.status_code == 400
    assert "'jane at example'" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({}, "Missing identifier"),
        ({"fields": ["basic_profile"]}, "Missing identifier"),
        ({URLS: ["https://www.linkedin.com/in/a-b"], "business_emails": ["a@b.example"]}, "not both"),
        ({URLS: []}, "at least 1"),
        ({"business_emails": []}, "at least 1"),
        ({URLS: "https://www.linkedin.com/in/a-b"}, "array of strings"),
        ({URLS: ["https://www.linkedin.com/in/a-b", 7]}, "[1] must be a non-empty string"),
        ({URLS: [f"https://www.linkedin.com/in/p-{i}" for i in range(26)]}, "at most 25"),
        ({URLS: ["https://www.linkedin.com/in/a-b"], "linkedin_profile_url": "x"}, "Unknown parameter"),
        ({URLS: ["https://www.linkedin.com/in/a-b"], "fields": "basic_profile"}, "'fields' must be an array"),
        ({URLS: ["https://www.linkedin.com/in/a-b"], "fields": []}, "'fields' must contain at least 1"),
        ({URLS: ["https://www.linkedin.com/in/a-b"], "min_similarity_score": 1.5}, "min_similarity_score"),
        ({URLS: ["https://www.linkedin.com/in/a-b"], "min_similarity_score": "0.5"}, "min_similarity_score"),
        ({URLS: ["https://www.linkedin.com/in/a-b"], "force_fetch": "yes"}, "'force_fetch' must be true or false"),
        ({URLS: ["https://www.linkedin.com/in/a-b"], "preview": True}, "Preview feature is not available"),
    ],
)
def test_invalid_enrich_requests_are_400s_with_clear_messages(
    client: httpx2.Client, body: dict[str, Any], needle: str
) -> None:
    response = _enrich(client, **body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request"
    assert needle in error["message"]


def test_exactly_25_identifiers_are_accepted(client: httpx2.Client) -> None:
    urls = sample(client, "url", 25)
    response = _enrich(client, **{URLS: urls})
    assert response.status_code == 200
    assert len(response.json()) == 25
    assert response.headers["x-credits-used"] == "25"


def test_unknown_fields_are_a_400_listing_every_available_field(client: httpx2.Client) -> None:
    urls = sample(client, "url", 1)
    response = _enrich(client, **{URLS: urls, "fields": ["basic_profile.name", "current_title", "contact.fax"]})
    assert response.status_code == 400
    error = response.json()["error"]
    assert "'current_title'" in error["message"] and "'contact.fax'" in error["message"]
    available = error["metadata"]["available_fields"]
    assert available == sorted(available)
    for path in (
        "basic_profile",
        "dev_platform_profiles",
        "updated_at",
        "crustdata_person_id",
        "basic_profile.location.city",
        "experience.employment_details.current.title",
        "experience.employment_details.past.company_headcount_range",
        "education.schools.field_of_study",
        "contact.phone_numbers",
        "contact.business_emails.email",
        "dev_platform_profiles.metadata.created_at",
        "social_handles.dev_platform_identifier.profile_url",
    ):
        assert path in available, path
    assert "current_title" not in available


def test_omitted_fields_return_the_newer_default_families(client: httpx2.Client) -> None:
    urls = sample(client, "url", 1)
    [entry] = _enrich(client, **{URLS: urls}).json()
    data = entry["matches"][0]["person_data"]
    assert set(data) == {"crustdata_person_id", "basic_profile", "social_handles"}
    assert set(data["basic_profile"]["location"]) >= {"city", "country", "full_location"}


def test_all_mode_returns_every_section_and_bills_seven(configure: Configure) -> None:
    server = configure(default_fields="all")
    with http_client(server.url, "all-mode") as http:
        urls = sample(http, "url", 2)
        response = _enrich(http, **{URLS: urls})
    data = response.json()[0]["matches"][0]["person_data"]
    assert set(data) == {
        "crustdata_person_id",
        "basic_profile",
        "professional_network",
        "social_handles",
        "experience",
        "education",
        "skills",
        "contact",
        "dev_platform_profiles",
        "certifications",
        "honors",
        "updated_at",
    }
    assert response.headers["x-credits-used"] == "14"


def test_dot_paths_return_whole_sections_plus_default_families(client: httpx2.Client, sandbox: SandboxServer) -> None:
    person = _find(sandbox, lambda p: p.data["experience"]["employment_details"]["past"])
    [entry] = _enrich(
        client, **{URLS: [person.profile_url], "fields": ["experience.employment_details.current.title"]}
    ).json()
    data = entry["matches"][0]["person_data"]
    assert set(data) == {"crustdata_person_id", "basic_profile", "social_handles", "experience"}
    # More than asked: the whole experience section, past roles and every role key included.
    assert data["experience"] == person.data["experience"]


def test_default_families_can_be_switched_off_at_run_time(small: SandboxServer) -> None:
    server = small
    with http_client(server.url, "families") as http:
        urls = sample(http, "url", 1)
        update = http.post("/_sandbox/config", json={"include_default_families": False})
        assert update.status_code == 200 and update.json()["include_default_families"] is False
        [entry] = _enrich(http, **{URLS: urls, "fields": ["skills", "honors.title"]}).json()
    assert set(entry["matches"][0]["person_data"]) == {"crustdata_person_id", "skills", "honors"}


def test_contact_paths_are_exact_so_private_data_needs_an_explicit_request(
    client: httpx2.Client, sandbox: SandboxServer
) -> None:
    person = _find(
        sandbox,
        lambda p: (
            p.data["contact"]["business_emails"]
            and p.data["contact"]["personal_emails"]
            and p.data["contact"]["phone_numbers"]
        ),
    )
    contact = person.data["contact"]

    def contact_for(fields: list[str]) -> dict[str, Any]:
        [entry] = _enrich(client, **{URLS: [person.profile_url], "fields": fields}).json()
        returned: dict[str, Any] = entry["matches"][0]["person_data"]["contact"]
        return returned

    assert contact_for(["contact.business_emails"]) == {"business_emails": contact["business_emails"]}
    assert contact_for(["contact.business_emails.email"]) == {
        "business_emails": [{"email": e["email"]} for e in contact["business_emails"]]
    }
    assert contact_for(["contact.phone_numbers"]) == {"phone_numbers": contact["phone_numbers"]}
    assert contact_for(["contact.personal_emails", "contact.websites"]) == {
        "personal_emails": contact["personal_emails"],
        "websites": contact["websites"],
    }
    assert contact_for(["contact"]) == contact
    for domain in [e["email"].split("@")[1] for e in contact["personal_emails"]]:
        assert domain.endswith(".example")


def test_email_lookup_with_several_candidates_orders_by_score(client: httpx2.Client, sandbox: SandboxServer) -> None:
    emails = sample(client, "multi_email", 5)
    body = _enrich(client, business_emails=emails).json()
    assert [entry["matched_on"] for entry in body] == emails
    for entry in body:
        assert entry["match_type"] == "business_email"
        scores = [m["confidence_score"] for m in entry["matches"]]
        assert 2 <= len(scores) <= 3
        assert scores == sorted(scores, reverse=True)
        assert 0.9 <= scores[0] <= 0.99
        assert all(0.45 <= s <= 0.85 for s in scores[1:])
        owner, *colleagues = (m["person_data"]["crustdata_person_id"] for m in entry["matches"])
        assert sandbox.state.dataset.by_email[entry["matched_on"].lower()].person_id == owner
        domain = entry["matched_on"].split("@")[1]
        for colleague in colleagues:
            roles = sandbox.state.dataset.by_id[colleague].data["experience"]["employment_details"]["current"]
            assert domain in {r["company_website_domain"] for r in roles}


def test_min_similarity_score_drops_candidates_and_unmatched_identifiers_are_free(client: httpx2.Client) -> None:
    [email] = sample(client, "multi_email", 1, offset=3)
    everything = _enrich(client, business_emails=[email]).json()[0]["matches"]
    top = everything[0]["confidence_score"]
    second = everything[1]["confidence_score"]

    kept = _enrich(client, business_emails=[email], min_similarity_score=second + 0.001)
    assert [m["confidence_score"] for m in kept.json()[0]["matches"]] == [top]
    assert kept.headers["x-credits-used"] == "1"

    none_left = _enrich(client, business_emails=[email], min_similarity_score=1.0)
    assert none_left.status_code == 200
    assert none_left.json()[0]["matches"] == []
    assert none_left.headers["x-credits-used"] == "0"


def test_email_lookup_is_case_insensitive_and_personal_mailboxes_do_not_resolve(
    client: httpx2.Client, sandbox: SandboxServer
) -> None:
    [email] = sample(client, "email", 1, offset=11)
    person = _find(sandbox, lambda p: p.data["contact"]["personal_emails"])
    personal = person.data["contact"]["personal_emails"][0]["email"]
    body = _enrich(client, business_emails=[email.upper(), personal]).json()
    assert body[0]["matched_on"] == email.upper()
    assert (
        body[0]["matches"][0]["person_data"]["crustdata_person_id"] == sandbox.state.dataset.by_email[email].person_id
    )
    assert body[1]["matches"] == []


def test_opted_out_people_never_match(client: httpx2.Client, sandbox: SandboxServer) -> None:
    opted_out = sample(client, "opted_out_url", 2)
    response = _enrich(client, **{URLS: opted_out})
    assert [entry["matches"] for entry in response.json()] == [[], []]
    assert response.headers["x-credits-used"] == "0"
    person = _person(sandbox, opted_out[0])
    if person.business_emails:
        [entry] = _enrich(client, business_emails=[person.business_emails[0]]).json()
        assert entry["matches"] == []


def test_gated_fields_fail_the_whole_call_with_403(configure: Configure) -> None:
    server = configure(gated_fields=["certifications", "contact.phone_numbers"])
    with http_client(server.url, "gated") as http:
        urls = sample(http, "url", 2)
        denied = _enrich(http, **{URLS: urls, "fields": ["basic_profile", "certifications.name"]})
        via_group = _enrich(http, **{URLS: urls, "fields": ["contact"]})
        allowed = _enrich(http, **{URLS: urls, "fields": ["contact.business_emails", "honors"]})
    assert denied.status_code == 403
    assert denied.json() == {
        "error": {
            "type": "permission_error",
            "message": "Your plan does not include these fields: certifications",
            "metadata": {"denied_fields": ["certifications"]},
        }
    }
    assert denied.headers["x-credits-used"] == "0"
    assert via_group.status_code == 403
    assert via_group.json()["error"]["metadata"] == {"denied_fields": ["contact.phone_numbers"]}
    assert allowed.status_code == 200
    entry = ledger_entry(server.url, "gated")
    assert entry["requests"]["enrich"] == {"403": 2, "200": 1}
    assert entry["credits_billed"] == "4.00"


def test_404_mode_answers_not_found_when_nothing_matched(configure: Configure) -> None:
    server = configure(no_match_status=404)
    with http_client(server.url, "no-match-404") as http:
        [url] = sample(http, "url", 1)
        missing = _enrich(http, **{URLS: ["https://www.linkedin.com/in/nobody-at-all-1"]})
        mixed = _enrich(http, **{URLS: [url, "https://www.linkedin.com/in/nobody-at-all-2"]})
    assert missing.status_code == 404
    assert missing.json() == {"error": {"type": "not_found", "message": "No data found", "metadata": []}}
    assert missing.headers["x-credits-used"] == "0"
    assert mixed.status_code == 200
    assert mixed.json()[1]["matches"] == []


@pytest.mark.parametrize(
    ("fields", "unit"),
    [
        (None, 1),
        (["basic_profile", "experience", "education", "skills"], 1),
        (["contact.business_emails"], 2),
        (["contact.business_emails.email"], 2),
        (["contact.personal_emails"], 3),
        (["contact.phone_numbers"], 3),
        (["contact.websites"], 1),
        (["dev_platform_profiles"], 2),
        (["dev_platform_profiles.profile_url"], 2),
        (["contact.business_emails", "contact.phone_numbers"], 4),
        (["contact"], 6),
        (["contact", "contact.phone_numbers"], 6),
        (["contact", "dev_platform_profiles"], 7),
        (["contact.business_emails", "contact.personal_emails", "contact.phone_numbers", "dev_platform_profiles"], 7),
    ],
)
def test_enrich_bills_base_plus_requested_add_ons_per_matched_identifier(
    client: httpx2.Client, sandbox: SandboxServer, api_key: str, fields: list[str] | None, unit: int
) -> None:
    urls = sample(client, "url", 2, offset=20)
    body: dict[str, Any] = {URLS: [*urls, "https://www.linkedin.com/in/nobody-billing-0"]}
    if fields is not None:
        body["fields"] = fields
    response = _enrich(client, **body)
    assert response.status_code == 200
    assert response.headers["x-credits-used"] == str(unit * 2)
    assert Decimal(ledger_entry(sandbox.url, api_key)["credits_billed"]) == unit * 2


@pytest.mark.parametrize("flag", ["enrich_realtime", "force_fetch"])
def test_realtime_flags_bill_seven_per_matched_identifier(client: httpx2.Client, flag: str) -> None:
    urls = sample(client, "url", 3, offset=40)
    response = _enrich(client, **{URLS: [*urls, "https://www.linkedin.com/in/nobody-rt"], flag: True})
    assert response.status_code == 200
    assert response.headers["x-credits-used"] == "21"
    assert len(response.json()) == 4


def test_duplicate_identifiers_are_each_answered_and_billed(client: httpx2.Client, api_key: str) -> None:
    [url] = sample(client, "url", 1, offset=60)
    response = _enrich(client, **{URLS: [url, url]})
    assert [len(e["matches"]) for e in response.json()] == [1, 1]
    assert response.headers["x-credits-used"] == "2"


def test_recent_ledger_entries_show_exactly_what_the_client_sent(
    client: httpx2.Client, sandbox: SandboxServer, api_key: str
) -> None:
    urls = sample(client, "url", 2, offset=80)
    body = {URLS: urls, "fields": ["basic_profile.name", "contact.business_emails"]}
    _enrich(client, **body)
    recent = ledger_entry(sandbox.url, api_key)["recent"]
    assert recent[-1] == {"endpoint": "enrich", "status": 200, "credits": "4", "fault": None, "body": body}
