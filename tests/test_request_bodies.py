"""No request body ever carries a key its endpoint does not accept (the spec's request schemas are closed).

Every builder is driven with generated inputs and every option it has, and its body's keys are checked against
`REQUEST_PARAMS` of its path (the overview's enrich against `OVERVIEW_ENRICH_PARAMS`). The builders also refuse
`fields` outside their endpoint's vocabulary, and `_body.checked` refuses a stray key outright.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from person_enrich_mcp.api import contract
from person_enrich_mcp.api._body import checked
from person_enrich_mcp.api.contact import contact_body
from person_enrich_mcp.api.contract import (
    CONTACT_TIERS,
    ENRICH_GROUPS,
    OVERVIEW_ENRICH_PARAMS,
    PATHS,
    PERSON_AUTOCOMPLETE_FIELDS,
    PERSON_FILTER_FIELDS,
    PERSON_RETURN_PATHS,
    REQUEST_PARAMS,
)
from person_enrich_mcp.api.enrich import IDENTIFIER_KEYS, overview_body, profile_body
from person_enrich_mcp.api.live import live_body
from person_enrich_mcp.api.models import MatchType
from person_enrich_mcp.api.search import MAX_EXCLUDED_PROFILES, SearchRequest, autocomplete_body
from person_enrich_mcp.fields import ALL_PATHS

ENRICH_PATH = PATHS[contract.ENRICH]
CONTACT_PATH = PATHS[contract.CONTACT]
LIVE_PATH = PATHS[contract.LIVE]
SEARCH_PATH = PATHS[contract.SEARCH]
AUTOCOMPLETE_PATH = PATHS[contract.AUTOCOMPLETE]
MATCH_TYPES: tuple[MatchType, ...] = ("professional_network_profile_url", "business_email")

_TEXT = st.text(min_size=1, max_size=40)
_URLS = st.lists(st.builds("https://www.linkedin.com/in/{}".format, st.from_regex(r"[a-z0-9-]{1,20}", fullmatch=True)))
_IDENTIFIERS = st.lists(_TEXT, min_size=1, max_size=25)
_GROUPS = st.lists(st.sampled_from(ENRICH_GROUPS), unique=True)
_TIERS = st.lists(st.sampled_from(CONTACT_TIERS), min_size=1, unique=True)
_SCORES = st.none() | st.just(0.0) | st.floats(min_value=0, max_value=1)
_CONDITION = st.fixed_dictionaries(
    {"field": st.sampled_from(PERSON_FILTER_FIELDS), "type": st.sampled_from(list(contract.OPERATORS)), "value": _TEXT}
)
_FILTERS = _CONDITION | st.fixed_dictionaries(
    {"op": st.sampled_from(contract.FILTER_COMBINATORS), "conditions": st.lists(_CONDITION, min_size=1, max_size=3)}
)
_SORTS = st.lists(
    st.fixed_dictionaries(
        {"field": st.sampled_from(contract.PERSON_SORTABLE_FIELDS), "order": st.sampled_from(["asc", "desc"])}
    ),
    max_size=3,
)
_SEARCH_REQUESTS = st.builds(
    SearchRequest,
    filters=_FILTERS,
    limit=st.integers(1, 1000),
    fields=st.lists(st.sampled_from(PERSON_RETURN_PATHS), max_size=5),
    sorts=_SORTS,
    cursor=st.none() | st.text(max_size=20),
    exclude_profiles=_URLS,
    explain=st.booleans(),
    preview=st.booleans(),
)
# Names no vocabulary holds: catalog paths that are neither a group nor a tier, and arbitrary text.
_NOT_GROUPS = st.sampled_from([p for p in ALL_PATHS if p not in ENRICH_GROUPS]) | _TEXT.filter(
    lambda t: t not in ENRICH_GROUPS
)
_NOT_TIERS = st.sampled_from([p for p in ALL_PATHS if p not in CONTACT_TIERS]) | _TEXT.filter(
    lambda t: t not in CONTACT_TIERS
)


def _accepted(path: str, body: dict[str, Any]) -> None:
    assert set(body) <= REQUEST_PARAMS[path], f"{path} got {sorted(set(body) - REQUEST_PARAMS[path])}"
    json.dumps(body)  # and it can go on the wire as it is


# --- every builder stays inside its endpoint's keys -------------------------------------------------------------------


@given(_URLS, _GROUPS)
def test_a_profile_body_carries_only_keys_enrich_accepts(urls: list[str], groups: list[str]) -> None:
    body = profile_body(urls, groups)

    _accepted(ENRICH_PATH, body)
    assert body == {"professional_network_profile_urls": urls, "fields": groups}


@given(
    st.sampled_from(MATCH_TYPES),
    _IDENTIFIERS,
    st.lists(st.sampled_from(ALL_PATHS), max_size=8),
    _SCORES,
    st.booleans(),
    st.booleans(),
)
def test_an_overview_body_carries_only_keys_the_overviews_enrich_accepts(
    match_type: MatchType,
    identifiers: list[str],
    fields: list[str],
    score: float | None,
    force_fetch: bool,
    enrich_realtime: bool,
) -> None:
    body = overview_body(
        match_type,
        identifiers,
        fields,
        min_similarity_score=score,
        force_fetch=force_fetch,
        enrich_realtime=enrich_realtime,
    )

    assert set(body) <= OVERVIEW_ENRICH_PARAMS
    json.dumps(body)
    assert body[IDENTIFIER_KEYS[match_type]] == identifiers
    assert len(set(body) & set(IDENTIFIER_KEYS.values())) == 1
    assert body["fields"] == fields
    assert body.get("min_similarity_score") == score
    assert body.get("force_fetch", False) is force_fetch
    assert body.get("enrich_realtime", False) is enrich_realtime


@given(st.sampled_from(MATCH_TYPES), _IDENTIFIERS, _TIERS, st.booleans())
def test_a_contact_body_carries_only_keys_contact_enrich_accepts(
    match_type: MatchType, identifiers: list[str], tiers: list[str], verified: bool
) -> None:
    body = contact_body(match_type, identifiers, tiers, verified=verified)

    _accepted(CONTACT_PATH, body)
    assert body[IDENTIFIER_KEYS[match_type]] == identifiers
    assert len(set(body) & set(IDENTIFIER_KEYS.values())) == 1
    assert body["fields"] == tiers
    assert body.get("verified", False) is verified


@given(_URLS, _GROUPS)
def test_a_live_body_carries_only_keys_live_enrich_accepts(urls: list[str], groups: list[str]) -> None:
    body = live_body(urls, groups)

    _accepted(LIVE_PATH, body)
    assert body == {"professional_network_profile_urls": urls, "fields": groups}


@settings(max_examples=150)
@given(_SEARCH_REQUESTS)
def test_a_search_body_carries_only_keys_search_accepts(search: SearchRequest) -> None:
    body = search.body()

    _accepted(SEARCH_PATH, body)
    assert (body["filters"], body["limit"], body["fields"]) == (search.filters, search.limit, search.fields)
    # Optional keys are sent only when they carry something (never an empty list or string).
    assert ("sorts" in body) is bool(search.sorts)
    assert ("cursor" in body) is bool(search.cursor)
    assert ("post_processing" in body) is bool(search.exclude_profiles)
    assert ("explain" in body) is search.explain
    assert ("preview" in body) is search.preview
    assert "count" not in body


def test_a_search_body_with_every_option_on_carries_only_keys_search_accepts() -> None:
    request = SearchRequest(
        filters={"op": "and", "conditions": [{"field": "basic_profile.name", "type": "=", "value": "Jane"}]},
        limit=25,
        fields=["basic_profile.name"],
        sorts=[{"field": "basic_profile.name", "order": "desc"}],
        cursor="c2",
        exclude_profiles=["https://www.linkedin.com/in/jane-doe"],
        explain=True,
        preview=True,
    )

    body = request.body()

    _accepted(SEARCH_PATH, body)
    assert set(body) == {"filters", "limit", "fields", "sorts", "cursor", "post_processing", "explain", "preview"}
    assert body["post_processing"] == {"exclude_profiles": ["https://www.linkedin.com/in/jane-doe"]}


def test_a_search_body_sends_at_most_the_allowed_number_of_excluded_profiles() -> None:
    excluded = [f"https://www.linkedin.com/in/p{i}" for i in range(MAX_EXCLUDED_PROFILES + 5)]

    body = SearchRequest(filters={}, limit=10, fields=[], exclude_profiles=excluded).body()

    assert body["post_processing"]["exclude_profiles"] == excluded[:MAX_EXCLUDED_PROFILES]


@given(st.sampled_from(PERSON_AUTOCOMPLETE_FIELDS), st.text(max_size=30), st.integers(1, 100))
def test_an_autocomplete_body_carries_only_keys_autocomplete_accepts(field: str, query: str, limit: int) -> None:
    body = autocomplete_body(field, query, limit)

    _accepted(AUTOCOMPLETE_PATH, body)
    assert body == {"field": field, "query": query, "limit": limit}


# --- vocabularies -----------------------------------------------------------------------------------------------------


@given(_GROUPS, _NOT_GROUPS, st.integers(0, 11))
def test_profile_and_live_bodies_refuse_a_name_that_is_not_a_group(
    groups: list[str], stray: str, position: int
) -> None:
    asked = [*groups[:position], stray, *groups[position:]]

    with pytest.raises(ValueError, match="section groups only"):
        profile_body(["https://www.linkedin.com/in/x"], asked)
    with pytest.raises(ValueError, match="section groups only"):
        live_body(["https://www.linkedin.com/in/x"], asked)


@given(_TIERS, _NOT_TIERS, st.integers(0, 4))
def test_a_contact_body_refuses_a_name_that_is_not_a_tier(tiers: list[str], stray: str, position: int) -> None:
    asked = [*tiers[:position], stray, *tiers[position:]]

    with pytest.raises(ValueError, match="contact tiers only"):
        contact_body("business_email", ["jane@acme.com"], asked, verified=False)


@pytest.mark.parametrize("group", ["contact", "contact.business_emails", "basic_profile.name"])
def test_a_profile_body_refuses_contact_and_dot_paths(group: str) -> None:
    with pytest.raises(ValueError, match=group.replace(".", r"\.")):
        profile_body(["https://www.linkedin.com/in/x"], ["basic_profile", group])


def test_a_contact_body_refuses_the_section_name_instead_of_its_tiers() -> None:
    with pytest.raises(ValueError, match=r"not contact$"):
        contact_body("business_email", ["jane@acme.com"], ["contact"], verified=False)


@pytest.mark.parametrize("verified", [True, False])
def test_a_contact_body_refuses_no_tiers(verified: bool) -> None:
    with pytest.raises(ValueError, match="every tier"):
        contact_body("professional_network_profile_url", ["https://www.linkedin.com/in/x"], [], verified=verified)


# --- _body.checked ----------------------------------------------------------------------------------------------------


def test_checked_returns_an_accepted_body_unchanged() -> None:
    body: dict[str, Any] = {"fields": ["basic_profile"], "professional_network_profile_urls": ["u"]}

    assert checked(ENRICH_PATH, body, REQUEST_PARAMS[ENRICH_PATH]) is body
    assert body == {"fields": ["basic_profile"], "professional_network_profile_urls": ["u"]}


def test_checked_refuses_a_stray_key_naming_it_and_the_path() -> None:
    body: dict[str, Any] = {"fields": [], "business_emails": ["a@b.c"], "min_similarity_score": 0.5}

    with pytest.raises(ValueError) as caught:
        checked(ENRICH_PATH, body, REQUEST_PARAMS[ENRICH_PATH])

    assert str(caught.value) == "/person/enrich does not accept business_emails, min_similarity_score"


@given(
    st.sampled_from(sorted(REQUEST_PARAMS)),
    st.text(min_size=1, max_size=20),
)
def test_checked_refuses_any_key_outside_the_endpoints_params(path: str, stray: str) -> None:
    accepted = REQUEST_PARAMS[path]
    body = dict.fromkeys(accepted, 1)
    if stray in accepted:
        assert checked(path, body | {stray: 2}, accepted) == body | {stray: 2}
    else:
        with pytest.raises(ValueError, match="does not accept"):
            checked(path, body | {stray: 2}, accepted)


def test_checked_accepts_an_empty_body() -> None:
    assert checked(CONTACT_PATH, {}, REQUEST_PARAMS[CONTACT_PATH]) == {}
