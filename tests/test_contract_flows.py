"""Today's Person API contract and the overview's, end to end: a real MCP client, the server, the sandbox over HTTP.

Each test is pinned to the revision(s) it is about. The sandbox's ledger is the judge: in every test the receipts
the model reads add up, to the hundredth, to what the sandbox billed, and the bodies the server sent are read back
from the ledger to check what went on the wire.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, cast

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.types import CallToolResult

from person_enrich_mcp.api.contract import (
    CONTACT_TIERS,
    ENRICH_GROUPS,
    OVERVIEW_ENRICH_PARAMS,
    PATHS,
    REQUEST_PARAMS,
)
from person_enrich_mcp.fields import DEFAULT_PATHS
from person_enrich_mcp.sandbox import SandboxServer
from person_enrich_mcp.sandbox.dataset import Person
from person_enrich_mcp.server import build_server
from tests.conftest import (
    ONLY_WITH_CREDITS_HEADER,
    Upstream,
    canary_key,
    data_of,
    make_sandbox_in_mode,
    sample_identifiers,
    sandbox_in_mode,
    settings_for,
    text_of,
)


# Every flow here runs with and without `x-credits-used` (conftest `CREDIT_MODES`): the books must match the ledger
# whether the upstream says what it billed or the server computes it from the answer.
@pytest.fixture(scope="module")
def sandbox(revision: str, credits_header: bool) -> Iterator[SandboxServer]:
    yield from sandbox_in_mode(revision, credits_header)


@pytest.fixture
def make_sandbox(make_sandbox: Callable[..., SandboxServer], credits_header: bool) -> Callable[..., SandboxServer]:
    return make_sandbox_in_mode(make_sandbox, credits_header)


pytestmark = pytest.mark.anyio

CURRENT = pytest.mark.parametrize("revision", ["current"], indirect=True)
OVERVIEW = pytest.mark.parametrize("revision", ["overview"], indirect=True)
BOTH = pytest.mark.parametrize("revision", ["current", "overview"], indirect=True)

CENT = Decimal("0.01")
SEARCH_PER_RESULT = Decimal("0.03")  # the sandbox's documented search price (0.03 a result)
LIVE_PER_PROFILE = Decimal(7)
TIER_PRICES = {"business_emails": Decimal(1), "personal_emails": Decimal(2), "phone_numbers": Decimal(2)}
# Every call is approved up front (no elicitation in these tests) and the session budget never gets in the way.
OPEN_HANDED: dict[str, Any] = {"confirm_above": 1000, "session_budget": 1000}
NAME_AND_WORK_EMAIL = ["basic_profile.name", "contact.business_emails"]
UNKNOWN_URL = "https://www.linkedin.com/in/nobody-by-this-name-000000"
ACCOUNT_READS: list[dict[str, Any]] = [
    {"path": "/account/endpoints", "query": {"category": "Person"}},
    {"path": "/user/credits", "query": {}},
]
WORK_EMAIL_PATHS = {
    "basic_profile.name",
    *(f"contact.business_emails.{leaf}" for leaf in ("email", "status", "last_updated", "crustdata_company_id")),
}
TITLE_FILTER: dict[str, Any] = {"field": "experience.employment_details.current.title", "type": "(.)", "value": "a"}


# --- helpers ---------------------------------------------------------------------------------------------------------


@asynccontextmanager
async def connect(url: str, key: str, **overrides: Any) -> AsyncGenerator[Client]:
    """An MCP client of a fresh server pointed at the sandbox with `key`."""
    settings = settings_for(url, key, **{**OPEN_HANDED, **overrides})
    async with Client(build_server(settings)) as client:
        yield client


async def call(client: Client, tool: str, arguments: dict[str, Any]) -> CallToolResult:
    with anyio.fail_after(60):
        return await client.call_tool(tool, arguments)


def structured(result: CallToolResult) -> dict[str, Any]:
    """Structured content of a success, the facts line of an error (both checked for their shape)."""
    return data_of(result)


def succeeded(result: CallToolResult) -> dict[str, Any]:
    assert result.is_error is False, text_of(result)
    return structured(result)


def refusal(result: CallToolResult) -> tuple[str, str]:
    """(error code, message) of an error result."""
    assert result.is_error is True, text_of(result)
    error = cast(dict[str, Any], structured(result)["error"])
    return str(error["code"]), text_of(result)


def charged(result: CallToolResult) -> Decimal:
    return Decimal(structured(result)["receipt"]["charged"])


def people_of(result: CallToolResult) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], succeeded(result)["people"])


def dig(data: Any, *path: str) -> Any:
    for part in path:
        data = cast(dict[str, Any], data).get(part) if isinstance(data, dict) else None
    return data


async def books_agree(client: Client, upstream: Upstream) -> Decimal:
    """The session's receipts equal the sandbox's ledger to the hundredth, with nothing held; returns the spend."""
    books = structured(await call(client, "get_budget", {}))
    billed = upstream.billed().quantize(CENT)
    assert Decimal(books["spent"]) == billed, (books, upstream.ledger()["requests"])
    assert (books["reserved"], books["unverified"]) == ("0.00", "0.00"), books
    receipts = cast(list[dict[str, Any]], books["receipts"])
    assert sum((Decimal(r["charged"]) for r in receipts), Decimal(0)) == billed, receipts
    return billed


def recent(upstream: Upstream) -> list[dict[str, Any]]:
    """Every request the key made, oldest first: endpoint, status, credits and the parsed body."""
    return cast(list[dict[str, Any]], upstream.ledger().get("recent", []))


def sent(upstream: Upstream) -> list[tuple[str, dict[str, Any]]]:
    """(endpoint, body) of every request to a person endpoint, in order: the free account reads and the probes of
    routes the overview lacks (recorded without a body) left out."""
    return [
        (str(r["endpoint"]), cast(dict[str, Any], r["body"]))
        for r in recent(upstream)
        if r["endpoint"] != "account" and r["body"] is not None
    ]


def account_reads(upstream: Upstream) -> list[dict[str, Any]]:
    return [cast(dict[str, Any], r["body"]) for r in recent(upstream) if r["endpoint"] == "account"]


def set_plan(upstream: Upstream, plan: dict[str, Any]) -> None:
    response = upstream.post("/_sandbox/plan", plan)
    assert response.status_code == 200, response.text


def person(sandbox: SandboxServer, url: str) -> Person:
    """The synthetic person behind a profile URL, read from the sandbox's own dataset."""
    found = sandbox.state.dataset.lookup_slug(url.rstrip("/").rsplit("/", 1)[1])
    assert found is not None, url
    return found


