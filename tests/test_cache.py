"""The profile cache: superset serves subset, negative entries, similarity thresholds, TTLs, hashed keys, the
entry read back whole (selection, threshold, profile URLs), and search pages."""

from __future__ import annotations

import json
import re
from typing import cast

import pytest

from person_enrich_mcp.api import EnrichMatch, SearchPage, Suggestions
from person_enrich_mcp.cache import PAGE_TTL_SECONDS, CachedEntry, CachedLookup, Erased, ProfileCache
from person_enrich_mcp.fields import FieldSelection
from person_enrich_mcp.privacy.subjects import email_hashes, identifier_hashes, subject_hash
from person_enrich_mcp.state import MemoryStore

pytestmark = pytest.mark.anyio

EMAIL = "business_email"
URL = "professional_network_profile_url"
JANE_EMAIL = "jane.doe@acme-widgets.com"
JANE_URL = "https://www.linkedin.com/in/jane-doe-1234"
TTL = 3600.0
NEGATIVE_TTL = 300.0


class FakeClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingStore(MemoryStore):
    """A MemoryStore that remembers every cache key and value it was handed."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock=clock)
        self.keys: list[str] = []
        self.puts: list[tuple[str, str, float]] = []

    async def cache_get(self, key: str) -> str | None:
        self.keys.append(key)
        return await super().cache_get(key)

    async def cache_put(self, key: str, value: str, ttl_seconds: float) -> None:
        self.keys.append(key)
        self.puts.append((key, value, ttl_seconds))
        await super().cache_put(key, value, ttl_seconds)


def _setup(
    *, ttl: float = TTL, negative_ttl: float = NEGATIVE_TTL, scope: str = "acct"
) -> tuple[ProfileCache, RecordingStore, FakeClock]:
    clock = FakeClock()
    store = RecordingStore(clock)
    return ProfileCache(store, scope=scope, ttl_seconds=ttl, negative_ttl_seconds=negative_ttl), store, clock


def _sel(*paths: str) -> FieldSelection:
    return FieldSelection.of(list(paths))


def _person() -> dict[str, object]:
    return {
        "crustdata_person_id": 7,
        "basic_profile": {"name": "Jane Doe", "headline": "CTO", "summary": None},
        "contact": {"business_emails": [{"email": JANE_EMAIL, "status": "verified"}], "phone_numbers": ["+1 555"]},
        "education": {"schools": [{"school": "MIT"}]},
    }


def _match(score: float = 1.0, data: dict[str, object] | None = None) -> EnrichMatch:
    return EnrichMatch(confidence_score=score, person_data=data if data is not None else _person())


def _scores(lookup: CachedLookup | None) -> list[float]:
    assert lookup is not None
    return [m.confidence_score for m in lookup.matches]


async def test_an_empty_cache_misses() -> None:
    cache, _, _ = _setup()

    assert await cache.get(URL, JANE_URL, _sel("basic_profile"), None) is None


async def test_the_same_selection_is_served_from_the_cache() -> None:
    cache, _, _ = _setup()
    await cache.put(URL, JANE_URL, _sel("basic_profile"), None, [_match()])

    lookup = await cache.get(URL, JANE_URL, _sel("basic_profile"), None)

    assert lookup is not None
    assert [m.person_data for m in lookup.matches] == [{"basic_profile": {"name": "Jane Doe", "headline": "CTO"}}]


async def test_a_cached_superset_serves_a_subset() -> None:
    cache, _, _ = _setup()
    await cache.put(URL, JANE_URL, _sel("basic_profile", "contact.business_emails"), None, [_match()])

    for wanted in (_sel("basic_profile.name"), _sel("contact.business_emails.email"), _sel("basic_profile")):
        lookup = await cache.get(URL, JANE_URL, wanted, None)
        assert lookup is not None
        assert len(lookup.matches) == 1


async def test_a_cached_subset_does_not_serve_a_superset() -> None:
    cache, _, _ = _setup()
    await cache.put(URL, JANE_URL, _sel("basic_profile.name"), None, [_match()])

    assert await cache.get(URL, JANE_URL, _sel("basic_profile"), None) is None
    assert await cache.get(URL, JANE_URL, _sel("basic_profile.name", "contact"), None) is None
    assert await cache.get(URL, JANE_URL, _sel("basic_profile.headline"), None) is None


async def test_only_the_paid_selection_is_stored() -> None:
    cache, store, _ = _setup()
    await cache.put(URL, JANE_URL, _sel("basic_profile.name"), None, [_match()])

    stored = cast(dict[str, object], json.loads(store.puts[-1][1]))
    lookup = await cache.get(URL, JANE_URL, _sel("basic_profile.name"), None)

    assert stored["sel"] == ["basic_profile.name"]
    assert stored["matches"] == [{"confidence_score": 1.0, "person_data": {"basic_profile": {"name": "Jane Doe"}}}]
    assert lookup is not None
    assert lookup.matches[0].person_data == {"basic_profile": {"name": "Jane Doe"}}


async def test_several_candidates_are_kept_in_order_with_their_scores() -> None:
    cache, _, _ = _setup()
    matches = [_match(0.95, {"basic_profile": {"name": "A"}}), _match(0.6, {"basic_profile": {"name": "B"}})]
    await cache.put(EMAIL, JANE_EMAIL, _sel("basic_profile"), None, matches)

    lookup = await cache.get(EMAIL, JANE_EMAIL, _sel("basic_profile.name"), None)

    assert lookup is not None
    assert [(m.confidence_score, m.person_data) for m in lookup.matches] == [
        (0.95, {"basic_profile": {"name": "A"}}),
        (0.6, {"basic_profile": {"name": "B"}}),
    ]


async def test_a_positive_entry_expires_after_the_ttl() -> None:
    cache, _, clock = _setup()
    await cache.put(URL, JANE_URL, _sel("basic_profile"), None, [_match()])

    clock.advance(TTL - 1)
    assert await cache.get(URL, JANE_URL, _sel("basic_profile"), None) is not None
    clock.advance(1)
    assert await cache.get(URL, JANE_URL, _sel("basic_profile"), None) is None


# --- negative entries -------------------------------------------------------------------------------------------------


async def test_a_no_match_is_cached_and_served_for_any_selection() -> None:
    cache, _, _ = _setup()
    await cache.put(URL, JANE_URL, _sel("basic_profile.name"), None, [])

    for wanted in (_sel("basic_profile.name"), _sel("contact", "education"), _sel("basic_profile")):
        assert await cache.get(URL, JANE_URL, wanted, None) == CachedLookup([])


async def test_a_no_match_is_cached_for_the_shorter_negative_ttl() -> None:
    cache, store, clock = _setup()
    await cache.put(URL, JANE_URL, _sel("basic_profile"), None, [])
    await cache.put(URL, "https://www.linkedin.com/in/john-roe", _sel("basic_profile"), None, [_match()])

    assert [ttl for _, _, ttl in store.puts] == [NEGATIVE_TTL, TTL]
    clock.advance(NEGATIVE_TTL)
    assert await cache.get(URL, JANE_URL, _sel("basic_profile"), None) is None
    assert await cache.get(URL, "https://www.linkedin.com/in/john-roe", _sel("basic_profile"), None) is not None


async def test_a_no_match_entry_reads_back_as_negative() -> None:
    cache, _, _ = _setup()
    await cache.put(URL, JANE_URL, _sel("basic_profile"), None, [])

    entry = await cache.entry(URL, JANE_URL)

    assert entry is not None
    assert entry.negative
    assert entry.matches == []


async def test_the_entry_reports_the_selection_that_was_paid_for() -> None:
    cache, _, _ = _setup()
    await cache.put(URL, JANE_URL, _sel("contact.business_emails", "basic_profile.name"), None, [_match()])

    entry = await cache.entry(URL, JANE_URL)

    assert entry is not None
    assert not entry.negative
    assert entry.selection == _sel("basic_profile.name", "contact.business_emails")
    assert entry.min_score == 0.0
    assert await cache.entry(URL, "https://www.linkedin.com/in/someone-else") is None


async def test_the_entry_remembers_the_threshold_it_was_fetched_at() -> None:
    cache, _, _ = _setup()
    await cache.put(EMAIL, JANE_EMAIL, _sel("basic_profile"), 0.8, [_match(0.9)])

    entry = await cache.entry(EMAIL, JANE_EMAIL)

    assert entry is not None
    assert entry.min_score == 0.8
    assert [m.confidence_score for m in entry.matches] == [0.9]


async def test_profile_urls_are_kept_per_match() -> None:
    cache, _, _ = _setup()
    matches = [_match(0.95), _match(0.6)]
    await cache.put(EMAIL, JANE_EMAIL, _sel("basic_profile"), None, matches, profile_urls=(JANE_URL, None))

    entry = await cache.entry(EMAIL, JANE_EMAIL)

    assert entry is not None
    assert entry.profile_urls == (JANE_URL, None)


@pytest.mark.parametrize("urls", [(), (None, None)])
async def test_an_entry_without_known_profile_urls_stores_none(urls: tuple[str | None, ...]) -> None:
    cache, store, _ = _setup()
    await cache.put(EMAIL, JANE_EMAIL, _sel("basic_profile"), None, [_match(), _match(0.5)], profile_urls=urls)

    entry = await cache.entry(EMAIL, JANE_EMAIL)

    assert "urls" not in cast(dict[str, object], json.loads(store.puts[-1][1]))
    assert entry is not None
    assert entry.profile_urls == ()


async def test_a_new_put_replaces_the_old_entry() -> None:
    cache, _, _ = _setup()
    await cache.put(URL, JANE_URL, _sel("basic_profile"), None, [_match()])
    await cache.put(URL, JANE_URL, _sel("education"), None, [_match()])

    entry = await cache.entry(URL, JANE_URL)

    assert entry is not None
    assert entry.selection == _sel("education")
    assert await cache.get(URL, JANE_URL, _sel("basic_profile"), None) is None


# --- CachedEntry.serves -----------------------------------------------------------------------------------------------


def _entry(paths: tuple[str, ...], min_score: float, scores: tuple[float, ...]) -> CachedEntry:
    return CachedEntry(_sel(*paths), min_score, [_match(score) for score in scores])


def test_an_entry_serves_a_subset_of_its_selection() -> None:
    entry = _entry(("basic_profile", "contact"), 0.0, (1.0,))

    assert _scores(entry.serves(_sel("basic_profile.name", "contact.phone_numbers"), None)) == [1.0]
    assert entry.serves(_sel("basic_profile", "education"), None) is None


def test_an_entry_serves_only_thresholds_at_least_as_strict_as_its_own() -> None:
    entry = _entry(("basic_profile",), 0.7, (0.95, 0.75))

    assert entry.serves(_sel("basic_profile"), None) is None
    assert entry.serves(_sel("basic_profile"), 0.69) is None
    assert _scores(entry.serves(_sel("basic_profile"), 0.7)) == [0.95, 0.75]
    assert _scores(entry.serves(_sel("basic_profile"), 0.8)) == [0.95]


def test_a_negative_entry_serves_any_selection_but_no_looser_threshold() -> None:
    entry = _entry(("basic_profile.name",), 0.5, ())

    assert entry.negative
    assert entry.serves(_sel("contact", "education"), 0.5) == CachedLookup([])
    assert entry.serves(_sel("basic_profile"), 0.4) is None


# --- min_similarity_score ---------------------------------------------------------------------------------------------


def _candidates() -> list[EnrichMatch]:
    return [_match(0.95), _match(0.85), _match(0.55)]


async def test_an_entry_fetched_at_a_threshold_serves_only_requests_at_least_as_strict() -> None:
    cache, _, _ = _setup()
    await cache.put(EMAIL, JANE_EMAIL, _sel("basic_profile"), 0.8, [_match(0.95), _match(0.85)])

    assert await cache.get(EMAIL, JANE_EMAIL, _sel("basic_profile"), None) is None
    assert await cache.get(EMAIL, JANE_EMAIL, _sel("basic_profile"), 0.5) is None
    assert await cache.get(EMAIL, JANE_EMAIL, _sel("basic_profile"), 0.79) is None
    assert _scores(await cache.get(EMAIL, JANE_EMAIL, _sel("basic_profile"), 0.8)) == [0.95, 0.85]
    assert _scores(await cache.get(EMAIL, JANE_EMAIL, _sel("basic_profile"), 0.9)) == [0.95]


async def test_a_stricter_request_is_served_with_only_the_candidates_above_it() -> None:
    cache, _, _ = _setup()
    await cache.put(EMAIL, JANE_EMAIL, _sel("basic_profile"), None, _candidates())

    assert _scores(await cache.get(EMAIL, JANE_EMAIL, _sel("basic_profile"), 0.85)) == [0.95, 0.85]
    assert _scores(await cache.get(EMAIL, JANE_EMAIL, _sel("basic_profile"), 0.9)) == [0.95]
    assert _scores(await cache.get(EMAIL, JANE_EMAIL, _sel("basic_profile"), None)) == [0.95, 0.85, 0.55]


async def test_a_threshold_above_every_candidate_reads_as_no_match() -> None:
    cache, _, _ = _setup()
    await cache.put(EMAIL, JANE_EMAIL, _sel("basic_profile"), None, _candidates())

    assert await cache.get(EMAIL, JANE_EMAIL, _sel("basic_profile"), 0.99) == CachedLookup([])


async def test_a_no_match_at_a_threshold_does_not_answer_a_looser_request() -> None:
    cache, _, _ = _setup()
    await cache.put(EMAIL, JANE_EMAIL, _sel("basic_profile"), 0.9, [])

    assert await cache.get(EMAIL, JANE_EMAIL, _sel("basic_profile"), 0.5) is None
    assert await cache.get(EMAIL, JANE_EMAIL, _sel("basic_profile"), None) is None
    assert await cache.get(EMAIL, JANE_EMAIL, _sel("basic_profile"), 0.95) == CachedLookup([])


async def test_a_threshold_request_is_not_served_by_a_narrower_selection() -> None:
    cache, _, _ = _setup()
    await cache.put(EMAIL, JANE_EMAIL, _sel("basic_profile.name"), None, _candidates())

    assert await cache.get(EMAIL, JANE_EMAIL, _sel("contact"), 0.9) is None


# --- TTL 0 disables ---------------------------------------------------------------------------------------------------


async def test_a_zero_ttl_disables_the_cache_without_touching_the_store() -> None:
    cache, store, _ = _setup(ttl=0)

    await cache.put(URL, JANE_URL, _sel("basic_profile"), None, [_match()])
    await cache.put(URL, JANE_URL, _sel("basic_profile"), None, [])

    assert await cache.get(URL, JANE_URL, _sel("basic_profile"), None) is None
    assert await cache.entry(URL, JANE_URL) is None
    await cache.put_page("q", SearchPage(profiles=[{"a": 1}]))
    assert await cache.get_page("q") is None
    assert store.keys == []


async def test_a_zero_negative_ttl_caches_hits_but_not_misses() -> None:
    cache, _, _ = _setup(negative_ttl=0)
    await cache.put(URL, JANE_URL, _sel("basic_profile"), None, [])
    await cache.put(URL, "https://www.linkedin.com/in/john-roe", _sel("basic_profile"), None, [_match()])

    assert await cache.get(URL, JANE_URL, _sel("basic_profile"), None) is None
    assert await cache.get(URL, "https://www.linkedin.com/in/john-roe", _sel("basic_profile"), None) is not None


# --- keys -------------------------------------------------------------------------------------------------------------


async def test_keys_never_contain_the_identifier_in_clear() -> None:
    cache, store, _ = _setup(scope="tenant-1")
    await cache.put(EMAIL, JANE_EMAIL, _sel("basic_profile"), None, [_match()])
    await cache.get(EMAIL, JANE_EMAIL, _sel("basic_profile"), None)
    await cache.put(URL, JANE_URL, _sel("basic_profile"), None, [_match()])
    await cache.entry(URL, JANE_URL)

    assert store.keys
    for key in store.keys:
        assert re.fullmatch(r"profile:tenant-1:[0-9a-f]{40}", key), key
        for fragment in ("jane", "doe", "acme", "linkedin", "@"):
            assert fragment not in key.lower()


async def test_the_same_identifier_always_maps_to_the_same_key() -> None:
    cache, store, _ = _setup()
    await cache.put(EMAIL, JANE_EMAIL, _sel("basic_profile"), None, [_match()])
    await cache.get(EMAIL, JANE_EMAIL, _sel("basic_profile"), None)

    assert len(set(store.keys)) == 1


async def test_kinds_do_not_share_entries() -> None:
    cache, _, _ = _setup()
    await cache.put(EMAIL, "shared-identifier", _sel("basic_profile"), None, [_match()])

    assert await cache.get(URL, "shared-identifier", _sel("basic_profile"), None) is None


async def test_scopes_do_not_share_entries() -> None:
    clock = FakeClock()
    store = RecordingStore(clock)
    first = ProfileCache(store, scope="a", ttl_seconds=TTL, negative_ttl_seconds=NEGATIVE_TTL)
    second = ProfileCache(store, scope="b", ttl_seconds=TTL, negative_ttl_seconds=NEGATIVE_TTL)
    await first.put(URL, JANE_URL, _sel("basic_profile"), None, [_match()])

    assert await second.get(URL, JANE_URL, _sel("basic_profile"), None) is None
    assert await first.get(URL, JANE_URL, _sel("basic_profile"), None) is not None


async def test_different_identifiers_do_not_share_entries() -> None:
    cache, _, _ = _setup()
    await cache.put(URL, JANE_URL, _sel("basic_profile"), None, [_match()])

    assert await cache.get(URL, JANE_URL + "5", _sel("basic_profile"), None) is None


# --- search pages -----------------------------------------------------------------------------------------------------


def _page(cursor: str | None = "c2") -> SearchPage:
    return SearchPage(profiles=[{"social_handles": {"x": JANE_URL}}], next_cursor=cursor, total_count=41)


async def test_a_page_read_before_is_served_for_the_same_query() -> None:
    cache, _, _ = _setup()
    await cache.put_page("filters=a;cursor=", _page())

    assert await cache.get_page("filters=a;cursor=") == _page()
    assert await cache.get_page("filters=a;cursor=c2") is None


async def test_a_page_is_kept_for_at_most_the_page_ttl() -> None:
    cache, store, clock = _setup(ttl=PAGE_TTL_SECONDS * 24)
    await cache.put_page("q", _page())

    assert store.puts[-1][2] == PAGE_TTL_SECONDS
    clock.advance(PAGE_TTL_SECONDS - 1)
    assert await cache.get_page("q") is not None
    clock.advance(1)
    assert await cache.get_page("q") is None


async def test_a_page_is_kept_no_longer_than_a_shorter_profile_ttl() -> None:
    cache, store, _ = _setup(ttl=60.0)
    await cache.put_page("q", _page())

    assert store.puts[-1][2] == 60.0


async def test_page_keys_are_hashed_and_apart_from_profile_keys() -> None:
    cache, store, _ = _setup(scope="tenant-1")
    await cache.put_page(f"exclude={JANE_URL}", _page())
    await cache.get_page(f"exclude={JANE_URL}")

    assert len(set(store.keys)) == 1
    assert re.fullmatch(r"page:tenant-1:[0-9a-f]{40}", store.keys[0])
    assert "linkedin" not in store.keys[0]


# --- autocomplete suggestions -----------------------------------------------------------------------------------------


def _suggestions(*values: str) -> Suggestions:
    return Suggestions.model_validate({"suggestions": [{"value": v, "document_count": 3} for v in values]})


async def test_suggestions_are_served_for_the_same_field_query_and_limit_only() -> None:
    cache, store, _ = _setup(scope="tenant-1")
    await cache.put_suggestions("current_title", "cto", 5, _suggestions("CTO", "Chief Technology Officer"))

    assert await cache.get_suggestions("current_title", "cto", 5) == _suggestions("CTO", "Chief Technology Officer")
    assert await cache.get_suggestions("current_title", "cto", 6) is None
    assert await cache.get_suggestions("current_title", "ceo", 5) is None
    assert await cache.get_suggestions("region", "cto", 5) is None
    assert re.fullmatch(r"suggest:tenant-1:[0-9a-f]{40}", store.puts[-1][0])
    assert "cto" not in store.puts[-1][0]


async def test_suggestions_are_kept_for_at_most_the_page_ttl_and_not_at_all_with_a_zero_ttl() -> None:
    cache, store, clock = _setup(ttl=PAGE_TTL_SECONDS * 24)
    await cache.put_suggestions("region", "ber", 3, _suggestions("Berlin"))

    assert store.puts[-1][2] == PAGE_TTL_SECONDS
    clock.advance(PAGE_TTL_SECONDS - 1)
    assert await cache.get_suggestions("region", "ber", 3) == _suggestions("Berlin")

    short, store, _ = _setup(ttl=0.5)
    await short.put_suggestions("region", "ber", 3, _suggestions("Berlin"))
    assert store.puts[-1][2] == 0.5
    assert await short.get_suggestions("region", "ber", 3) == _suggestions("Berlin")

    off, store, _ = _setup(ttl=0)
    await off.put_suggestions("region", "ber", 3, _suggestions("Berlin"))
    assert store.puts == []
    assert await off.get_suggestions("region", "ber", 3) is None
    assert store.keys == []


# --- one principal's view, dropping an entry -----------------------------------------------------------------------


async def test_a_principals_view_serves_only_what_that_principal_stored_with_the_same_ttls() -> None:
    shared, store, clock = _setup(scope="acct")
    alice, bob = shared.for_principal("alice"), shared.for_principal("bob")
    await alice.put(URL, JANE_URL, _sel("basic_profile"), None, [_match()])
    await alice.put(URL, "https://www.linkedin.com/in/nobody-1", _sel("basic_profile"), None, [])

    assert repr(alice) == f"ProfileCache(ttl={TTL})"
    assert _scores(await alice.get(URL, JANE_URL, _sel("basic_profile"), None)) == [1.0]
    assert await shared.for_principal("alice").get(URL, JANE_URL, _sel("basic_profile"), None) is not None
    assert await bob.get(URL, JANE_URL, _sel("basic_profile"), None) is None
    assert await shared.get(URL, JANE_URL, _sel("basic_profile"), None) is None
    assert [ttl for _, _, ttl in store.puts] == [TTL, NEGATIVE_TTL]
    assert all(re.fullmatch(r"profile:acct:p[0-9a-f]{16}:[0-9a-f]{40}", key) for key, _, _ in store.puts)
    clock.advance(TTL)
    assert await alice.get(URL, JANE_URL, _sel("basic_profile"), None) is None


async def test_a_dropped_entry_is_gone_and_the_others_stay() -> None:
    cache, _, _ = _setup()
    await cache.put(URL, JANE_URL, _sel("basic_profile"), None, [_match()])
    await cache.put(EMAIL, JANE_EMAIL, _sel("basic_profile"), None, [_match()])

    await cache.drop(URL, JANE_URL)

    assert await cache.entry(URL, JANE_URL) is None
    assert await cache.entry(EMAIL, JANE_EMAIL) is not None


# --- erasure: what is found about a person, and what is removed -------------------------------------------------------

OTHER_URL = "https://www.linkedin.com/in/other-person-9"


def _other() -> dict[str, object]:
    return {
        "basic_profile": {"name": "Other Person"},
        "social_handles": {"professional_network_identifier": {"profile_url": OTHER_URL}},
    }


async def test_erase_finds_a_person_by_the_identifier_an_entry_was_stored_under() -> None:
    cache, _, _ = _setup()
    await cache.put(EMAIL, "someone@elsewhere.com", _sel("basic_profile"), None, [_match(data=_other())])

    found = await cache.about(identifier_hashes("someone@elsewhere.com"))

    assert [kind for kind, _ in found] == ["profile"]
    assert found[0][1]["key"].startswith("profile:acct:")
    assert found[0][1]["sel"] == ["basic_profile"]


async def test_erase_finds_every_person_of_an_entry_not_just_the_last() -> None:
    cache, _, _ = _setup()
    await cache.put(EMAIL, "team@acme-widgets.com", _sel("social_handles"), None, [_match(data=_other()), _match()])

    assert len(await cache.about({subject_hash("url", OTHER_URL)})) == 1
    assert len(await cache.about(email_hashes(JANE_EMAIL))) == 1


async def test_erase_reads_the_people_of_entries_written_without_subject_hashes() -> None:
    cache, store, _ = _setup()
    legacy_profile = {"matches": [{"confidence_score": 1.0, "person_data": _other()}], "urls": [JANE_URL]}
    legacy_page = {"page": {"profiles": [_other()], "next_cursor": None}}
    await store.cache_put("profile:acct:legacy", json.dumps(legacy_profile), TTL)
    await store.cache_put("page:acct:legacy", json.dumps(legacy_page), TTL)
    await store.cache_put("page:acct:empty", json.dumps({"page": {"next_cursor": None}}), TTL)

    by_data = await cache.about({subject_hash("url", OTHER_URL)})
    by_url = await cache.about({subject_hash("url", JANE_URL)})

    assert sorted((kind, value["key"]) for kind, value in by_data) == [
        ("page", "page:acct:legacy"),
        ("profile", "profile:acct:legacy"),
    ]
    assert [(kind, value["key"]) for kind, value in by_url] == [("profile", "profile:acct:legacy")]


async def test_erase_counts_profiles_and_pages_and_a_dry_run_removes_nothing() -> None:
    cache, _, _ = _setup()
    await cache.put(URL, OTHER_URL, _sel("basic_profile"), None, [_match(data=_other())])
    await cache.put_page("q1", SearchPage(profiles=[_other()]))
    await cache.put_page("q2", SearchPage(profiles=[_other()]))
    await cache.put(URL, JANE_URL, _sel("basic_profile"), None, [_match()])
    hashes = {subject_hash("url", OTHER_URL)}

    dry = await cache.erase(hashes, dry_run=True)
    assert (dry.profiles, dry.pages, dry.total) == (1, 2, 3)
    assert len(await cache.about(hashes)) == 3

    done = await cache.erase(hashes)
    assert (done.profiles, done.pages) == (1, 2)
    assert await cache.about(hashes) == []
    assert await cache.entry(URL, JANE_URL) is not None
    assert (await cache.erase(hashes)).total == 0
    assert await cache.erase(set()) == Erased()


async def test_a_page_remembers_how_many_rows_were_withheld_and_none_by_default() -> None:
    cache, _, _ = _setup()
    await cache.put_page("q1", _page(), withheld=2)
    await cache.put_page("q2", _page())

    assert await cache.get_page_entry("q1") == (_page(), 2)
    assert await cache.get_page_entry("q2") == (_page(), 0)


async def test_a_page_is_cached_under_a_sub_second_ttl_too() -> None:
    cache, store, _ = _setup(ttl=0.5)
    await cache.put_page("q", _page())

    assert store.puts[-1][2] == 0.5
    assert await cache.get_page("q") == _page()


@pytest.mark.parametrize("old", [{"profiles": [], "next_cursor": None}, [1, 2], "page"])
async def test_a_page_written_in_an_older_format_is_read_again(old: object) -> None:
    cache, store, _ = _setup()
    await cache.put_page("q", _page())
    key = store.puts[-1][0]
    await store.cache_put(key, json.dumps(old), TTL)

    assert await cache.get_page_entry("q") is None


async def test_a_profile_is_cached_under_a_sub_second_ttl_too() -> None:
    cache, store, _ = _setup(ttl=0.5)
    await cache.put(URL, JANE_URL, _sel("basic_profile"), None, [_match()])

    assert store.puts[-1][2] == 0.5
    assert _scores(await cache.get(URL, JANE_URL, _sel("basic_profile"), None)) == [1.0]


async def test_erase_finds_the_per_session_record_of_urls_already_returned() -> None:
    cache, store, _ = _setup()
    seen = {"u": [[], "not a record", [OTHER_URL, 1000.0, 0]]}
    await store.cache_put("seen:acct:session-1", json.dumps(seen), TTL)
    await store.cache_put("seen:acct:session-2", json.dumps({"u": [[JANE_URL, 1000.0, 0]]}), TTL)

    found = await cache.about({subject_hash("url", OTHER_URL)})

    assert [(kind, value["key"]) for kind, value in found] == [("seen", "seen:acct:session-1")]
