"""AccountService's edges (the `account` mutation group): rate-limit rounding, which listed prices make the table the
account's, the autocomplete and search-premium prices, entries without fields, denials recorded before a refresh,
zero and fractional spends, balance refreshes that fail, forgetting the dialect, and the day-long dialect memory.

Same fakes as `test_account.py`: httpx2.MockTransport, a MemoryStore and a fake clock.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import anyio
import pytest

from person_enrich_mcp.account import AccountService, AccountView, prices_from
from person_enrich_mcp.api import ACCOUNT, AUTOCOMPLETE, CONTACT, ENRICH, LIVE, SEARCH, AccountListing, Dialect
from person_enrich_mcp.pricing import Price, PriceTable
from tests.test_account import (
    BALANCE,
    CREDITS_PATH,
    LISTING_PATH,
    OVERVIEW_LISTING,
    PROBE_PATH,
    TODAY,
    entry,
    harness,
    listing,
    reply,
)

pytestmark = pytest.mark.anyio

LIVE_PATH = "/person/professional_network/enrich/live"
AUTOCOMPLETE_PATH = "/person/search/autocomplete"
ONE_DAY = 86_400.0


def parsed(*entries: dict[str, Any]) -> AccountListing:
    return AccountListing.model_validate(listing(*entries))


# --- rate limits ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("listed", "paced"), [(1, 1), (1.9, 1), (0.5, 1), (2, 2)])
async def test_a_listed_limit_of_at_least_one_request_is_paced_in_whole_requests_never_below_one(
    listed: float, paced: int
) -> None:
    account = listing(entry("/person/enrich", rpm=listed), entry("/person/contact/enrich"))
    async with harness({LISTING_PATH: reply(200, account)}) as h:
        view = await h.service().view()

    access = view.access(ENRICH)
    assert access is not None
    assert access.rate_limit_rpm == paced
    assert h.limiter.limit(ENRICH) == paced


async def test_a_key_wide_limit_of_one_request_is_kept() -> None:
    async with harness({LISTING_PATH: reply(200, listing(*TODAY["endpoints"], token_limit_rpm=1))}) as h:
        view = await h.service().view()

    assert view.token_limit_rpm == 1
    assert h.limiter.total == 1


# --- the listing's entries --------------------------------------------------------------------------------------------


async def test_entries_of_other_categories_before_the_person_endpoints_do_not_hide_them() -> None:
    account = listing(
        entry("/company/enrich", rpm=5),
        entry("/person/enrich", rpm=40),
        entry("/company/search"),
        entry("/person/contact/enrich", status="not_enabled"),
    )
    async with harness({LISTING_PATH: reply(200, account)}) as h:
        view = await h.service().view()

    assert view.source == "account"
    assert set(view.endpoints) == {ENRICH, CONTACT}
    assert view.enabled(CONTACT) is False
    assert h.limiter.limit(ENRICH) == 40


async def test_an_entry_without_a_fields_block_withholds_no_field() -> None:
    bare = {"path": "/person/enrich", "category": "Person", "status": "enabled", "effective_rate_limit_rpm": 20}
    account = listing(bare, entry("/person/contact/enrich", disabled=["contact.personal_emails"]))
    async with harness({LISTING_PATH: reply(200, account)}) as h:
        view = await h.service().view()

    assert view.disabled_fields(ENRICH) == frozenset()
    assert view.disabled_fields(CONTACT) == frozenset({"contact.personal_emails"})
    assert view.enabled(ENRICH) is True


# --- prices -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "priced",
    [
        entry("/person/enrich", base=2),
        entry("/person/contact/enrich", premium={"contact.business_emails": 3}),
        entry(LIVE_PATH, base=9),
        entry("/person/search", base=0.05),
    ],
    ids=["enrich only", "contact only", "live only", "search only"],
)
def test_one_priced_endpoint_makes_the_table_the_accounts(priced: dict[str, Any]) -> None:
    others = [entry(p) for p in ("/person/enrich", "/person/contact/enrich", LIVE_PATH) if p != priced["path"]]

    prices = prices_from(parsed(priced, *others), Dialect.CURRENT)

    assert prices.source == "account"


def test_a_listed_price_drops_the_documented_cap() -> None:
    documented = PriceTable.documented(Dialect.OVERVIEW)
    assert documented.enrich.cap is not None  # the overview caps enrich: the account's own price has none

    prices = prices_from(parsed(entry("/person/enrich", base=2)), Dialect.OVERVIEW)

    assert prices.enrich.cap is None
    assert prices.enrich == Price(Decimal(2), dict(documented.enrich.addons), None)


def test_autocomplete_is_priced_per_call_from_the_listing() -> None:
    prices = prices_from(parsed(entry("/person/enrich"), entry(AUTOCOMPLETE_PATH, base=0.25)), Dialect.CURRENT)

    assert prices.autocomplete_per_call == Decimal("0.25")


@pytest.mark.parametrize(
    "listed",
    [listing(entry("/person/enrich")), listing(entry("/person/enrich"), entry(AUTOCOMPLETE_PATH))],
    ids=["not listed", "listed without a price"],
)
def test_autocomplete_without_a_listed_price_is_free(listed: dict[str, Any]) -> None:
    prices = prices_from(AccountListing.model_validate(listed), Dialect.CURRENT)

    assert prices.autocomplete_per_call == Decimal(0)
    assert isinstance(prices.autocomplete_per_call, Decimal)


async def test_the_views_prices_carry_the_autocomplete_and_search_premium_prices() -> None:
    account = listing(
        *TODAY["endpoints"][:2],
        entry("/person/search", base=0.03, premium={"social_handles": 0.02, "experience": 5}),
        entry(AUTOCOMPLETE_PATH, base=0.5),
    )
    async with harness({LISTING_PATH: reply(200, account)}) as h:
        view = await h.service().view()

    assert view.prices.autocomplete_per_call == Decimal("0.5")
    assert dict(view.prices.search_premiums) == {"social_handles": Decimal("0.02"), "experience": Decimal(5)}
    assert view.prices.search_per_result == Decimal("0.05")


def test_search_premiums_are_listed_even_without_a_search_base_price() -> None:
    prices = prices_from(parsed(entry("/person/search", premium={"experience": 4})), Dialect.CURRENT)

    assert dict(prices.search_premiums) == {"experience": Decimal(4)}
    assert prices.search_per_result == PriceTable.documented(Dialect.CURRENT).search_per_result


# --- denials recorded before the refresh ------------------------------------------------------------------------------


async def test_a_denied_field_on_a_listed_endpoint_adds_to_what_the_listing_withholds() -> None:
    account = listing(
        entry("/person/enrich", rpm=30, disabled=["skills"]),
        entry("/person/contact/enrich", status="not_enabled"),
    )
    async with harness({LISTING_PATH: reply(200, account)}) as h:
        service = h.service()
        await service.view()
        service.record_denied(ENRICH, ("honors",))
        service.record_denied(CONTACT, ("contact.personal_emails",))
        view = await service.view()

    enrich = view.access(ENRICH)
    assert enrich is not None
    assert (enrich.name, enrich.path, enrich.enabled, enrich.rate_limit_rpm) == (ENRICH, "/person/enrich", True, 30)
    assert enrich.disabled_fields == frozenset({"skills", "honors"})
    assert view.enabled(CONTACT) is False


async def test_a_denied_field_on_an_unlisted_endpoint_gets_the_endpoints_own_entry() -> None:
    async with harness({LISTING_PATH: reply(200, TODAY)}) as h:
        service = h.service()
        await service.view()
        service.record_denied(LIVE, ("social_posts",))
        view = await service.view()

    live = view.access(LIVE)
    assert live is not None
    assert (live.name, live.path, live.enabled, live.rate_limit_rpm) == (LIVE, LIVE_PATH, True, None)


async def test_a_denied_field_on_an_endpoint_without_a_person_path_is_kept_with_an_empty_path() -> None:
    async with harness({LISTING_PATH: reply(200, TODAY)}) as h:
        service = h.service()
        await service.view()
        service.record_denied(ACCOUNT, ("anything",))
        view = await service.view()

    entry_ = view.access(ACCOUNT)
    assert entry_ is not None
    assert (entry_.name, entry_.path, entry_.disabled_fields) == (ACCOUNT, "", frozenset({"anything"}))


async def test_a_denial_naming_no_field_changes_nothing() -> None:
    async with harness({LISTING_PATH: reply(200, TODAY)}) as h:
        service = h.service()
        before = await service.view()
        service.record_denied(LIVE, ())
        after = await service.view()

    assert after.access(LIVE) is None
    assert after == before


# --- the balance ------------------------------------------------------------------------------------------------------


async def test_a_fractional_spend_lowers_the_known_balance() -> None:
    async with harness({LISTING_PATH: reply(200, TODAY)}) as h:
        service = h.service()
        await service.view()
        service.spent(Decimal("0.5"))
        service.spent(Decimal(1))
        view = await service.view()

    assert view.balance == Decimal("98.5")


async def test_a_spend_of_zero_leaves_the_balance_as_read_digit_for_digit() -> None:
    async with harness({LISTING_PATH: reply(200, TODAY), CREDITS_PATH: reply(200, {"credits": 100})}) as h:
        service = h.service()
        await service.view()
        service.spent(Decimal("0.000"))
        view = await service.view()

    assert str(view.balance) == "100"


async def test_a_refreshed_balance_is_not_read_again_until_balance_seconds_pass_once_more() -> None:
    credits = [reply(200, {"credits": 100}), reply(200, {"credits": 80}), reply(200, {"credits": 70})]
    async with harness({LISTING_PATH: reply(200, TODAY), CREDITS_PATH: credits}) as h:
        service = h.service()
        await service.view()
        h.time.now += BALANCE
        refreshed = await service.view()
        h.time.now += BALANCE - 1
        same = await service.view()
        h.time.now += 1
        again = await service.view()

    assert (refreshed.balance, same.balance, again.balance) == (Decimal(80), Decimal(80), Decimal(70))
    assert h.upstream.count(CREDITS_PATH) == 3


@pytest.mark.parametrize("failure", [reply(500, {}), reply(200, {"balance": 3})], ids=["500", "unreadable"])
async def test_a_failed_balance_refresh_keeps_the_last_known_balance(failure: Any) -> None:
    async with harness({LISTING_PATH: reply(200, TODAY), CREDITS_PATH: [reply(200, {"credits": 100}), failure]}) as h:
        service = h.service()
        await service.view()
        service.spent(Decimal(4))
        h.time.now += BALANCE
        view = await service.view()

    assert view.balance == Decimal(96)
    assert h.upstream.count(CREDITS_PATH) >= 2


# --- the dialect's memory ---------------------------------------------------------------------------------------------


async def test_forgetting_the_dialect_makes_every_service_on_the_store_decide_it_again() -> None:
    async with harness({LISTING_PATH: reply(404, {}), PROBE_PATH: [reply(404, {}), reply(400, {})]}) as h:
        service = h.service()
        first = await service.view()
        await service.forget_dialect()
        again = await service.view()
        other = await h.service().view()

    assert (first.dialect, first.dialect_source) == (Dialect.OVERVIEW, "probe")
    assert (again.dialect, again.dialect_source) == (Dialect.CURRENT, "probe")
    assert (other.dialect, other.dialect_source) == (Dialect.CURRENT, "remembered")
    assert h.upstream.count(PROBE_PATH) == 2


async def test_a_forgotten_listed_dialect_is_not_remembered_by_another_service() -> None:
    async with harness({LISTING_PATH: [reply(200, OVERVIEW_LISTING), reply(404, {})], PROBE_PATH: reply(400, {})}) as h:
        await h.service().forget_dialect()  # nothing read yet: forgetting is harmless
        service = h.service()
        await service.view()
        await service.forget_dialect()
        other = await h.service().view()

    assert (other.dialect, other.dialect_source) == (Dialect.CURRENT, "probe")
    assert h.upstream.count(PROBE_PATH) == 1


async def test_a_decided_dialect_is_remembered_for_one_day() -> None:
    async with harness({LISTING_PATH: reply(404, {}), PROBE_PATH: [reply(404, {}), reply(400, {})]}) as h:
        await h.service().view()
        h.time.now += ONE_DAY - 1
        within = await h.service().view()
        h.time.now += 1
        after = await h.service().view()

    assert (within.dialect, within.dialect_source) == (Dialect.OVERVIEW, "remembered")
    assert (after.dialect, after.dialect_source) == (Dialect.CURRENT, "probe")
    assert h.upstream.count(PROBE_PATH) == 2


async def test_a_service_on_the_default_clock_and_intervals_reads_the_account_once() -> None:
    async with harness({LISTING_PATH: reply(200, TODAY)}) as h:
        service = AccountService(h.api, h.store, scope="acct")
        first = await service.view()
        second = await service.view()

    assert first.source == second.source == "account"
    assert h.upstream.count(LISTING_PATH) == 1
    assert h.upstream.count(CREDITS_PATH) == 1
    assert h.limiter.limit(SEARCH) == 30
    assert h.limiter.limit(AUTOCOMPLETE) == 15


async def test_the_default_intervals_reread_the_account_every_ten_minutes_and_the_balance_every_minute() -> None:
    credits = [reply(200, {"credits": 100}), reply(200, {"credits": 90})]
    async with harness({LISTING_PATH: reply(200, TODAY), CREDITS_PATH: credits}) as h:
        service = AccountService(h.api, h.store, scope="acct", clock=h.time.clock)
        await service.view()
        h.time.now += 59
        await service.view()
        balance_reads_before_a_minute = h.upstream.count(CREDITS_PATH)
        h.time.now += 1
        after_a_minute = await service.view()
        h.time.now += 539
        await service.view()
        listing_reads_before_ten_minutes = h.upstream.count(LISTING_PATH)
        h.time.now += 1
        await service.view()

    assert balance_reads_before_a_minute == 1
    assert after_a_minute.balance == Decimal(90)
    assert listing_reads_before_ten_minutes == 1
    assert h.upstream.count(LISTING_PATH) == 2


async def test_callers_waiting_on_a_read_in_progress_share_its_answer() -> None:
    async with harness({LISTING_PATH: reply(200, TODAY)}) as h:
        service = h.service()
        views: list[AccountView] = []

        async def read() -> None:
            views.append(await service.view())

        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(read)

    assert len(views) == 3
    assert views[0] is views[1] is views[2]
    assert h.upstream.count(LISTING_PATH) == 1
    assert h.upstream.count(CREDITS_PATH) == 1


# --- the fallback's note and warning ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (reply(404, {"message": "Not Found"}), "/account/endpoints is not available (NotFoundError)"),
        (
            reply(403, {"error": {"message": "no access"}}),
            "/account/endpoints is not available (PermissionDeniedError)",
        ),
        (reply(200, listing(entry("/company/enrich"))), "/account/endpoints lists no person endpoints"),
    ],
    ids=["404", "403", "no person endpoint listed"],
)
async def test_the_fallback_says_why_the_listing_was_not_used(
    answer: Any, problem: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with harness({LISTING_PATH: answer, PROBE_PATH: reply(400, {})}) as h:
        view = await h.service().view()

    warnings = [r.getMessage() for r in caplog.get_records("call") if r.levelno == logging.WARNING]
    assert [w for w in warnings if "using configured rate limits" in w] == [
        f"{problem}: using configured rate limits and the documented prices; endpoint and field access is learned "
        "from the upstream's answers instead"
    ]
    if "not available" in problem:
        assert view.note == problem
    else:
        assert view.note == "the account listing names no person endpoints"
