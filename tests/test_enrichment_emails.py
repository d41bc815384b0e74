"""Work-email look-ups as served today, end to end: Contact Enrich says who is behind each address, a person-id
search names the best candidate's profile URL, and the URL-keyed enrich (through the URL cache) gives its sections;
the opt-out list applied at every step and to cached entries; what the cache may claim when a step comes back
incomplete. A real MCP client, the server, the sandbox over HTTP, with and without `x-credits-used`.

The judges are the sandbox's ledger (what was sent and billed), the structured result and what the cache holds.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.types import CallToolResult

from person_enrich_mcp.api import Dialect
from person_enrich_mcp.cache import PROFILE_PREFIX
from person_enrich_mcp.fields import FieldSelection
from person_enrich_mcp.pricing import PriceTable
from person_enrich_mcp.privacy.guard import SUPPRESSED_FOUND, SUPPRESSED_UNSENT
from person_enrich_mcp.privacy.subjects import parse_subject
from person_enrich_mcp.privacy.suppression import add_entries
from person_enrich_mcp.sandbox import SandboxServer
from person_enrich_mcp.sandbox.dataset import EmailCandidate, Person
from person_enrich_mcp.server import build_server
from person_enrich_mcp.state import MemoryStore
from person_enrich_mcp.tools.enrichment import _contact_part, enrich_quote  # pyright: ignore[reportPrivateUsage]
from tests.conftest import ADMIN, Upstream, data_of, sample_identifiers, sandbox_in_mode, settings_for, text_of
from tests.reliability_support import faults_applied, in_flight


# Every flow runs with and without `x-credits-used` (conftest `CREDIT_MODES`): the receipts must match the ledger
# whether the upstream says what it billed or the server computes it. The sandbox is this module's own, so a test
# may arm a fault rule or change its run-time config (and puts it back).
@pytest.fixture(scope="module")
def sandbox(revision: str, credits_header: bool) -> Iterator[SandboxServer]:
    yield from sandbox_in_mode(revision, credits_header)


CURRENT = pytest.mark.parametrize("revision", ["current"], indirect=True)
pytestmark = [pytest.mark.anyio]

# Every call approved up front; the opt-out list re-read only when a look-up starts (housekeeping's periodic re-read
# would race the changes these tests make while a call is on the wire).
SETTINGS: dict[str, Any] = {"confirm_above": 1000, "session_budget": 1000, "housekeeping_seconds": 3600}
DEFAULT_SECTIONS = ("basic_profile", "social_handles", "experience")
NAME_AND_WORK_EMAIL = ["basic_profile.name", "contact.business_emails"]
NOT_FETCHED = "profile sections not fetched"


# --- helpers ---------------------------------------------------------------------------------------------------------


@asynccontextmanager
async def serving(upstream: Upstream, optout: Path, cache: MemoryStore, **overrides: Any) -> AsyncGenerator[Client]:
    """An MCP client of a fresh server with this opt-out file and this cache store."""
    if not optout.exists():
        optout.write_text("", encoding="utf-8")
    settings = settings_for(upstream.url, upstream.key, suppression_file=str(optout), **{**SETTINGS, **overrides})
    async with Client(build_server(settings, cache_store_factory=lambda: cache)) as client:
        yield client


async def call(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    with anyio.fail_after(60):
        result: CallToolResult = await client.call_tool(tool, arguments)
    assert result.is_error is False, text_of(result)
    return data_of(result)


def by_email(emails: list[str], fields: list[str] | None = None, **more: Any) -> dict[str, Any]:
    return {"business_emails": emails, **({"fields": fields} if fields else {}), **more}


def opt_out(path: Path, *identifiers: str) -> None:
    add_entries(path, [(parse_subject(i).hash, "test") for i in identifiers])


def problems(result: dict[str, Any]) -> dict[str, str]:
    return {p["identifier"]: p["reason"] for p in cast(list[dict[str, str]], result.get("problems") or [])}


def people_for(result: dict[str, Any], email: str) -> list[dict[str, Any]]:
    return [p for p in cast(list[dict[str, Any]], result["people"]) if p["matched_on"] == email]


def name_of(person: dict[str, Any]) -> Any:
    return person["person_data"].get("basic_profile", {}).get("name")


def endpoints(upstream: Upstream) -> list[str]:
    return [r["endpoint"] for r in upstream.paid_requests()]


def enriched_urls(upstream: Upstream) -> list[str]:
    return [u for body in upstream.bodies("enrich") for u in body["professional_network_profile_urls"]]


def charged(result: dict[str, Any]) -> Decimal:
    return Decimal(result["receipt"]["charged"])


async def cached_text(cache: MemoryStore) -> str:
    """Everything the cache store holds, as one lower-cased text."""
    return json.dumps(await cache.cache_items("")).lower()


def single_owners(sandbox: SandboxServer, n: int, having: Callable[[Person], bool] = lambda _: True) -> list[Person]:
    """People whose first work email names them alone."""
    dataset = sandbox.state.dataset
    found = [
        p
        for p in dataset.searchable
        if p.business_emails
        and not p.opted_out
        and having(p)
        and [c.person for c in dataset.email_candidates(p.business_emails[0])] == [p]
    ]
    assert len(found) >= n
    return found[:n]


def multi(sandbox: SandboxServer, size: int, offset: int = 0) -> tuple[str, list[EmailCandidate]]:
    """A work email with exactly `size` candidates (best first), the best one with personal emails on file."""
    dataset = sandbox.state.dataset
    found: list[tuple[str, list[EmailCandidate]]] = []
    for email in sample_identifiers(sandbox.url, "multi_email", 200):
        candidates = dataset.email_candidates(email)
        if len(candidates) == size and candidates[0].person.data["contact"]["personal_emails"]:
            found.append((email, candidates))
    assert len(found) > offset
    return found[offset]


def personal_email(person: Person) -> str:
    return str(person.data["contact"]["personal_emails"][0]["email"])


# --- the best candidate's profile URL on the opt-out list ------------------------------------------------------------


@CURRENT
async def test_an_address_whose_owner_opted_out_by_profile_url_is_withheld_unbought_and_its_old_entry_forgotten(
    sandbox: SandboxServer, upstream: Upstream, tmp_path: Path
) -> None:
    withheld, kept = single_owners(sandbox, 2)
    gone, other = withheld.business_emails[0], kept.business_emails[0]
    optout, cache = tmp_path / "optout", MemoryStore()

    async with serving(upstream, optout, cache) as client:
        # Contact data only: no search names the profile, so nothing says who this is yet; the answer is cached.
        await call(client, "enrich_person_by_email", by_email([gone], ["contact.business_emails"]))
        assert gone in await cached_text(cache)
        opt_out(optout, withheld.profile_url)
        before = len(upstream.paid_requests())
        first = await call(client, "enrich_person_by_email", by_email([gone, other]))
        again = await call(client, "enrich_person_by_email", by_email([gone]))
        held = await cached_text(cache)

    assert [p["matched_on"] for p in first["people"]] == [other]
    assert name_of(first["people"][0]) == kept.data["basic_profile"]["name"]
    for result in (first, again):
        assert problems(result) == {gone: SUPPRESSED_FOUND}
        assert withheld.slug not in json.dumps(result).lower()
    # The address was resolved and the id turned into the URL; there it stopped: no profile request for them.
    assert endpoints(upstream)[before:] == ["contact", "search", "enrich", "contact", "search"]
    assert enriched_urls(upstream) == [kept.profile_url]
    # Nothing about them is kept, not even the contact-only entry of the first call; the other address is cached.
    assert gone not in held and withheld.slug not in held and kept.slug in held
    assert charged(first) + charged(again) == upstream.billed() - Decimal(1)  # the first call's one work email


@CURRENT
async def test_a_best_candidate_who_opted_out_by_profile_url_leaves_the_others_with_contact_data_and_nothing_cached(
    sandbox: SandboxServer, upstream: Upstream, tmp_path: Path
) -> None:
    email, candidates = multi(sandbox, 2)
    best, colleague = (c.person for c in candidates)
    optout, cache = tmp_path / "optout", MemoryStore()
    opt_out(optout, best.profile_url)

    async with serving(upstream, optout, cache) as client:
        first = await call(client, "enrich_person_by_email", by_email([email]))
        again = await call(client, "enrich_person_by_email", by_email([email]))

    for result in (first, again):
        [person] = result["people"]
        assert person["confidence_score"] == candidates[1].score and "cached" not in person
        assert "basic_profile" not in person["person_data"]  # only the best candidate's sections are bought
        assert problems(result) == {"(opt-out)": "1 further candidate withheld: on this server's opt-out list"}
        assert best.slug not in json.dumps(result).lower()
    # Profile sections were asked for and not bought: nothing is cached that would claim them, so the repeat goes
    # upstream again; the best candidate's profile is never asked for.
    assert endpoints(upstream) == ["contact", "search", "contact", "search"]
    assert colleague.slug not in await cached_text(cache) and email not in await cached_text(cache)
    assert charged(first) + charged(again) == upstream.billed()


# --- a cached profile that shows a suppressed address ------------------------------------------------------------


@CURRENT
async def test_an_address_whose_cached_profile_shows_an_opted_out_email_is_withheld_or_loses_only_that_candidate(
    sandbox: SandboxServer, upstream: Upstream, tmp_path: Path
) -> None:
    [owner] = single_owners(sandbox, 1, having=lambda p: bool(p.data["contact"]["personal_emails"]))
    alone = owner.business_emails[0]
    shared, candidates = multi(sandbox, 2, offset=1)
    best = candidates[0].person
    optout, cache = tmp_path / "optout", MemoryStore()

    async with serving(upstream, optout, cache) as client:
        # Their profiles (and personal emails) are cached by URL; then they opt out by their personal email.
        urls = [owner.profile_url, best.profile_url]
        fields = ["basic_profile.name", "contact.personal_emails"]
        await call(client, "enrich_person_by_url", {"professional_network_profile_urls": urls, "fields": fields})
        opt_out(optout, personal_email(owner), personal_email(best))
        before = len(upstream.paid_requests())
        result = await call(client, "enrich_person_by_email", by_email([alone, shared]))
        held = await cache.cache_items(PROFILE_PREFIX)

    assert people_for(result, alone) == [] and problems(result)[alone] == SUPPRESSED_FOUND
    [person] = people_for(result, shared)
    assert person["confidence_score"] == candidates[1].score and "basic_profile" not in person["person_data"]
    assert problems(result)["(opt-out)"] == "1 further candidate withheld: on this server's opt-out list"
    assert NOT_FETCHED not in json.dumps(result)
    # The cached profiles were screened before use and dropped, so no profile was asked for; and nothing is cached
    # for either address: the colleague's entry would claim profile sections nobody could give them.
    assert endpoints(upstream)[before:] == ["contact", "search"]
    assert held == []
    assert charged(result) == upstream.billed() - Decimal(2 * 3)  # the URL look-up: 1 + 2 a profile


# --- the similarity floor --------------------------------------------------------------------------------------------


@CURRENT
async def test_a_similarity_floor_equal_to_the_best_score_still_buys_the_best_candidates_profile(
    sandbox: SandboxServer, upstream: Upstream, tmp_path: Path
) -> None:
    email, candidates = multi(sandbox, 2, offset=2)
    best = candidates[0]

    async with serving(upstream, tmp_path / "optout", MemoryStore()) as client:
        result = await call(client, "enrich_person_by_email", by_email([email], min_similarity_score=best.score))

    [person] = result["people"]
    assert person["confidence_score"] == best.score
    assert name_of(person) == best.person.data["basic_profile"]["name"]
    assert enriched_urls(upstream) == [best.person.profile_url]
    assert charged(result) == upstream.billed()


# --- a profile step that fails after the address was resolved -------------------------------------------------------


@CURRENT
async def test_profile_sections_that_failed_are_reported_and_the_cache_keeps_only_the_contact_part(
    sandbox: SandboxServer, upstream: Upstream, tmp_path: Path
) -> None:
    with_contact, without = (p.business_emails[0] for p in single_owners(sandbox, 2))
    cache = MemoryStore()
    rule = upstream.post("/_sandbox/faults", {"kind": "status", "status": 400, "count": 4, "endpoint": "enrich"})
    assert rule.status_code == 200, rule.text
    try:
        async with serving(upstream, tmp_path / "optout", cache) as client:
            first = await call(client, "enrich_person_by_email", by_email([with_contact], NAME_AND_WORK_EMAIL))
            again = await call(client, "enrich_person_by_email", by_email([with_contact], NAME_AND_WORK_EMAIL))
            contact_only = await call(
                client, "enrich_person_by_email", by_email([with_contact], ["contact.business_emails"])
            )
            sections_only = await call(client, "enrich_person_by_email", by_email([without]))
            sections_again = await call(client, "enrich_person_by_email", by_email([without]))
    finally:
        ADMIN.delete(f"{upstream.url}/_sandbox/faults")

    for result in (first, again):
        [person] = result["people"]
        assert "basic_profile" not in person["person_data"] and person["person_data"]["contact"]["business_emails"]
        assert NOT_FETCHED in problems(result)[with_contact] and result["incomplete"]
        assert result["receipt"]["cache_hits"] == 0  # the entry does not claim the name it never got
    # ... but it does hold the contact part that was paid for.
    assert contact_only["receipt"]["cache_hits"] == 1 and charged(contact_only) == 0
    assert contact_only["people"][0]["person_data"] == first["people"][0]["person_data"]
    for result in (sections_only, sections_again):
        assert NOT_FETCHED in problems(result)[without]
        assert result["receipt"]["cache_hits"] == 0  # nothing asked for was got: nothing cached
    assert endpoints(upstream) == ["contact", "search", "enrich"] * 4
    assert sum(map(charged, (first, again, contact_only, sections_only, sections_again))) == upstream.billed()


# --- cached candidates who opted out since ---------------------------------------------------------------------------


@CURRENT
async def test_a_cached_candidate_who_opted_out_since_is_left_out_of_the_cache_hit(
    sandbox: SandboxServer, upstream: Upstream, tmp_path: Path
) -> None:
    email, candidates = multi(sandbox, 3, offset=0)
    leaver = candidates[1].person
    optout = tmp_path / "optout"

    async with serving(upstream, optout, MemoryStore()) as client:
        first = await call(client, "enrich_person_by_email", by_email([email], NAME_AND_WORK_EMAIL))
        opt_out(optout, leaver.business_emails[0])
        billed = upstream.billed()
        again = await call(client, "enrich_person_by_email", by_email([email], NAME_AND_WORK_EMAIL))

    assert [p["confidence_score"] for p in first["people"]] == [c.score for c in candidates]
    assert [p["confidence_score"] for p in again["people"]] == [candidates[0].score, candidates[2].score]
    assert all(p.get("cached") is True for p in again["people"])
    assert name_of(again["people"][0]) == candidates[0].person.data["basic_profile"]["name"]
    assert leaver.business_emails[0] not in json.dumps(again)
    assert again["receipt"]["cache_hits"] == 1 and charged(again) == 0 and upstream.billed() == billed


@CURRENT
async def test_a_cached_address_whose_owner_opted_out_by_a_profile_url_only_the_entry_knew_is_not_served(
    sandbox: SandboxServer, upstream: Upstream, tmp_path: Path
) -> None:
    [owner] = single_owners(sandbox, 1)
    email = owner.business_emails[0]
    optout, cache = tmp_path / "optout", MemoryStore()
    switched = upstream.post("/_sandbox/config", {"include_default_families": False})
    assert switched.status_code == 200, switched.text
    try:
        async with serving(upstream, optout, cache) as client:
            # Only the name is bought: the profile answer carries no social handles, so the URL the search named is
            # what the cache entry remembers the person by.
            first = await call(client, "enrich_person_by_email", by_email([email], NAME_AND_WORK_EMAIL))
            opt_out(optout, owner.profile_url)
            sent = upstream.paid_requests()
            again = await call(client, "enrich_person_by_email", by_email([email], NAME_AND_WORK_EMAIL))
            held = await cached_text(cache)
    finally:
        upstream.post("/_sandbox/config", {"include_default_families": True})

    assert name_of(first["people"][0]) == owner.data["basic_profile"]["name"]
    assert again["people"] == [] and problems(again) == {email: SUPPRESSED_UNSENT}
    assert upstream.paid_requests() == sent and charged(again) == 0
    assert email not in held


# --- opting out while a look-up is on the wire -----------------------------------------------------------------------


@CURRENT
async def test_candidates_who_opt_out_while_their_address_is_being_resolved_are_withheld_and_counted(
    sandbox: SandboxServer, upstream: Upstream, tmp_path: Path
) -> None:
    email, candidates = multi(sandbox, 3, offset=1)
    best, leaver, stayer = (c.person for c in candidates)
    optout, cache = tmp_path / "optout", MemoryStore()
    rule = upstream.post("/_sandbox/faults", {"kind": "latency", "ms": 1500, "count": 1, "endpoint": "search"})
    assert rule.status_code == 200, rule.text
    result: dict[str, Any] = {}

    async def look_up(client: Client) -> None:
        result.update(await call(client, "enrich_person_by_email", by_email([email])))

    try:
        async with serving(upstream, optout, cache) as client, httpx2.AsyncClient() as http:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(look_up, client)
                with anyio.fail_after(30):  # the search is held: the candidates were resolved and screened
                    while await faults_applied(http, upstream.url) < 1 or await in_flight(http, upstream.url) < 1:
                        await anyio.sleep(0.01)
                opt_out(optout, best.profile_url, leaver.business_emails[0])
            held = await cached_text(cache)
    finally:
        ADMIN.delete(f"{upstream.url}/_sandbox/faults")

    # The list is read again before the profile step: the best candidate's profile is not fetched, the colleague
    # found meanwhile is dropped too, and the one left is returned; both are counted as withheld.
    assert [p["confidence_score"] for p in result["people"]] == [candidates[2].score]
    assert problems(result) == {"(opt-out)": "2 further candidates withheld: on this server's opt-out list"}
    assert endpoints(upstream) == ["contact", "search"]
    # Its profile sections were not got, so nothing is cached for the address (it is not claimed as complete).
    assert best.slug not in held and leaver.business_emails[0] not in held and stayer.business_emails[0] not in held


# --- the module's own helpers ----------------------------------------------------------------------------------------


def test_enriching_a_searchs_results_in_the_overview_dialect_prices_the_contact_add_on_on_the_one_enrich() -> None:
    prices = PriceTable.documented(Dialect.OVERVIEW)
    selection = FieldSelection.of(["contact.personal_emails"])

    assert enrich_quote(2, selection, prices).estimate == Decimal(6)  # base 1 + personal emails 2, a profile
    assert enrich_quote(2, selection, prices, live=True).estimate == Decimal(14)  # the fresh fetch's cap


def test_a_contact_answer_without_a_contact_object_adds_an_empty_one_and_nothing_else() -> None:
    assert _contact_part({"crustdata_person_id": 7, "contact": None}) == {"contact": {}}
    assert _contact_part({"crustdata_person_id": 7}) == {"contact": {}}
    assert _contact_part({"crustdata_person_id": 7, "contact": {"websites": []}}) == {"contact": {"websites": []}}


@CURRENT
async def test_a_refusal_for_an_endpoint_the_plan_lacks_names_at_most_six_of_the_fields_that_need_it(
    upstream: Upstream, tmp_path: Path
) -> None:
    leaves = ("name", "first_name", "last_name", "headline", "current_title", "summary", "languages")
    fields = [f"basic_profile.{leaf}" for leaf in leaves]
    plan = upstream.post("/_sandbox/plan", {"endpoints": {"/person/enrich": {"status": "not_enabled"}}})
    assert plan.status_code == 200, plan.text
    [url] = sample_identifiers(upstream.url, "url", 1)

    async with serving(upstream, tmp_path / "optout", MemoryStore()) as client:
        with anyio.fail_after(60):
            result = await client.call_tool(
                "enrich_person_by_url", {"professional_network_profile_urls": [url], "fields": fields}
            )

    message = text_of(result)
    assert result.is_error and "/person/enrich" in message
    assert sum(field in message for field in fields) == 6
    upstream.assert_nothing_billable_sent()
