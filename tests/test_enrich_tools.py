"""enrich_person_by_url and enrich_person_by_email through a real MCP client against the sandbox over HTTP."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, cast

import pytest
from mcp import Client

from person_enrich_mcp.api.contract import Dialect
from person_enrich_mcp.api.routes import route
from person_enrich_mcp.fields import DEFAULT_PATHS
from person_enrich_mcp.server import build_server
from tests.conftest import Upstream, error_facts, per_revision, sample_identifiers, settings_for, text_of


def _people(result: Any) -> list[dict[str, Any]]:
    assert result.is_error is False, text_of(result)
    return cast(list[dict[str, Any]], result.structured_content["people"])


def _leaf_paths(value: Any, prefix: str = "") -> set[str]:
    if isinstance(value, dict):
        paths: set[str] = set()
        for key, item in cast(dict[str, Any], value).items():
            paths |= _leaf_paths(item, f"{prefix}.{key}" if prefix else key)
        return paths
    if isinstance(value, list):
        paths = set()
        for item in cast(list[Any], value):
            paths |= _leaf_paths(item, prefix)
        return paths or {prefix}
    return {prefix}


def _has_empty(value: Any) -> bool:
    if value is None or value == "" or value == [] or value == {}:
        return True
    if isinstance(value, dict):
        return any(_has_empty(v) for v in cast(dict[str, Any], value).values())
    if isinstance(value, list):
        return any(_has_empty(v) for v in cast(list[Any], value))
    return False


@pytest.mark.anyio
async def test_default_fields_return_the_compact_profile_for_one_credit_each(
    client: Client, upstream: Upstream, revision: str
) -> None:
    urls = sample_identifiers(upstream.url, "url", 3)
    result = await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": urls})
    people = _people(result)
    assert [p["matched_on"] for p in people] == urls
    for person in people:
        assert person["match_type"] == "professional_network_profile_url"
        assert person["confidence_score"] == 1.0
        assert _leaf_paths(person["person_data"]) <= set(DEFAULT_PATHS)
        assert person["person_data"]["basic_profile"]["name"]
        assert not _has_empty(person["person_data"])
    receipt = result.structured_content["receipt"]
    assert receipt["charged"] == "3.00" and receipt["estimated"] == "3.00"
    assert upstream.billed() == Decimal(3)
    sent = upstream.bodies("enrich")
    # Today's enrich takes section groups (the default paths lie in three); the overview's took the paths.
    expected = per_revision(
        revision, current=["basic_profile", "social_handles", "experience"], overview=sorted(DEFAULT_PATHS)
    )
    assert len(sent) == 1 and sent[0]["fields"] == expected
    assert [r["endpoint"] for r in upstream.paid_requests()] == ["enrich"]  # no contact field, no contact request
    # One text block, and it is the structured content as compact JSON: text-only clients see everything.
    assert len(result.content) == 1 and json.loads(text_of(result)) == result.structured_content
    assert text_of(result) == json.dumps(result.structured_content, separators=(",", ":"), ensure_ascii=False)


@pytest.mark.anyio
async def test_requested_fields_are_projected_exactly_even_when_upstream_returns_more(
    client: Client, upstream: Upstream, revision: str
) -> None:
    urls = sample_identifiers(upstream.url, "url", 2, offset=10)
    fields = ["basic_profile.name", "experience.employment_details.current.title", "education.schools.school"]
    result = await client.call_tool(
        "enrich_person_by_url", {"professional_network_profile_urls": urls, "fields": fields}
    )
    for person in _people(result):
        paths = _leaf_paths(person["person_data"])
        assert paths <= set(fields), paths - set(fields)
        assert "social_handles" not in person["person_data"]  # upstream adds the default families; we drop them
        assert not _has_empty(person["person_data"])
    expected = per_revision(revision, current=["basic_profile", "experience", "education"], overview=sorted(fields))
    assert upstream.bodies("enrich")[0]["fields"] == expected
    assert upstream.billed() == Decimal(2)


@pytest.mark.anyio
async def test_contact_add_ons_are_charged_as_the_upstream_bills_them(
    client: Client, upstream: Upstream, revision: str
) -> None:
    urls = sample_identifiers(upstream.url, "url", 4, offset=20)
    result = await client.call_tool(
        "enrich_person_by_url",
        {"professional_network_profile_urls": urls, "fields": ["basic_profile.name", "contact.business_emails"]},
    )
    people = _people(result)
    receipt = result.structured_content["receipt"]
    assert receipt["estimated"] == "8.00"  # 1 a profile + 1 for its work email, in both revisions
    # The overview billed the add-on per profile asked; today's contact enrich bills a tier only where it is found.
    with_email = sum(1 for p in people if p["person_data"].get("contact", {}).get("business_emails"))
    expected = per_revision(revision, current=len(people) + with_email, overview=2 * len(people))
    assert Decimal(receipt["charged"]) == upstream.billed() == expected
    for person in people:
        assert set(person["person_data"]) <= {"basic_profile", "contact"}
        assert "personal_emails" not in person["person_data"].get("contact", {})


@pytest.mark.anyio
async def test_invalid_urls_are_reported_one_by_one_and_never_sent_while_valid_ones_proceed(
    client: Client, upstream: Upstream
) -> None:
    [good] = sample_identifiers(upstream.url, "url", 1, offset=30)
    bad = ["https://evil.example/in/jane", "javascript:alert(1)", "https://www.linkedin.com/in/", "file:///etc/passwd"]
    variant = (
        good.replace("https://www.", "http://").upper().replace("HTTP://LINKEDIN.COM/IN/", "http://linkedin.com/in/")
    )
    result = await client.call_tool(
        "enrich_person_by_url", {"professional_network_profile_urls": [*bad, good, variant + "/?trk=x#top"]}
    )
    people = _people(result)
    assert [p["matched_on"] for p in people] == [good]
    problems = {p["identifier"]: p["reason"] for p in result.structured_content["problems"]}
    assert set(problems) == set(bad)
    sent = upstream.bodies("enrich")
    assert sent[0]["professional_network_profile_urls"] == [good]  # duplicate after normalisation sent once
    assert upstream.requests("enrich").get("400", 0) == 0


@pytest.mark.anyio
async def test_all_invalid_identifiers_give_an_error_and_reach_nobody(client: Client, upstream: Upstream) -> None:
    result = await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": ["not a url"]})
    assert result.is_error
    assert "nothing was sent or spent" in text_of(result).lower()
    assert upstream.ledger().get("requests", {}) == {}


@pytest.mark.anyio
async def test_no_match_is_data_and_free(client: Client, upstream: Upstream) -> None:
    missing = "https://www.linkedin.com/in/nobody-by-this-name-0000"
    result = await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": [missing]})
    assert result.is_error is False
    assert result.structured_content["people"] == []
    assert result.structured_content["not_found"] == [missing]
    assert result.structured_content["receipt"]["charged"] == "0.00"
    assert upstream.billed() == 0


@pytest.mark.anyio
async def test_a_repeat_look_up_is_served_from_the_cache_for_nothing(client: Client, upstream: Upstream) -> None:
    urls = sample_identifiers(upstream.url, "url", 2, offset=40)
    first = await client.call_tool(
        "enrich_person_by_url", {"professional_network_profile_urls": urls, "fields": ["basic_profile"]}
    )
    second = await client.call_tool(
        "enrich_person_by_url", {"professional_network_profile_urls": urls, "fields": ["basic_profile.name"]}
    )
    assert _people(first) and all(p.get("cached") for p in _people(second))
    receipt = second.structured_content["receipt"]
    assert (receipt["charged"], receipt["cache_hits"]) == ("0.00", 2)
    assert json.loads(text_of(second))["receipt"]["cache_hits"] == 2
    assert len(upstream.bodies("enrich")) == 1
    assert upstream.billed() == Decimal(2)


@pytest.mark.anyio
async def test_a_subset_is_not_enough_to_serve_a_superset(client: Client, upstream: Upstream, revision: str) -> None:
    urls = sample_identifiers(upstream.url, "url", 1, offset=50)
    await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": urls})
    wider = await client.call_tool(
        "enrich_person_by_url", {"professional_network_profile_urls": urls, "fields": ["contact.business_emails"]}
    )
    assert wider.structured_content["receipt"]["cache_hits"] == 0
    people = _people(wider)
    # The overview re-fetched the profile with the add-on (1 + 1); today only the missing tier is bought, and billed
    # only when the person has a work email on file.
    found = sum(1 for p in people if p["person_data"].get("contact", {}).get("business_emails"))
    assert upstream.billed() == Decimal(1) + per_revision(revision, current=found, overview=2 * len(people))
    # The re-fetch also asked for the cached fields (free to add) or was merged with them, so the default fields
    # are still cached.
    again = await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": urls})
    assert again.structured_content["receipt"]["cache_hits"] == 1


@pytest.mark.anyio
async def test_force_fetch_and_enrich_realtime_skip_the_cache_and_reserve_the_cap(
    client: Client, upstream: Upstream, revision: str
) -> None:
    urls = sample_identifiers(upstream.url, "url", 1, offset=60)
    await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": urls})
    for flag in ("force_fetch", "enrich_realtime"):
        result = await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": urls, flag: True})
        assert result.structured_content["receipt"]["estimated"] == "7.00"
        assert result.structured_content["receipt"]["cache_hits"] == 0
    sent = upstream.bodies("enrich")
    assert "force_fetch" not in sent[0] and "enrich_realtime" not in sent[0]
    if revision == "overview":  # each flag is sent as it was given, to the one enrich endpoint
        assert sent[1].get("force_fetch") is True and "enrich_realtime" not in sent[1]
        assert sent[2].get("enrich_realtime") is True and "force_fetch" not in sent[2]
    else:  # today either flag means Live Enrich, which takes no flag
        assert [r["endpoint"] for r in upstream.paid_requests()] == ["enrich", "live", "live"]
        live = upstream.bodies("live")
        assert all(body["professional_network_profile_urls"] == urls for body in live)
        assert not any({"force_fetch", "enrich_realtime"} & set(body) for body in [*sent, *live])
    books = await client.call_tool("get_budget", {})
    assert Decimal(books.structured_content["spent"]) == upstream.billed()


@pytest.mark.anyio
async def test_email_look_up_returns_scored_candidates_and_min_similarity_score_filters_them(
    client: Client, upstream: Upstream
) -> None:
    emails = sample_identifiers(upstream.url, "multi_email", 2)
    loose = await client.call_tool("enrich_person_by_email", {"business_emails": emails})
    sent = upstream.paid_requests()
    people = _people(loose)
    assert len(people) > len(emails)
    assert all(p["match_type"] == "business_email" for p in people)
    scores = sorted(p["confidence_score"] for p in people)
    strict_at = scores[-len(emails)]  # the top scores: one per email at most
    strict = await client.call_tool(
        "enrich_person_by_email", {"business_emails": emails, "min_similarity_score": strict_at}
    )
    kept = _people(strict)
    assert 0 < len(kept) < len(people)
    assert all(p["confidence_score"] >= strict_at for p in kept)
    # A stricter threshold is answered from the cached candidates; nothing new goes upstream.
    assert strict.structured_content["receipt"]["cache_hits"] == len(emails)
    assert upstream.paid_requests() == sent and len(upstream.bodies("enrich")) == 1


@pytest.mark.anyio
# Only the overview's upstream takes the threshold: today the whole contact answer is cached and any threshold is
# applied locally, so a looser one is served from the cache (test_contract_flows covers that).
@pytest.mark.parametrize("revision", ["overview"], indirect=True)
async def test_a_looser_threshold_than_the_cached_one_goes_upstream_again(client: Client, upstream: Upstream) -> None:
    emails = sample_identifiers(upstream.url, "multi_email", 1, offset=5)
    await client.call_tool("enrich_person_by_email", {"business_emails": emails, "min_similarity_score": 0.95})
    looser = await client.call_tool("enrich_person_by_email", {"business_emails": emails, "min_similarity_score": 0.3})
    assert looser.structured_content["receipt"]["cache_hits"] == 0
    sent = upstream.bodies("enrich")
    assert [b["min_similarity_score"] for b in sent] == [0.95, 0.3]


@pytest.mark.anyio
async def test_personal_mailboxes_are_rejected_for_free_and_say_why(
    client: Client, upstream: Upstream, revision: str
) -> None:
    [email] = sample_identifiers(upstream.url, "email", 1)
    result = await client.call_tool(
        "enrich_person_by_email", {"business_emails": ["Jane Doe <jane@acme.example>", "jane.doe@gmail.com", email]}
    )
    problems = {p["identifier"]: p["reason"] for p in result.structured_content["problems"]}
    assert "personal mailbox" in problems["jane.doe@gmail.com"]
    assert "display name" in problems["Jane Doe <jane@acme.example>"]
    # Work emails go to today's contact enrich; the overview's enrich took them itself.
    endpoint = per_revision(revision, current="contact", overview="enrich")
    assert upstream.bodies(endpoint)[0]["business_emails"] == [email.lower()]


@pytest.mark.anyio
async def test_results_over_the_size_cap_are_trimmed_with_a_note_and_never_fail(upstream: Upstream) -> None:
    urls = sample_identifiers(upstream.url, "url", 10, offset=70)
    server = build_server(settings_for(upstream.url, upstream.key, max_result_bytes=4_000))
    async with Client(server) as client:
        result = await client.call_tool(
            "enrich_person_by_url",
            {"professional_network_profile_urls": urls, "fields": ["experience", "education", "skills"]},
        )
    assert result.is_error is False
    assert len(json.dumps(result.structured_content["people"], separators=(",", ":")).encode()) <= 4_000
    note = result.structured_content["truncated"]
    assert "trimmed" in note and "4000 bytes" in note
    assert upstream.billed() == Decimal(len(urls))  # everyone was paid for and is cached for a free re-read


@pytest.mark.anyio
async def test_unknown_fields_are_refused_with_suggestions_before_anything_is_sent(
    client: Client, upstream: Upstream
) -> None:
    urls = sample_identifiers(upstream.url, "url", 1)
    result = await client.call_tool(
        "enrich_person_by_url", {"professional_network_profile_urls": urls, "fields": ["basic_profile.nmae"]}
    )
    assert result.is_error
    assert "basic_profile.name" in text_of(result)
    assert error_facts(result)["error"]["code"] == "invalid_input"
    assert upstream.ledger().get("requests", {}) == {}


@pytest.mark.anyio
async def test_every_field_of_the_catalog_is_accepted_by_the_upstream(
    client: Client, upstream: Upstream, revision: str
) -> None:
    from person_enrich_mcp.fields import ALL_PATHS

    urls = sample_identifiers(upstream.url, "url", 1, offset=90)
    # Direct: proves the sandbox and our catalog agree on every path, sent the way the server sends them (the paths
    # themselves to the overview's enrich; today, their section groups to enrich and their tiers to contact enrich).
    request = route(Dialect(revision), ALL_PATHS)
    if revision == "overview":
        bodies = {"/person/enrich": list(request.fields)}
    else:
        bodies = {"/person/enrich": list(request.groups), "/person/contact/enrich": list(request.tiers)}
        carried = (*request.groups, *request.tiers, "contact", "crustdata_person_id", "updated_at")
        assert [p for p in ALL_PATHS if not any(p == c or p.startswith(c + ".") for c in carried)] == []
    for path, fields in bodies.items():
        assert fields
        response = upstream.post(path, {"professional_network_profile_urls": urls, "fields": fields})
        assert response.status_code == 200, response.text


@pytest.mark.anyio
async def test_a_narrower_look_up_keeps_what_the_cache_already_paid_for(client: Client, upstream: Upstream) -> None:
    [url] = sample_identifiers(upstream.url, "url", 1, offset=37)
    paid = ["basic_profile.name", "contact.phone_numbers"]

    def look_up(fields: list[str]) -> dict[str, Any]:
        return {"professional_network_profile_urls": [url], "fields": fields}

    first = await client.call_tool("enrich_person_by_url", look_up(paid))
    narrower = await client.call_tool("enrich_person_by_url", look_up(["basic_profile.headline"]))
    billed = upstream.billed()
    both = await client.call_tool("enrich_person_by_url", look_up([*paid, "basic_profile.headline"]))

    assert not first.is_error and not narrower.is_error
    # The headline was bought on its own (the phone tier was not bought twice), and the entry kept the rest:
    # asking for everything again is served from the cache, free.
    assert both.structured_content is not None and both.structured_content["receipt"]["charged"] == "0.00"
    assert both.structured_content["people"][0].get("cached") is True
    assert upstream.billed() == billed
