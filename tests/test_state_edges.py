"""Edges of the state stores that the contract tests do not reach.

Store URLs (odd paths, the setting an error or log line names, a missing redis package), the bucket arithmetic
of rolling windows at their exact edges, how often and how exactly the local backends sweep, amounts below a
millionth, receipts kept one at a time, cache listing and deleting in batches (and literally, whatever the key),
the SQLite write-ahead log's truncation, and what a Redis store shows of itself.
"""

from __future__ import annotations

import logging
import sqlite3
import sys
import time
from collections.abc import Generator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pytest
import redis

from person_enrich_mcp.errors import ConfigurationError
from person_enrich_mcp.state import (
    Account,
    BudgetSnapshot,
    MemoryStore,
    check_cache_url,
    check_store_url,
    describe_store,
    open_cache_store,
    open_store,
    sqlite_path,
)
from person_enrich_mcp.state.base import BOOKS_KEPT_SECONDS, PRUNE_INTERVAL_SECONDS, WINDOW_BUCKETS
from person_enrich_mcp.state.redis import RedisStore
from person_enrich_mcp.state.sqlite import SQLiteStore
from tests.privacy_helpers import sqlite_traces
from tests.state_fixtures import Backend, FakeClock, RedisServer
from tests.state_fixtures import backend as backend  # re-exported: the parametrized fixture
from tests.state_fixtures import redis_server as redis_server  # re-exported: the session's redis-server

ZERO = Decimal(0)
MILLIONTH = Decimal("0.000001")
LONG_TTL = 600.0
# Exact binary fractions, so the fake clock lands exactly on bucket edges (as in test_state_contract.py).
WINDOW = 0.375
BUCKET = WINDOW / WINDOW_BUCKETS
DAY = 86_400.0
FAKE_CLOCK = ["memory", "sqlite"]
STATE_LOGGER = "person_enrich_mcp.state"
# More keys than one batch (500) of a delete or a read holds, and more than two batches.
MANY = 1_201
# Person data that must not stay in the files.
CANARY = "canary-person-5b9e21@example.test"
# The store's checkpoint retries (`_CHECKPOINT_TRIES`, `_CHECKPOINT_PAUSE` in state/sqlite.py).
CHECKPOINT_TRIES = 20
CHECKPOINT_PAUSE = 0.05


def _plain(key: str = "session:a", limit: int | str = 10) -> Account:
    return Account(key, Decimal(limit))


def _rolling(key: str = "principal:p", limit: int | str = 100, window: float = WINDOW) -> Account:
    return Account(key, Decimal(limit), window)


async def _spend(backend: Backend, reservation_id: str, amount: Decimal, accounts: list[Account]) -> None:
    assert (await backend.store.reserve(reservation_id, amount, accounts, LONG_TTL)).granted
    await backend.store.settle(reservation_id, amount)


def _clock(backend: Backend) -> FakeClock:
    assert backend.clock is not None
    return backend.clock


@contextmanager
def _redis_client(request: pytest.FixtureRequest) -> Generator[redis.Redis]:
    """A plain client on the test session's redis-server, to read what the store left there."""
    server: RedisServer = request.getfixturevalue("redis_server")
    client = redis.Redis.from_url(server.url, decode_responses=True)  # pyright: ignore[reportUnknownMemberType]
    try:
        yield client
    finally:
        client.close()


def _calls(client: redis.Redis, command: str) -> int:
    """How often Redis ran `command` since its statistics were last reset."""
    stats = cast(dict[str, dict[str, Any]], client.info("commandstats"))  # pyright: ignore[reportUnknownMemberType]
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


# --- store URLs ------------------------------------------------------------------------------------------------------


def test_a_sqlite_path_may_itself_contain_a_scheme_separator(tmp_path: Path) -> None:
    assert sqlite_path(f"sqlite:///{tmp_path}/odd://name.db") == tmp_path / "odd:" / "name.db"


