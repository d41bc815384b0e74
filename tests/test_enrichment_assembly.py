"""How the enrichment pipeline joins, caches and reports what each identifier's requests brought back: people the
opt-out list names (by the URL asked, or by an email an answer shows), misses of the profile and the contact step,
a later request failing after earlier ones were paid, and the last opt-out check before the model sees anyone.

Flows run through a real MCP client against the sandbox; a second lifespan of the same server (same cache store,
same opt-out list) reads the cache the flow left, by the identifier's kind, as the pipeline itself does.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.types import CallToolResult

from person_enrich_mcp.account import AccountView, EndpointAccess
from person_enrich_mcp.api import Dialect, EnrichMatch
from person_enrich_mcp.api.contract import PATHS
from person_enrich_mcp.api.routes import route
from person_enrich_mcp.budget import Quote, Receipt
from person_enrich_mcp.cache import CachedLookup
from person_enrich_mcp.errors import PlanRestrictionError
from person_enrich_mcp.fields import FieldSelection, json_size
from person_enrich_mcp.identifiers import check_business_emails, check_profile_urls
from person_enrich_mcp.pricing import PriceTable
from person_enrich_mcp.privacy.guard import SUPPRESSED_FOUND, SUPPRESSED_UNSENT
from person_enrich_mcp.privacy.subjects import parse_subject
from person_enrich_mcp.privacy.suppression import add_entries
from person_enrich_mcp.sandbox import SandboxServer
from person_enrich_mcp.sandbox.config import FaultRule
from person_enrich_mcp.sandbox.dataset import Person
from person_enrich_mcp.server import build_server
from person_enrich_mcp.state import MemoryStore
from person_enrich_mcp.tools import enrichment
from person_enrich_mcp.tools.context import AppState
from person_enrich_mcp.tools.lookups import Fetched, Kind, Lookup, Need, Plan
from person_enrich_mcp.tools.results import ProblemOut
from tests.conftest import Upstream, canary_key, per_revision, settings_for, text_of
from tests.otel_helpers import SeenSpan, by_name, captured_spans, install_provider

pytestmark = pytest.mark.anyio

CURRENT = pytest.mark.parametrize("revision", ["current"], indirect=True)

# Every call is approved up front (no elicitation here) and the session budget never gets in the way.
OPEN_HANDED: dict[str, Any] = {"confirm_above": 1000, "session_budget": 1000}
NAME = ["basic_profile.name"]
NAME_AND_WORK_EMAIL = ["basic_profile.name", "contact.business_emails"]
UNKNOWN_URL = "https://www.linkedin.com/in/nobody-by-this-name-000000"


# --- helpers ---------------------------------------------------------------------------------------------------------


@asynccontextmanager
async def serving(upstream: Upstream, optout: Path, **overrides: Any) -> AsyncGenerator[tuple[Client, AppState]]:
    """A client of a server with an opt-out file, and the app state of a second lifespan sharing its cache store."""
    if not optout.exists():
        optout.write_text("", encoding="utf-8")
    store = MemoryStore()
    settings = settings_for(upstream.url, upstream.key, suppression_file=str(optout), **{**OPEN_HANDED, **overrides})
    server = build_server(settings, cache_store_factory=lambda: store)
    async with server.settings.lifespan(server) as state, Client(server) as client:  # pyright: ignore[reportOptionalCall]
        yield client, state


def opt_out(path: Path, *subjects: str) -> None:
    add_entries(path, [(parse_subject(subject).hash, "test") for subject in subjects])


async def look_up(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    with anyio.fail_after(60):
        result = await client.call_tool(tool, arguments)
    return succeeded(result)


def succeeded(result: CallToolResult) -> dict[str, Any]:
    assert result.is_error is False, text_of(result)
    structured = cast(dict[str, Any], result.structured_content)
    assert json.loads(text_of(result)) == structured
    return structured


def by_url(urls: list[str], fields: list[str]) -> dict[str, Any]:
    return {"professional_network_profile_urls": urls, "fields": fields}


def matched(result: dict[str, Any]) -> list[str]:
    return [p["matched_on"] for p in cast(list[dict[str, Any]], result["people"])]


def person_out(result: dict[str, Any], identifier: str) -> dict[str, Any]:
    [found] = [p for p in cast(list[dict[str, Any]], result["people"]) if p["matched_on"] == identifier]
    return cast(dict[str, Any], found["person_data"])


def problems(result: dict[str, Any]) -> dict[str, str]:
    return {p["identifier"]: p["reason"] for p in cast(list[dict[str, str]], result.get("problems") or [])}


def sent(upstream: Upstream) -> list[tuple[str, dict[str, Any]]]:
    return [(str(r["endpoint"]), cast(dict[str, Any], r["body"])) for r in upstream.paid_requests()]


def urls_sent(upstream: Upstream) -> list[tuple[str, list[str], int]]:
    """(endpoint, profile URLs, status) of every paid request, oldest first."""
    return [
        (str(r["endpoint"]), list(r["body"].get("professional_network_profile_urls", [])), int(r["status"]))
        for r in upstream.paid_requests()
    ]


def work_emails(person: Person) -> list[str]:
    return [str(e["email"]) for e in cast(list[dict[str, Any]], person.data["contact"]["business_emails"])]


def work_emails_of(person: Person) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], person.data["contact"]["business_emails"])


def dev_emails(person: Person) -> list[str]:
    return [str(d["email"]) for d in cast(list[dict[str, Any]], person.data["dev_platform_profiles"]) if d["email"]]


def people_where(sandbox: SandboxServer, having: Callable[[Person], bool], n: int, offset: int = 0) -> list[Person]:
    """`n` people (not opted out upstream) for whom `having` holds, skipping the first `offset` of them."""
    chosen = [p for p in sandbox.state.dataset.searchable if having(p)][offset : offset + n]
    assert len(chosen) == n, "the dataset has too few such people"
    return chosen


def sole_candidate_owner(sandbox: SandboxServer, offset: int) -> Person:
    """A person whose first work email leads to them alone (an email look-up has one candidate to choose)."""
    dataset = sandbox.state.dataset
    [owner] = people_where(
        sandbox,
        lambda p: bool(p.business_emails) and len(dataset.email_candidates(p.business_emails[0])) == 1,
        1,
        offset,
    )
    return owner


TRACED: dict[str, Any] = {"otel_traces_exporters": ("otlp",)}


def attributes(span: SeenSpan, *names: str) -> dict[str, Any]:
    return {name: span.attributes.get(f"person_enrich.{name}") for name in names}


def planned(spans: list[SeenSpan]) -> list[tuple[str, int]]:
    """(identifier kind, identifiers) of every plan span."""
    return [
        (p.attributes["person_enrich.identifier_kind"], p.attributes["person_enrich.identifiers"])
        for p in by_name(spans, "person_enrich.plan")
    ]


# --- the opt-out list in a URL batch ---------------------------------------------------------------------------------


async def test_opted_out_people_in_a_batch_go_unsent_or_withheld_and_erased_while_the_rest_is_served_whole(
    sandbox: SandboxServer, upstream: Upstream, tmp_path: Path, revision: str
) -> None:
    unsent, withheld, served = people_where(sandbox, lambda p: bool(work_emails(p)), 3, offset=300)
    optout = tmp_path / "optout"
    async with serving(upstream, optout) as (client, state):
        await look_up(client, "enrich_person_by_url", by_url([withheld.profile_url], NAME))
        assert await state.cache.entry("url", withheld.profile_url) is not None  # their name, cached before
        opt_out(optout, unsent.profile_url, work_emails(withheld)[0])
        spelled = unsent.profile_url.replace("https://www.", "").upper() + "/"  # reported as the caller wrote it
        urls = [spelled, withheld.profile_url, served.profile_url]
        result = await look_up(client, "enrich_person_by_url", by_url(urls, NAME_AND_WORK_EMAIL))

        assert matched(result) == [served.profile_url]
        assert person_out(result, served.profile_url) == {
            "basic_profile": {"name": served.data["basic_profile"]["name"]},
            "contact": {"business_emails": served.data["contact"]["business_emails"]},
        }
        assert problems(result) == {spelled: SUPPRESSED_UNSENT, withheld.profile_url: SUPPRESSED_FOUND}
        assert work_emails(withheld)[0] not in json.dumps(result)
        assert "sandbox" not in result  # a real upstream's data is not labelled synthetic
        assert await state.cache.entry("url", withheld.profile_url) is None  # what was kept of them is gone
        assert await state.cache.entry("url", served.profile_url) is not None
        assert await state.cache.entry("url", unsent.profile_url) is None

    bodies = json.dumps(sent(upstream)).lower()
    assert unsent.profile_url.rsplit("/", 1)[1] not in bodies
    # Today the contact step asks for both people found (the opted-out one first); the overview asks once for both.
    contact_urls = [b["professional_network_profile_urls"] for e, b in sent(upstream) if e == "contact"]
    assert contact_urls == per_revision(revision, current=[[withheld.profile_url, served.profile_url]], overview=[])


async def test_a_profile_showing_an_opted_out_developer_email_is_withheld_uncached_and_gets_no_contact_request(
    sandbox: SandboxServer, upstream: Upstream, tmp_path: Path, revision: str
) -> None:
    [withheld] = people_where(sandbox, lambda p: bool(dev_emails(p)), 1, offset=20)
    [served] = people_where(sandbox, lambda p: bool(work_emails(p)) and not dev_emails(p), 1, offset=310)
    optout = tmp_path / "optout"
    opt_out(optout, dev_emails(withheld)[0])  # seen only in the profile's developer-platform section
    fields = ["basic_profile.name", "dev_platform_profiles.name", "contact.business_emails"]
    async with serving(upstream, optout) as (client, state):
        urls = [withheld.profile_url, served.profile_url]
        result = await look_up(client, "enrich_person_by_url", by_url(urls, fields))

        assert matched(result) == [served.profile_url]
        assert person_out(result, served.profile_url) == {
            "basic_profile": {"name": served.data["basic_profile"]["name"]},
            "contact": {"business_emails": served.data["contact"]["business_emails"]},
        }
        assert problems(result) == {withheld.profile_url: SUPPRESSED_FOUND}
        assert await state.cache.entry("url", withheld.profile_url) is None
        assert await state.cache.entry("url", served.profile_url) is not None

    # Today the profile step shows the address, so only the other person's contact tier is bought.
    asked = [(e, b["professional_network_profile_urls"]) for e, b in sent(upstream)]
    assert asked == per_revision(
        revision,
        current=[("enrich", urls), ("contact", [served.profile_url])],
        overview=[("enrich", urls)],
    )


@CURRENT
async def test_an_email_look_up_whose_best_candidates_profile_shows_an_opted_out_email_withholds_the_person(
    sandbox: SandboxServer, upstream: Upstream, tmp_path: Path
) -> None:
    dataset = sandbox.state.dataset

    def alone_behind_their_address(person: Person) -> bool:
        return bool(person.business_emails) and len(dataset.email_candidates(person.business_emails[0])) == 1

    [withheld] = people_where(sandbox, lambda p: bool(dev_emails(p)) and alone_behind_their_address(p), 1, offset=3)
    email = withheld.business_emails[0]
    optout = tmp_path / "optout"
    opt_out(optout, dev_emails(withheld)[0])  # only their profile's developer-platform section shows it
    arguments = {"business_emails": [email], "fields": ["basic_profile.name", "dev_platform_profiles.name"]}
    async with serving(upstream, optout) as (client, state):
        result = await look_up(client, "enrich_person_by_email", arguments)

        assert await state.cache.entry("email", email) is None
        assert await state.cache.entry("url", withheld.profile_url) is None

    assert result["people"] == [] and problems(result) == {email: SUPPRESSED_FOUND}
    assert withheld.data["basic_profile"]["name"] not in json.dumps(result)
    assert [e for e, *_ in urls_sent(upstream)] == ["contact", "search", "enrich"]


# --- what Contact Enrich says about a person -------------------------------------------------------------------------


class ContactGateway(httpx2.AsyncBaseTransport):
    """The real sandbox behind a gateway that rewrites Contact Enrich answers as another upstream could send them:
    URL matches scored `url_score` (the sandbox always says 1.0), and each candidate's profile URL named in its data
    (the sandbox names the person only by id) when `urls_by_id` knows it."""

    def __init__(self, *, url_score: float = 1.0, urls_by_id: dict[int, str] | None = None) -> None:
        self._inner = httpx2.AsyncHTTPTransport()
        self._url_score = url_score
        self._urls_by_id = urls_by_id or {}

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self._inner.handle_async_request(request)
        if request.url.path != PATHS["contact"] or response.status_code != 200:
            return response
        await response.aread()
        await response.aclose()
        entries = cast(list[dict[str, Any]], json.loads(response.content))
        for entry in entries:
            for match in cast(list[dict[str, Any]], entry["matches"]):
                if entry["match_type"] == "professional_network_profile_url":
                    match["confidence_score"] = self._url_score
                url = self._urls_by_id.get(match["person_data"].get("crustdata_person_id"))
                if url is not None:
                    match["person_data"]["social_handles"] = {"professional_network_identifier": {"profile_url": url}}
        kept = {k: v for k, v in response.headers.items() if k.lower() in ("x-credits-used", "x-request-id")}
        return httpx2.Response(200, headers=kept, json=entries)

    async def aclose(self) -> None:
        await self._inner.aclose()


@CURRENT
async def test_a_url_look_up_reports_the_profile_steps_confidence_and_the_contact_steps_only_when_no_profile_was_asked(
    sandbox: SandboxServer, upstream: Upstream, tmp_path: Path
) -> None:
    profiled, contact_only = people_where(sandbox, lambda p: bool(work_emails(p)), 2, offset=340)
    gateway = ContactGateway(url_score=0.9)
    settings = settings_for(upstream.url, upstream.key, **OPEN_HANDED)
    async with Client(build_server(settings, transport=gateway)) as client:
        with_profile = await look_up(
            client, "enrich_person_by_url", by_url([profiled.profile_url], NAME_AND_WORK_EMAIL)
        )
        contact = await look_up(
            client, "enrich_person_by_url", by_url([contact_only.profile_url], ["contact.business_emails"])
        )

    assert [p["confidence_score"] for p in with_profile["people"]] == [1.0]  # the profile step named them
    assert [p["confidence_score"] for p in contact["people"]] == [0.9]
    assert person_out(contact, contact_only.profile_url)["contact"]["business_emails"]


@CURRENT
async def test_an_email_look_up_whose_contact_answer_names_the_profile_url_buys_the_profile_without_a_person_search(
    sandbox: SandboxServer, upstream: Upstream
) -> None:
    owner = sole_candidate_owner(sandbox, offset=12)
    gateway = ContactGateway(urls_by_id={owner.person_id: owner.profile_url})
    settings = settings_for(upstream.url, upstream.key, **OPEN_HANDED)
    arguments = {"business_emails": [owner.business_emails[0]], "fields": NAME_AND_WORK_EMAIL}
    async with Client(build_server(settings, transport=gateway)) as client:
        result = await look_up(client, "enrich_person_by_email", arguments)

    assert person_out(result, owner.business_emails[0])["basic_profile"] == {
        "name": owner.data["basic_profile"]["name"]
    }
    assert urls_sent(upstream)[1:] == [("enrich", [owner.profile_url], 200)]
    assert [e for e, *_ in urls_sent(upstream)] == ["contact", "enrich"]


async def test_planning_sets_aside_a_cached_person_who_opted_out_since_under_the_spelling_asked_and_drops_the_entry(
    sandbox: SandboxServer, upstream: Upstream, tmp_path: Path
) -> None:
    gone, kept, named = people_where(sandbox, lambda p: bool(work_emails(p)), 3, offset=380)
    optout = tmp_path / "optout"
    spelled = gone.profile_url.replace("https://www.", "http://").upper()  # another spelling of their URL
    urls = [spelled, kept.profile_url]
    # The housekeeper would erase them from the cache within seconds; planning must not wait for that.
    async with serving(upstream, optout, housekeeping_seconds=3600) as (client, state):
        await look_up(client, "enrich_person_by_url", by_url(urls, NAME_AND_WORK_EMAIL))
        opt_out(optout, work_emails(gone)[0], named.profile_url)  # only their cached data shows the first
        named_as = named.profile_url.replace("https://www.", "www.").upper()
        lookup = Lookup("url", check_profile_urls([*urls, named_as]), FieldSelection.of(NAME_AND_WORK_EMAIL))
        the_plan = await enrichment.plan(state, lookup)

        assert the_plan.suppressed == {gone.profile_url: spelled, named.profile_url: named_as}
        assert list(the_plan.hits) == [kept.profile_url] and the_plan.needs == []
        assert (the_plan.quote.estimate, the_plan.quote.breakdown) == (
            0,
            "nothing to fetch, 1 more served free from the cache",
        )
        assert await state.cache.entry("url", gone.profile_url) is None
        assert await state.cache.entry("url", kept.profile_url) is not None


@CURRENT  # the overview has no account listing to lack an endpoint
async def test_a_look_up_the_cache_answers_whole_is_not_refused_for_an_endpoint_the_plan_lacks_since(
    sandbox: SandboxServer, upstream: Upstream, tmp_path: Path
) -> None:
    [person] = people_where(sandbox, lambda p: bool(work_emails(p)), 1, offset=390)
    async with serving(upstream, tmp_path / "optout") as (client, state):
        await look_up(client, "enrich_person_by_url", by_url([person.profile_url], NAME_AND_WORK_EMAIL))
        response = upstream.post("/_sandbox/plan", {"endpoints": {PATHS["enrich"]: {"status": "not_enabled"}}})
        assert response.status_code == 200, response.text
        lookup = Lookup("url", check_profile_urls([person.profile_url]), FieldSelection.of(NAME_AND_WORK_EMAIL))
        the_plan = await enrichment.plan(state, lookup)  # this lifespan reads the account now, without enrich
        assert not the_plan.view.enabled("enrich")

    assert list(the_plan.hits) == [person.profile_url] and the_plan.needs == []


# --- misses -----------------------------------------------------------------------------------------------------------


async def test_a_url_the_profile_step_does_not_know_is_cached_as_a_miss_so_asking_again_sends_nothing(
    sandbox: SandboxServer, upstream: Upstream, tmp_path: Path
) -> None:
    [known] = people_where(sandbox, lambda _: True, 1, offset=320)
    urls = [UNKNOWN_URL, known.profile_url]  # the miss first: the answers after it are still read
    async with serving(upstream, tmp_path / "optout") as (client, state):
        first = await look_up(client, "enrich_person_by_url", by_url(urls, NAME))
        requests = len(upstream.paid_requests())
        again = await look_up(client, "enrich_person_by_url", by_url(urls, NAME))

        miss = await state.cache.entry("url", UNKNOWN_URL)
        assert miss is not None and miss.negative

    for result in (first, again):
        assert matched(result) == [known.profile_url] and result["not_found"] == [UNKNOWN_URL]
        assert person_out(result, known.profile_url) == {"basic_profile": {"name": known.data["basic_profile"]["name"]}}
    assert first["receipt"]["charged"] == "1.00"
    assert again["receipt"]["charged"] == again["receipt"]["estimated"] == "0.00"
    assert again["receipt"]["cache_hits"] == 2
    assert len(upstream.paid_requests()) == requests  # the second call sent nothing


@CURRENT
async def test_a_url_only_the_contact_step_was_asked_about_and_did_not_know_is_not_found_and_not_cached_as_a_miss(
    sandbox: SandboxServer, upstream: Upstream, tmp_path: Path
) -> None:
    [known] = people_where(sandbox, lambda p: bool(work_emails(p)), 1, offset=330)
    urls = [UNKNOWN_URL, known.profile_url]
    fields = ["contact.business_emails"]
    async with serving(upstream, tmp_path / "optout") as (client, state):
        first = await look_up(client, "enrich_person_by_url", by_url(urls, fields))
        # Nothing said whether the person exists (no profile was asked for): no miss is cached for the URL.
        assert await state.cache.entry("url", UNKNOWN_URL) is None
        assert await state.cache.entry("url", known.profile_url) is not None
        again = await look_up(client, "enrich_person_by_url", by_url(urls, fields))

    for result in (first, again):
        assert matched(result) == [known.profile_url] and result["not_found"] == [UNKNOWN_URL]
        assert person_out(result, known.profile_url) == {
            "contact": {"business_emails": known.data["contact"]["business_emails"]}
        }
    asked = [(e, b["professional_network_profile_urls"]) for e, b in sent(upstream)]
    assert asked == [("contact", urls), ("contact", [UNKNOWN_URL])]  # the known one came from the cache


# --- a later request failing after earlier ones were paid -------------------------------------------------------------


@CURRENT
async def test_when_a_later_profile_request_fails_the_people_already_fetched_and_the_cache_hits_are_still_served(
    make_sandbox: Callable[..., SandboxServer], tmp_path: Path
) -> None:
    # The fourth profile request fails: the third call's second one (the first three are let through).
    sandbox = make_sandbox(faults=(FaultRule(kind="status", status=400, endpoint="enrich", after=3),))
    upstream = Upstream(sandbox.url, canary_key("later-fails"))
    schooled = people_where(sandbox, lambda p: bool(work_emails(p) and p.data["education"]["schools"]), 3, offset=5)
    partly_cached, unreached, cached = schooled
    fields = ["basic_profile.name", "education.schools.school", "contact.business_emails"]
    install_provider()
    async with serving(upstream, tmp_path / "optout", **TRACED) as (client, state):
        await look_up(client, "enrich_person_by_url", by_url([cached.profile_url], fields))
        await look_up(client, "enrich_person_by_url", by_url([partly_cached.profile_url], NAME))
        # The partly cached person needs only the education group: a request of its own, sent (and paid) first.
        urls = [partly_cached.profile_url, unreached.profile_url, cached.profile_url]
        with captured_spans() as spans:
            result = await look_up(client, "enrich_person_by_url", by_url(urls, fields))

        entry = await state.cache.entry("url", partly_cached.profile_url)
        assert entry is not None and set(entry.selection.paths) >= {"basic_profile.name", "education.schools.school"}

    assert matched(result) == [partly_cached.profile_url, cached.profile_url]  # the unreached one is left out
    assert result["incomplete"] and not result.get("not_found")
    assert person_out(result, partly_cached.profile_url) == {
        "basic_profile": {"name": partly_cached.data["basic_profile"]["name"]},
        "education": {"schools": [{"school": s["school"]} for s in partly_cached.data["education"]["schools"]]},
    }  # its name from the cache, its schools from the request paid for; its contact tier was never asked
    assert person_out(result, cached.profile_url)["contact"]["business_emails"]
    assert result["receipt"]["charged"] == "1.00" and result["receipt"]["cache_hits"] == 1
    assert urls_sent(upstream)[3:] == [
        ("enrich", [partly_cached.profile_url], 200),
        ("enrich", [unreached.profile_url], 400),
    ]
    [fetch] = by_name(spans, "person_enrich.fetch")
    assert fetch.attributes["error.type"] == "upstream_rejected_request" and fetch.status.startswith("ERROR")
    assert attributes(fetch, "identifiers", "steps", "charged", "found") == {
        "identifiers": 2,
        "steps": 4,
        "charged": 1.0,
        "found": 1,
    }


# --- the last check before the model ---------------------------------------------------------------------------------


def candidate(name: str, email: str, score: float) -> EnrichMatch:
    data = {"basic_profile": {"name": name}, "contact": {"business_emails": [{"email": email}]}}
    return EnrichMatch(confidence_score=score, person_data=data)


@CURRENT
async def test_candidates_who_opted_out_after_they_were_fetched_are_withheld_and_counted_before_the_model_sees_them(
    upstream: Upstream, tmp_path: Path
) -> None:
    optout = tmp_path / "optout"
    opt_out(optout, "gone.one@acme.example", "gone.two@acme.example")
    settings = settings_for(upstream.url, upstream.key, suppression_file=str(optout))
    server = build_server(settings)
    emails = ["everyone@acme.example", "some@acme.example", "floor@acme.example"]
    lookup = Lookup("email", check_business_emails(emails), FieldSelection.of(NAME_AND_WORK_EMAIL), min_score=0.8)
    fetched = Fetched(
        matches={
            "everyone@acme.example": [candidate("Gone Two", "gone.two@acme.example", 0.9)],
            "some@acme.example": [
                candidate("Kept", "kept@acme.example", 0.95),
                candidate("Gone One", "gone.one@acme.example", 0.9),
                candidate("Below The Floor", "below@acme.example", 0.5),
            ],
            "floor@acme.example": [candidate("At The Floor", "floor@acme.example", 0.8)],
        },
        dropped=1,  # a further candidate the fetch already left out
    )
    zero = Decimal(0)
    receipt = Receipt("enrich_person_by_email", zero, zero, 0, zero, zero, Decimal(10), "2026-12-01T00:00:00Z")
    async with server.settings.lifespan(server) as state:  # pyright: ignore[reportOptionalCall]
        view = await state.account.view()
        the_plan = Plan(lookup, view, {}, [], Quote(zero, "nothing to fetch"))
        result = enrichment.assemble(state, the_plan, fetched, receipt).model_dump(mode="json", exclude_none=True)

    assert matched(result) == ["some@acme.example", "floor@acme.example"]  # the floor itself passes
    assert [p["person_data"]["basic_profile"]["name"] for p in result["people"]] == ["Kept", "At The Floor"]
    assert problems(result) == {
        "everyone@acme.example": SUPPRESSED_FOUND,
        "(opt-out)": "2 further candidates withheld: on this server's opt-out list",
    }
    assert "gone" not in json.dumps(result).lower()
    assert upstream.paid_requests() == []


# --- what is fetched, given what the cache holds --------------------------------------------------------------------

OVERVIEW = pytest.mark.parametrize("revision", ["overview"], indirect=True)


def fields_sent(upstream: Upstream, since: int) -> list[tuple[str, list[str]]]:
    """(endpoint, fields) of the paid requests after the first `since`."""
    return [(e, list(b.get("fields", []))) for e, b in sent(upstream)[since:]]


@OVERVIEW
async def test_the_overview_re_fetch_adds_the_cached_fields_when_that_costs_nothing_more_and_else_merges_with_them(
    sandbox: SandboxServer, upstream: Upstream, tmp_path: Path
) -> None:
    free_to_add, dearer = people_where(sandbox, lambda p: bool(dev_emails(p)), 2, offset=40)
    headline, developer = ["basic_profile.headline"], ["dev_platform_profiles.name"]
    async with serving(upstream, tmp_path / "optout") as (client, _):
        await look_up(client, "enrich_person_by_url", by_url([free_to_add.profile_url], NAME))
        before = len(sent(upstream))
        wider = await look_up(client, "enrich_person_by_url", by_url([free_to_add.profile_url], headline))
        assert fields_sent(upstream, before) == [("enrich", [*headline, *NAME])]  # the name rides along for free
        both = await look_up(client, "enrich_person_by_url", by_url([free_to_add.profile_url], [*NAME, *headline]))

        await look_up(client, "enrich_person_by_url", by_url([dearer.profile_url], developer))
        before = len(sent(upstream))
        narrower = await look_up(client, "enrich_person_by_url", by_url([dearer.profile_url], NAME))
        assert fields_sent(upstream, before) == [("enrich", NAME)]  # the add-on would cost one more: not asked again
        all_of_it = await look_up(client, "enrich_person_by_url", by_url([dearer.profile_url], [*NAME, *developer]))

    assert wider["receipt"]["charged"] == narrower["receipt"]["charged"] == "1.00"
    for served in (both, all_of_it):  # the entry covers what the earlier call paid for and what the later one did
        assert served["receipt"]["charged"] == "0.00" and served["receipt"]["cache_hits"] == 1
    assert person_out(all_of_it, dearer.profile_url)["dev_platform_profiles"]
    assert person_out(all_of_it, dearer.profile_url)["basic_profile"] == {"name": dearer.data["basic_profile"]["name"]}


@CURRENT
async def test_today_a_partly_cached_url_asks_only_for_the_groups_and_tiers_its_entry_lacks(
    sandbox: SandboxServer, upstream: Upstream, tmp_path: Path
) -> None:
    [person] = people_where(sandbox, lambda p: bool(work_emails(p)), 1, offset=360)
    cached = ["basic_profile.name", "contact.business_emails"]
    asked = ["basic_profile.headline", "experience.employment_details.current.title", "contact.business_emails"]
    async with serving(upstream, tmp_path / "optout") as (client, _):
        await look_up(client, "enrich_person_by_url", by_url([person.profile_url], cached))
        before = len(sent(upstream))
        more = await look_up(client, "enrich_person_by_url", by_url([person.profile_url], asked))
        assert fields_sent(upstream, before) == [("enrich", ["basic_profile", "experience"])]  # the tier is cached
        everything = await look_up(client, "enrich_person_by_url", by_url([person.profile_url], [*cached, *asked]))

    assert more["receipt"]["charged"] == "1.00"
    assert everything["receipt"]["charged"] == "0.00" and everything["receipt"]["cache_hits"] == 1
    assert person_out(everything, person.profile_url)["contact"]["business_emails"] == work_emails_of(person)


@CURRENT
async def test_an_email_whose_entry_lacks_a_field_is_resolved_again_in_full_and_its_profile_comes_from_the_url_cache(
    sandbox: SandboxServer, upstream: Upstream, tmp_path: Path
) -> None:
    owner = sole_candidate_owner(sandbox, offset=40)
    arguments = {"business_emails": owner.business_emails[:1], "fields": NAME}
    async with serving(upstream, tmp_path / "optout") as (client, _):
        await look_up(client, "enrich_person_by_email", arguments)
        before = len(sent(upstream))
        wider = await look_up(
            client, "enrich_person_by_email", {**arguments, "fields": [*NAME, "basic_profile.headline"]}
        )

    # The address is resolved again (an email's entry is never topped up), and the profile step finds the person's
    # URL entry from the first call: only the missing headline's group is bought.
    assert [e for e, _ in fields_sent(upstream, before)] == ["contact", "search", "enrich"]
    assert fields_sent(upstream, before)[2] == ("enrich", ["basic_profile"])
    assert person_out(wider, owner.business_emails[0])["basic_profile"]["name"] == owner.data["basic_profile"]["name"]


def test_the_urls_a_look_up_returned_are_those_with_people_from_the_cache_or_the_upstream_and_only_for_urls() -> None:
    person = [candidate("Someone", "someone@acme.example", 1.0)]
    prices = DOCUMENTED[Dialect.CURRENT]
    view = AccountView(Dialect.CURRENT, "account", prices)
    hits = {
        "https://www.linkedin.com/in/cached-1": CachedLookup(person),
        "https://www.linkedin.com/in/miss-1": CachedLookup([]),
    }
    fetched = Fetched(
        matches={"https://www.linkedin.com/in/fetched-1": person, "https://www.linkedin.com/in/nobody-1": []}
    )
    by_url_plan = Plan(
        Lookup("url", check_profile_urls([]), FieldSelection.of(NAME)), view, hits, [], Quote(Decimal(0), "")
    )
    assert enrichment.returned_urls(by_url_plan, fetched) == [
        "https://www.linkedin.com/in/cached-1",
        "https://www.linkedin.com/in/fetched-1",
    ]
    by_email = Plan(
        Lookup("email", check_business_emails([]), FieldSelection.of(NAME)), view, hits, [], Quote(Decimal(0), "")
    )
    assert enrichment.returned_urls(by_email, fetched) == []
    assert enrichment.charged_total(None) == (Decimal(0), Decimal(0))


# --- quotes and the endpoints a route needs ------------------------------------------------------------------------


DOCUMENTED = {dialect: PriceTable.documented(dialect) for dialect in (Dialect.CURRENT, Dialect.OVERVIEW)}
PRICED = FieldSelection.of(["basic_profile.name", "dev_platform_profiles.name", "contact.personal_emails"])


@pytest.mark.parametrize(
    ("dialect", "contact_only", "cheaper"),
    [
        (
            Dialect.CURRENT,
            "2.00 credits",  # today's contact step alone: the tier
            ("drop dev_platform_profiles (+1.00 a profile)", "drop contact.personal_emails (+2.00 a profile)"),
        ),
        (
            Dialect.OVERVIEW,
            "3.00 credits",  # the overview's enrich: a profile and the add-on
            ("drop contact.personal_emails (+2.00 a profile)", "drop dev_platform_profiles (+1.00 a profile)"),
        ),
    ],
    ids=["current", "overview"],
)
def test_a_quote_groups_the_profiles_by_worst_case_dearest_first_and_names_each_priced_field_to_drop(
    dialect: Dialect, contact_only: str, cheaper: tuple[str, ...]
) -> None:
    prices = DOCUMENTED[dialect]
    lookup = Lookup("url", check_profile_urls([]), PRICED)
    needs = [
        Need("a", PRICED.paths, route(dialect, PRICED.paths)),
        Need("b", PRICED.paths, route(dialect, PRICED.paths)),
        Need("c", ("contact.personal_emails",), route(dialect, ("contact.personal_emails",))),
        Need("d", ("basic_profile.name",), route(dialect, ("basic_profile.name",))),
    ]
    quote = enrichment.quote_for(lookup, prices, needs, 3)

    assert quote.breakdown == (
        f"2 profiles × up to 4.00 credits + 1 profile × up to {contact_only} + 1 profile × up to 1.00 credit, "
        "3 more served free from the cache"
    )
    assert quote.estimate == 8 + Decimal(contact_only.split()[0]) + 1
    assert quote.ways_to_lower == (*cheaper, "look up fewer people")

    fresh = Lookup("url", check_profile_urls([]), PRICED, force_fetch=True)
    live = [Need("a", PRICED.paths, route(dialect, PRICED.paths, live=True))]
    assert enrichment.quote_for(fresh, prices, live, 0).ways_to_lower == (
        *cheaper,
        "drop force_fetch/enrich_realtime (7.00 a profile)",
    )


def test_an_email_quote_adds_the_resolving_tier_and_the_person_search_to_each_profile_today() -> None:
    lookup = Lookup("email", check_business_emails([]), FieldSelection.of(NAME))
    need = [Need("a@acme.example", tuple(NAME), route(Dialect.CURRENT, tuple(NAME)))] * 2
    quote = enrichment.quote_for(lookup, DOCUMENTED[Dialect.CURRENT], need, 0)
    assert (quote.estimate, quote.breakdown) == (Decimal("4.06"), "2 profiles × up to 2.03 credits")
    assert quote.ways_to_lower == ("look up fewer people",)  # two are already more than one
    overview = [Need("a@acme.example", tuple(NAME), route(Dialect.OVERVIEW, tuple(NAME)))]
    assert enrichment.quote_for(lookup, DOCUMENTED[Dialect.OVERVIEW], overview, 0).estimate == Decimal(1)


def test_a_quote_with_nothing_to_fetch_costs_nothing_and_offers_no_way_to_spend_less() -> None:
    lookup = Lookup("url", check_profile_urls([]), FieldSelection.of(NAME))
    quote = enrichment.quote_for(lookup, DOCUMENTED[Dialect.CURRENT], [], 2)
    assert (quote.estimate, quote.breakdown, quote.ways_to_lower) == (
        Decimal(0),
        "nothing to fetch, 2 more served free from the cache",
        (),
    )
    assert isinstance(quote.estimate, Decimal)  # money is Decimal, even when it is nothing
    one = enrichment.quote_for(
        lookup,
        DOCUMENTED[Dialect.CURRENT],
        [Need("a", ("basic_profile.name",), route(Dialect.CURRENT, ("basic_profile.name",)))],
        0,
    )
    assert (one.estimate, one.breakdown, one.ways_to_lower) == (Decimal(1), "1 profile × up to 1.00 credit", ())


def test_the_endpoints_a_route_needs_name_the_paths_that_need_each() -> None:
    today = route(Dialect.CURRENT, PRICED.paths)
    groups = ("basic_profile", "dev_platform_profiles")
    tier = ("contact.personal_emails",)
    assert enrichment.endpoints_needed("url", today) == {"enrich": groups, "contact": tier}
    assert enrichment.endpoints_needed("email", today) == {"enrich": groups, "search": groups, "contact": tier}
    assert enrichment.endpoints_needed("url", route(Dialect.CURRENT, PRICED.paths, live=True)) == {
        "live": groups,
        "contact": tier,
    }
    # An email is resolved by Contact Enrich even when no tier is asked for; a URL without tiers never needs it.
    name = route(Dialect.CURRENT, ("basic_profile.name",))
    assert enrichment.endpoints_needed("email", name) == {
        "enrich": ("basic_profile",),
        "search": ("basic_profile",),
        "contact": ("contact.business_emails",),
    }
    assert enrichment.endpoints_needed("url", name) == {"enrich": ("basic_profile",)}
    assert enrichment.endpoints_needed("email", route(Dialect.CURRENT, tier)) == {"contact": tier}
    overview = route(Dialect.OVERVIEW, PRICED.paths, live=True)
    assert enrichment.endpoints_needed("email", overview) == {"enrich": PRICED.paths}


@CURRENT
async def test_the_result_carries_everything_around_the_people_and_gives_the_people_what_the_cap_leaves(
    upstream: Upstream,
) -> None:
    settings = settings_for(upstream.url, upstream.key, max_result_bytes=8_000, sandbox=True)
    server = build_server(settings)
    originals = [f"Person.{i}@ACME.example" for i in range(25)]
    unknown = [f"nobody.by.this.rather.long.name.number.{i}@ACME.example" for i in range(10)]
    lookup = Lookup("email", check_business_emails(originals + unknown), FieldSelection.of(["basic_profile.headline"]))
    headline = "A headline that takes room in every result, short enough to be kept whole by the size cap. " + "h" * 10
    people = {
        normalised: [EnrichMatch(confidence_score=0.9, person_data={"basic_profile": {"headline": f"{i} {headline}"}})]
        for i, normalised in enumerate(lookup.batch.normalised[:25])
    }
    people.update({normalised: [] for normalised in lookup.batch.normalised[25:]})
    cached = lookup.batch.normalised[0]
    fetched = Fetched(
        matches={k: v for k, v in people.items() if k != cached},
        problems=[(lookup.batch.normalised[1], "one look-up came back incomplete")],
    )
    notes = [f"a note the result must carry, number {i}: " + "n" * 300 for i in range(3)]
    why_empty = ["why the page was empty: " + "w" * 300, "and why else: " + "w" * 300]
    extra = [ProblemOut(identifier=f"extra-{i}", reason="r" * 200) for i in range(3)]
    zero = Decimal(0)
    receipt = Receipt("enrich_person_by_email", zero, zero, 1, zero, zero, Decimal(10), "2026-12-01T00:00:00Z")
    async with server.settings.lifespan(server) as state:  # pyright: ignore[reportOptionalCall]
        view = await state.account.view()
        hits = {cached: CachedLookup(people[cached])}
        the_plan = Plan(lookup, view, hits, [], Quote(zero, "nothing to fetch"))
        result = enrichment.assemble(
            state, the_plan, fetched, receipt, extra_problems=extra, total_count=123, next_cursor="next-page",
            incomplete="stopped part-way", why_empty=why_empty, notes=notes,
        ).model_dump(mode="json", exclude_none=True)  # fmt: skip

    assert (result["total_count"], result["next_cursor"], result["incomplete"]) == (
        123,
        "next-page",
        "stopped part-way",
    )
    assert result["why_empty"] == why_empty and result["notes"][:3] == notes and result["sandbox"] is True
    assert result["receipt"]["cache_hits"] == 1
    listed = problems(result)
    assert listed["Person.1@ACME.example"] == "one look-up came back incomplete"  # named as the caller wrote it
    assert all(listed[f"extra-{i}"] == "r" * 200 for i in range(3))
    shown = cast(list[dict[str, Any]], result["people"])
    assert shown[0] == {
        "matched_on": "Person.0@ACME.example",
        "match_type": "business_email",
        "confidence_score": 0.9,
        "person_data": {"basic_profile": {"headline": f"0 {headline}"}},
        "cached": True,
    }
    assert all("cached" not in person for person in shown[1:])
    # The people got what the cap left after the envelope, the problems, the notes and the reasons: no more.
    assert result["not_found"] == unknown
    room = 8_000 - 1_500 - json_size(result["problems"]) - json_size(unknown) - json_size(notes) - json_size(why_empty)
    assert json_size(shown) <= room < json_size(shown) + json_size(shown[-1]) + 2
    assert "omitted" in result["truncated"] and 10 < len(shown) < 25


# --- progress: one step per request kind an identifier needs ---------------------------------------------------------


async def progress_of(client: Client, tool: str, arguments: dict[str, Any]) -> list[tuple[float, float | None]]:
    seen: list[tuple[float, float | None]] = []

    async def progress(progress: float, total: float | None, message: str | None) -> None:
        del message
        seen.append((progress, total))

    with anyio.fail_after(60):
        result = await client.call_tool(tool, arguments, progress_callback=progress)
    succeeded(result)
    return seen


async def test_progress_counts_a_step_per_request_kind_each_identifier_needs_and_ends_complete(
    sandbox: SandboxServer, upstream: Upstream, tmp_path: Path, revision: str
) -> None:
    a, b, c, d = people_where(sandbox, lambda p: bool(work_emails(p)), 4, offset=370)
    owner = sole_candidate_owner(sandbox, offset=50)
    async with serving(upstream, tmp_path / "optout") as (client, _):
        profile_and_tier = await progress_of(
            client, "enrich_person_by_url", by_url([a.profile_url, b.profile_url], NAME_AND_WORK_EMAIL)
        )
        tier_only = await progress_of(
            client, "enrich_person_by_url", by_url([c.profile_url, d.profile_url], ["contact.business_emails"])
        )
        by_email = await progress_of(
            client, "enrich_person_by_email", {"business_emails": owner.business_emails[:1], "fields": NAME}
        )
        # Nobody found by the profile step: its contact request is never sent, and the progress still completes.
        nobody = await progress_of(client, "enrich_person_by_url", by_url([UNKNOWN_URL], NAME_AND_WORK_EMAIL))

    # Today: a profile and a contact request per URL; the address's contact step and its profile (the person
    # search in between is not an identifier's step). The overview: one enrich per identifier.
    assert profile_and_tier == per_revision(revision, current=[(2, 4), (4, 4)], overview=[(2, 2)])
    assert tier_only == [(2, 2)]
    assert by_email == per_revision(revision, current=[(1, 2), (2, 2)], overview=[(1, 1)])
    assert nobody == per_revision(revision, current=[(1, 2), (2, 2)], overview=[(1, 1)])


# --- what the plan and the fetch tell a trace ------------------------------------------------------------------------


@CURRENT
async def test_the_plan_and_fetch_spans_count_what_was_suppressed_served_from_the_cache_fetched_and_charged(
    sandbox: SandboxServer, upstream: Upstream, tmp_path: Path
) -> None:
    unsent, cached, first, second = people_where(sandbox, lambda p: bool(work_emails(p)), 4, offset=350)
    optout = tmp_path / "optout"
    install_provider()  # before the server takes its tracer
    async with serving(upstream, optout, **TRACED) as (client, _):
        await look_up(client, "enrich_person_by_url", by_url([cached.profile_url], NAME_AND_WORK_EMAIL))
        opt_out(optout, unsent.profile_url)
        urls = [unsent.profile_url, cached.profile_url, first.profile_url, second.profile_url]
        with captured_spans() as spans:
            result = await look_up(client, "enrich_person_by_url", by_url(urls, NAME_AND_WORK_EMAIL))

    plans = by_name(spans, "person_enrich.plan")  # the confirmation step's and the call's
    assert len(plans) == 2
    for plan in plans:
        assert attributes(
            plan, "identifier_kind", "identifiers", "dialect", "cache_hits", "to_fetch", "suppressed"
        ) == {
            "identifier_kind": "url",
            "identifiers": 4,
            "dialect": "current",
            "cache_hits": 1,
            "to_fetch": 2,
            "suppressed": 1,
        }
        assert plan.attributes["person_enrich.estimate"] == 4.0  # two profiles × (1 + the work-email tier)
    [fetch] = by_name(spans, "person_enrich.fetch")
    charged = float(result["receipt"]["charged"])
    assert attributes(fetch, "identifier_kind", "identifiers", "steps", "charged", "unverified", "found") == {
        "identifier_kind": "url",
        "identifiers": 2,
        "steps": 4,  # a profile request and a contact request for each
        "charged": charged,
        "unverified": 0.0,
        "found": 2,
    }
    assert charged >= 2 and "error.type" not in fetch.attributes


@CURRENT
async def test_an_email_look_up_plans_a_profile_step_only_for_the_candidates_it_found(
    sandbox: SandboxServer, upstream: Upstream, tmp_path: Path
) -> None:
    owner = sole_candidate_owner(sandbox, offset=30)
    unknown = "nobody.here@" + owner.business_emails[0].split("@")[1]
    install_provider()
    async with serving(upstream, tmp_path / "optout", **TRACED) as (client, _):
        with captured_spans() as missed:
            await look_up(client, "enrich_person_by_email", {"business_emails": [unknown], "fields": NAME})
        with captured_spans() as found:
            await look_up(
                client, "enrich_person_by_email", {"business_emails": [owner.business_emails[0]], "fields": NAME}
            )

    kinds = [
        (p.attributes["person_enrich.identifier_kind"], p.attributes["person_enrich.identifiers"])
        for p in by_name(missed, "person_enrich.plan")
    ]
    assert kinds == [("email", 1), ("email", 1)]  # the confirmation step's and the call's: no profile step planned
    kinds = [
        (p.attributes["person_enrich.identifier_kind"], p.attributes["person_enrich.identifiers"])
        for p in by_name(found, "person_enrich.plan")
    ]
    assert sorted(kinds) == [("email", 1), ("email", 1), ("url", 1)]


# --- what the account's plan refuses before anything is reserved ------------------------------------------------------


def account(*, off: tuple[str, ...] = (), withheld: dict[str, tuple[str, ...]] | None = None) -> AccountView:
    """Today's account with the named endpoints not enabled and some fields withheld per endpoint."""
    denied = withheld or {}
    endpoints = {
        name: EndpointAccess(name, PATHS[name], name not in off, None, frozenset(denied.get(name, ())))
        for name in ("enrich", "contact", "live", "search")
    }
    return AccountView(Dialect.CURRENT, "account", DOCUMENTED[Dialect.CURRENT], endpoints=endpoints)


