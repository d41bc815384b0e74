"""AccountService over httpx2.MockTransport and a MemoryStore, with a fake clock: the free account reads.

Dialect detection (listing, then the remembered answer, then the free probe), pinning, the limits applied to the
limiter, the account's own prices, endpoint and field access, the balance and its refreshes, and the one-time
fallback warning.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx2
import pytest
from pydantic import SecretStr

from person_enrich_mcp.account import AccountService, AccountView, prices_from
from person_enrich_mcp.api import (
    ACCOUNT,
    AUTOCOMPLETE,
    CONTACT,
    ENRICH,
    LIVE,
    SEARCH,
    AccountListing,
    Dialect,
    PersonAPI,
    RateLimiter,
    RetryPolicy,
)
from person_enrich_mcp.api.contract import DOCUMENTED_RPM
from person_enrich_mcp.errors import AuthenticationError
from person_enrich_mcp.pricing import Price, PriceTable
from person_enrich_mcp.state import MemoryStore

pytestmark = pytest.mark.anyio

LISTING_PATH = "/account/endpoints"
CREDITS_PATH = "/user/credits"
PROBE_PATH = "/person/contact/enrich"
FALLBACK_WARNING = "using configured rate limits and the documented prices"
ALL_ENDPOINTS = (ENRICH, CONTACT, LIVE, SEARCH, AUTOCOMPLETE, ACCOUNT)
REFRESH = 600.0
BALANCE = 60.0

Step = Callable[[httpx2.Request], httpx2.Response]


# --- fakes ------------------------------------------------------------------------------------------------------------


class FakeTime:
    def __init__(self) -> None:
        self.now = 50_000.0

    def clock(self) -> float:
        return self.now


@dataclass
class Sleeper:
    time: FakeTime
    waits: list[float] = field(default_factory=list[float])

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.time.now += seconds


def reply(status: int, body: object = None) -> Step:
    def step(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, json=body) if body is not None else httpx2.Response(status, content=b"")

    return step


def unreachable(request: httpx2.Request) -> httpx2.Response:
    raise httpx2.ConnectError("connection refused", request=request)


def entry(
    path: str,
    *,
    status: str = "enabled",
    rpm: float | None = None,
    base: float | None = None,
    premium: Mapping[str, float] | None = None,
    disabled: Sequence[str] = (),
) -> dict[str, Any]:
    listed: dict[str, Any] = {
        "path": path,
        "category": "Person",
        "status": status,
        "effective_rate_limit_rpm": rpm,
        "fields": {"enabled": ["basic_profile.name"], "disabled": list(disabled)},
    }
    if base is not None:
        listed["base_credits"] = base
    if premium is not None:
        listed["premium_fields"] = [{"field": f, "credits": c} for f, c in premium.items()]
    return listed


def listing(*entries: dict[str, Any], token_limit_rpm: float | None = None) -> dict[str, Any]:
    return {"api_version": "2025-11-01", "token_limit_rpm": token_limit_rpm, "endpoints": list(entries)}


TODAY = listing(entry("/person/enrich"), entry("/person/contact/enrich"), entry("/person/search"))
OVERVIEW_LISTING = listing(entry("/person/enrich"), entry("/person/search"))


class Upstream:
    """A fake upstream whose answers are scripted per path (the last answer repeats)."""

    def __init__(self, routes: Mapping[str, Step | Sequence[Step]]) -> None:
        self.routes: dict[str, list[Step]] = {
            path: [steps] if callable(steps) else list(steps) for path, steps in routes.items()
        }
        self.requests: list[httpx2.Request] = []

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        steps = self.routes[request.url.path]
        seen = sum(1 for r in self.requests if r.url.path == request.url.path)
        return steps[min(seen, len(steps)) - 1](request)

    def count(self, path: str) -> int:
        return sum(1 for r in self.requests if r.url.path == path)


@dataclass
class Harness:
    upstream: Upstream
    api: PersonAPI
    store: MemoryStore
    time: FakeTime
    limiter: RateLimiter

    def service(self, **options: Any) -> AccountService:
        settings: dict[str, Any] = {
            "scope": "acct",
            "refresh_seconds": REFRESH,
            "balance_seconds": BALANCE,
            "clock": self.time.clock,
            **options,
        }
        return AccountService(self.api, self.store, **settings)


@asynccontextmanager
async def harness(routes: Mapping[str, Step | Sequence[Step]]) -> AsyncGenerator[Harness]:
    time = FakeTime()
    store = MemoryStore(clock=time.clock)
    limiter = RateLimiter(
        store,
        limits={},
        window_seconds=60.0,
        max_wait=600.0,
        bucket_prefix="test",
        clock=time.clock,
        sleep=Sleeper(time),
    )
    upstream = Upstream({CREDITS_PATH: reply(200, {"credits": 100}), **routes})
    api = PersonAPI(
        base_url="https://api.person.test",
        api_key=SecretStr("sk-test-account"),
        limiter=limiter,
        retry=RetryPolicy(max_retries=1, base_delay=0.01, max_delay=0.05),
        timeout=httpx2.Timeout(5.0),
        user_agent="person-enrich-mcp/0.1.0 (+tests)",
        transport=httpx2.MockTransport(upstream.handle),
        sleep=Sleeper(time),
    )
    try:
        yield Harness(upstream, api, store, time, limiter)
    finally:
        await api.aclose()


def fallback_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.get_records("call") if r.levelno == logging.WARNING and FALLBACK_WARNING in r.getMessage()
    ]


# --- dialect ----------------------------------------------------------------------------------------------------------


async def test_a_listing_that_names_contact_enrich_means_todays_dialect_without_a_probe() -> None:
    async with harness({LISTING_PATH: reply(200, TODAY)}) as h:
        view = await h.service().view()

    assert (view.dialect, view.dialect_source, view.source) == (Dialect.CURRENT, "listing", "account")
    assert h.upstream.count(PROBE_PATH) == 0


async def test_a_listing_of_person_endpoints_without_contact_enrich_means_the_overviews_dialect() -> None:
    async with harness({LISTING_PATH: reply(200, OVERVIEW_LISTING)}) as h:
        view = await h.service().view()

    assert (view.dialect, view.dialect_source) == (Dialect.OVERVIEW, "listing")
    assert view.prices.dialect is Dialect.OVERVIEW
    assert h.upstream.count(PROBE_PATH) == 0


async def test_the_listing_is_asked_for_the_person_category() -> None:
    async with harness({LISTING_PATH: reply(200, TODAY)}) as h:
        await h.service().view()

    listing_request = next(r for r in h.upstream.requests if r.url.path == LISTING_PATH)
    assert listing_request.method == "GET"
    assert dict(listing_request.url.params) == {"category": "Person"}


@pytest.mark.parametrize(
    ("probe", "dialect"), [(400, Dialect.CURRENT), (404, Dialect.OVERVIEW)], ids=["400 current", "404 overview"]
)
async def test_without_a_listing_an_empty_contact_request_decides_the_dialect(probe: int, dialect: Dialect) -> None:
    async with harness({LISTING_PATH: reply(404, {"message": "Not Found"}), PROBE_PATH: reply(probe, {})}) as h:
        view = await h.service().view()

    probes = [r for r in h.upstream.requests if r.url.path == PROBE_PATH]
    assert (view.dialect, view.dialect_source) == (dialect, "probe")
    assert [(r.method, json.loads(r.content)) for r in probes] == [("POST", {})]


async def test_a_listing_naming_no_person_endpoint_falls_back_to_the_probe() -> None:
    other = listing({"path": "/company/enrich", "status": "enabled"})
    async with harness({LISTING_PATH: reply(200, other), PROBE_PATH: reply(404, {})}) as h:
        view = await h.service().view()

    assert (view.dialect, view.dialect_source) == (Dialect.OVERVIEW, "probe")
    assert h.upstream.count(PROBE_PATH) == 1


@pytest.mark.parametrize("probe", [reply(500, {}), unreachable], ids=["500", "unreachable"])
async def test_an_undecided_probe_assumes_today_and_is_not_remembered(probe: Step) -> None:
    async with harness({LISTING_PATH: reply(404, {}), PROBE_PATH: probe}) as h:
        service = h.service()
        first = await service.view()
        service.invalidate()
        second = await service.view()
        other = await h.service().view()

    assert (first.dialect, first.dialect_source) == (Dialect.CURRENT, "assumed")
    assert (second.dialect_source, other.dialect_source) == ("assumed", "assumed")
    # Every read probes again (with one retry each): nothing was remembered.
    assert h.upstream.count(PROBE_PATH) == 3 * 2


async def test_a_probed_dialect_is_remembered_for_another_service_on_the_same_store() -> None:
    async with harness({LISTING_PATH: reply(404, {}), PROBE_PATH: reply(404, {})}) as h:
        first = await h.service().view()
        second = await h.service().view()

    assert (first.dialect, first.dialect_source) == (Dialect.OVERVIEW, "probe")
    assert (second.dialect, second.dialect_source) == (Dialect.OVERVIEW, "remembered")
    assert h.upstream.count(PROBE_PATH) == 1


async def test_a_dialect_read_from_the_listing_is_remembered_too() -> None:
    async with harness({LISTING_PATH: [reply(200, OVERVIEW_LISTING), reply(404, {})], PROBE_PATH: reply(400, {})}) as h:
        first = await h.service().view()
        second = await h.service().view()

    assert (first.dialect, second.dialect) == (Dialect.OVERVIEW, Dialect.OVERVIEW)
    assert second.dialect_source == "remembered"
    assert h.upstream.count(PROBE_PATH) == 0


async def test_the_remembered_dialect_is_per_scope() -> None:
    async with harness({LISTING_PATH: reply(404, {}), PROBE_PATH: [reply(404, {}), reply(400, {})]}) as h:
        first = await h.service(scope="a").view()
        second = await h.service(scope="b").view()

    assert (first.dialect, second.dialect) == (Dialect.OVERVIEW, Dialect.CURRENT)
    assert h.upstream.count(PROBE_PATH) == 2


@pytest.mark.parametrize("pinned", [Dialect.CURRENT, Dialect.OVERVIEW])
async def test_a_pinned_dialect_is_never_probed(pinned: Dialect) -> None:
    async with harness({LISTING_PATH: reply(404, {}), PROBE_PATH: reply(400, {})}) as h:
        view = await h.service(pinned=pinned).view()

    assert (view.dialect, view.dialect_source) == (pinned, "pinned")
    assert h.upstream.count(PROBE_PATH) == 0


async def test_a_pinned_dialect_wins_over_the_listing() -> None:
    async with harness({LISTING_PATH: reply(200, TODAY)}) as h:
        view = await h.service(pinned=Dialect.OVERVIEW).view()

    assert (view.dialect, view.dialect_source) == (Dialect.OVERVIEW, "pinned")
    assert view.prices.dialect is Dialect.OVERVIEW


async def test_a_401_on_the_listing_raises() -> None:
    async with harness({LISTING_PATH: reply(401, {"message": "Invalid API key in request"})}) as h:
        with pytest.raises(AuthenticationError):
            await h.service().view()

    assert h.upstream.count(PROBE_PATH) == 0


async def test_a_401_on_the_balance_raises() -> None:
    async with harness({LISTING_PATH: reply(200, TODAY), CREDITS_PATH: reply(401, {"message": "no"})}) as h:
        with pytest.raises(AuthenticationError):
            await h.service().view()


# --- limits -----------------------------------------------------------------------------------------------------------


async def test_before_any_read_the_limiter_runs_at_configured_or_documented_limits() -> None:
    async with harness({}) as h:
        h.service(configured_rpm={SEARCH: 50, LIVE: None})

    assert h.limiter.limit(SEARCH) == 50
    assert {name: h.limiter.limit(name) for name in ALL_ENDPOINTS if name != SEARCH} == {
        name: DOCUMENTED_RPM[name] for name in ALL_ENDPOINTS if name != SEARCH
    }
    assert h.limiter.total is None
    assert h.upstream.requests == []


async def test_the_accounts_rate_limits_pace_the_limiter_and_configuration_only_lowers_them() -> None:
    account = listing(
        entry("/person/enrich", rpm=40),
        entry("/person/contact/enrich", rpm=20),
        entry("/person/search", rpm=60.7),
    )
    async with harness({LISTING_PATH: reply(200, account)}) as h:
        service = h.service(configured_rpm={ENRICH: 100, CONTACT: 5, LIVE: 3, AUTOCOMPLETE: None})
        await service.view()

    assert h.limiter.limit(ENRICH) == 40  # configured 100 cannot raise the account's 40
    assert h.limiter.limit(CONTACT) == 5  # configured 5 lowers the account's 20
    assert h.limiter.limit(SEARCH) == 60  # the account's, whole requests
    assert h.limiter.limit(LIVE) == 3  # not listed: the configured figure
    assert h.limiter.limit(AUTOCOMPLETE) == DOCUMENTED_RPM[AUTOCOMPLETE]  # neither says
    assert h.limiter.limit(ACCOUNT) == DOCUMENTED_RPM[ACCOUNT]


async def test_the_key_wide_limit_becomes_the_limiters_total() -> None:
    async with harness({LISTING_PATH: reply(200, listing(*TODAY["endpoints"], token_limit_rpm=120))}) as h:
        view = await h.service().view()

    assert view.token_limit_rpm == 120
    assert h.limiter.total == 120


@pytest.mark.parametrize("token_limit", [None, 0])
async def test_without_a_key_wide_limit_the_limiter_has_no_total(token_limit: float | None) -> None:
    async with harness({LISTING_PATH: reply(200, listing(*TODAY["endpoints"], token_limit_rpm=token_limit))}) as h:
        view = await h.service().view()

    assert view.token_limit_rpm is None
    assert h.limiter.total is None


# --- prices -----------------------------------------------------------------------------------------------------------


async def test_prices_from_the_listing_replace_the_documented_ones_without_a_cap() -> None:
    account = listing(
        entry("/person/enrich", base=1.5, premium={"dev_platform_profiles": 0.5}),
        entry("/person/contact/enrich", premium={"contact.business_emails": 3}),
        entry("/person/professional_network/enrich/live", base=9),
        entry("/person/search", base=0.05),
    )
    async with harness({LISTING_PATH: reply(200, account)}) as h:
        view = await h.service().view()

    documented = PriceTable.documented(Dialect.CURRENT)
    assert view.prices.source == "account"
    assert view.prices.enrich == Price(Decimal("1.5"), {"dev_platform_profiles": Decimal("0.5")}, None)
    # A listed premium price replaces the add-ons; without base_credits the documented base stays.
    assert view.prices.contact == Price(documented.contact.base, {"contact.business_emails": Decimal(3)}, None)
    assert view.prices.live == Price(Decimal(9), dict(documented.live.addons), None)
    assert view.prices.search_per_result == Decimal("0.05")
    assert view.prices.verified_surcharge == documented.verified_surcharge


def test_a_listing_without_prices_keeps_the_documented_table() -> None:
    parsed = AccountListing.model_validate(TODAY)

    for dialect in (Dialect.CURRENT, Dialect.OVERVIEW):
        assert prices_from(parsed, dialect) == PriceTable.documented(dialect)
        assert prices_from(parsed, dialect).source == "documented"


def test_search_premium_fields_covering_the_profile_url_add_to_the_per_result_price() -> None:
    parsed = AccountListing.model_validate(
        listing(
            entry(
                "/person/search",
                base=0.03,
                premium={"social_handles": 0.02, "experience": 5, "social_handles.twitter_identifier": 1},
            )
        )
    )

    prices = prices_from(parsed, Dialect.CURRENT)

    assert prices.search_per_result == Decimal("0.05")
    assert prices.source == "account"
    assert prices.enrich == PriceTable.documented(Dialect.CURRENT).enrich


def test_an_account_price_on_the_overview_replaces_the_overviews_table() -> None:
    parsed = AccountListing.model_validate(listing(entry("/person/enrich", base=2)))

    prices = prices_from(parsed, Dialect.OVERVIEW)

    overview = PriceTable.documented(Dialect.OVERVIEW)
    assert prices.enrich == Price(Decimal(2), dict(overview.enrich.addons), None)
    assert prices.dialect is Dialect.OVERVIEW


# --- access -----------------------------------------------------------------------------------------------------------


async def test_not_enabled_endpoints_and_disabled_fields_are_exposed_by_the_view() -> None:
    account = listing(
        entry("/person/enrich", disabled=["social_posts", "assessment.authenticity"], rpm=30),
        entry("/person/contact/enrich", status="not_enabled"),
        entry("/person/professional_network/enrich/live", status="disabled"),
        entry("/person/search"),
    )
    async with harness({LISTING_PATH: reply(200, account)}) as h:
        view = await h.service().view()

    assert view.enabled(ENRICH) is True
    assert view.enabled(CONTACT) is False
    assert view.enabled(LIVE) is False
    assert view.enabled(SEARCH) is True
    assert view.enabled(AUTOCOMPLETE) is True  # not listed: assumed callable
    assert view.disabled_fields(ENRICH) == frozenset({"social_posts", "assessment.authenticity"})
    assert view.disabled_fields(SEARCH) == frozenset()
    assert view.disabled_fields(AUTOCOMPLETE) == frozenset()
    access = view.access(ENRICH)
    assert access is not None
    assert (access.path, access.rate_limit_rpm) == ("/person/enrich", 30)
    assert view.access(AUTOCOMPLETE) is None


async def test_a_denied_field_is_recorded_at_once_without_a_read() -> None:
    async with harness({LISTING_PATH: reply(200, TODAY)}) as h:
        service = h.service()
        await service.view()
        sent = len(h.upstream.requests)

        service.record_denied(ENRICH, ("skills", "honors"))
        service.record_denied(LIVE, ("social_posts",))
        view = await service.view()

    assert view.disabled_fields(ENRICH) == frozenset({"skills", "honors"})
    assert view.disabled_fields(LIVE) == frozenset({"social_posts"})
    assert view.enabled(LIVE) is True
    assert len(h.upstream.requests) == sent


async def test_a_denied_field_before_any_read_is_not_an_error() -> None:
    async with harness({LISTING_PATH: reply(200, TODAY)}) as h:
        service = h.service()
        service.record_denied(ENRICH, ("skills",))
        view = await service.view()

    assert view.disabled_fields(ENRICH) == frozenset()


# --- balance and refreshes --------------------------------------------------------------------------------------------


async def test_the_balance_is_read_from_user_credits() -> None:
    async with harness({LISTING_PATH: reply(200, TODAY), CREDITS_PATH: reply(200, {"credits": 9406.03})}) as h:
        view = await h.service().view()

    assert view.balance == Decimal("9406.03")


async def test_spent_lowers_the_known_balance_until_the_next_read() -> None:
    async with harness({LISTING_PATH: reply(200, TODAY)}) as h:
        service = h.service()
        await service.view()

        service.spent(Decimal("2.5"))
        service.spent(Decimal(0))
        view = await service.view()

    assert view.balance == Decimal("97.5")
    assert h.upstream.count(CREDITS_PATH) == 1


async def test_the_balance_is_read_again_after_balance_seconds() -> None:
    credits = [reply(200, {"credits": 100}), reply(200, {"credits": 80})]
    async with harness({LISTING_PATH: reply(200, TODAY), CREDITS_PATH: credits}) as h:
        service = h.service()
        await service.view()
        service.spent(Decimal(5))
        h.time.now += BALANCE - 1
        before = await service.view()
        h.time.now += 1
        after = await service.view()

    assert before.balance == Decimal(95)
    assert after.balance == Decimal(80)
    assert h.upstream.count(CREDITS_PATH) == 2
    assert h.upstream.count(LISTING_PATH) == 1


async def test_an_unreadable_balance_is_unknown_and_the_view_still_answers() -> None:
    async with harness({LISTING_PATH: reply(200, TODAY), CREDITS_PATH: reply(200, {"balance": 3})}) as h:
        service = h.service()
        view = await service.view()
        service.spent(Decimal(1))

    assert view.balance is None
    assert view.source == "account"


async def test_the_whole_view_is_read_again_after_refresh_seconds() -> None:
    second = listing(entry("/person/enrich", rpm=7), entry("/person/contact/enrich", status="not_enabled"))
    async with harness({LISTING_PATH: [reply(200, TODAY), reply(200, second)]}) as h:
        service = h.service()
        first = await service.view()
        h.time.now += REFRESH - 1
        same = await service.view()
        reads_before_refresh = h.upstream.count(LISTING_PATH)
        h.time.now += 1
        fresh = await service.view()

    assert reads_before_refresh == 1
    assert same.endpoints == first.endpoints
    assert first.enabled(CONTACT) is True
    assert fresh.enabled(CONTACT) is False
    assert h.limiter.limit(ENRICH) == 7
    assert h.upstream.count(LISTING_PATH) == 2


async def test_invalidate_reads_the_view_again_on_next_use() -> None:
    second = listing(entry("/person/enrich", disabled=["skills"]), entry("/person/contact/enrich"))
    async with harness({LISTING_PATH: [reply(200, TODAY), reply(200, second)]}) as h:
        service = h.service()
        await service.view()
        service.record_denied(ENRICH, ("honors",))

        service.invalidate()
        view = await service.view()

    # The fresh listing replaces what the 403 suggested.
    assert view.disabled_fields(ENRICH) == frozenset({"skills"})
    assert h.upstream.count(LISTING_PATH) == 2
    assert h.upstream.count(CREDITS_PATH) == 2


# --- the fallback -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        reply(404, {"message": "Not Found"}),
        reply(403, {"error": {"message": "no access"}}),
        reply(200, listing()),
        reply(200, listing(entry("/company/enrich"), entry("/company/search"))),
    ],
    ids=["404", "403", "empty listing", "no person endpoint listed"],
)
async def test_without_a_listing_the_view_comes_from_configuration(
    answer: Step, caplog: pytest.LogCaptureFixture
) -> None:
    async with harness({LISTING_PATH: answer, PROBE_PATH: reply(400, {})}) as h:
        view: AccountView = await h.service().view()

    assert view.source == "configuration"
    assert view.note
    assert view.prices == PriceTable.documented(Dialect.CURRENT)
    assert dict(view.endpoints) == {}
    assert view.balance == Decimal(100)
    assert len(fallback_warnings(caplog)) == 1


async def test_the_fallback_warning_is_logged_once_per_service(caplog: pytest.LogCaptureFixture) -> None:
    async with harness({LISTING_PATH: reply(404, {}), PROBE_PATH: reply(400, {})}) as h:
        service = h.service()
        await service.view()
        service.invalidate()
        await service.view()
        h.time.now += REFRESH
        await service.view()
        assert len(fallback_warnings(caplog)) == 1

        await h.service().view()

    assert len(fallback_warnings(caplog)) == 2
    assert h.upstream.count(LISTING_PATH) == 4