@pytest.mark.anyio
async def test_a_four_slash_url_whose_path_contains_a_scheme_separator_opens_as_absolute(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=STATE_LOGGER)

    store = open_store(f"sqlite:///{tmp_path}/odd://name.db")
    await store.aclose()

    (record,) = [r for r in caplog.records if r.name == STATE_LOGGER]
    assert record.levelname == "INFO"  # no warning about a relative path
    assert (tmp_path / "odd:" / "name.db").exists()


@pytest.mark.parametrize("url", ["sqlite:///", "sqlite:///books/", "sqlite:////var/lib/pe/"])
def test_sqlite_urls_naming_a_directory_or_nothing_are_refused(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # should one be accepted after all, nothing lands outside the test's directory
    with pytest.raises(ConfigurationError, match=r"^PERSON_ENRICH_STATE_URL: sqlite needs a file, e\.g\. sqlite:////"):
        sqlite_path(url)


def test_an_in_memory_sqlite_url_is_refused_however_many_query_marks_follow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError, match="in-memory SQLite database keeps nothing"):
        sqlite_path("sqlite:///:memory:?cache=shared?x=1")


def test_a_bad_sqlite_url_names_the_setting_it_came_from() -> None:
    cache_setting = "^PERSON_ENRICH_CACHE_URL: "
    with pytest.raises(ConfigurationError, match=cache_setting):
        check_store_url("sqlite:///", "PERSON_ENRICH_CACHE_URL")
    with pytest.raises(ConfigurationError, match=cache_setting):
        check_cache_url("sqlite:///")
    with pytest.raises(ConfigurationError, match=cache_setting):
        open_store("sqlite:///", "PERSON_ENRICH_CACHE_URL")
    with pytest.raises(ConfigurationError, match=cache_setting):
        open_cache_store("sqlite:///:memory:", MemoryStore())


@pytest.mark.anyio
async def test_a_cache_store_of_its_own_is_logged_under_the_cache_setting(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=STATE_LOGGER)

    store, own = open_cache_store(f"sqlite:///{tmp_path}/cache.db", MemoryStore())
    await store.aclose()

    assert own is True and isinstance(store, SQLiteStore)
    (record,) = [r for r in caplog.records if r.name == STATE_LOGGER]
    assert record.levelname == "INFO"
    assert record.getMessage() == f"PERSON_ENRICH_CACHE_URL: SQLite file {tmp_path}/cache.db"


def test_without_the_redis_package_a_redis_url_is_refused_with_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An install without the `redis` extra: the package cannot be imported, so neither can the Redis backend.
    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    monkeypatch.delitem(sys.modules, "person_enrich_mcp.state.redis")

    with pytest.raises(ConfigurationError) as raised:
        open_store("redis://localhost:6379/0")

    message = str(raised.value)
    assert message.startswith("PERSON_ENRICH_STATE_URL names Redis but the redis package is missing")
    assert "pip install '.[redis]'" in message


def test_a_url_with_a_password_but_no_host_is_logged_without_inventing_one() -> None:
    assert describe_store("redis://user:secret@:6380/0") == "redis://:6380/0"


@pytest.mark.anyio
async def test_a_redis_stores_repr_shows_nothing_of_its_url() -> None:
    store = RedisStore("redis://user:secret@127.0.0.1:1/0")  # never connects: nothing is sent
    try:
        assert repr(store) == "RedisStore()"
    finally:
        await store.aclose()


# --- amounts --------------------------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("backend", ["sqlite", "redis"], indirect=True)
async def test_a_fraction_of_a_millionth_is_booked_as_a_whole_millionth(backend: Backend) -> None:
    account = _plain()

    await backend.store.reserve("r", Decimal("0.0000011"), [account], LONG_TTL)
    assert (await backend.store.read(account)).reserved == Decimal("0.000002")

    await backend.store.settle("r", Decimal("0.0000001"), Decimal("0.0000001"))
    assert await backend.store.read(account) == BudgetSnapshot(MILLIONTH, ZERO, MILLIONTH)


@pytest.mark.anyio
async def test_a_millionth_of_unverified_spend_alone_is_kept(backend: Backend) -> None:
    account = _plain()
    await backend.store.reserve("r", Decimal(1), [account], LONG_TTL)

    await backend.store.settle("r", ZERO, MILLIONTH)

    assert await backend.store.read(account) == BudgetSnapshot(ZERO, ZERO, MILLIONTH)