def refusal(view: AccountView, kind: Kind, fields: list[str], needs: list[Need] | None = None, **flags: bool) -> str:
    lookup = Lookup(kind, check_profile_urls([]), FieldSelection.of(fields), **flags)
    with pytest.raises(PlanRestrictionError) as refused:
        enrichment.check_access(view, lookup, needs)
    assert "Nothing was sent or spent" in str(refused.value)
    return str(refused.value)


def test_a_withheld_field_refuses_the_look_ups_that_touch_it_from_either_side_and_no_other() -> None:
    inside = account(withheld={"enrich": ("certifications.name",)})
    assert "certifications.name on /person/enrich" in refusal(inside, "url", ["certifications"])
    whole = account(withheld={"enrich": ("certifications",)})
    assert "withholds certifications on /person/enrich" in refusal(whole, "url", ["certifications.name"])
    assert "withholds certifications on" in refusal(whole, "url", ["certifications", "basic_profile.name"])
    # A field whose name merely begins with a withheld one's (either way round) is not inside it.
    website = "experience.employment_details.current.company_website"
    for withheld, asked in ((website, f"{website}_domain"), (f"{website}_domain", website)):
        sibling = account(withheld={"enrich": (withheld,)})
        enrichment.check_access(sibling, Lookup("url", check_profile_urls([]), FieldSelection.of([asked])))
    tier = account(withheld={"contact": ("contact.phone_numbers",)})
    assert "withholds contact.phone_numbers on /person/contact/enrich" in refusal(
        tier, "url", ["basic_profile.name", "contact.phone_numbers"]
    )