def contact_of(sandbox: SandboxServer, url: str) -> dict[str, Any]:
    return cast(dict[str, Any], person(sandbox, url).data["contact"])


def pick_urls(sandbox: SandboxServer, having: Callable[[Person], bool], n_with: int, n_without: int) -> list[str]:
    """Profile URLs of `n_with` people for whom `having` holds and `n_without` for whom it does not, interleaved."""
    with_it: list[str] = []
    without: list[str] = []
    for url in sample_identifiers(sandbox.url, "url", 400):
        (with_it if having(person(sandbox, url)) else without).append(url)
    assert len(with_it) >= n_with and len(without) >= n_without, "the dataset has too few people of either kind"
    return with_it[:n_with] + without[:n_without]


def has_tier(tier: str) -> Callable[[Person], bool]:
    return lambda p: bool(cast(dict[str, Any], p.data["contact"]).get(tier))


def single_candidate_emails(sandbox: SandboxServer, n: int, offset: int = 0) -> list[str]:
    dataset = sandbox.state.dataset
    emails = [e for e in sample_identifiers(sandbox.url, "email", 200) if len(dataset.email_candidates(e)) == 1]
    assert len(emails) >= n + offset
    return emails[offset : offset + n]


def paths_in(value: Any, prefix: str = "") -> set[str]:
    """The leaf dot-paths of a JSON value (list elements share their list's path)."""
    if isinstance(value, dict):
        found: set[str] = set()
        for key, item in cast(dict[str, Any], value).items():
            found |= paths_in(item, f"{prefix}.{key}" if prefix else key)
        return found
    if isinstance(value, list):
        found = set()
        for item in cast(list[Any], value):
            found |= paths_in(item, prefix)
        return found or {prefix}
    return {prefix}


def no_refresh_flags(bodies: Iterable[dict[str, Any]]) -> None:
    for body in bodies:
        assert not {"force_fetch", "enrich_realtime"} & set(body), body


# --- 1. profile groups on /person/enrich, the asked tier on /person/contact/enrich, one person per URL ---------------


@CURRENT
async def test_a_url_look_up_with_a_contact_field_sends_groups_to_enrich_then_only_that_tier_to_contact_as_one_person(
    sandbox: SandboxServer, upstream: Upstream
) -> None:
    urls = pick_urls(sandbox, has_tier("business_emails"), 5, 2)

    async with connect(upstream.url, upstream.key) as client:
        result = await call(
            client, "enrich_person_by_url", {"professional_network_profile_urls": urls, "fields": NAME_AND_WORK_EMAIL}
        )
        people = people_of(result)
        await books_agree(client, upstream)

    wire = sent(upstream)
    assert [endpoint for endpoint, _ in wire] == ["enrich", "contact"]  # the profile first, then its contact tier
    (_, enrich), (_, contact) = wire
    assert set(enrich) == {"professional_network_profile_urls", "fields"}
    assert enrich["fields"] == ["basic_profile"] and set(enrich["fields"]) <= set(ENRICH_GROUPS)
    assert set(contact) == {"professional_network_profile_urls", "fields"}
    assert contact["fields"] == ["contact.business_emails"]  # never the all-tiers default, never omitted
    assert sorted(contact["professional_network_profile_urls"]) == sorted(enrich["professional_network_profile_urls"])
    assert sorted(enrich["professional_network_profile_urls"]) == sorted(urls)

    assert [p["matched_on"] for p in people] == urls  # one person per URL, profile and contact merged
    with_email = 0
    for entry in people:
        on_file = contact_of(sandbox, entry["matched_on"])["business_emails"]
        assert (
            dig(entry, "person_data", "basic_profile", "name")
            == person(sandbox, entry["matched_on"]).data["basic_profile"]["name"]
        )
        returned = cast(list[dict[str, Any]], dig(entry, "person_data", "contact", "business_emails") or [])
        assert [e["email"] for e in returned] == [e["email"] for e in on_file]
        assert paths_in(entry["person_data"]) <= WORK_EMAIL_PATHS
        with_email += bool(on_file)
    assert 0 < with_email < len(urls)
    expected = len(people) * 1 + with_email * TIER_PRICES["business_emails"]
    assert charged(result) == expected == upstream.billed()


# --- 2. a contact-only selection ------------------------------------------------------------------------------------


@CURRENT
async def test_a_contact_only_selection_sends_no_profile_request_and_people_without_a_phone_cost_nothing(
    sandbox: SandboxServer, upstream: Upstream
) -> None:
    urls = pick_urls(sandbox, has_tier("phone_numbers"), 3, 3)

    async with connect(upstream.url, upstream.key) as client:
        result = await call(
            client,
            "enrich_person_by_url",
            {"professional_network_profile_urls": urls, "fields": ["contact.phone_numbers"]},
        )
        people = people_of(result)
        await books_agree(client, upstream)

    assert upstream.requests("enrich") == {}
    [(endpoint, body)] = sent(upstream)
    assert endpoint == "contact"
    assert body == {"professional_network_profile_urls": urls, "fields": ["contact.phone_numbers"]}
    with_phone = [u for u in urls if contact_of(sandbox, u)["phone_numbers"]]
    for entry in people:
        phones = cast(list[str], dig(entry, "person_data", "contact", "phone_numbers") or [])
        assert phones == contact_of(sandbox, entry["matched_on"])["phone_numbers"]
    expected = len(with_phone) * TIER_PRICES["phone_numbers"]  # billed per tier returned: no phone, no charge
    assert charged(result) == expected == upstream.billed()
    assert Decimal(structured(result)["receipt"]["estimated"]) == len(urls) * TIER_PRICES["phone_numbers"]


