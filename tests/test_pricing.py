"""Pricing: the worst case reserved before a call and the exact Decimal cost of an answer (reference Part 1, 4)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from person_enrich_mcp.fields import ALL_PATHS, DEFAULT_SELECTION, SECTIONS, FieldSelection
from person_enrich_mcp.pricing import (
    ADDONS,
    BASE_PROFILE,
    LIVE_PROFILE,
    PROFILE_CAP,
    SEARCH_PER_RESULT,
    addon_for_path,
    enrich_worst_case,
    profile_cost,
    search_cost,
    to_credits,
)


def test_the_documented_prices_are_the_constants() -> None:
    assert Decimal(1) == BASE_PROFILE
    assert Decimal(7) == PROFILE_CAP
    assert LIVE_PROFILE == PROFILE_CAP
    assert Decimal("0.03") == SEARCH_PER_RESULT
    assert {
        "contact.business_emails": Decimal(1),
        "contact.personal_emails": Decimal(2),
        "contact.phone_numbers": Decimal(2),
        "dev_platform_profiles": Decimal(1),
    } == ADDONS


def test_the_default_selection_costs_the_base_price() -> None:
    assert profile_cost(DEFAULT_SELECTION) == Decimal(1)


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        ([], "1"),
        (["basic_profile"], "1"),
        (["crustdata_person_id", "updated_at"], "1"),
        (["basic_profile", "experience", "education", "skills", "professional_network", "social_handles"], "1"),
        (["contact.websites"], "1"),
        (["contact.business_emails"], "2"),
        (["contact.business_emails.email"], "2"),
        (["contact.business_emails.email", "contact.business_emails.status"], "2"),
        (["contact.personal_emails"], "3"),
        (["contact.phone_numbers"], "3"),
        (["dev_platform_profiles"], "2"),
        (["dev_platform_profiles.bio"], "2"),
        (["social_handles.dev_platform_identifier.profile_url"], "1"),
        (["contact.business_emails", "contact.personal_emails"], "4"),
        (["contact.business_emails", "contact.personal_emails", "contact.phone_numbers"], "6"),
        (["contact"], "6"),
        (["contact", "dev_platform_profiles"], "7"),
        (["contact.personal_emails", "contact.phone_numbers", "dev_platform_profiles"], "6"),
        (list(SECTIONS), "7"),
        (list(ALL_PATHS), "7"),
    ],
)
def test_profile_cost_adds_each_triggered_addon_once_up_to_the_cap(paths: list[str], expected: str) -> None:
    cost = profile_cost(FieldSelection.of(paths))

    assert isinstance(cost, Decimal)
    assert cost == Decimal(expected)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("contact", 5),
        ("contact.business_emails", 1),
        ("contact.business_emails.email", 1),
        ("contact.personal_emails", 2),
        ("contact.phone_numbers", 2),
        ("contact.websites", 0),
        ("dev_platform_profiles", 1),
        ("dev_platform_profiles.metadata.created_at", 1),
        ("basic_profile", 0),
        ("social_handles", 0),
    ],
)
def test_addon_for_path_counts_every_addon_inside_a_group(path: str, expected: int) -> None:
    assert addon_for_path(path) == Decimal(expected)


@pytest.mark.parametrize("paths", [[], ["basic_profile"], ["contact", "dev_platform_profiles"]])
def test_live_lookups_are_priced_at_the_cap_whatever_the_fields(paths: list[str]) -> None:
    assert profile_cost(FieldSelection.of(paths), live=True) == Decimal(7)


def test_enrich_worst_case_assumes_every_identifier_matches() -> None:
    selection = FieldSelection.of(["basic_profile", "contact.business_emails"])

    assert enrich_worst_case(25, selection) == Decimal(50)
    assert enrich_worst_case(3, selection, live=True) == Decimal(21)
    assert enrich_worst_case(0, selection) == Decimal(0)


def test_a_full_live_batch_reserves_seven_credits_per_identifier() -> None:
    assert enrich_worst_case(25, DEFAULT_SELECTION, live=True) == Decimal(175)


@pytest.mark.parametrize(("results", "expected"), [(0, "0"), (1, "0.03"), (3, "0.09"), (25, "0.75"), (100, "3.00")])
def test_search_costs_three_hundredths_per_result_exactly(results: int, expected: str) -> None:
    cost = search_cost(results)

    assert isinstance(cost, Decimal)
    assert cost == Decimal(expected)


def test_many_small_search_charges_add_up_exactly() -> None:
    total = sum((search_cost(1) for _ in range(10)), start=Decimal(0))

    assert total == Decimal("0.30")
    assert str(total) == "0.30"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.1, "0.1"),
        (0.03, "0.03"),
        (2.5, "2.5"),
        (3, "3"),
        ("0.03", "0.03"),
        ("7", "7"),
        (Decimal("1.10"), "1.10"),
    ],
)
def test_to_credits_goes_through_decimal_text_never_binary_float(
    value: float | int | str | Decimal, expected: str
) -> None:
    credits = to_credits(value)

    assert isinstance(credits, Decimal)
    assert credits == Decimal(expected)
    assert str(credits) == expected


def test_to_credits_returns_a_decimal_unchanged() -> None:
    value = Decimal("4.20")

    assert to_credits(value) is value


def test_a_float_header_value_does_not_leak_binary_noise() -> None:
    assert to_credits(0.1) + to_credits(0.2) == Decimal("0.3")


_SELECTIONS = st.lists(st.sampled_from(ALL_PATHS), max_size=8).map(FieldSelection.of)


@given(_SELECTIONS, st.booleans())
def test_profile_cost_is_between_one_and_seven(selection: FieldSelection, live: bool) -> None:
    cost = profile_cost(selection, live=live)

    assert Decimal(1) <= cost <= Decimal(7)
    assert cost == cost.to_integral_value()


@given(_SELECTIONS, _SELECTIONS)
def test_profile_cost_is_monotonic_under_union(a: FieldSelection, b: FieldSelection) -> None:
    union = a.union(b)

    assert profile_cost(union) >= max(profile_cost(a), profile_cost(b))
    assert profile_cost(union) <= profile_cost(a) + profile_cost(b)


@given(_SELECTIONS, _SELECTIONS)
def test_a_covering_selection_never_costs_less(a: FieldSelection, b: FieldSelection) -> None:
    if a.covers(b):
        assert profile_cost(a) >= profile_cost(b)


@given(_SELECTIONS)
def test_profile_cost_is_base_plus_addons_of_its_paths_capped(selection: FieldSelection) -> None:
    touched = sum((price for addon, price in ADDONS.items() if selection.touches(addon)), start=Decimal(0))

    assert profile_cost(selection) == min(Decimal(1) + touched, Decimal(7))
    assert profile_cost(selection) <= Decimal(1) + sum((addon_for_path(p) for p in selection.paths), start=Decimal(0))


@given(_SELECTIONS, st.integers(0, 25), st.booleans())
def test_worst_case_is_linear_in_identifiers(selection: FieldSelection, n: int, live: bool) -> None:
    worst = enrich_worst_case(n, selection, live=live)

    assert worst == profile_cost(selection, live=live) * n
    assert worst <= Decimal(7) * n
    assert enrich_worst_case(n, selection) <= enrich_worst_case(n, selection, live=True)


@given(st.integers(0, 10_000))
def test_search_cost_is_exact_hundredths(results: int) -> None:
    cost = search_cost(results)

    assert cost == Decimal(results * 3) / Decimal(100)
    assert cost.as_tuple().exponent == -2