@pytest.mark.anyio
async def test_every_amount_read_back_is_a_decimal_even_with_nothing_spent(backend: Backend) -> None:
    plain, rolling = _plain(), _rolling()
    await backend.store.reserve("r", Decimal(1), [plain, rolling], LONG_TTL)

    for account in (plain, rolling):
        snapshot = await backend.store.read(account)
        assert [type(v) for v in (snapshot.spent, snapshot.reserved, snapshot.unverified)] == [Decimal] * 3


@pytest.mark.anyio
async def test_forget_refuses_while_a_single_millionth_is_held(backend: Backend) -> None:
    account = _plain()
    await backend.store.reserve("r", MILLIONTH, [account], LONG_TTL)

    assert await backend.store.forget(account.key) is False
    assert await backend.store.read(account) == BudgetSnapshot(ZERO, MILLIONTH, ZERO)


# --- rolling windows at their edges ---------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("backend", FAKE_CLOCK, indirect=True)
async def test_spend_counts_while_its_bucket_is_the_oldest_in_the_window_even_after_a_later_write(
    backend: Backend,
) -> None:
    rolling = _rolling()
    backend.mark()
    await _spend(backend, "old", Decimal(4), [rolling])

    await backend.wait((WINDOW_BUCKETS - 1) * BUCKET)  # the first bucket is now the oldest that counts
    await _spend(backend, "new", Decimal(1), [rolling])  # a write: buckets that left the window are dropped

    assert (await backend.store.read(rolling)).spent == Decimal(5)
    releases = await backend.store.releases(rolling)
    assert [(r.after_seconds, r.amount) for r in releases] == [(BUCKET, Decimal(4)), (WINDOW, Decimal(1))]

    await backend.wait(WINDOW)  # and one bucket later it has left
    assert (await backend.store.read(rolling)).spent == Decimal(1)


@pytest.mark.anyio
@pytest.mark.parametrize("backend", FAKE_CLOCK, indirect=True)
async def test_spend_that_left_the_window_is_no_release_even_with_no_write_since(backend: Backend) -> None:
    rolling = _rolling()
    backend.mark()
    await _spend(backend, "r", Decimal(3), [rolling])

    await backend.wait(WINDOW)

    assert await backend.store.releases(rolling) == []
    assert await backend.store.read(rolling) == BudgetSnapshot(ZERO, ZERO, ZERO)


@pytest.mark.anyio
async def test_a_call_that_charged_nothing_leaves_nothing_to_release(backend: Backend) -> None:
    rolling = _rolling()
    await backend.store.reserve("r", Decimal(2), [rolling], LONG_TTL)

    await backend.store.settle("r", ZERO)

    assert await backend.store.releases(rolling) == []


@pytest.mark.anyio
@pytest.mark.parametrize("backend", FAKE_CLOCK, indirect=True)
async def test_bucket_edges_agree_when_the_time_divides_inexactly(backend: Backend) -> None:
    # A 7.2 s window has 0.3 s buckets, which binary floats cannot hold: at 1000010.7 s, `now // 0.3` is bucket
    # 3333368 while `now / 0.3` rounds up to 3333369. The bucket new spend goes into and the buckets that count
    # must agree on the first.
    rolling = Account("principal:p", Decimal(100), 7.2)
    clock = _clock(backend)
    clock.now = 1_000_003.7  # bucket 3333345: the oldest that still counts at 1000010.7 s
    await _spend(backend, "old", Decimal(4), [rolling])

    clock.now = 1_000_010.7
    await _spend(backend, "new", Decimal(1), [rolling])

    assert (await backend.store.read(rolling)).spent == Decimal(5)