# --- 3. a partial cache hit -----------------------------------------------------------------------------------------


@CURRENT
async def test_a_cached_profile_asked_again_with_a_contact_tier_buys_only_the_tier_and_a_third_call_is_free(
    sandbox: SandboxServer, upstream: Upstream
) -> None:
    urls = pick_urls(sandbox, has_tier("business_emails"), 3, 1)

    async with connect(upstream.url, upstream.key) as client:
        first = await call(client, "enrich_person_by_url", {"professional_network_profile_urls": urls})
        billed_first = upstream.billed()
        arguments = {"professional_network_profile_urls": urls, "fields": NAME_AND_WORK_EMAIL}
        second = await call(client, "enrich_person_by_url", arguments)
        billed_second = upstream.billed()
        third = await call(client, "enrich_person_by_url", arguments)
        await books_agree(client, upstream)

    assert charged(first) == len(people_of(first)) == billed_first
    wire = sent(upstream)
    assert [endpoint for endpoint, _ in wire] == ["enrich", "contact"]  # the second call sent only the contact request
    assert wire[1][1]["fields"] == ["contact.business_emails"]
    with_email = sum(bool(contact_of(sandbox, u)["business_emails"]) for u in urls)
    assert charged(second) == with_email * TIER_PRICES["business_emails"] == billed_second - billed_first
    for entry in people_of(second):
        assert dig(entry, "person_data", "basic_profile", "name")  # from the cache, merged with the fresh tier
    assert charged(third) == 0 and structured(third)["receipt"]["cache_hits"] == len(urls)
    assert people_of(third) == [{**p, "cached": True} for p in people_of(second)]
    assert upstream.billed() == billed_second and len(sent(upstream)) == 2


# --- 4. a fresh fetch -----------------------------------------------------------------------------------------------


@CURRENT
@pytest.mark.parametrize("flag", ["force_fetch", "enrich_realtime"])
async def test_a_fresh_fetch_goes_to_live_enrich_at_seven_a_profile_without_reading_the_cache_or_sending_a_flag(
    sandbox: SandboxServer, upstream: Upstream, flag: str
) -> None:
    urls = sample_identifiers(sandbox.url, "url", 3, offset=40)

    async with connect(upstream.url, upstream.key) as client:
        cached = await call(client, "enrich_person_by_url", {"professional_network_profile_urls": urls})
        fresh = await call(client, "enrich_person_by_url", {"professional_network_profile_urls": urls, flag: True})
        await books_agree(client, upstream)

    assert charged(cached) == len(urls)
    people = people_of(fresh)
    assert [p["matched_on"] for p in people] == urls and not any(p.get("cached") for p in people)
    assert structured(fresh)["receipt"]["cache_hits"] == 0  # the cache was not read
    wire = sent(upstream)
    assert [endpoint for endpoint, _ in wire] == ["enrich", "live"]
    live = wire[1][1]
    assert (
        set(live) == {"professional_network_profile_urls", "fields"}
        and live["professional_network_profile_urls"] == urls
    )
    assert set(live["fields"]) <= set(ENRICH_GROUPS)
    no_refresh_flags(body for _, body in wire)
    assert charged(fresh) == LIVE_PER_PROFILE * len(urls) == upstream.billed() - charged(cached)


# --- 5. work emails through contact enrich, search and the URL-keyed enrich ----------------------------------------


@CURRENT
async def test_an_email_look_up_resolves_through_contact_then_a_person_id_search_then_the_url_keyed_enrich(
    sandbox: SandboxServer, upstream: Upstream
) -> None:
    emails = single_candidate_emails(sandbox, 3)
    owners = [sandbox.state.dataset.email_candidates(e)[0].person for e in emails]

    async with connect(upstream.url, upstream.key) as client:
        result = await call(client, "enrich_person_by_email", {"business_emails": emails})
        people = people_of(result)
        await books_agree(client, upstream)

    wire = sent(upstream)
    assert [endpoint for endpoint, _ in wire] == ["contact", "search", "enrich"]
    (_, contact), (_, search), (_, enrich) = wire
    assert contact == {"business_emails": emails, "fields": ["contact.business_emails"]}
    assert search["filters"]["field"] == "crustdata_person_id" and search["filters"]["type"] == "in"
    assert sorted(search["filters"]["value"]) == sorted(o.person_id for o in owners)
    assert set(enrich) == {"professional_network_profile_urls", "fields"}
    assert sorted(enrich["professional_network_profile_urls"]) == sorted(o.profile_url for o in owners)
    assert set(enrich["fields"]) <= set(ENRICH_GROUPS)

    assert [p["matched_on"] for p in people] == emails
    for entry, owner in zip(people, owners, strict=True):
        assert entry["match_type"] == "business_email"
        assert dig(entry, "person_data", "basic_profile", "name") == owner.data["basic_profile"]["name"]
        assert paths_in(entry["person_data"]) <= set(DEFAULT_PATHS)
    expected = len(owners) * (TIER_PRICES["business_emails"] + SEARCH_PER_RESULT + 1)
    assert charged(result) == expected == upstream.billed()


