"""The cache operations erasure and honest expiry need, on every backend: listing by prefix, deleting for good,
and purging expired entries whether or not anyone reads them again (checked in the raw storage: the memory
store's size, every byte of the SQLite files, every key and value in Redis)."""

from __future__ import annotations

from pathlib import Path

import pytest

from person_enrich_mcp.errors import ConfigurationError
from person_enrich_mcp.state import MemoryStore, check_cache_url, describe_store, open_cache_store
from person_enrich_mcp.state.sqlite import SQLiteStore
from tests.privacy_helpers import redis_traces, sqlite_traces
from tests.state_fixtures import Backend, FakeClock, RedisServer
from tests.state_fixtures import backend as backend  # re-exported: the parametrized fixture
from tests.state_fixtures import redis_server as redis_server  # re-exported: the session's redis-server

CANARY = "canary-person-5b9e21@example.test"
# Bigger than a SQLite page, so the value lives in overflow pages too.
BIG = CANARY + " " + "x" * 9000 + " " + CANARY
TTL = 0.25


def _traces(backend: Backend, request: pytest.FixtureRequest) -> list[str]:
    """Where the canary still is, in the backend's raw storage."""
    if backend.name == "sqlite":
        store = backend.store
        assert isinstance(store, SQLiteStore)
        return sqlite_traces(Path(store._path), [CANARY])  # pyright: ignore[reportPrivateUsage]
    if backend.name == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        return redis_traces(server.url, [CANARY])
    store = backend.store
    assert isinstance(store, MemoryStore)
    return [CANARY] if store.cache_size else []


@pytest.mark.anyio
async def test_items_list_live_entries_under_a_prefix_only(backend: Backend) -> None:
    await backend.store.cache_put("profile:a:1", "one", ttl_seconds=60)
    await backend.store.cache_put("profile:b:2", "two", ttl_seconds=60)
    await backend.store.cache_put("page:a:3", "three", ttl_seconds=60)
    await backend.store.cache_put("profile*:4", "glob", ttl_seconds=60)

    assert sorted(await backend.store.cache_items("profile:")) == [("profile:a:1", "one"), ("profile:b:2", "two")]
    assert await backend.store.cache_items("page:") == [("page:a:3", "three")]
    assert await backend.store.cache_items("absent:") == []


@pytest.mark.anyio
async def test_deleted_entries_leave_no_copy_in_the_backend(backend: Backend, request: pytest.FixtureRequest) -> None:
    await backend.store.cache_put("profile:a:1", BIG, ttl_seconds=60)
    await backend.store.cache_put("profile:a:2", CANARY, ttl_seconds=60)
    await backend.store.cache_put("profile:a:3", "someone else", ttl_seconds=60)
    assert _traces(backend, request) == [CANARY]

    assert await backend.store.cache_delete(["profile:a:1", "profile:a:2", "profile:absent"]) == 2

    assert await backend.store.cache_get("profile:a:3") == "someone else"
    if backend.name != "memory":  # the memory store still holds the other entry; its size says nothing here
        assert _traces(backend, request) == []


@pytest.mark.anyio
@pytest.mark.parametrize("backend", ["memory", "sqlite"], indirect=True)
async def test_expired_entries_are_purged_for_good_without_being_read(
    backend: Backend, request: pytest.FixtureRequest
) -> None:
    assert isinstance(backend.clock, FakeClock)
    await backend.store.cache_put("profile:a:1", BIG, ttl_seconds=30)
    await backend.store.cache_put("profile:a:2", CANARY, ttl_seconds=30)
    backend.clock.advance(29)
    assert await backend.store.cache_purge_expired() == 0
    assert _traces(backend, request) == [CANARY]

    backend.clock.advance(1)
    assert await backend.store.cache_purge_expired() == 2

    assert _traces(backend, request) == []
    assert await backend.store.cache_items("profile:") == []


@pytest.mark.anyio
@pytest.mark.parametrize("backend", ["redis"], indirect=True)
async def test_redis_removes_expired_entries_itself(backend: Backend, request: pytest.FixtureRequest) -> None:
    backend.mark()
    await backend.store.cache_put("profile:a:1", CANARY, ttl_seconds=TTL)
    assert _traces(backend, request) == [CANARY]

    async def gone() -> bool:
        # SCAN never returns an expired key, and every value is read by type: nothing of the entry is readable.
        return _traces(backend, request) == [] and await backend.store.cache_purge_expired() == 0

    await backend.becomes_true(TTL, gone)


@pytest.mark.anyio
@pytest.mark.parametrize("backend", ["sqlite", "redis"], indirect=True)  # memory has one process only
async def test_a_store_on_another_connection_sees_the_deletion(backend: Backend) -> None:
    await backend.store.cache_put("profile:a:1", CANARY, ttl_seconds=60)
    other = backend.another()

    assert await other.cache_delete(["profile:a:1"]) == 1

    assert await backend.store.cache_get("profile:a:1") is None


@pytest.mark.anyio
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_replaced_value_leaves_no_old_copy_in_sqlite_after_the_next_purge(
    backend: Backend, request: pytest.FixtureRequest
) -> None:
    await backend.store.cache_put("profile:a:1", BIG, ttl_seconds=60)
    await backend.store.cache_put("profile:a:1", "a narrower answer about someone", ttl_seconds=60)

    await backend.store.cache_purge_expired()

    assert _traces(backend, request) == []
    assert await backend.store.cache_get("profile:a:1") == "a narrower answer about someone"


# --- naming and opening the stores ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
        ("redis://user:secret@cache.internal:6380/1", "redis://cache.internal:6380/1"),
        ("redis://:secret@cache.internal/2", "redis://cache.internal/2"),
        ("redis://user@cache.internal/3", "redis://cache.internal/3"),
        ("sqlite:////var/lib/pe/state.db", "sqlite:////var/lib/pe/state.db"),
    ],
)
def test_a_store_url_is_logged_without_its_user_name_or_password(url: str, shown: str) -> None:
    assert describe_store(url) == shown


@pytest.mark.parametrize(
    ("url", "kind"), [(" Shared ", "shared"), ("memory://", "memory"), ("redis://localhost/0", "redis")]
)
def test_the_cache_url_names_the_shared_store_or_a_backend(url: str, kind: str) -> None:
    assert check_cache_url(url) == kind


def test_the_shared_cache_lives_in_the_state_store_and_any_other_is_its_own() -> None:
    state = MemoryStore()

    assert open_cache_store("shared", state) == (state, False)
    own, closes = open_cache_store("memory://", state)
    assert isinstance(own, MemoryStore) and own is not state and closes is True


def test_a_bad_cache_url_names_the_cache_setting() -> None:
    with pytest.raises(ConfigurationError, match="PERSON_ENRICH_CACHE_URL: unknown scheme 'ftp'"):
        open_cache_store("ftp://x", MemoryStore())