# --- keeping and sweeping the books ---------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("backend", FAKE_CLOCK, indirect=True)
async def test_a_long_window_keeps_its_books_two_windows_after_the_last_write(backend: Backend) -> None:
    fortnight = _rolling("principal:q", 10, 14 * DAY)
    backend.mark()
    await _spend(backend, "r", Decimal(2), [fortnight])
    await backend.store.add_receipt(fortnight.key, {"n": 1}, keep=10)

    await backend.wait(2 * 14 * DAY - 1)
    await backend.store.read(_plain("session:other"))  # any operation sweeps
    assert await backend.store.receipts(fortnight.key, 10) == [{"n": 1}]

    await backend.wait(2 * 14 * DAY + PRUNE_INTERVAL_SECONDS)
    await backend.store.read(_plain("session:other"))
    assert await backend.store.receipts(fortnight.key, 10) == []


@pytest.mark.anyio
@pytest.mark.parametrize("backend", FAKE_CLOCK, indirect=True)
async def test_books_are_forgotten_at_exactly_their_keeping_time(backend: Backend) -> None:
    backend.mark()
    await backend.store.add_receipt("session:a", {"n": 1}, keep=10)
    await backend.store.read(_plain("session:other"))  # a sweep now: the next is due a minute later

    await backend.wait(BOOKS_KEPT_SECONDS)
    await backend.store.read(_plain("session:other"))

    assert await backend.store.receipts("session:a", 10) == []


@pytest.mark.anyio
@pytest.mark.parametrize("backend", FAKE_CLOCK, indirect=True)
async def test_sweeps_run_at_most_once_a_minute(backend: Backend) -> None:
    backend.mark()
    await backend.store.add_receipt("session:a", {"n": 1}, keep=10)
    await backend.store.read(_plain("session:other"))

    await backend.wait(BOOKS_KEPT_SECONDS - 30)
    await backend.store.read(_plain("session:other"))  # sweeps: nothing is stale yet

    await backend.wait(BOOKS_KEPT_SECONDS)  # stale now, but the last sweep was 30 s ago
    await backend.store.read(_plain("session:other"))
    assert await backend.store.receipts("session:a", 10) == [{"n": 1}]

    await backend.wait(BOOKS_KEPT_SECONDS + 30)  # a minute after the last sweep: the next one
    await backend.store.read(_plain("session:other"))
    assert await backend.store.receipts("session:a", 10) == []


@pytest.mark.anyio
async def test_a_fresh_sqlite_store_sweeps_on_its_first_operation(tmp_path: Path) -> None:
    clock = FakeClock(0.0)
    first = SQLiteStore(tmp_path / "state.db", clock=clock)
    await first.cache_put("k", "v", ttl_seconds=1)
    await first.aclose()

    clock.now = PRUNE_INTERVAL_SECONDS  # the earliest time a sweep can be due for a store that never swept
    reopened = SQLiteStore(tmp_path / "state.db", clock=clock)
    try:
        await reopened.read(_plain())
    finally:
        await reopened.aclose()

    with sqlite3.connect(tmp_path / "state.db") as db:
        assert db.execute("SELECT COUNT(*) FROM cache").fetchone()[0] == 0  # the expired row was swept


@pytest.mark.anyio
@pytest.mark.parametrize("backend", FAKE_CLOCK, indirect=True)
async def test_a_reaped_reservation_is_remembered_for_exactly_a_day(backend: Backend) -> None:
    account = _plain("session:a", 100)
    await backend.store.reserve("early", Decimal(3), [account], 1)
    await backend.store.reserve("late", Decimal(5), [account], 1)
    backend.mark()
    await backend.wait(1)
    await backend.store.read(account)  # reaps both
    assert await backend.store.read(account) == BudgetSnapshot(ZERO, ZERO, Decimal(8))

    await backend.wait(1 + DAY - 1)
    await backend.store.settle("early", Decimal(1))  # still remembered: the truth replaces the estimate
    assert await backend.store.read(account) == BudgetSnapshot(Decimal(1), ZERO, Decimal(5))

    await backend.wait(1 + DAY)
    await backend.store.read(account)  # a day after the reap: forgotten, a settle now changes nothing
    await backend.store.settle("late", ZERO)
    assert await backend.store.read(account) == BudgetSnapshot(Decimal(1), ZERO, Decimal(5))