@CURRENT
async def test_min_similarity_score_is_applied_locally_and_drops_the_candidates_below_it(
    sandbox: SandboxServer, upstream: Upstream
) -> None:
    [email] = sample_identifiers(sandbox.url, "multi_email", 1)
    candidates = sandbox.state.dataset.email_candidates(email)
    best, runner_up = candidates[0].score, candidates[1].score
    threshold = round((best + runner_up) / 2, 2)
    assert runner_up < threshold <= best

    async with connect(upstream.url, upstream.key) as client:
        strict = await call(
            client,
            "enrich_person_by_email",
            {"business_emails": [email], "fields": NAME_AND_WORK_EMAIL, "min_similarity_score": threshold},
        )
        loose = await call(
            client, "enrich_person_by_email", {"business_emails": [email], "fields": NAME_AND_WORK_EMAIL}
        )
        await books_agree(client, upstream)

    assert [p["confidence_score"] for p in people_of(strict)] == [best]  # the colleagues below it are dropped
    wire = sent(upstream)
    assert [endpoint for endpoint, _ in wire] == ["contact", "search", "enrich"]
    assert all("min_similarity_score" not in body for _, body in wire)  # the upstream was never told the threshold
    # The whole answer was kept, so the looser look-up is served from the cache with every candidate and its score.
    assert [p["confidence_score"] for p in people_of(loose)] == [c.score for c in candidates]
    assert charged(loose) == 0 and charged(strict) == upstream.billed()


@CURRENT
async def test_an_email_look_up_of_someone_whose_profile_is_cached_by_url_does_not_buy_the_profile_again(
    sandbox: SandboxServer, upstream: Upstream
) -> None:
    [email] = single_candidate_emails(sandbox, 1, offset=5)
    owner = sandbox.state.dataset.email_candidates(email)[0].person

    async with connect(upstream.url, upstream.key) as client:
        by_url = await call(client, "enrich_person_by_url", {"professional_network_profile_urls": [owner.profile_url]})
        billed_before = upstream.billed()
        by_email = await call(client, "enrich_person_by_email", {"business_emails": [email]})
        await books_agree(client, upstream)

    assert charged(by_url) == 1 == billed_before
    assert [endpoint for endpoint, _ in sent(upstream)] == ["enrich", "contact", "search"]  # no second enrich
    [entry] = people_of(by_email)
    assert dig(entry, "person_data", "basic_profile", "name") == owner.data["basic_profile"]["name"]
    assert charged(by_email) == TIER_PRICES["business_emails"] + SEARCH_PER_RESULT == upstream.billed() - billed_before


@CURRENT
async def test_a_multi_candidate_email_gives_profile_sections_to_the_best_candidate_only_and_lists_the_rest(
    sandbox: SandboxServer, upstream: Upstream
) -> None:
    emails = sample_identifiers(sandbox.url, "multi_email", 2, offset=3)
    dataset = sandbox.state.dataset
    candidates = {e: dataset.email_candidates(e) for e in emails}

    async with connect(upstream.url, upstream.key) as client:
        result = await call(client, "enrich_person_by_email", {"business_emails": emails})
        people = people_of(result)
        await books_agree(client, upstream)

    for email in emails:
        listed = [p for p in people if p["matched_on"] == email]
        assert [p["confidence_score"] for p in listed] == [c.score for c in candidates[email]]
        best = candidates[email][0].person
        assert dig(listed[0], "person_data", "basic_profile", "name") == best.data["basic_profile"]["name"]
        assert all(dig(p, "person_data", "basic_profile") is None for p in listed[1:])
    (_, search), (_, enrich) = sent(upstream)[1:]
    assert sorted(search["filters"]["value"]) == sorted(c[0].person.person_id for c in candidates.values())
    assert sorted(enrich["professional_network_profile_urls"]) == sorted(
        c[0].person.profile_url for c in candidates.values()
    )
    # One work-email tier per matched address (billed per identifier), one search row and one profile per best match.
    expected = len(emails) * (TIER_PRICES["business_emails"] + SEARCH_PER_RESULT + 1)
    assert charged(result) == expected == upstream.billed()


# --- 6. dialects ----------------------------------------------------------------------------------------------------


@BOTH
async def test_finding_the_dialect_costs_nothing_and_uses_only_the_free_reads_of_each_revision(
    revision: str, sandbox: SandboxServer, upstream: Upstream
) -> None:
    urls = sample_identifiers(sandbox.url, "url", 2, offset=60)
    emails = single_candidate_emails(sandbox, 1, offset=8)

    async with connect(upstream.url, upstream.key) as client:
        by_url = await call(client, "enrich_person_by_url", {"professional_network_profile_urls": urls})
        by_email = await call(client, "enrich_person_by_email", {"business_emails": emails})
        books = structured(await call(client, "get_budget", {}))
        await books_agree(client, upstream)

    assert len(people_of(by_url)) == 2 and len(people_of(by_email)) == 1
    assert books["account"]["api_revision"] == revision
    entries = recent(upstream)
    lookups = [r for r in entries if r["status"] == 200 and r["endpoint"] != "account"]
    others = [r for r in entries if r not in lookups]
    assert all(Decimal(r["credits"]) == 0 for r in others), others  # nothing spent to find the dialect
    assert sum((Decimal(r["credits"]) for r in lookups), Decimal(0)) == upstream.billed()
    if revision == "overview":
        # Only the free 404s: the two account reads and one empty contact probe.
        assert [(r["endpoint"], r["status"]) for r in others] == [("account", 404), ("contact", 404), ("account", 404)]
        assert [r["endpoint"] for r in lookups] == ["enrich", "enrich"]
        assert "business_emails" in lookups[1]["body"]
    else:
        assert [r["body"] for r in others] == ACCOUNT_READS  # the listing of the Person category and the balance
        assert [r["endpoint"] for r in lookups] == ["enrich", "contact", "search", "enrich"]


