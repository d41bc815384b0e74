"""Pricing: the worst case reserved before a call, per dialect, and the exact Decimal cost of an answer.

Today's prices: /person/enrich 1 a profile (+1 developer platform, at most 2), contact tiers per tier
(1/2/2, at most 5), Live Enrich 7, search 0.03 a result. The overview's: 1 + add-ons, at most 7.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from person_enrich_mcp.api import Dialect
from person_enrich_mcp.api.contract import RESOLVING_TIER
from person_enrich_mcp.api.routes import route
from person_enrich_mcp.fields import ALL_PATHS, DEFAULT_SELECTION, FieldSelection
from person_enrich_mcp.pricing import Price, PriceTable, to_credits
from person_enrich_mcp.tools.enrichment import enrich_quote, need_cost

CURRENT = PriceTable.documented(Dialect.CURRENT)
OVERVIEW = PriceTable.documented(Dialect.OVERVIEW)


def _url_cost(prices: PriceTable, paths: list[str], *, live: bool = False) -> Decimal:
    selection = FieldSelection.of(paths)
    return need_cost(prices, "url", route(prices.dialect, selection.paths, live=live))


def _email_cost(prices: PriceTable, paths: list[str]) -> Decimal:
    selection = FieldSelection.of(paths)
    return need_cost(prices, "email", route(prices.dialect, selection.paths))


def test_the_documented_tables_are_the_published_prices() -> None:
    # Built here, not at import: a table built once at import would hide a broken `documented` from this test.
    current, overview = PriceTable.documented(Dialect.CURRENT), PriceTable.documented(Dialect.OVERVIEW)
    assert current == CURRENT
    assert overview == OVERVIEW
    assert (CURRENT.enrich.base, CURRENT.enrich.cap) == (Decimal(1), Decimal(2))
    assert dict(CURRENT.enrich.addons) == {"dev_platform_profiles": Decimal(1)}
    assert (CURRENT.contact.base, CURRENT.contact.cap) == (Decimal(0), Decimal(5))
    assert dict(CURRENT.contact.addons) == {
        "contact.business_emails": Decimal(1),
        "contact.personal_emails": Decimal(2),
        "contact.phone_numbers": Decimal(2),
        "contact.websites": Decimal(0),
    }
    assert CURRENT.live.of(["basic_profile"]) == Decimal(7)
    assert CURRENT.search_per_result == Decimal("0.03")
    assert CURRENT.verified_surcharge == Decimal("0.5")
    assert (OVERVIEW.enrich.base, OVERVIEW.enrich.cap) == (Decimal(1), Decimal(7))
    assert dict(OVERVIEW.enrich.addons) == {
        "contact.business_emails": Decimal(1),
        "contact.personal_emails": Decimal(2),
        "contact.phone_numbers": Decimal(2),
        "dev_platform_profiles": Decimal(1),
    }
    assert (current.source, overview.source) == ("documented", "documented")
    assert current.search_premiums == {} and current.autocomplete_per_call == 0


def test_a_price_with_nothing_touched_is_its_base_in_decimal_and_an_untouched_addon_is_decimal_zero() -> None:
    price = Price(Decimal(1), {"dev_platform_profiles": Decimal(1)}, Decimal(2))

    assert price.addon("basic_profile") == 0
    assert isinstance(price.addon("basic_profile"), Decimal)
    assert price.addon("dev_platform_profiles.github") == Decimal(1)
    assert price.addon("dev_platform_profiles") == Decimal(1)


def test_a_search_row_costs_the_per_result_price_plus_the_premiums_of_the_fields_it_returns() -> None:
    prices = PriceTable(
        Dialect.CURRENT,
        CURRENT.enrich,
        CURRENT.contact,
        CURRENT.live,
        search_per_result=Decimal("0.03"),
        verified_surcharge=Decimal("0.5"),
        source="account",
        search_premiums={
            "contact.business_emails": Decimal("0.5"),
            "social_handles.professional_network_identifier.profile_url": Decimal("0.1"),
            "skills": Decimal("0.2"),
        },
    )

    assert prices.search_row(["social_handles.professional_network_identifier.profile_url"]) == Decimal("0.03")
    assert prices.search_row(["basic_profile.name"]) == Decimal("0.03")
    assert prices.search_row(["contact.business_emails.email"]) == Decimal("0.53")
    assert prices.search_row(iter(["contact", "skills"])) == Decimal("0.73")
    assert PriceTable.documented(Dialect.CURRENT).search_row(["contact"]) == Decimal("0.03")


@pytest.mark.parametrize("prices", [CURRENT, OVERVIEW], ids=["current", "overview"])
def test_the_default_selection_costs_the_base_price(prices: PriceTable) -> None:
    assert _url_cost(prices, list(DEFAULT_SELECTION.paths)) == Decimal(1)


@pytest.mark.parametrize(
    ("paths", "current", "overview"),
    [
        (["basic_profile"], "1", "1"),
        (["crustdata_person_id", "updated_at"], "1", "1"),
        (["basic_profile", "experience", "education", "skills", "professional_network", "social_handles"], "1", "1"),
        (["contact.websites"], "0", "1"),
        (["contact.business_emails"], "1", "2"),
        (["basic_profile.name", "contact.business_emails"], "2", "2"),
        (["contact.business_emails.email", "contact.business_emails.status"], "1", "2"),
        (["basic_profile.name", "contact.personal_emails"], "3", "3"),
        (["basic_profile.name", "contact.phone_numbers"], "3", "3"),
        (["dev_platform_profiles"], "2", "2"),
        (["dev_platform_profiles.bio"], "2", "2"),
        (["social_handles.dev_platform_identifier.profile_url"], "1", "1"),
        (["basic_profile.name", "contact"], "6", "6"),
        (["dev_platform_profiles", "contact"], "7", "7"),
        (["contact.business_emails", "contact.personal_emails", "contact.phone_numbers"], "5", "6"),
    ],
)
def test_a_profile_url_costs_its_steps_in_each_dialect(paths: list[str], current: str, overview: str) -> None:
    assert _url_cost(CURRENT, paths) == Decimal(current)
    assert _url_cost(OVERVIEW, paths) == Decimal(overview)


def test_a_work_email_pays_for_resolution_then_the_profile_of_its_best_candidate() -> None:
    # Today: the work-email tier resolves it (1), search names its profile URL (0.03), the profile costs 1.
    assert _email_cost(CURRENT, list(DEFAULT_SELECTION.paths)) == Decimal("2.03")
    assert _email_cost(CURRENT, ["contact.phone_numbers"]) == Decimal(2)  # a tier asked for resolves it itself
    assert _email_cost(CURRENT, ["basic_profile.name", "contact.business_emails"]) == Decimal("2.03")
    # The overview's single enrich resolves and returns in one request.
    assert _email_cost(OVERVIEW, list(DEFAULT_SELECTION.paths)) == Decimal(1)
    assert route(Dialect.CURRENT, ("basic_profile.name",)).tiers == ()
    assert RESOLVING_TIER == "contact.business_emails"


@pytest.mark.parametrize("prices", [CURRENT, OVERVIEW], ids=["current", "overview"])
def test_a_fresh_fetch_is_priced_at_the_live_price_whatever_the_fields(prices: PriceTable) -> None:
    assert _url_cost(prices, ["basic_profile.name"], live=True) == Decimal(7)
    assert _url_cost(prices, ["education", "skills"], live=True) == Decimal(7)


def test_live_with_contact_tiers_adds_the_tiers_today() -> None:
    assert _url_cost(CURRENT, ["basic_profile.name", "contact.business_emails"], live=True) == Decimal(8)


def test_a_price_adds_each_touched_addon_once_and_caps() -> None:
    price = Price(Decimal(1), {"a": Decimal(2), "b.c": Decimal(3)}, Decimal(5))
    assert price.of(["a"]) == Decimal(3)
    assert price.of(["a.x", "a.y"]) == Decimal(3)
    assert price.of(["b"]) == Decimal(4)  # a group counts the add-ons inside it
    assert price.of(["a", "b.c"]) == Decimal(5)  # 6, capped
    assert price.of(["z"]) == Decimal(1)
    assert Price(Decimal(1), {"a": Decimal(2)}).of(["a"]) == Decimal(3)  # no cap
    assert price.addon("b") == Decimal(3) and price.addon("a.x") == Decimal(2) and price.addon("z") == 0


@pytest.mark.parametrize(("results", "expected"), [(0, "0"), (1, "0.03"), (5, "0.15"), (100, "3.00"), (1000, "30")])
def test_search_costs_three_hundredths_per_result_exactly(results: int, expected: str) -> None:
    assert CURRENT.search(results) == Decimal(expected)


def test_many_small_search_charges_add_up_exactly() -> None:
    total = sum((CURRENT.search(1) for _ in range(1000)), start=Decimal(0))
    assert total == Decimal(30)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, "1"), (0.03, "0.03"), ("0.03", "0.03"), ("7", "7"), (2.5, "2.5")],
)
def test_to_credits_goes_through_decimal_text_never_binary_float(value: float | int | str, expected: str) -> None:
    assert to_credits(value) == Decimal(expected)


def test_to_credits_returns_a_decimal_unchanged() -> None:
    amount = Decimal("1.23")
    assert to_credits(amount) is amount


def test_a_float_header_value_does_not_leak_binary_noise() -> None:
    assert to_credits(0.1) + to_credits(0.2) == Decimal("0.3")


_SELECTIONS = st.lists(st.sampled_from(ALL_PATHS), min_size=1, max_size=8).map(FieldSelection.of)
_TABLES = st.sampled_from([CURRENT, OVERVIEW])


@given(_TABLES, _SELECTIONS, st.booleans())
def test_a_profile_url_costs_at_most_seven_plus_live(prices: PriceTable, selection: FieldSelection, live: bool) -> None:
    cost = _url_cost(prices, list(selection.paths), live=live)

    assert Decimal(0) <= cost <= Decimal(7) + (Decimal(5) if live else Decimal(0))
    assert cost == cost.to_integral_value()


@given(_TABLES, _SELECTIONS, _SELECTIONS)
def test_a_covering_selection_never_costs_less(prices: PriceTable, a: FieldSelection, b: FieldSelection) -> None:
    if a.covers(b):
        assert _url_cost(prices, list(a.paths)) >= _url_cost(prices, list(b.paths))


@given(_SELECTIONS, _SELECTIONS)
def test_the_union_costs_at_least_either_part(a: FieldSelection, b: FieldSelection) -> None:
    for prices in (CURRENT, OVERVIEW):
        union = _url_cost(prices, list(a.union(b).paths))
        assert union >= max(_url_cost(prices, list(a.paths)), _url_cost(prices, list(b.paths)))


@given(_SELECTIONS)
def test_todays_profile_cost_is_its_profile_step_plus_its_contact_step(selection: FieldSelection) -> None:
    request = route(Dialect.CURRENT, selection.paths)
    profile = CURRENT.enrich.of(request.groups) if request.groups else Decimal(0)
    contact = CURRENT.contact.of(request.tiers) if request.tiers else Decimal(0)

    assert need_cost(CURRENT, "url", request) == profile + contact
    assert profile <= Decimal(2) and contact <= Decimal(5)


@given(st.integers(0, 10_000))
def test_search_cost_is_exact_hundredths(results: int) -> None:
    cost = CURRENT.search(results)

    assert cost == Decimal(results * 3) / Decimal(100)


# --- the worst case of enriching a search's results -------------------------------------------------------------------


@pytest.mark.parametrize(("prices", "per_profile"), [(CURRENT, "3"), (OVERVIEW, "3")], ids=["current", "overview"])
def test_enriching_a_searchs_results_quotes_each_profile_at_its_worst_case_and_how_to_spend_less(
    prices: PriceTable, per_profile: str
) -> None:
    selection = FieldSelection.of(["basic_profile", "contact.business_emails", "dev_platform_profiles"])

    quote = enrich_quote(3, selection, prices)

    assert quote.estimate == 3 * Decimal(per_profile)
    assert quote.breakdown == f"3 profiles × up to {per_profile}.00 credits"
    assert "look up fewer people" in quote.ways_to_lower
    assert not any("force_fetch" in way for way in quote.ways_to_lower)


def test_enriching_a_searchs_results_fresh_from_the_web_costs_the_live_price_and_says_so() -> None:
    selection = FieldSelection.of(["basic_profile"])

    quote = enrich_quote(2, selection, CURRENT, live=True)

    assert quote.estimate == Decimal(14)
    assert "drop force_fetch/enrich_realtime (7.00 a profile)" in quote.ways_to_lower
    assert enrich_quote(1, selection, CURRENT).estimate == Decimal(1)
    assert enrich_quote(0, selection, CURRENT).breakdown == "nothing to fetch"