@pytest.mark.anyio
@pytest.mark.parametrize("backend", FAKE_CLOCK, indirect=True)
async def test_a_busy_rate_limit_log_survives_a_sweep(backend: Backend) -> None:
    backend.mark()
    assert await backend.store.take_slot("b", 1, 120.0) == 0.0

    await backend.wait(PRUNE_INTERVAL_SECONDS + 1)
    await backend.store.read(_plain())  # sweeps

    assert await backend.store.take_slot("b", 1, 120.0) == 120.0 - (PRUNE_INTERVAL_SECONDS + 1)


@pytest.mark.anyio
async def test_a_rate_limit_log_idle_for_a_day_is_forgotten_and_a_busier_one_kept() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    start = clock.now
    await store.take_slot("idle", 5, 1.0)
    await store.take_slot("busy", 5, 1.0)
    clock.now = start + 1
    await store.take_slot("busy", 5, 1.0)

    clock.now = start + DAY
    await store.read(_plain())  # sweeps

    assert set(store._windows) == {"busy"}  # pyright: ignore[reportPrivateUsage]


@pytest.mark.anyio
async def test_every_write_to_a_rolling_account_drops_the_spend_that_left_its_window() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    by_reserve, by_settle, by_reap = _rolling("principal:a"), _rolling("principal:b"), _rolling("principal:c")
    await store.reserve("open", Decimal(1), [by_settle], LONG_TTL)
    await store.reserve("expiring", Decimal(1), [by_reap], 2 * WINDOW)
    for n, account in enumerate((by_reserve, by_settle, by_reap)):
        await store.reserve(f"spend{n}", Decimal(2), [account], LONG_TTL)
        await store.settle(f"spend{n}", Decimal(1), Decimal(1))
    first_bucket = int(clock.now // BUCKET)

    clock.advance(2 * WINDOW)
    await store.reserve("later", Decimal(1), [by_reserve], LONG_TTL)  # also reaps "expiring"
    await store.settle("open", ZERO)

    for account in (by_reserve, by_settle, by_reap):
        books = store._books[account.key]  # pyright: ignore[reportPrivateUsage]
        assert first_bucket not in books.spent and first_bucket not in books.unverified, account.key


# --- receipts -------------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_keep_of_one_keeps_the_newest_receipt(backend: Backend) -> None:
    for n in range(3):
        await backend.store.add_receipt("session:a", {"n": n}, keep=1)

    assert await backend.store.receipts("session:a", 10) == [{"n": 2}]


@pytest.mark.anyio
@pytest.mark.parametrize("backend", ["redis"], indirect=True)
async def test_a_redis_receipt_is_appended_and_trimmed_in_one_transaction(
    backend: Backend, request: pytest.FixtureRequest
) -> None:
    with _redis_client(request) as client:
        client.config_resetstat()  # pyright: ignore[reportUnknownMemberType]

        await backend.store.add_receipt("session:a", {"n": 1}, keep=5)

        assert (_calls(client, "multi"), _calls(client, "exec")) == (1, 1)


# --- the cache: listing, deleting, expiring -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_cache_prefix_is_matched_literally_whatever_characters_it_holds(backend: Backend) -> None:
    prefix = "sub*j?[x]\\:"
    await backend.store.cache_put(prefix + "1", "wanted", ttl_seconds=60)
    # Each would match if the prefix were read as a glob pattern.
    await backend.store.cache_put("subAAjBx:2", "glob", ttl_seconds=60)
    await backend.store.cache_put("sub*j?[x]\\:", "the prefix itself", ttl_seconds=60)

    assert sorted(await backend.store.cache_items(prefix)) == [
        (prefix, "the prefix itself"),
        (prefix + "1", "wanted"),
    ]


@pytest.mark.anyio
@pytest.mark.parametrize("backend", FAKE_CLOCK, indirect=True)
async def test_an_entry_is_no_longer_listed_at_exactly_its_ttl(backend: Backend) -> None:
    backend.mark()
    await backend.store.cache_put("profile:a", "v", ttl_seconds=30)

    await backend.wait(30)

    assert await backend.store.cache_items("profile:") == []


async def _fill(backend: Backend, n: int) -> list[str]:
    keys = [f"profile:{i:05d}" for i in range(n)]
    for key in keys:
        await backend.store.cache_put(key, f"value {key}", ttl_seconds=LONG_TTL)
    return keys


@pytest.mark.anyio
async def test_many_entries_are_listed_once_each(backend: Backend) -> None:
    keys = await _fill(backend, MANY)

    items = await backend.store.cache_items("profile:")

    assert sorted(items) == [(key, f"value {key}") for key in keys]


@pytest.mark.anyio
async def test_deleting_many_entries_deletes_and_counts_every_one(backend: Backend) -> None:
    keys = await _fill(backend, MANY)
    await backend.store.cache_put("page:kept", "v", ttl_seconds=LONG_TTL)

    assert await backend.store.cache_delete([*keys, "profile:absent"]) == MANY

    assert await backend.store.cache_items("profile:") == []
    assert await backend.store.cache_get("page:kept") == "v"


@pytest.mark.anyio
@pytest.mark.parametrize("backend", ["redis"], indirect=True)
async def test_redis_lists_and_deletes_many_entries_in_few_round_trips(
    backend: Backend, request: pytest.FixtureRequest
) -> None:
    keys = await _fill(backend, MANY)
    with _redis_client(request) as client:
        client.config_resetstat()  # pyright: ignore[reportUnknownMemberType]

        await backend.store.cache_items("profile:")
        await backend.store.cache_delete(keys)

        assert _calls(client, "scan") <= 5  # about a thousand keys a SCAN
        assert (_calls(client, "mget"), _calls(client, "del")) == (3, 3)  # 500 keys a batch


@pytest.mark.anyio
@pytest.mark.parametrize("backend", ["redis"], indirect=True)
@pytest.mark.parametrize(("ttl", "milliseconds"), [(60.0, 60_000), (0.0004, 1)])
async def test_redis_keeps_a_cached_value_its_ttl_in_milliseconds_and_at_least_one(
    backend: Backend, request: pytest.FixtureRequest, ttl: float, milliseconds: int
) -> None:
    server: RedisServer = request.getfixturevalue("redis_server")
    client = redis.Redis.from_url(server.url, decode_responses=True, socket_timeout=5)  # pyright: ignore[reportUnknownMemberType]
    try:
        with client.monitor() as monitor:  # every command Redis runs from now on
            await backend.store.cache_put("profile:a", "v", ttl_seconds=ttl)
            command = ""
            while not command.startswith("SET "):  # past the connection's own handshake
                seen = cast(dict[str, Any] | None, monitor.next_command())  # pyright: ignore[reportUnknownMemberType]
                assert seen is not None
                command = str(seen["command"])
    finally:
        client.close()

    assert command == f"SET pe:cache:profile:a v PX {milliseconds}"


@pytest.mark.anyio
async def test_the_memory_cache_holds_twenty_thousand_entries_by_default() -> None:
    store = MemoryStore()
    for n in range(20_001):
        await store.cache_put(f"k{n}", "v", ttl_seconds=LONG_TTL)

    assert store.cache_size == 20_000
    assert await store.cache_get("k0") is None
    assert await store.cache_get("k1") == "v"


@pytest.mark.anyio
async def test_a_zero_ttl_put_evicts_nothing_from_a_full_memory_cache() -> None:
    store = MemoryStore(max_cache_entries=2)
    await store.cache_put("a", "1", ttl_seconds=60)
    await store.cache_put("b", "2", ttl_seconds=60)

    await store.cache_put("c", "3", ttl_seconds=0)

    assert (await store.cache_get("a"), await store.cache_get("b"), store.cache_size) == ("1", "2", 2)


# --- SQLite files ---------------------------------------------------------------------------------------------------


def _files(path: Path) -> dict[str, bytes]:
    """The database file and its write-ahead log (the shared-memory index changes on any transaction)."""
    return {name: Path(f"{path}{name}").read_bytes() for name in ("", "-wal") if Path(f"{path}{name}").exists()}


def _log_size(path: Path) -> int:
    return Path(f"{path}-wal").stat().st_size


@pytest.mark.anyio
async def test_a_sqlite_store_creates_every_missing_directory_of_its_path(tmp_path: Path) -> None:
    path = tmp_path / "var" / "lib" / "pe" / "state.db"

    store = SQLiteStore(path)
    await store.ping()
    await store.aclose()

    assert path.exists()


@pytest.mark.anyio
async def test_a_sqlite_store_waits_half_a_minute_for_another_process_holding_the_file(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.db")
    try:
        busy_timeout = store._db.execute("PRAGMA busy_timeout").fetchone()[0]  # pyright: ignore[reportPrivateUsage]
    finally:
        await store.aclose()

    assert busy_timeout == 30_000


@pytest.mark.anyio
async def test_a_zero_ttl_put_of_an_absent_key_writes_nothing_to_the_sqlite_files(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SQLiteStore(path)
    try:
        await store.reserve("r", Decimal(1), [_plain()], LONG_TTL)  # the log holds something
        before = _files(path)

        await store.cache_put("profile:a", CANARY, ttl_seconds=0)

        assert _files(path) == before
    finally:
        await store.aclose()


@pytest.mark.anyio
async def test_the_sqlite_log_is_truncated_by_a_purge_only_after_cache_writes(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SQLiteStore(path)
    try:
        await store.reserve("r1", Decimal(1), [_plain()], LONG_TTL)
        await store.cache_purge_expired()
        assert _log_size(path) > 0  # no cache write yet: the log is left alone

        await store.cache_put("profile:a", "v", ttl_seconds=60)
        await store.cache_purge_expired()
        assert _log_size(path) == 0

        await store.reserve("r2", Decimal(1), [_plain()], LONG_TTL)
        await store.cache_purge_expired()
        assert _log_size(path) > 0  # nothing cached since the last truncation
    finally:
        await store.aclose()


@pytest.mark.anyio
async def test_an_in_memory_sqlite_store_deletes_cache_entries_without_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = SQLiteStore(":memory:")  # no write-ahead log: a checkpoint answers (0, -1, -1)
    try:
        await store.cache_put("profile:a", "v", ttl_seconds=60)

        assert await store.cache_delete(["profile:a"]) == 1
        assert await store.cache_purge_expired() == 0
    finally:
        await store.aclose()

    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


@contextmanager
def _reader_holding_the_log(store: SQLiteStore, path: Path) -> Generator[sqlite3.Connection]:
    """Another connection mid-read (its snapshot needs the log), with the store told not to wait for it.

    The store waits up to 30 s for other connections on every try; a test cannot, so that wait is set to zero.
    """
    reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM cache").fetchone()
        store._db.execute("PRAGMA busy_timeout = 0")  # pyright: ignore[reportPrivateUsage]
        yield reader
    finally:
        reader.close()


@pytest.mark.anyio
async def test_a_log_truncation_a_reader_blocks_is_retried_with_pauses_then_given_up_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state.db"
    store = SQLiteStore(path)
    pauses: list[float] = []
    try:
        await store.cache_put("profile:a", CANARY, ttl_seconds=60)
        with _reader_holding_the_log(store, path):
            monkeypatch.setattr(time, "sleep", pauses.append)

            assert await store.cache_delete(["profile:a"]) == 1
    finally:
        await store.aclose()

    assert pauses == [CHECKPOINT_PAUSE] * (CHECKPOINT_TRIES - 1)  # between tries, none after the last
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warning == f"could not truncate the SQLite write-ahead log of {path} (busy); retried later"


@pytest.mark.anyio
async def test_a_reader_that_lets_go_before_the_last_try_lets_the_log_be_truncated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state.db"
    store = SQLiteStore(path)
    pauses: list[float] = []
    try:
        await store.cache_put("profile:a", CANARY, ttl_seconds=60)
        with _reader_holding_the_log(store, path) as reader:

            def pause(seconds: float) -> None:
                pauses.append(seconds)
                if len(pauses) == CHECKPOINT_TRIES - 1:  # the pause before the last try
                    reader.execute("COMMIT")

            monkeypatch.setattr(time, "sleep", pause)

            assert await store.cache_delete(["profile:a"]) == 1
    finally:
        await store.aclose()

    assert pauses == [CHECKPOINT_PAUSE] * (CHECKPOINT_TRIES - 1)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert sqlite_traces(path, [CANARY]) == []