@CURRENT
async def test_pinning_the_overview_dialect_against_todays_upstream_fails_clearly_and_charges_nothing(
    sandbox: SandboxServer, upstream: Upstream
) -> None:
    emails = single_candidate_emails(sandbox, 2)

    async with connect(upstream.url, upstream.key, api_dialect="overview") as client:
        result = await call(client, "enrich_person_by_email", {"business_emails": emails})
        spent = await books_agree(client, upstream)

    code, message = refusal(result)
    assert code == "upstream_rejected_request"
    assert "400" in message and "business_emails" in message and "Nothing was charged" in message
    assert upstream.requests("enrich") == {"400": 1}
    assert spent == 0 and structured(result)["budget"]["spent"] == "0.00"


@OVERVIEW
async def test_pinning_todays_dialect_against_an_overview_upstream_charges_nothing_for_the_missing_endpoint_and_says_so(
    sandbox: SandboxServer, upstream: Upstream
) -> None:
    urls = sample_identifiers(sandbox.url, "url", 2, offset=70)
    emails = single_candidate_emails(sandbox, 2, offset=10)

    async with connect(upstream.url, upstream.key, api_dialect="current") as client:
        by_url = await call(
            client, "enrich_person_by_url", {"professional_network_profile_urls": urls, "fields": NAME_AND_WORK_EMAIL}
        )
        by_email = await call(client, "enrich_person_by_email", {"business_emails": emails})
        await books_agree(client, upstream)

    # The route is absent: each call's contact request and the empty request that confirmed the route is missing
    # were free (a pinned dialect is the operator's to fix; the message says how).
    assert upstream.requests("contact") == {"404": 4}
    assert charged(by_url) == len(urls) == upstream.billed()  # only the profiles, at the base price
    assert by_email.is_error  # nothing else could be done for it: an error the operator can act on, not "not found"
    # What the model reads must not pass a missing endpoint off as data: the work emails of real people are not
    # "not found", and the contact fields were not "empty"; the endpoint the answers came from does not exist.
    unclear = [
        text_of(result)
        for result in (by_url, by_email)
        if PATHS["contact"] not in text_of(result) and "404" not in text_of(result)
    ]
    assert not unclear, f"the model is not told that {PATHS['contact']} answered 404: {unclear}"


# --- 7. plan gating -------------------------------------------------------------------------------------------------


@CURRENT
async def test_without_contact_enrich_contact_fields_are_refused_locally_naming_the_endpoint_and_what_to_do(
    sandbox: SandboxServer, upstream: Upstream
) -> None:
    set_plan(upstream, {"endpoints": {PATHS["contact"]: {"status": "not_enabled"}}})
    urls = sample_identifiers(sandbox.url, "url", 2)

    async with connect(upstream.url, upstream.key) as client:
        result = await call(
            client, "enrich_person_by_url", {"professional_network_profile_urls": urls, "fields": NAME_AND_WORK_EMAIL}
        )
        await books_agree(client, upstream)

    code, message = refusal(result)
    assert code == "not_in_plan"
    assert PATHS["contact"] in message and "contact.business_emails" in message
    assert "without the contact fields" in message and "account manager" in message
    assert "Nothing was sent or spent" in message
    assert set(upstream.ledger()["requests"]) == {"account"}  # only the free account reads reached the sandbox
    assert account_reads(upstream) == ACCOUNT_READS


@CURRENT
async def test_without_contact_enrich_an_email_look_up_is_refused_locally_pointing_to_a_profile_url_look_up(
    sandbox: SandboxServer, upstream: Upstream
) -> None:
    set_plan(upstream, {"endpoints": {PATHS["contact"]: {"status": "not_enabled"}}})
    emails = single_candidate_emails(sandbox, 1)

    async with connect(upstream.url, upstream.key) as client:
        result = await call(client, "enrich_person_by_email", {"business_emails": emails})  # no contact field asked
        await books_agree(client, upstream)

    code, message = refusal(result)
    assert code == "not_in_plan"
    assert PATHS["contact"] in message and "account manager" in message and "Nothing was sent or spent" in message
    assert set(upstream.ledger()["requests"]) == {"account"}
    # The caller asked for no contact field: the way out is a look-up by profile URL, not "without the contact fields"
    # (that call would be refused in exactly the same way).
    assert "work email" in message and "by profile URL instead" in message, message
    assert "without the contact fields" not in message, message


@CURRENT
async def test_without_live_enrich_a_fresh_fetch_is_refused_locally_while_cached_data_still_works(
    sandbox: SandboxServer, upstream: Upstream
) -> None:
    set_plan(upstream, {"endpoints": {PATHS["live"]: {"status": "not_enabled"}}})
    urls = sample_identifiers(sandbox.url, "url", 2, offset=5)

    async with connect(upstream.url, upstream.key) as client:
        fresh = await call(
            client, "enrich_person_by_url", {"professional_network_profile_urls": urls, "force_fetch": True}
        )
        requests_after_refusal = dict(upstream.ledger()["requests"])
        cached = await call(client, "enrich_person_by_url", {"professional_network_profile_urls": urls})
        await books_agree(client, upstream)

    code, message = refusal(fresh)
    assert code == "not_in_plan"
    assert PATHS["live"] in message and "without force_fetch" in message and "account manager" in message
    assert set(requests_after_refusal) == {"account"}
    assert len(people_of(cached)) == 2 and charged(cached) == 2 == upstream.billed()
    assert upstream.requests("live") == {}


