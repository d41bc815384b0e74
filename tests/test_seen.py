"""The per-session seen record: bounded, oldest out first, expired by the cache TTL, and never stale when
another writer (a second replica, an erasure) changed the stored value since this process last read it."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest

from person_enrich_mcp.budget import Owner
from person_enrich_mcp.cache import _subjects_of  # pyright: ignore[reportPrivateUsage]
from person_enrich_mcp.fields import DEFAULT_SELECTION, FieldSelection
from person_enrich_mcp.privacy.subjects import subject_hash
from person_enrich_mcp.seen import SeenProfiles
from person_enrich_mcp.state import MemoryStore

pytestmark = pytest.mark.anyio

OWNER = Owner("http:team:abc", "team")
NAMES = FieldSelection.of(["basic_profile.name"])
WIDER = DEFAULT_SELECTION.union(FieldSelection.of(["basic_profile.summary"]))


def url(n: int) -> str:
    return f"https://www.linkedin.com/in/person-{n}"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_two_writers_on_one_store_each_see_what_the_other_added() -> None:
    store = MemoryStore()
    first = SeenProfiles(store, scope="k", ttl_seconds=3600)
    second = SeenProfiles(store, scope="k", ttl_seconds=3600)
    await first.add(OWNER, [url(1)], DEFAULT_SELECTION)
    await second.add(OWNER, [url(2)], DEFAULT_SELECTION)
    await first.add(OWNER, [url(3)], DEFAULT_SELECTION)
    assert sorted(await first.covering(OWNER, DEFAULT_SELECTION)) == [url(1), url(2), url(3)]
    assert sorted(await second.covering(OWNER, DEFAULT_SELECTION)) == [url(1), url(2), url(3)]


async def test_an_erased_record_is_not_served_from_memory() -> None:
    store = MemoryStore()
    seen = SeenProfiles(store, scope="k", ttl_seconds=3600)
    await seen.add(OWNER, [url(1), url(2)], DEFAULT_SELECTION)
    keys = [key for key, _ in await store.cache_items("seen:")]
    assert keys and await store.cache_delete(keys) == len(keys)
    assert await seen.covering(OWNER, DEFAULT_SELECTION) == []


async def test_the_newest_entries_are_kept_and_expired_ones_dropped() -> None:
    clock = Clock()
    seen = SeenProfiles(MemoryStore(), scope="k", ttl_seconds=100, max_urls=3, clock=clock)
    for n in range(1, 6):
        clock.now += 1
        await seen.add(OWNER, [url(n)], DEFAULT_SELECTION)
    assert sorted(await seen.covering(OWNER, DEFAULT_SELECTION)) == [url(3), url(4), url(5)]
    clock.now += 10
    await seen.add(OWNER, [url(3)], WIDER)  # widened: now the newest entry
    clock.now += 97  # url(4) and url(5) are past the TTL, url(3) was given again 97 s ago
    assert await seen.covering(OWNER, DEFAULT_SELECTION) == [url(3)]


async def test_a_person_held_with_fewer_fields_is_not_covering_a_wider_selection() -> None:
    seen = SeenProfiles(MemoryStore(), scope="k", ttl_seconds=3600)
    await seen.add(OWNER, [url(1)], NAMES)
    await seen.add(OWNER, [url(2)], DEFAULT_SELECTION)
    assert await seen.covering(OWNER, DEFAULT_SELECTION) == [url(2)]
    assert sorted(await seen.covering(OWNER, NAMES)) == [url(1), url(2)]


async def test_the_stored_record_names_its_people_for_erasure() -> None:
    store = MemoryStore()
    seen = SeenProfiles(store, scope="k", ttl_seconds=3600)
    await seen.add(OWNER, [url(1)], NAMES)
    await seen.add(OWNER, [url(2)], DEFAULT_SELECTION)
    ((_, raw),) = await store.cache_items("seen:")
    stored = cast(dict[str, Any], json.loads(raw))
    assert [entry[0] for entry in stored["u"]] == [url(1), url(2)]
    assert {subject_hash("url", url(1)), subject_hash("url", url(2))} <= _subjects_of(raw)
