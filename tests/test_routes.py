"""`api.routes.route()`: which upstream requests serve a look-up, in each dialect.

Today's dialect splits a look-up into `/person/enrich` section groups (or Live Enrich) and contact tiers, each in
the upstream's vocabulary order; the overview's dialect sends the exact paths to its single enrich.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from person_enrich_mcp.api.contract import CONTACT_TIERS, ENRICH_GROUPS, Dialect
from person_enrich_mcp.api.routes import Route, groups_of, is_contact, route, tiers_of
from person_enrich_mcp.fields import ALL_PATHS, DEFAULT_PATHS, section_of

CURRENT = Dialect.CURRENT
OVERVIEW = Dialect.OVERVIEW

_PATH_SETS = st.lists(st.sampled_from(ALL_PATHS), min_size=1, max_size=12).map(tuple)


# --- today's dialect --------------------------------------------------------------------------------------------------


def test_groups_come_in_vocabulary_order_whatever_the_order_asked() -> None:
    routed = route(CURRENT, ("honors.title", "experience.employment_details.current.name", "basic_profile.name"))

    assert routed.groups == ("basic_profile", "experience", "honors")
    assert routed.tiers == ()
    assert routed.fields == ()


def test_several_paths_in_one_section_ask_for_the_group_once() -> None:
    routed = route(CURRENT, ("basic_profile.name", "basic_profile.headline", "basic_profile.location.city"))

    assert routed.groups == ("basic_profile",)


def test_the_default_selection_needs_three_groups_and_no_contact() -> None:
    routed = route(CURRENT, DEFAULT_PATHS)

    assert routed.groups == ("basic_profile", "social_handles", "experience")
    assert routed.tiers == ()


def test_contact_tiers_are_asked_only_for_contact_paths() -> None:
    routed = route(CURRENT, ("basic_profile.name", "contact.phone_numbers", "contact.business_emails.email"))

    assert routed.groups == ("basic_profile",)
    assert routed.tiers == ("contact.business_emails", "contact.phone_numbers")


def test_contact_paths_alone_ask_for_no_group() -> None:
    routed = route(CURRENT, ("contact.personal_emails.email",))

    assert routed.groups == ()
    assert routed.tiers == ("contact.personal_emails",)


def test_the_whole_contact_section_asks_for_every_tier() -> None:
    routed = route(CURRENT, ("contact",))

    assert routed.tiers == CONTACT_TIERS
    assert routed.groups == ()


def test_the_contact_section_and_one_of_its_tiers_still_ask_each_tier_once() -> None:
    assert route(CURRENT, ("contact.websites", "contact")).tiers == CONTACT_TIERS


@pytest.mark.parametrize(
    "paths",
    [("crustdata_person_id",), ("updated_at",), ("crustdata_person_id", "updated_at")],
)
def test_the_top_level_scalars_alone_are_carried_by_the_basic_profile_group(paths: tuple[str, ...]) -> None:
    routed = route(CURRENT, paths)

    assert routed.groups == ("basic_profile",)
    assert routed.tiers == ()


def test_the_top_level_scalars_with_a_group_add_no_carrier() -> None:
    routed = route(CURRENT, ("crustdata_person_id", "education.schools.school"))

    assert routed.groups == ("education",)


def test_the_top_level_scalars_with_contact_paths_still_need_the_carrier() -> None:
    routed = route(CURRENT, ("updated_at", "contact.phone_numbers"))

    assert routed.groups == ("basic_profile",)
    assert routed.tiers == ("contact.phone_numbers",)


def test_live_is_kept_when_there_are_groups() -> None:
    routed = route(CURRENT, ("basic_profile.name", "contact.phone_numbers"), live=True)

    assert routed.live is True
    assert routed.groups == ("basic_profile",)
    assert routed.tiers == ("contact.phone_numbers",)


def test_live_is_dropped_when_only_contact_tiers_are_asked() -> None:
    routed = route(CURRENT, ("contact.phone_numbers",), live=True)

    assert routed.live is False
    assert routed.tiers == ("contact.phone_numbers",)


def test_live_is_off_unless_asked() -> None:
    assert route(CURRENT, ("basic_profile.name",)).live is False


def test_no_paths_route_to_nothing_in_either_dialect() -> None:
    for dialect in (CURRENT, OVERVIEW):
        routed = route(dialect, (), live=True)

        assert routed == Route(dialect)
        assert routed.empty
        assert routed.live is False


def test_a_route_with_anything_to_fetch_is_not_empty() -> None:
    assert not route(CURRENT, ("contact.websites",)).empty
    assert not route(CURRENT, ("basic_profile",)).empty
    assert not route(OVERVIEW, ("basic_profile",)).empty


def test_the_route_remembers_its_dialect() -> None:
    assert route(CURRENT, ("basic_profile",)).dialect is CURRENT
    assert route(OVERVIEW, ("basic_profile",)).dialect is OVERVIEW


# --- the overview's dialect -------------------------------------------------------------------------------------------


def test_the_overview_sends_the_exact_paths_in_the_order_asked() -> None:
    paths = ("contact.phone_numbers", "basic_profile.name", "crustdata_person_id", "contact")

    routed = route(OVERVIEW, paths)

    assert routed.fields == paths
    assert routed.groups == ()
    assert routed.tiers == ()


@pytest.mark.parametrize("live", [True, False])
def test_the_overview_carries_the_refresh_request_through(live: bool) -> None:
    assert route(OVERVIEW, ("contact.phone_numbers",), live=live).live is live


# --- helpers ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("contact", True),
        ("contact.websites", True),
        ("contact.business_emails.email", True),
        ("contacts", False),
        ("contact_info", False),
        ("basic_profile.contact", False),
        ("crustdata_person_id", False),
    ],
)
def test_is_contact_means_the_section_or_a_path_inside_it(path: str, expected: bool) -> None:
    assert is_contact(path) is expected


def test_a_path_that_only_shares_a_tiers_prefix_is_not_that_tier() -> None:
    assert tiers_of(("contact.business_emails_message",)) == ()


# --- properties over the whole catalog --------------------------------------------------------------------------------


@given(_PATH_SETS)
def test_every_non_contact_paths_section_is_in_the_groups(paths: tuple[str, ...]) -> None:
    routed = route(CURRENT, paths)

    for path in paths:
        if not is_contact(path) and section_of(path) in ENRICH_GROUPS:
            assert section_of(path) in routed.groups
    assert set(routed.groups) <= set(ENRICH_GROUPS)


@given(_PATH_SETS)
def test_no_group_is_asked_for_unless_a_path_is_in_it(paths: tuple[str, ...]) -> None:
    routed = route(CURRENT, paths)
    sections = {section_of(p) for p in paths if not is_contact(p)}

    carrier_only = routed.groups == ("basic_profile",) and sections <= {"crustdata_person_id", "updated_at"}
    assert carrier_only or set(routed.groups) <= sections


@given(_PATH_SETS)
def test_no_tier_is_asked_for_unless_a_path_touches_it(paths: tuple[str, ...]) -> None:
    routed = route(CURRENT, paths)

    for tier in CONTACT_TIERS:
        touched = any(p == "contact" or p == tier or p.startswith(tier + ".") for p in paths)
        assert (tier in routed.tiers) is touched


@given(_PATH_SETS)
def test_groups_and_tiers_are_in_vocabulary_order_without_repeats(paths: tuple[str, ...]) -> None:
    routed = route(CURRENT, paths)

    assert list(routed.groups) == [g for g in ENRICH_GROUPS if g in routed.groups]
    assert list(routed.tiers) == [t for t in CONTACT_TIERS if t in routed.tiers]
    assert routed.groups == groups_of(paths)
    assert routed.tiers == tiers_of(paths)


@settings(max_examples=50)
@given(_PATH_SETS, st.booleans())
def test_live_needs_groups(paths: tuple[str, ...], live: bool) -> None:
    routed = route(CURRENT, paths, live=live)

    assert routed.live is (live and bool(routed.groups))
    assert not routed.empty


@settings(max_examples=50)
@given(_PATH_SETS, st.booleans())
def test_the_overview_always_sends_the_exact_paths(paths: tuple[str, ...], live: bool) -> None:
    routed = route(OVERVIEW, paths, live=live)

    assert routed == Route(OVERVIEW, fields=paths, live=live)