@CURRENT
async def test_a_field_the_plan_withholds_is_refused_locally_naming_it(
    sandbox: SandboxServer, upstream: Upstream
) -> None:
    set_plan(upstream, {"disabled_fields": {PATHS["enrich"]: ["certifications"]}})
    urls = sample_identifiers(sandbox.url, "url", 2, offset=15)

    async with connect(upstream.url, upstream.key) as client:
        results = [
            await call(client, "enrich_person_by_url", {"professional_network_profile_urls": urls, "fields": fields})
            for fields in (["basic_profile.name", "certifications"], ["certifications.name"])
        ]
        allowed = await call(
            client, "enrich_person_by_url", {"professional_network_profile_urls": urls, "fields": ["honors"]}
        )
        await books_agree(client, upstream)

    for result in results:
        code, message = refusal(result)
        assert code == "not_in_plan"
        assert "certifications" in message and PATHS["enrich"] in message and "Nothing was sent or spent" in message
    assert len(people_of(allowed)) == 2
    assert upstream.requests("enrich") == {"200": 1}  # only the allowed call was sent
    assert all("certifications" not in body["fields"] for _, body in sent(upstream))


@CURRENT
async def test_search_then_enrich_with_contact_fields_is_refused_before_the_search_is_paid_without_contact_enrich(
    upstream: Upstream,
) -> None:
    set_plan(upstream, {"endpoints": {PATHS["contact"]: {"status": "not_enabled"}}})

    async with connect(upstream.url, upstream.key) as client:
        result = await call(
            client, "search_then_enrich", {"filters": TITLE_FILTER, "limit": 3, "fields": NAME_AND_WORK_EMAIL}
        )
        await books_agree(client, upstream)

    code, message = refusal(result)
    assert code == "not_in_plan" and PATHS["contact"] in message
    assert upstream.requests("search") == {} and upstream.billed() == 0


@CURRENT
async def test_a_403_from_the_upstream_rereads_the_account_so_the_next_call_is_refused_locally(
    sandbox: SandboxServer, upstream: Upstream
) -> None:
    urls = sample_identifiers(sandbox.url, "url", 3, offset=25)
    fields = ["basic_profile.name", "certifications"]

    async with connect(upstream.url, upstream.key) as client:
        first = await call(
            client, "enrich_person_by_url", {"professional_network_profile_urls": urls[:1], "fields": fields}
        )
        # The plan changes after the server has read it: the next request meets the upstream's 403.
        set_plan(upstream, {"disabled_fields": {PATHS["enrich"]: ["certifications"]}})
        second = await call(
            client, "enrich_person_by_url", {"professional_network_profile_urls": urls[1:2], "fields": fields}
        )
        third = await call(
            client, "enrich_person_by_url", {"professional_network_profile_urls": urls[2:], "fields": fields}
        )
        await books_agree(client, upstream)

    assert charged(first) == 1 == upstream.billed()
    code, message = refusal(second)
    assert code == "upstream_permission_denied"
    assert "certifications" in message and "Nothing was charged" in message
    code, message = refusal(third)
    assert code == "not_in_plan" and "certifications" in message and PATHS["enrich"] in message
    assert upstream.requests("enrich") == {"200": 1, "403": 1}  # the third call sent nothing
    listings = [r for r in account_reads(upstream) if r["path"] == "/account/endpoints"]
    assert len(listings) == 2  # read at the start and again after the 403


# --- 8. rate limits from the account --------------------------------------------------------------------------------