def test_a_refusal_names_at_most_eight_withheld_fields_and_counts_the_rest() -> None:
    withheld = tuple(f"certifications.{leaf}" for leaf in "abcdefghij")  # ten, all inside what is asked
    message = refusal(account(withheld={"enrich": withheld}), "url", ["certifications"])
    shown = ", ".join(withheld[:8])
    assert f"withholds {shown} and 2 more on /person/enrich" in message
    message = refusal(account(withheld={"enrich": withheld[:8]}), "url", ["certifications"])
    assert f"withholds {shown} on /person/enrich" in message  # exactly eight: all named
    message = refusal(account(withheld={"enrich": withheld[:9]}), "url", ["certifications"])
    assert f"withholds {shown} and 1 more on /person/enrich" in message


def test_each_endpoint_a_look_up_needs_is_checked_and_only_those_its_fetch_needs() -> None:
    both = ["basic_profile.name", "contact.business_emails"]
    assert PATHS["search"] in refusal(account(off=("search",)), "email", NAME)
    assert PATHS["contact"] in refusal(account(off=("contact",)), "email", NAME)  # it resolves the address
    assert PATHS["contact"] in refusal(account(off=("contact",)), "url", both)
    live = refusal(account(off=("live",)), "url", NAME, force_fetch=True)
    assert PATHS["live"] in live and "force_fetch/enrich_realtime (a fresh fetch from the web) needs" in live
    assert "Call again without force_fetch and enrich_realtime" in live
    enrichment.check_access(
        account(off=("contact", "search")), Lookup("url", check_profile_urls([]), FieldSelection.of(NAME))
    )
    # Without needs the whole selection counts; with them only what is fetched (a cached profile needs no enrich).
    title = "experience.employment_details.current.title"
    message = refusal(account(off=("enrich",)), "url", [*both, title])
    assert f"{PATHS['enrich']}, which basic_profile.name, {title} needs" in message
    tier_only = [Need("a", ("contact.business_emails",), route(Dialect.CURRENT, ("contact.business_emails",)))]
    lookup = Lookup("url", check_profile_urls([]), FieldSelection.of(both))
    enrichment.check_access(account(off=("enrich",)), lookup, tier_only)
    enrichment.check_access(account(off=("enrich",)), lookup, [])
