"""Opt-outs and the field policy through a real MCP client against the sandbox, in both upstream revisions: a
suppressed identifier costs nothing and reaches nobody (the sandbox's ledger shows no request carrying it); a
suppressed person found by a search, an email look-up or a contact answer is dropped before the model, the cache
or any further request; a broken opt-out file refuses everything; a denied field is refused before reserving."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import get_default_environment

from person_enrich_mcp.cli import main
from person_enrich_mcp.privacy.guard import SUPPRESSED_FOUND, SUPPRESSED_UNSENT
from person_enrich_mcp.privacy.subjects import parse_subject
from person_enrich_mcp.privacy.suppression import add_entries
from person_enrich_mcp.sandbox import SandboxServer
from person_enrich_mcp.sandbox.dataset import Person
from person_enrich_mcp.server import build_server
from person_enrich_mcp.state import MemoryStore
from tests.conftest import Upstream, canary_key, per_revision, sample_identifiers, settings_for, text_of
from tests.http_helpers import HttpServer

ENGINEERS = {"field": "experience.employment_details.current.function_category", "type": "=", "value": "Engineering"}


def _optout(path: Path, *identifiers: str) -> None:
    add_entries(path, [(parse_subject(i).hash, "test") for i in identifiers])


def _person(sandbox: SandboxServer, url: str) -> Person:
    person = sandbox.state.dataset.lookup_slug(url.rstrip("/").rsplit("/", 1)[1])
    assert person is not None
    return person


def _with_business_email(sandbox: SandboxServer, offset: int, n: int = 1) -> list[Person]:
    people = [p for p in sandbox.state.dataset.searchable if p.business_emails and not p.opted_out]
    # Only addresses whose look-up names exactly their owner: one candidate, so the test knows who comes back.
    single = [p for p in people if len(sandbox.state.dataset.email_candidates(p.business_emails[0])) == 1]
    return single[offset : offset + n]


def _sent(upstream: Upstream) -> str:
    """Everything this key sent upstream, as one lower-cased text."""
    return json.dumps(upstream.paid_requests()).lower()


def _slug(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[1].lower()


def _ok(result: Any) -> dict[str, Any]:
    assert result.is_error is False, text_of(result)
    return cast(dict[str, Any], result.structured_content)


def _problems(result: dict[str, Any]) -> dict[str, str]:
    listed = cast(list[dict[str, str]], result.get("problems") or [])
    return {p["identifier"]: p["reason"] for p in listed}


@pytest.mark.anyio
async def test_a_suppressed_profile_url_costs_nothing_and_reaches_nobody(
    upstream: Upstream, sandbox: SandboxServer, tmp_path: Path
) -> None:
    suppressed, allowed = sample_identifiers(upstream.url, "url", 2, offset=40)
    _optout(tmp_path / "optout", suppressed.upper().replace("HTTPS://WWW.", "http://"))  # any spelling of it
    settings = settings_for(upstream.url, upstream.key, suppression_file=str(tmp_path / "optout"))
    async with Client(build_server(settings)) as client:
        alone = _ok(await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": [suppressed]}))
        upstream.assert_nothing_billable_sent()
        mixed = _ok(
            await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": [suppressed, allowed]})
        )

    assert alone["people"] == [] and _problems(alone) == {suppressed: SUPPRESSED_UNSENT}
    assert alone["receipt"]["charged"] == "0.00"
    assert [p["matched_on"] for p in mixed["people"]] == [allowed]
    assert _problems(mixed) == {suppressed: SUPPRESSED_UNSENT}
    assert _slug(suppressed) not in _sent(upstream) and _slug(allowed) in _sent(upstream)
    assert (
        mixed["receipt"]["estimated"] == "1.00" and mixed["receipt"]["charged"] == "1.00" == f"{upstream.billed():.2f}"
    )


@pytest.mark.anyio
async def test_a_suppressed_email_or_email_domain_is_never_sent(
    upstream: Upstream, sandbox: SandboxServer, tmp_path: Path
) -> None:
    by_address, by_domain = _with_business_email(sandbox, 0, 2)
    email, colleague_email = by_address.business_emails[0], by_domain.business_emails[0]
    _optout(tmp_path / "optout", email.upper(), "@" + colleague_email.split("@", 1)[1])
    settings = settings_for(upstream.url, upstream.key, suppression_file=str(tmp_path / "optout"))
    async with Client(build_server(settings)) as client:
        result = _ok(await client.call_tool("enrich_person_by_email", {"business_emails": [email, colleague_email]}))

    upstream.assert_nothing_billable_sent()
    assert result["people"] == []
    assert _problems(result) == {email: SUPPRESSED_UNSENT, colleague_email: SUPPRESSED_UNSENT}


def _search_urls(sandbox: SandboxServer, filters: dict[str, Any], limit: int) -> list[str]:
    """What the search returns, asked with a key of its own (this test's key stays clean)."""
    discover = Upstream(sandbox.url, canary_key("discover"))
    answer = discover.post("/person/search", {"filters": filters, "limit": limit, "fields": ["social_handles"]})
    assert answer.status_code == 200, answer.text
    return [p["social_handles"]["professional_network_identifier"]["profile_url"] for p in answer.json()["profiles"]]


@pytest.mark.anyio
async def test_a_suppressed_person_found_by_search_is_dropped_before_enrichment_and_the_page_cache(
    upstream: Upstream, sandbox: SandboxServer, tmp_path: Path
) -> None:
    found = _search_urls(sandbox, ENGINEERS, 4)
    suppressed = found[1]
    _optout(tmp_path / "optout", suppressed)
    settings = settings_for(upstream.url, upstream.key, suppression_file=str(tmp_path / "optout"))
    async with Client(build_server(settings)) as client:
        first = _ok(await client.call_tool("search_then_enrich", {"filters": ENGINEERS, "limit": 4}))
        billed = upstream.billed()
        again = _ok(await client.call_tool("search_then_enrich", {"filters": ENGINEERS, "limit": 4}))

    for result in (first, again):
        assert [_slug(p["matched_on"]) for p in result["people"]] == [_slug(u) for u in found if u != suppressed]
        assert _problems(result) == {"(search)": "1 result withheld: on this server's opt-out list"}
        assert _slug(suppressed) not in json.dumps(result).lower()
    enrich_bodies = [r for r in upstream.paid_requests() if r["endpoint"] != "search"]
    assert enrich_bodies and _slug(suppressed) not in json.dumps(enrich_bodies).lower()
    assert again["receipt"]["charged"] == "0.00" and upstream.billed() == billed  # page and people from the cache


@pytest.mark.anyio
async def test_a_search_result_whose_returned_email_is_suppressed_is_withheld_and_not_cached(
    upstream: Upstream, sandbox: SandboxServer, tmp_path: Path, revision: str
) -> None:
    found = _search_urls(sandbox, ENGINEERS, 5)
    with_email = [u for u in found if _person(sandbox, u).business_emails]
    target = _person(sandbox, with_email[0])
    _optout(tmp_path / "optout", "@" + target.business_emails[0].split("@", 1)[1])
    settings = settings_for(upstream.url, upstream.key, suppression_file=str(tmp_path / "optout"))
    arguments = {"filters": ENGINEERS, "limit": 5, "fields": ["basic_profile.name", "contact.business_emails"]}
    async with Client(build_server(settings)) as client:
        first = _ok(await client.call_tool("search_then_enrich", arguments | {"max_credits": 20}))
        again = _ok(await client.call_tool("search_then_enrich", arguments | {"max_credits": 20}))

    for result in (first, again):
        assert _slug(target.profile_url) not in [_slug(p["matched_on"]) for p in result["people"]]
        assert _problems(result)[target.profile_url] == SUPPRESSED_FOUND
        assert target.business_emails[0] not in json.dumps(result)
    # Not cached: the second call asked the upstream about them again (and nobody else).
    enrich_endpoint = per_revision(revision, current="contact", overview="enrich")
    asked = [r for r in upstream.paid_requests() if r["endpoint"] == enrich_endpoint]
    assert len(asked) == 2 and all(_slug(target.profile_url) in json.dumps(r).lower() for r in asked)
    assert len(asked[1]["body"]["professional_network_profile_urls"]) == 1


@pytest.mark.anyio
async def test_an_email_look_up_drops_a_person_whose_profile_url_is_suppressed_without_fetching_their_profile(
    upstream: Upstream, sandbox: SandboxServer, tmp_path: Path, revision: str
) -> None:
    (person,) = _with_business_email(sandbox, 5)
    _optout(tmp_path / "optout", person.profile_url)
    settings = settings_for(upstream.url, upstream.key, suppression_file=str(tmp_path / "optout"))
    email = person.business_emails[0]
    async with Client(build_server(settings)) as client:
        first = _ok(await client.call_tool("enrich_person_by_email", {"business_emails": [email]}))
        again = _ok(await client.call_tool("enrich_person_by_email", {"business_emails": [email]}))

    for result in (first, again):
        assert result["people"] == [] and _problems(result) == {email: SUPPRESSED_FOUND}
    endpoints = [r["endpoint"] for r in upstream.paid_requests()]
    # Today: the address is resolved, the id turned into the URL, and there it stops (no profile request). The
    # overview's single enrich answers with everything at once. Either way nothing was cached: asked twice.
    assert endpoints == per_revision(
        revision, current=["contact", "search", "contact", "search"], overview=["enrich", "enrich"]
    )


@pytest.mark.anyio
async def test_a_url_look_up_whose_returned_email_is_suppressed_is_withheld_and_not_cached(
    upstream: Upstream, sandbox: SandboxServer, tmp_path: Path
) -> None:
    (person,) = _with_business_email(sandbox, 8)
    _optout(tmp_path / "optout", person.business_emails[0])
    settings = settings_for(upstream.url, upstream.key, suppression_file=str(tmp_path / "optout"))
    arguments = {
        "professional_network_profile_urls": [person.profile_url],
        "fields": ["basic_profile.name", "contact.business_emails"],
    }
    async with Client(build_server(settings)) as client:
        first = _ok(await client.call_tool("enrich_person_by_url", arguments))
        again = _ok(await client.call_tool("enrich_person_by_url", arguments))

    for result in (first, again):
        assert result["people"] == [] and _problems(result) == {person.profile_url: SUPPRESSED_FOUND}
        assert person.business_emails[0] not in json.dumps(result)
    assert first["receipt"]["charged"] == again["receipt"]["charged"] != "0.00"  # paid for twice: not cached


@pytest.mark.anyio
async def test_people_cached_before_they_opted_out_are_not_served_and_are_erased_from_the_cache(
    upstream: Upstream, tmp_path: Path
) -> None:
    url, other = sample_identifiers(upstream.url, "url", 2, offset=60)
    optout = tmp_path / "optout"
    optout.write_text("", encoding="utf-8")
    cache = MemoryStore()
    settings = settings_for(upstream.url, upstream.key, suppression_file=str(optout), housekeeping_seconds=0.05)
    async with Client(build_server(settings, cache_store_factory=lambda: cache)) as client:
        _ok(await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": [url, other]}))
        billed = upstream.billed()
        assert _slug(url) in json.dumps(await cache.cache_items("")).lower()
        assert main(["--suppression-file", str(optout), "suppress", "add", url]) == 0
        with anyio.fail_after(10):  # the running server re-reads the list and erases them from its cache
            while _slug(url) in json.dumps(await cache.cache_items("")).lower():
                await anyio.sleep(0.02)
        result = _ok(
            await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": [url, other]})
        )

    assert [p["matched_on"] for p in result["people"]] == [other] and result["people"][0]["cached"] is True
    assert _problems(result) == {url: SUPPRESSED_UNSENT}
    assert upstream.billed() == billed and result["receipt"]["charged"] == "0.00"
    assert _slug(other) in json.dumps(await cache.cache_items("")).lower()  # everyone else stays cached


@pytest.mark.anyio
@pytest.mark.parametrize("revision", ["current"], indirect=True)
async def test_a_deleted_or_malformed_opt_out_file_refuses_every_look_up_until_it_is_fixed(
    upstream: Upstream, tmp_path: Path
) -> None:
    optout = tmp_path / "optout"
    _optout(optout, "@nobody.example")
    good = optout.read_text(encoding="utf-8")
    [url] = sample_identifiers(upstream.url, "url", 1, offset=70)
    settings = settings_for(upstream.url, upstream.key, suppression_file=str(optout))
    async with Client(build_server(settings)) as client:
        optout.unlink()
        deleted = await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": [url]})
        optout.write_text(good + "jane@acme.example\n", encoding="utf-8")  # a plain address is not a valid entry
        malformed = await client.call_tool("search_then_enrich", {"filters": ENGINEERS, "limit": 1})
        upstream.assert_nothing_billable_sent()
        optout.write_text(good, encoding="utf-8")
        fixed = await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": [url]})

    for refused in (deleted, malformed):
        assert refused.is_error is True
        assert "opt-out list cannot be read" in text_of(refused) and "Nothing was sent or spent" in text_of(refused)
    assert _ok(fixed)["people"][0]["matched_on"] == url


@pytest.mark.anyio
@pytest.mark.parametrize("revision", ["current"], indirect=True)
async def test_a_search_whose_filter_names_a_suppressed_person_is_not_sent(
    upstream: Upstream, sandbox: SandboxServer, tmp_path: Path
) -> None:
    (person,) = _with_business_email(sandbox, 12)
    _optout(tmp_path / "optout", person.profile_url, person.business_emails[0])
    settings = settings_for(upstream.url, upstream.key, suppression_file=str(tmp_path / "optout"))
    # Profile URLs are not filterable, but a text filter can still carry one (and it would be sent upstream).
    by_url = {"field": "basic_profile.summary", "type": "(.)",
              "value": f"https://www.linkedin.com/in/someone-else-123|{person.profile_url.upper()}"}  # fmt: skip
    by_email = {"field": "basic_profile.name", "type": "(.)", "value": f"Ann|{person.business_emails[0]}"}
    async with Client(build_server(settings)) as client:
        results = [
            await client.call_tool("search_then_enrich", {"filters": {"op": "and", "conditions": [ENGINEERS, f]}})
            for f in (by_url, by_email)
        ]

    upstream.assert_nothing_billable_sent()
    for result in results:
        assert result.is_error is True and "opt-out list, so the search was not sent" in text_of(result)
        assert _slug(person.profile_url) not in text_of(result)


# --- the field policy ----------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_denied_field_is_refused_before_anything_is_reserved(upstream: Upstream) -> None:
    [url] = sample_identifiers(upstream.url, "url", 1, offset=80)
    settings = settings_for(
        upstream.url, upstream.key, deny_fields=("contact.personal_emails", "contact.phone_numbers")
    )
    async with Client(build_server(settings)) as client:
        by_url = await client.call_tool(
            "enrich_person_by_url",
            {"professional_network_profile_urls": [url], "fields": ["basic_profile.name", "contact"]},
        )
        by_search = await client.call_tool(
            "search_then_enrich", {"filters": ENGINEERS, "fields": ["contact.phone_numbers"]}
        )
        books = _ok(await client.call_tool("get_budget", {}))
        catalog = json.loads((await client.read_resource("person-enrich://fields")).contents[0].text)  # type: ignore[union-attr]
        fields = ["basic_profile.name", "contact.business_emails"]
        allowed = _ok(
            await client.call_tool(
                "enrich_person_by_url", {"professional_network_profile_urls": [url], "fields": fields}
            )
        )

    assert by_url.is_error is True and by_search.is_error is True
    assert "forbids contact.personal_emails, contact.phone_numbers (PERSON_ENRICH_DENY_FIELDS)" in text_of(by_url)
    assert "You may ask for contact.business_emails, contact.websites" in text_of(by_url)
    assert "forbids contact.phone_numbers" in text_of(by_search)
    assert books["spent"] == books["reserved"] == "0.00" and books["receipts"] == []
    assert catalog["denied_by_operator"] == ["contact.personal_emails", "contact.phone_numbers"]
    assert allowed["people"][0]["matched_on"] == url  # the tiers it allows still work
    assert all(r["endpoint"] != "search" for r in upstream.paid_requests())
    assert "personal_emails" not in _sent(upstream) and "phone_numbers" not in _sent(upstream)


@pytest.mark.parametrize("revision", ["current"], indirect=True)
def test_readiness_fails_while_the_opt_out_file_is_unusable(upstream: Upstream, tmp_path: Path) -> None:
    optout = tmp_path / "optout"
    _optout(optout, "@nobody.example")
    env = {
        "CRUSTDATA_API_KEY": upstream.key,
        "PERSON_ENRICH_API_BASE_URL": upstream.url,
        "PERSON_ENRICH_SUPPRESSION_FILE": str(optout),
    }
    server = HttpServer(env, "--allow-unauthenticated")
    try:
        ready = httpx2.get(f"{server.base}/readyz", timeout=10)
        optout.rename(tmp_path / "moved")
        broken = httpx2.get(f"{server.base}/readyz", timeout=10)
        (tmp_path / "moved").rename(optout)
        again = httpx2.get(f"{server.base}/readyz", timeout=10)
    finally:
        server.stop()
    assert (ready.status_code, broken.status_code, again.status_code) == (200, 503, 200)
    assert broken.json()["problems"] == ["opt-out list unreadable (PERSON_ENRICH_SUPPRESSION_FILE)"]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"PERSON_ENRICH_SUPPRESSION_FILE": "/nonexistent/optout"}, "PERSON_ENRICH_SUPPRESSION_FILE: cannot read"),
        ({"PERSON_ENRICH_DENY_FIELDS": "contact.fax"}, "PERSON_ENRICH_DENY_FIELDS: unknown field 'contact.fax'"),
        ({"PERSON_ENRICH_AUDIT_LOG": "stderr"}, "PERSON_ENRICH_AUDIT_LOG=stderr needs PERSON_ENRICH_AUDIT_SALT_FILE"),
        ({"PERSON_ENRICH_CACHE_URL": "postgres://db/x"}, "PERSON_ENRICH_CACHE_URL: unknown scheme 'postgres'"),
    ],
)
def test_an_unusable_privacy_setting_stops_the_server_with_one_sentence(env: dict[str, str], expected: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "person_enrich_mcp", "--sandbox"],
        env=get_default_environment() | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(f"person-enrich-mcp: {expected}") and done.stderr.count("\n") == 1