@CURRENT
async def test_the_accounts_enrich_rate_limit_paces_concurrent_calls_and_configuration_cannot_raise_it(
    make_sandbox: Callable[..., SandboxServer],
) -> None:
    sandbox = make_sandbox(rate_window=1.0)
    upstream = Upstream(sandbox.url, canary_key("account-rpm"))
    set_plan(upstream, {"endpoints": {PATHS["enrich"]: {"rpm": 2}}})
    urls = sample_identifiers(sandbox.url, "url", 5)
    results: list[CallToolResult] = []

    async with connect(
        upstream.url, upstream.key, enrich_rpm=100, rate_window_seconds=1.0, max_wait_seconds=20
    ) as client:
        await call(client, "get_budget", {})  # the account is read: the limiter now paces enrich at 2 a window

        async def look_up(url: str) -> None:
            results.append(await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": [url]}))

        with anyio.fail_after(30):
            async with anyio.create_task_group() as group:
                for url in urls:
                    group.start_soon(look_up, url)
        await books_agree(client, upstream)

    assert [r.is_error for r in results] == [False] * len(urls), [text_of(r) for r in results]
    assert upstream.requests("enrich") == {"200": len(urls)}  # more calls than the limit, and not one 429


@CURRENT
async def test_a_lower_configured_enrich_rate_limit_wins_over_the_accounts(
    sandbox: SandboxServer, upstream: Upstream
) -> None:
    set_plan(upstream, {"endpoints": {PATHS["enrich"]: {"rpm": 20}}})
    urls = sample_identifiers(sandbox.url, "url", 3, offset=90)
    results: list[CallToolResult] = []

    async with connect(upstream.url, upstream.key, enrich_rpm=1, max_wait_seconds=0) as client:
        await call(client, "get_budget", {})

        async def look_up(url: str) -> None:
            results.append(await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": [url]}))

        with anyio.fail_after(30):
            async with anyio.create_task_group() as group:
                for url in urls:
                    group.start_soon(look_up, url)
        await books_agree(client, upstream)

    outcomes = sorted(structured(r)["error"]["code"] if r.is_error else "ok" for r in results)
    assert outcomes == ["ok", "rate_limited", "rate_limited"]
    assert upstream.requests("enrich") == {"200": 1}  # held locally at the configured 1, not the account's 20


# --- 9. account prices ----------------------------------------------------------------------------------------------


@CURRENT
async def test_the_accounts_own_enrich_price_is_quoted_charged_and_billed(
    sandbox: SandboxServer, upstream: Upstream
) -> None:
    set_plan(upstream, {"endpoints": {PATHS["enrich"]: {"base_credits": "2"}}})
    urls = [*sample_identifiers(sandbox.url, "url", 3, offset=100), UNKNOWN_URL]

    async with connect(upstream.url, upstream.key) as client:
        result = await call(client, "enrich_person_by_url", {"professional_network_profile_urls": urls})
        books = structured(await call(client, "get_budget", {}))
        await books_agree(client, upstream)

    receipt = structured(result)["receipt"]
    matched = len(people_of(result))
    assert matched == 3 and structured(result)["not_found"] == [UNKNOWN_URL]
    assert Decimal(receipt["estimated"]) == 2 * len(urls)  # quoted at the account's 2 a profile
    assert Decimal(receipt["charged"]) == 2 * matched == upstream.billed()
    assert books["account"]["prices"] == "account"


# --- 10. the account balance ----------------------------------------------------------------------------------------


@CURRENT
async def test_a_call_whose_worst_case_exceeds_the_account_balance_is_refused_before_reserving(
    sandbox: SandboxServer, upstream: Upstream
) -> None:
    assert upstream.post("/_sandbox/balance", {"credits": "2.5"}).status_code == 200
    urls = sample_identifiers(sandbox.url, "url", 3, offset=110)

    async with connect(upstream.url, upstream.key) as client:
        before = structured(await call(client, "get_budget", {}))
        refused = await call(client, "enrich_person_by_url", {"professional_network_profile_urls": urls})
        requests_after_refusal = dict(upstream.ledger()["requests"])
        fits = await call(client, "enrich_person_by_url", {"professional_network_profile_urls": urls[:2]})
        after = structured(await call(client, "get_budget", {}))
        await books_agree(client, upstream)

    assert before["account"]["balance"] == "2.50"
    code, message = refusal(refused)
    assert code == "account_balance_low"
    assert "Crustdata account has only 2.50 credits left" in message and "3.00" in message
    assert set(requests_after_refusal) == {"account"} and structured(refused)["budget"]["spent"] == "0.00"
    assert charged(fits) == 2 == upstream.billed()
    assert after["account"]["balance"] == "0.50"


# --- 11. no credits header ------------------------------------------------------------------------------------------


@BOTH
async def test_without_the_credits_header_the_books_still_match_the_ledger_to_the_hundredth(
    revision: str, make_sandbox: Callable[..., SandboxServer]
) -> None:
    sandbox = make_sandbox(credits_header=False)
    upstream = Upstream(sandbox.url, canary_key("no-header"))
    urls = [*sample_identifiers(sandbox.url, "url", 3), UNKNOWN_URL]
    mixed = pick_urls(sandbox, has_tier("phone_numbers"), 2, 2)
    emails = [
        *single_candidate_emails(sandbox, 1),
        *sample_identifiers(sandbox.url, "multi_email", 1),
        "nobody@mail.example",
    ]
    contact_fields = ["basic_profile.name", "contact.business_emails", "contact.phone_numbers"]

    async with connect(upstream.url, upstream.key) as client:
        results = [
            await call(client, "enrich_person_by_url", {"professional_network_profile_urls": urls}),
            await call(
                client, "enrich_person_by_url", {"professional_network_profile_urls": mixed, "fields": contact_fields}
            ),
            await call(client, "enrich_person_by_email", {"business_emails": emails, "fields": contact_fields}),
            await call(
                client,
                "search_then_enrich",
                {"filters": TITLE_FILTER, "limit": 4, "sorts": [{"field": "crustdata_person_id", "order": "desc"}]},
            ),
        ]
        spent = await books_agree(client, upstream)

    for result in results:
        succeeded(result)
    assert spent == sum((charged(r) for r in results), Decimal(0)) > 0
    assert all(r["status"] in (200, 404) for r in recent(upstream))
    if revision == "current":  # some people lacked a tier: the books followed what came back, not what was asked
        assert charged(results[1]) < Decimal(structured(results[1])["receipt"]["estimated"])


# --- 12. an error answer that reports a bill ------------------------------------------------------------------------


class BilledGatewayError(httpx2.AsyncBaseTransport):
    """The real sandbox behind a gateway that turns the first successful enrich answer into a 502, keeping its
    `x-credits-used`: the work was done and billed, the answer was lost. (The sandbox's own status faults strike
    before processing and bill nothing, so it cannot express this by itself.)"""

    def __init__(self) -> None:
        self._inner = httpx2.AsyncHTTPTransport()
        self.rewritten: list[str] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self._inner.handle_async_request(request)
        if self.rewritten or request.url.path != PATHS["enrich"] or response.status_code != 200:
            return response
        await response.aread()
        await response.aclose()
        billed = response.headers["x-credits-used"]
        self.rewritten.append(billed)
        return httpx2.Response(
            502,
            headers={"x-credits-used": billed, "x-request-id": response.headers.get("x-request-id", "")},
            json={"error": {"type": "bad_gateway", "message": "Bad gateway", "metadata": []}},
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


@ONLY_WITH_CREDITS_HEADER  # the header on an error answer is what is booked
@BOTH
async def test_an_error_answer_that_reports_credits_is_booked_and_not_retried(
    sandbox: SandboxServer, upstream: Upstream
) -> None:
    urls = sample_identifiers(sandbox.url, "url", 4, offset=120)
    gateway = BilledGatewayError()
    settings = settings_for(upstream.url, upstream.key, **OPEN_HANDED)

    async with Client(build_server(settings, transport=gateway)) as client:
        failed = await call(client, "enrich_person_by_url", {"professional_network_profile_urls": urls[:2]})
        later = await call(client, "enrich_person_by_url", {"professional_network_profile_urls": urls[2:]})
        await books_agree(client, upstream)

    [billed] = gateway.rewritten
    assert Decimal(billed) == 2
    code, message = refusal(failed)
    assert code == "upstream_unavailable" and "502" in message
    assert "2.00 credits used" in message and "Nothing was charged" not in message
    assert charged(failed) == Decimal(billed)  # booked from the error answer's header
    assert upstream.requests("enrich") == {"200": 2}  # the billed 502 was not retried: one request per call
    assert charged(failed) + charged(later) == upstream.billed()


# --- 13. only accepted keys on the wire -----------------------------------------------------------------------------


@BOTH
async def test_every_request_body_the_server_sends_carries_only_keys_its_endpoint_accepts(
    revision: str, make_sandbox: Callable[..., SandboxServer]
) -> None:
    sandbox = make_sandbox(enrich_rpm=200, contact_rpm=200, live_rpm=200, search_rpm=200)
    upstream = Upstream(sandbox.url, canary_key("bodies"))
    urls = sample_identifiers(sandbox.url, "url", 6)
    emails = [*single_candidate_emails(sandbox, 2), *sample_identifiers(sandbox.url, "multi_email", 1)]
    contact_fields = ["basic_profile.name", "experience", "contact.business_emails", "contact.personal_emails"]
    search: dict[str, Any] = {
        "filters": {
            "op": "and",
            "conditions": [TITLE_FILTER, {"field": "crustdata_person_id", "type": ">", "value": 0}],
        },
        "sorts": [{"field": "crustdata_person_id", "order": "asc"}],
        "limit": 2,
        "fields": ["basic_profile.name", "contact.phone_numbers"],
    }

    async with connect(upstream.url, upstream.key) as client:
        results = [
            await call(client, "enrich_person_by_url", {"professional_network_profile_urls": urls[:2]}),
            await call(
                client,
                "enrich_person_by_url",
                {"professional_network_profile_urls": urls[:3], "fields": contact_fields},
            ),
            await call(
                client, "enrich_person_by_url", {"professional_network_profile_urls": urls[3:4], "force_fetch": True}
            ),
            await call(
                client,
                "enrich_person_by_url",
                {"professional_network_profile_urls": urls[4:], "enrich_realtime": True, "fields": ["skills"]},
            ),
            await call(client, "enrich_person_by_email", {"business_emails": emails, "min_similarity_score": 0.7}),
            await call(client, "enrich_person_by_email", {"business_emails": emails[:1], "fields": contact_fields}),
        ]
        first_page = await call(client, "search_then_enrich", search)
        cursor = succeeded(first_page)["next_cursor"]
        second_page = await call(client, "search_then_enrich", {**search, "cursor": cursor})
        await books_agree(client, upstream)

    for result in [*results, first_page, second_page]:
        succeeded(result)
    assert structured(second_page)["people"] and structured(second_page)["people"] != structured(first_page)["people"]
    wire = sent(upstream)
    assert 8 <= len(wire) < 200  # every request is still in the ledger's recent list
    endpoints = {endpoint for endpoint, _ in wire}
    accepted: dict[str, frozenset[str]] = {name: REQUEST_PARAMS[PATHS[name]] for name in ("enrich", "contact", "live")}
    accepted["search"] = REQUEST_PARAMS[PATHS["search"]]
    if revision == "overview":
        accepted["enrich"] = OVERVIEW_ENRICH_PARAMS
        assert endpoints == {"enrich", "search"}
    else:
        assert endpoints == {"enrich", "contact", "live", "search"}
    for endpoint, body in wire:
        assert set(body) <= accepted[endpoint], (endpoint, sorted(set(body) - accepted[endpoint]))
        if revision == "current" and endpoint in ("enrich", "live"):
            assert body["fields"] and set(body["fields"]) <= set(ENRICH_GROUPS), body["fields"]
        if endpoint == "contact":
            assert body["fields"] and set(body["fields"]) <= set(CONTACT_TIERS), body["fields"]
    assert any("cursor" in body for endpoint, body in wire if endpoint == "search")
    assert any("sorts" in body for endpoint, body in wire if endpoint == "search")
    if revision == "overview":
        assert any(body.get("force_fetch") for _, body in wire) and any(body.get("enrich_realtime") for _, body in wire)
        assert any("min_similarity_score" in body for _, body in wire)
    else:
        no_refresh_flags(body for _, body in wire)
    statuses = {status for counts in upstream.ledger()["requests"].values() for status in counts}
    assert statuses <= {"200", "404"}, upstream.ledger()["requests"]  # nothing was refused for its shape


@CURRENT
async def test_a_refusal_for_a_missing_endpoint_names_at_most_six_of_the_fields_that_need_it(
    sandbox: SandboxServer, upstream: Upstream
) -> None:
    set_plan(upstream, {"endpoints": {PATHS["enrich"]: {"status": "not_enabled"}}})
    urls = sample_identifiers(sandbox.url, "url", 1, offset=9)
    fields = [
        "basic_profile.name",
        "basic_profile.headline",
        "experience",
        "education",
        "skills",
        "professional_network",
        "dev_platform_profiles",
    ]

    async with connect(upstream.url, upstream.key) as client:
        result = await call(
            client, "enrich_person_by_url", {"professional_network_profile_urls": urls, "fields": fields}
        )

    code, message = refusal(result)
    assert code == "not_in_plan"
    assert PATHS["enrich"] in message
    assert sum(f"{field}," in message or f"{field} needs" in message for field in fields) == 6, message


@CURRENT
async def test_a_best_candidate_exactly_at_min_similarity_score_is_kept_and_its_profile_bought(
    sandbox: SandboxServer, upstream: Upstream
) -> None:
    [email] = sample_identifiers(sandbox.url, "multi_email", 1, offset=1)
    best = sandbox.state.dataset.email_candidates(email)[0].score

    async with connect(upstream.url, upstream.key) as client:
        result = await call(
            client,
            "enrich_person_by_email",
            {"business_emails": [email], "fields": NAME_AND_WORK_EMAIL, "min_similarity_score": best},
        )
        await books_agree(client, upstream)

    assert [p["confidence_score"] for p in people_of(result)] == [best]
    assert dig(people_of(result)[0], "person_data", "basic_profile", "name")  # the profile was bought, at the floor
    assert [endpoint for endpoint, _ in sent(upstream)] == ["contact", "search", "enrich"]
