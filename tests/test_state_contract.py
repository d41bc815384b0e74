"""The StateStore contract, run against every backend: memory, SQLite and a real redis-server.

Budgets (all-or-nothing reservations, settle, unverified spend, reaping, rolling windows), receipts, the TTL
cache and sliding-window slots must behave the same whichever backend keeps them. Memory and SQLite run on a
fake clock; Redis keeps time itself, so its time-dependent tests run for real with sub-second durations (see
`tests/state_fixtures.py`).
"""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import anyio
import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from person_enrich_mcp.errors import ConfigurationError
from person_enrich_mcp.state import Account, BudgetSnapshot, MemoryStore, ReserveOutcome, StateStore, open_store
from person_enrich_mcp.state import base as state_base
from person_enrich_mcp.state.base import WINDOW_BUCKETS
from person_enrich_mcp.state.redis import RedisStore
from person_enrich_mcp.state.sqlite import SQLiteStore
from tests.http_helpers import free_port
from tests.state_fixtures import Backend, FakeClock, RedisServer, redis_command
from tests.state_fixtures import backend as backend  # re-exported: the parametrized fixture
from tests.state_fixtures import redis_server as redis_server  # re-exported: the session's redis-server

ZERO = Decimal(0)
CENT = Decimal("0.01")
EMPTY = BudgetSnapshot(ZERO, ZERO, ZERO)
# Long enough never to expire during a test, on any clock.
LONG_TTL = 600.0
# Short real durations (exact binary fractions, so the fake clock lands exactly on them).
TTL = 0.25
WINDOW = 0.375
BUCKET = WINDOW / WINDOW_BUCKETS
SLOT_WINDOW = 0.5
# How closely a real-clock wait report matches the expected one.
WAIT_TOLERANCE = 0.05
# How far apart the local clock and Redis TIME may be read.
CLOCK_SLACK = 0.05

FAKE_CLOCK = ["memory", "sqlite"]
SHARED = ["sqlite", "redis"]


def _plain(key: str = "s", limit: int | str = 10) -> Account:
    return Account(key, Decimal(limit))


def _rolling(key: str = "principal:p", limit: int | str = 10, window: float = WINDOW) -> Account:
    return Account(key, Decimal(limit), window)


def _wait_tolerance(backend: Backend) -> float:
    return WAIT_TOLERANCE if backend.real_time else 1e-6


# --- reservations -------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_an_unknown_account_reads_all_zero(backend: Backend) -> None:
    assert await backend.store.read(_plain("session:nobody")) == EMPTY
    assert await backend.store.read(_rolling("principal:nobody")) == EMPTY


@pytest.mark.anyio
async def test_a_granted_reservation_is_held_on_every_account(backend: Backend) -> None:
    accounts = [_plain("session:a", 10), _rolling("principal:p", 100, 3600.0)]

    outcome = await backend.store.reserve("r1", Decimal("2.5"), accounts, LONG_TTL)

    assert outcome == ReserveOutcome(True)
    for account in accounts:
        assert await backend.store.read(account) == BudgetSnapshot(ZERO, Decimal("2.5"), ZERO)


@pytest.mark.anyio
async def test_a_reservation_that_exactly_fills_the_limit_is_granted(backend: Backend) -> None:
    account = _plain("s", 10)
    await backend.store.reserve("r1", Decimal("6.97"), [account], LONG_TTL)

    outcome = await backend.store.reserve("r2", Decimal("3.03"), [account], LONG_TTL)

    assert outcome.granted
    assert (await backend.store.read(account)).committed == Decimal(10)


@pytest.mark.anyio
async def test_one_hundredth_over_the_limit_is_refused_with_what_is_left(backend: Backend) -> None:
    account = _plain("s", 10)
    await backend.store.reserve("r1", Decimal("9.99"), [account], LONG_TTL)

    outcome = await backend.store.reserve("r2", Decimal("0.02"), [account], LONG_TTL)

    assert outcome == ReserveOutcome(False, "s", Decimal("0.01"))
    assert (await backend.store.read(account)).reserved == Decimal("9.99")


@pytest.mark.anyio
async def test_a_refusal_by_any_account_holds_nothing_on_the_others(backend: Backend) -> None:
    principal = _rolling("principal:p", 10, 3600.0)
    await backend.store.reserve("existing", Decimal(8), [principal], LONG_TTL)
    session, org = _plain("session:a", 100), _plain("org:o", 50)

    outcome = await backend.store.reserve("r1", Decimal(5), [session, principal, org], LONG_TTL)

    assert outcome == ReserveOutcome(False, "principal:p", Decimal(2))
    assert await backend.store.read(session) == EMPTY
    assert (await backend.store.read(principal)).reserved == Decimal(8)
    assert await backend.store.read(org) == EMPTY


@pytest.mark.anyio
async def test_a_refused_reservation_can_be_settled_without_effect(backend: Backend) -> None:
    account = _plain("s", 10)
    await backend.store.reserve("r1", Decimal(20), [account], LONG_TTL)

    await backend.store.settle("r1", Decimal(5))

    assert await backend.store.read(account) == EMPTY


@pytest.mark.anyio
async def test_remaining_is_never_negative_when_already_overspent(backend: Backend) -> None:
    account = _plain("s", 10)
    await backend.store.reserve("r1", Decimal(5), [account], LONG_TTL)
    await backend.store.settle("r1", Decimal(12))

    outcome = await backend.store.reserve("r2", Decimal(1), [account], LONG_TTL)

    assert outcome == ReserveOutcome(False, "s", ZERO)
    assert (await backend.store.read(account)).spent == Decimal(12)


@pytest.mark.anyio
async def test_reusing_an_open_reservation_id_never_holds_the_amount_twice(backend: Backend) -> None:
    account = _plain("s", 10)
    await backend.store.reserve("r1", Decimal(1), [account], LONG_TTL)

    with pytest.raises(ValueError, match="r1"):
        await backend.store.reserve("r1", Decimal(1), [account], LONG_TTL)
    await backend.store.settle("r1", ZERO)

    assert await backend.store.read(account) == EMPTY


@pytest.mark.anyio
@pytest.mark.parametrize("backend", ["memory"], indirect=True)
async def test_memory_refuses_a_reused_open_reservation_id_by_name(backend: Backend) -> None:
    await backend.store.reserve("r1", Decimal(1), [_plain()], LONG_TTL)

    with pytest.raises(ValueError, match="r1"):
        await backend.store.reserve("r1", Decimal(1), [_plain()], LONG_TTL)
    assert (await backend.store.read(_plain())).reserved == Decimal(1)


@pytest.mark.anyio
async def test_settle_turns_the_charge_into_spend_and_frees_the_rest_on_every_account(backend: Backend) -> None:
    accounts = [_plain("a", 10), _rolling("b", 10, 3600.0)]
    await backend.store.reserve("r1", Decimal(6), accounts, LONG_TTL)

    await backend.store.settle("r1", Decimal("2.03"), Decimal(1))

    for account in accounts:
        snapshot = await backend.store.read(account)
        assert snapshot == BudgetSnapshot(Decimal("2.03"), ZERO, Decimal(1))
        assert snapshot.committed == Decimal("3.03")


@pytest.mark.anyio
async def test_settling_frees_room_for_the_next_reservation(backend: Backend) -> None:
    account = [_plain("s", 10)]
    await backend.store.reserve("r1", Decimal(10), account, LONG_TTL)
    assert not (await backend.store.reserve("r2", Decimal(3), account, LONG_TTL)).granted

    await backend.store.settle("r1", Decimal(7))

    assert (await backend.store.reserve("r3", Decimal(3), account, LONG_TTL)).granted
    assert not (await backend.store.reserve("r4", CENT, account, LONG_TTL)).granted


@pytest.mark.anyio
async def test_unverified_spend_stays_counted_against_the_limit(backend: Backend) -> None:
    account = [_plain("s", 10)]
    await backend.store.reserve("r1", Decimal(7), account, LONG_TTL)
    await backend.store.settle("r1", ZERO, Decimal(7))

    outcome = await backend.store.reserve("r2", Decimal(4), account, LONG_TTL)

    assert outcome == ReserveOutcome(False, "s", Decimal(3))
    assert await backend.store.read(account[0]) == BudgetSnapshot(ZERO, ZERO, Decimal(7))


@pytest.mark.anyio
async def test_settling_twice_or_an_unknown_id_changes_nothing(backend: Backend) -> None:
    account = _plain("s", 10)
    await backend.store.reserve("r1", Decimal(5), [account], LONG_TTL)
    await backend.store.settle("r1", Decimal(2))

    await backend.store.settle("r1", Decimal(2))
    await backend.store.settle("never-opened", Decimal(3), Decimal(3))

    assert await backend.store.read(account) == BudgetSnapshot(Decimal(2), ZERO, ZERO)


@pytest.mark.anyio
async def test_a_settled_reservation_id_may_be_reused(backend: Backend) -> None:
    account = [_plain("s", 10)]
    await backend.store.reserve("r1", Decimal(1), account, LONG_TTL)
    await backend.store.settle("r1", Decimal(1))

    assert (await backend.store.reserve("r1", Decimal(1), account, LONG_TTL)).granted
    assert await backend.store.read(account[0]) == BudgetSnapshot(Decimal(1), Decimal(1), ZERO)


@pytest.mark.anyio
async def test_decimal_fractions_add_up_exactly(backend: Backend) -> None:
    account = [_plain("s", "0.3")]
    for i in range(10):
        assert (await backend.store.reserve(f"r{i}", Decimal("0.03"), account, LONG_TTL)).granted
        await backend.store.settle(f"r{i}", Decimal("0.03"))

    assert (await backend.store.read(account[0])).spent == Decimal("0.3")
    assert not (await backend.store.reserve("extra", CENT, account, LONG_TTL)).granted


@pytest.mark.anyio
async def test_millionths_of_a_credit_are_kept_exactly(backend: Backend) -> None:
    account = [_plain("s", "0.00001")]
    for i in range(7):
        assert (await backend.store.reserve(f"r{i}", Decimal("0.000001"), account, LONG_TTL)).granted
        await backend.store.settle(f"r{i}", Decimal("0.000001"))

    outcome = await backend.store.reserve("big", Decimal("0.000004"), account, LONG_TTL)

    assert (await backend.store.read(account[0])).spent == Decimal("0.000007")
    assert outcome == ReserveOutcome(False, "s", Decimal("0.000003"))


# --- rolling windows ------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_rolling_spend_stops_counting_once_older_than_the_window_but_a_plain_account_keeps_it(
    backend: Backend,
) -> None:
    plain, rolling = _plain("session:a", 10), _rolling("principal:p", 10)
    backend.mark()
    await backend.store.reserve("r1", Decimal(3), [plain, rolling], LONG_TTL)
    await backend.store.settle("r1", Decimal(3))

    async def rolling_spent() -> Decimal:
        return (await backend.store.read(rolling)).spent

    async def still_counted() -> bool:
        return await rolling_spent() == Decimal(3)

    async def gone() -> bool:
        return await rolling_spent() == ZERO

    await backend.check_at(WINDOW / 2, still_counted, before=WINDOW - BUCKET)
    await backend.becomes_true(WINDOW, gone, earliest=WINDOW - BUCKET)
    assert await backend.store.read(plain) == BudgetSnapshot(Decimal(3), ZERO, ZERO)


@pytest.mark.anyio
async def test_only_the_spend_older_than_the_window_leaves_it(backend: Backend) -> None:
    rolling = _rolling("principal:p", 10)
    backend.mark()
    await backend.store.reserve("early", Decimal(2), [rolling], LONG_TTL)
    await backend.store.settle("early", Decimal(2))
    await backend.wait(WINDOW * 3 / 4)
    await backend.store.reserve("late", Decimal(5), [rolling], LONG_TTL)
    await backend.store.settle("late", Decimal(5))

    async def spent_is(amount: int) -> bool:
        return (await backend.store.read(rolling)).spent == Decimal(amount)

    assert await spent_is(7)
    await backend.becomes_true(WINDOW, lambda: spent_is(5), earliest=WINDOW - BUCKET)
    await backend.becomes_true(WINDOW * 7 / 4, lambda: spent_is(0), earliest=WINDOW * 7 / 4 - BUCKET)


@pytest.mark.anyio
async def test_a_rolling_account_refuses_until_its_old_spend_leaves_the_window(backend: Backend) -> None:
    rolling = _rolling("principal:p", 5)
    backend.mark()
    await backend.store.reserve("r0", Decimal(5), [rolling], LONG_TTL)
    await backend.store.settle("r0", Decimal(4), Decimal(1))
    assert await backend.store.reserve("refused", Decimal(1), [rolling], LONG_TTL) == ReserveOutcome(
        False, "principal:p", ZERO
    )
    attempts = 0

    async def granted() -> bool:
        nonlocal attempts
        attempts += 1
        return (await backend.store.reserve(f"try{attempts}", Decimal(5), [rolling], LONG_TTL)).granted

    await backend.becomes_true(WINDOW, granted, earliest=WINDOW - BUCKET)
    assert await backend.store.read(rolling) == BudgetSnapshot(ZERO, Decimal(5), ZERO)


@pytest.mark.anyio
async def test_an_open_reservation_on_a_rolling_account_counts_however_long_it_is_held(backend: Backend) -> None:
    rolling = _rolling("principal:p", 5)
    backend.mark()
    await backend.store.reserve("held", Decimal(4), [rolling], LONG_TTL)

    await backend.wait(WINDOW + BUCKET)

    assert await backend.store.read(rolling) == BudgetSnapshot(ZERO, Decimal(4), ZERO)
    assert await backend.store.reserve("more", Decimal(2), [rolling], LONG_TTL) == ReserveOutcome(
        False, "principal:p", Decimal(1)
    )


# --- reaping expired reservations -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_an_expired_reservation_is_reaped_into_unverified_on_every_account(backend: Backend) -> None:
    accounts = [_plain("session:a", 10), _rolling("principal:p", 10, 3600.0)]
    backend.mark()
    await backend.store.reserve("r1", Decimal(3), accounts, TTL)

    async def still_held() -> bool:
        return await backend.store.read(accounts[0]) == BudgetSnapshot(ZERO, Decimal(3), ZERO)

    async def reaped() -> bool:
        return await backend.store.read(accounts[0]) == BudgetSnapshot(ZERO, ZERO, Decimal(3))

    await backend.check_at(TTL / 2, still_held, before=TTL)
    await backend.becomes_true(TTL, reaped)
    assert await backend.store.read(accounts[1]) == BudgetSnapshot(ZERO, ZERO, Decimal(3))


async def _reap(backend: Backend, reservation_id: str, amount: Decimal, accounts: list[Account]) -> None:
    """Reserve `amount` with a short TTL and wait until it has been reaped."""
    backend.mark()
    assert (await backend.store.reserve(reservation_id, amount, accounts, TTL)).granted

    async def reaped() -> bool:
        return (await backend.store.read(accounts[0])).unverified == amount

    await backend.becomes_true(TTL, reaped)


@pytest.mark.anyio
async def test_a_reaped_reservation_still_counts_against_the_limit(backend: Backend) -> None:
    account = _plain("s", 5)
    await _reap(backend, "r1", Decimal(4), [account])

    outcome = await backend.store.reserve("r2", Decimal(2), [account], LONG_TTL)

    assert outcome == ReserveOutcome(False, "s", Decimal(1))


@pytest.mark.anyio
async def test_a_late_settle_of_a_reaped_reservation_replaces_the_estimate_exactly(backend: Backend) -> None:
    accounts = [_plain("session:a", 5), _rolling("principal:p", 5, 3600.0)]
    await _reap(backend, "r1", Decimal(4), accounts)

    await backend.store.settle("r1", Decimal("1.25"))

    for account in accounts:
        assert await backend.store.read(account) == BudgetSnapshot(Decimal("1.25"), ZERO, ZERO)
    assert (await backend.store.reserve("rest", Decimal("3.75"), accounts, LONG_TTL)).granted
    assert not (await backend.store.reserve("over", CENT, accounts, LONG_TTL)).granted


@pytest.mark.anyio
async def test_a_late_settle_keeps_only_the_unverified_it_declares(backend: Backend) -> None:
    account = _plain("s", 5)
    await _reap(backend, "r1", Decimal(4), [account])

    await backend.store.settle("r1", Decimal(1), Decimal("0.5"))
    await backend.store.settle("r1", Decimal(1), Decimal("0.5"))

    assert await backend.store.read(account) == BudgetSnapshot(Decimal(1), ZERO, Decimal("0.5"))


@pytest.mark.anyio
async def test_a_reservation_settled_before_its_ttl_is_never_reaped(backend: Backend) -> None:
    account = _plain("s", 5)
    backend.mark()
    await backend.store.reserve("r1", Decimal(4), [account], TTL)
    await backend.store.settle("r1", Decimal(1))

    await backend.wait(TTL * 2)

    assert await backend.store.read(account) == BudgetSnapshot(Decimal(1), ZERO, ZERO)


# --- concurrency --------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_concurrent_reservations_from_many_tasks_never_exceed_the_limit(backend: Backend) -> None:
    accounts = [_plain("session:a", 10), _rolling("principal:p", 12, 3600.0)]
    granted: list[bool] = []

    async def one(i: int) -> None:
        granted.append((await backend.store.reserve(f"r{i}", Decimal(1), accounts, LONG_TTL)).granted)

    async with anyio.create_task_group() as tg:
        for i in range(40):
            tg.start_soon(one, i)

    assert granted.count(True) == 10
    assert (await backend.store.read(accounts[0])).reserved == Decimal(10)
    assert (await backend.store.read(accounts[1])).reserved == Decimal(10)


@pytest.mark.anyio
@pytest.mark.parametrize("backend", SHARED, indirect=True)
async def test_two_store_objects_on_the_same_state_never_overspend_together(backend: Backend) -> None:
    stores = [backend.store, backend.another()]
    accounts = [_plain("session:a", 10), _rolling("principal:p", 12, 3600.0)]
    granted: list[int] = []

    async def one(i: int) -> None:
        store = stores[i % 2]
        if (await store.reserve(f"r{i}", Decimal(1), accounts, LONG_TTL)).granted:
            granted.append(i)
            if i % 3 == 0:  # charged in full: the credit stays spent, so it never frees room
                await store.settle(f"r{i}", Decimal(1))

    async with anyio.create_task_group() as tg:
        for i in range(60):
            tg.start_soon(one, i)

    settled = sum(1 for i in granted if i % 3 == 0)
    assert len(granted) == 10
    for store in stores:
        for account in accounts:
            assert await store.read(account) == BudgetSnapshot(Decimal(settled), Decimal(10 - settled), ZERO)


def test_concurrent_threads_never_over_reserve_the_memory_store_and_books_balance() -> None:
    store = MemoryStore(clock=FakeClock())
    accounts = [_plain("session:a", 100), _plain("principal:p", 150)]

    def worker(thread: int) -> int:
        granted = 0
        for i in range(50):
            rid = f"t{thread}-{i}"
            outcome = anyio.run(store.reserve, rid, Decimal(1), accounts, 60.0)
            if outcome.granted:
                granted += 1
                if i % 2 == 0:
                    anyio.run(store.settle, rid, Decimal("0.5"))
        return granted

    with ThreadPoolExecutor(max_workers=8) as pool:
        total = sum(pool.map(worker, range(8)))

    session = anyio.run(store.read, accounts[0])
    principal = anyio.run(store.read, accounts[1])
    assert session.committed <= Decimal(100)
    assert session == principal
    assert session.reserved + session.spent * 2 == Decimal(total)


# --- invariants under random interleavings (fake clock) ---------------------------------------------------------------

_OPS = st.lists(
    st.tuples(st.sampled_from(["reserve", "reserve", "settle", "settle", "advance"]), st.integers(0, 50)),
    max_size=30,
)


async def _interleaving(
    store: StateStore, clock: FakeClock, limits: tuple[int, int], ops: list[tuple[str, int]]
) -> None:
    """Replay `ops` against `store` and a model of the books; they must agree after every step."""
    accounts = [_plain("session:a", limits[0]), _rolling("principal:p", limits[1], 10_000_000.0)]
    limit = min(a.limit for a in accounts)
    opened: dict[str, tuple[Decimal, float]] = {}  # id -> (amount, expires_at)
    reaped: set[str] = set()
    spent = ZERO
    unverified = ZERO
    serial = 0

    def model() -> BudgetSnapshot:
        held = sum((amount for rid, (amount, _) in opened.items() if rid not in reaped), start=ZERO)
        lost = sum((opened[rid][0] for rid in reaped), start=ZERO)
        return BudgetSnapshot(spent, held, unverified + lost)

    async def check() -> None:
        reaped.update(rid for rid, (_, expires_at) in opened.items() if expires_at <= clock())
        expected = model()
        for account in accounts:
            snapshot = await store.read(account)
            assert snapshot == expected
            assert snapshot.committed <= account.limit

    for kind, n in ops:
        if kind == "reserve":
            serial += 1
            rid, amount, ttl = f"r{serial}", Decimal(n * 7) / 100, float(10 * (1 + n % 4))
            fits = model().committed + amount <= limit
            outcome = await store.reserve(rid, amount, accounts, ttl)
            assert outcome.granted == fits
            if fits:
                opened[rid] = (amount, clock() + ttl)
        elif kind == "settle" and opened:
            rid = sorted(opened)[n % len(opened)]
            amount, _ = opened.pop(rid)
            reaped.discard(rid)
            charged = (amount * n / 50).quantize(CENT, rounding=ROUND_DOWN)
            kept = (amount - charged) if n % 5 == 0 else ZERO
            await store.settle(rid, charged, kept)
            spent += charged
            unverified += kept
        elif kind == "advance":
            clock.advance(float(n))
        await check()

    for rid in list(opened):
        amount, _ = opened.pop(rid)
        reaped.discard(rid)
        await store.settle(rid, amount / 2)
        spent += amount / 2
    await check()
    final = await store.read(accounts[0])
    assert final.reserved == ZERO
    assert final.spent == spent
    assert final.unverified == unverified


@pytest.mark.parametrize(("kind", "examples"), [("memory", 150), ("sqlite", 25)])
def test_random_reserve_settle_reap_interleavings_keep_the_books(
    kind: str, examples: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    @settings(max_examples=examples, deadline=None)
    @given(st.integers(0, 1000), st.integers(0, 1000), _OPS)
    def run(session_cents: int, principal_cents: int, ops: list[tuple[str, int]]) -> None:
        limits = (session_cents // 100, principal_cents // 100)
        clock = FakeClock()
        if kind == "memory":
            store: StateStore = MemoryStore(clock=clock)
        else:
            store = SQLiteStore(tmp_path_factory.mktemp("interleaving") / "state.db", clock=clock)

        async def scenario() -> None:
            try:
                await _interleaving(store, clock, limits, ops)
            finally:
                await store.aclose()

        anyio.run(scenario)

    run()


# --- receipts -----------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_receipts_come_back_oldest_first_limited_to_the_newest(backend: Backend) -> None:
    for i in range(5):
        await backend.store.add_receipt("s", {"n": i, "charged": f"{i}.00"}, keep=50)

    assert await backend.store.receipts("s", 3) == [
        {"n": 2, "charged": "2.00"},
        {"n": 3, "charged": "3.00"},
        {"n": 4, "charged": "4.00"},
    ]
    assert [r["n"] for r in await backend.store.receipts("s", 100)] == [0, 1, 2, 3, 4]


@pytest.mark.anyio
async def test_only_the_newest_receipts_are_kept(backend: Backend) -> None:
    for i in range(12):
        await backend.store.add_receipt("s", {"n": i}, keep=4)

    assert [r["n"] for r in await backend.store.receipts("s", 100)] == [8, 9, 10, 11]


@pytest.mark.anyio
async def test_a_keep_of_zero_keeps_no_receipts(backend: Backend) -> None:
    await backend.store.add_receipt("s", {"n": 1}, keep=0)

    assert await backend.store.receipts("s", 10) == []


@pytest.mark.anyio
async def test_receipts_of_unknown_accounts_or_with_limit_zero_are_empty(backend: Backend) -> None:
    await backend.store.add_receipt("s", {"n": 1}, keep=10)

    assert await backend.store.receipts("nobody", 10) == []
    assert await backend.store.receipts("s", 0) == []
    assert await backend.store.receipts("s", -1) == []


@pytest.mark.anyio
async def test_receipts_are_stored_as_copies_not_references(backend: Backend) -> None:
    receipt: dict[str, object] = {"tool": "enrich", "nested": {"a": 1}, "credits": "0.03"}
    await backend.store.add_receipt("s", receipt, keep=10)

    receipt["tool"] = "changed"
    (await backend.store.receipts("s", 1))[0]["tool"] = "also changed"

    assert await backend.store.receipts("s", 1) == [{"tool": "enrich", "nested": {"a": 1}, "credits": "0.03"}]


@pytest.mark.anyio
async def test_receipts_are_kept_per_account_and_do_not_touch_the_budget(backend: Backend) -> None:
    await backend.store.add_receipt("s", {"n": 1}, keep=10)
    await backend.store.add_receipt("t", {"n": 2}, keep=10)

    assert await backend.store.receipts("s", 10) == [{"n": 1}]
    assert await backend.store.read(_plain("s")) == EMPTY


# --- cache ------------------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_cache_returns_a_value_until_its_ttl_runs_out(backend: Backend) -> None:
    backend.mark()
    await backend.store.cache_put("k", "v", ttl_seconds=TTL)

    async def present() -> bool:
        return await backend.store.cache_get("k") == "v"

    async def absent() -> bool:
        return await backend.store.cache_get("k") is None

    await backend.check_at(TTL / 2, present, before=TTL)
    await backend.becomes_true(TTL, absent)


@pytest.mark.anyio
@pytest.mark.parametrize("backend", FAKE_CLOCK, indirect=True)
async def test_a_cached_value_lives_exactly_its_ttl(backend: Backend) -> None:
    assert backend.clock is not None
    await backend.store.cache_put("k", "v", ttl_seconds=30)

    backend.clock.advance(29.999)
    assert await backend.store.cache_get("k") == "v"
    backend.clock.advance(0.001)
    assert await backend.store.cache_get("k") is None


@pytest.mark.anyio
@pytest.mark.parametrize("backend", FAKE_CLOCK, indirect=True)
async def test_expired_entries_are_dropped_on_read(backend: Backend) -> None:
    assert backend.clock is not None
    await backend.store.cache_put("k", "v", ttl_seconds=10)
    backend.clock.advance(11)
    assert await backend.store.cache_get("k") is None

    backend.clock.advance(-11)

    assert await backend.store.cache_get("k") is None


@pytest.mark.anyio
async def test_a_missing_key_is_none(backend: Backend) -> None:
    assert await backend.store.cache_get("absent") is None


@pytest.mark.anyio
@pytest.mark.parametrize("ttl", [0, -1, 0.0])
async def test_a_non_positive_ttl_stores_nothing(backend: Backend, ttl: float) -> None:
    await backend.store.cache_put("k", "v", ttl_seconds=ttl)

    assert await backend.store.cache_get("k") is None


@pytest.mark.anyio
async def test_a_put_with_zero_ttl_removes_an_older_value(backend: Backend) -> None:
    await backend.store.cache_put("k", "old", ttl_seconds=60)

    await backend.store.cache_put("k", "new", ttl_seconds=0)

    assert await backend.store.cache_get("k") is None


@pytest.mark.anyio
async def test_overwriting_a_key_replaces_value_and_a_shorter_ttl(backend: Backend) -> None:
    await backend.store.cache_put("k", "v1", ttl_seconds=LONG_TTL)
    backend.mark()
    await backend.store.cache_put("k", "v2", ttl_seconds=TTL)

    assert await backend.store.cache_get("k") == "v2"

    async def absent() -> bool:
        return await backend.store.cache_get("k") is None

    await backend.becomes_true(TTL, absent)


@pytest.mark.anyio
async def test_overwriting_a_key_with_a_longer_ttl_extends_it(backend: Backend) -> None:
    backend.mark()
    await backend.store.cache_put("k", "v1", ttl_seconds=TTL)
    await backend.store.cache_put("k", "v2", ttl_seconds=LONG_TTL)

    await backend.wait(TTL * 2)

    assert await backend.store.cache_get("k") == "v2"


@pytest.mark.anyio
async def test_cache_keys_are_independent(backend: Backend) -> None:
    await backend.store.cache_put("a", "1", ttl_seconds=60)
    await backend.store.cache_put("b", "2", ttl_seconds=60)
    await backend.store.cache_put("a", "", ttl_seconds=0)

    assert await backend.store.cache_get("a") is None
    assert await backend.store.cache_get("b") == "2"


@pytest.mark.anyio
async def test_the_least_recently_used_entry_is_evicted_when_the_memory_cache_is_full() -> None:
    store = MemoryStore(clock=FakeClock(), max_cache_entries=3)
    for key in ("a", "b", "c"):
        await store.cache_put(key, key.upper(), ttl_seconds=60)
    assert await store.cache_get("a") == "A"

    await store.cache_put("d", "D", ttl_seconds=60)

    assert await store.cache_get("b") is None
    assert [await store.cache_get(k) for k in ("a", "c", "d")] == ["A", "C", "D"]


@pytest.mark.anyio
async def test_rewriting_a_key_refreshes_its_recency_in_the_memory_cache() -> None:
    store = MemoryStore(clock=FakeClock(), max_cache_entries=2)
    await store.cache_put("a", "1", ttl_seconds=60)
    await store.cache_put("b", "2", ttl_seconds=60)
    await store.cache_put("a", "3", ttl_seconds=60)

    await store.cache_put("c", "4", ttl_seconds=60)

    assert await store.cache_get("a") == "3"
    assert await store.cache_get("b") is None
    assert await store.cache_get("c") == "4"


@pytest.mark.anyio
async def test_the_memory_cache_never_holds_more_than_its_bound() -> None:
    store = MemoryStore(clock=FakeClock(), max_cache_entries=10)
    for i in range(100):
        await store.cache_put(f"k{i}", str(i), ttl_seconds=60)

    present = [i for i in range(100) if await store.cache_get(f"k{i}") is not None]

    assert present == list(range(90, 100))


# --- sliding-window slots ---------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_slots_are_free_until_the_limit_then_report_the_wait(backend: Backend) -> None:
    backend.mark()
    first = [await backend.store.take_slot("enrich", 3, SLOT_WINDOW) for _ in range(3)]
    await backend.wait(SLOT_WINDOW / 4)

    refused = await backend.store.take_slot("enrich", 3, SLOT_WINDOW)

    assert first == [0.0, 0.0, 0.0]
    assert 0 < refused <= SLOT_WINDOW
    assert refused == pytest.approx(SLOT_WINDOW - backend.elapsed(), abs=_wait_tolerance(backend))


@pytest.mark.anyio
async def test_a_refused_request_does_not_use_a_slot(backend: Backend) -> None:
    backend.mark()
    assert await backend.store.take_slot("b", 1, SLOT_WINDOW) == 0.0
    for _ in range(5):
        assert await backend.store.take_slot("b", 1, SLOT_WINDOW) > 0

    async def free() -> bool:
        return await backend.store.take_slot("b", 1, SLOT_WINDOW) == 0.0

    await backend.becomes_true(SLOT_WINDOW, free)
    assert await backend.store.take_slot("b", 1, SLOT_WINDOW) == pytest.approx(
        SLOT_WINDOW, abs=_wait_tolerance(backend)
    )


@pytest.mark.anyio
async def test_the_window_slides_rather_than_resetting_on_fixed_buckets(backend: Backend) -> None:
    backend.mark()
    assert await backend.store.take_slot("b", 2, SLOT_WINDOW) == 0.0
    await backend.wait(SLOT_WINDOW / 2)
    assert await backend.store.take_slot("b", 2, SLOT_WINDOW) == 0.0

    async def free() -> bool:
        return await backend.store.take_slot("b", 2, SLOT_WINDOW) == 0.0

    await backend.becomes_true(SLOT_WINDOW, free)  # the first slot has left the window, the second has not
    wait = await backend.store.take_slot("b", 2, SLOT_WINDOW)
    assert 0 < wait <= SLOT_WINDOW / 2
    assert wait == pytest.approx(SLOT_WINDOW * 1.5 - backend.elapsed(), abs=_wait_tolerance(backend))
    await backend.becomes_true(SLOT_WINDOW * 1.5, free)


@pytest.mark.anyio
@pytest.mark.parametrize("backend", FAKE_CLOCK, indirect=True)
async def test_the_wait_is_never_reported_as_zero_while_full(backend: Backend) -> None:
    assert backend.clock is not None
    await backend.store.take_slot("b", 1, 60)
    backend.clock.advance(59.99999999)

    wait = await backend.store.take_slot("b", 1, 60)

    assert wait >= 0.001


@pytest.mark.anyio
async def test_slot_buckets_are_independent(backend: Backend) -> None:
    await backend.store.take_slot("enrich", 1, 60)

    assert await backend.store.take_slot("enrich", 1, 60) > 0
    assert await backend.store.take_slot("search", 1, 60) == 0.0


@pytest.mark.anyio
@pytest.mark.parametrize("backend", FAKE_CLOCK, indirect=True)
async def test_at_most_limit_slots_are_taken_in_any_window(backend: Backend) -> None:
    assert backend.clock is not None
    taken: list[float] = []
    for _ in range(600):
        if await backend.store.take_slot("b", 15, 60) == 0.0:
            taken.append(backend.clock())
        backend.clock.advance(0.7)

    for i, start in enumerate(taken):
        in_window = [t for t in taken[i:] if t < start + 60]
        assert len(in_window) <= 15
    assert len(taken) >= 15 * 6


@pytest.mark.anyio
@pytest.mark.parametrize("backend", SHARED, indirect=True)
async def test_slots_are_shared_by_two_store_objects_on_the_same_state(backend: Backend) -> None:
    other = backend.another()

    taken = [await backend.store.take_slot("b", 2, 60), await other.take_slot("b", 2, 60)]

    assert taken == [0.0, 0.0]
    assert await backend.store.take_slot("b", 2, 60) > 0
    assert await other.take_slot("b", 2, 60) > 0


# --- ping, opening, durability ----------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_ping_answers_while_the_store_is_reachable(backend: Backend) -> None:
    with anyio.fail_after(5):
        await backend.store.ping()
    await backend.store.cache_put("k", "v", ttl_seconds=60)

    assert await backend.store.cache_get("k") == "v"


@pytest.mark.anyio
async def test_ping_raises_when_redis_cannot_be_reached() -> None:
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with pytest.raises(redis.ConnectionError):
            await store.ping()
    finally:
        await store.aclose()


@pytest.mark.anyio
async def test_ping_raises_once_the_sqlite_store_is_closed(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.db")
    await store.aclose()

    with pytest.raises(sqlite3.ProgrammingError):
        await store.ping()


@pytest.mark.anyio
async def test_open_store_opens_each_backend_from_its_url(tmp_path: Path, redis_server: RedisServer) -> None:
    redis_server.flush()
    urls = {MemoryStore: "memory://", SQLiteStore: f"sqlite:///{tmp_path}/state.db", RedisStore: redis_server.url}
    for kind, url in urls.items():
        store = open_store(url)
        try:
            assert isinstance(store, kind)
            await store.ping()
            assert (await store.reserve("r", Decimal(1), [_plain()], LONG_TTL)).granted
        finally:
            await store.aclose()
    assert (tmp_path / "state.db").exists()


@pytest.mark.anyio
async def test_sqlite_books_survive_close_and_reopen(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "state.db"
    accounts = [_plain("session:a", 10), _rolling("principal:p", 10, 3600.0)]
    store = SQLiteStore(path, clock=clock)
    await store.reserve("settled", Decimal(3), accounts, LONG_TTL)
    await store.settle("settled", Decimal(2), Decimal("0.5"))
    await store.reserve("open", Decimal(1), accounts, LONG_TTL)
    await store.reserve("expiring", Decimal(4), accounts, TTL)
    await store.add_receipt("session:a", {"n": 1}, keep=10)
    await store.cache_put("k", "v", ttl_seconds=60)
    await store.take_slot("b", 1, 60)
    await store.aclose()

    reopened = SQLiteStore(path, clock=clock)
    try:
        for account in accounts:
            assert await reopened.read(account) == BudgetSnapshot(Decimal(2), Decimal(5), Decimal("0.5"))
        assert await reopened.receipts("session:a", 10) == [{"n": 1}]
        assert await reopened.cache_get("k") == "v"
        assert await reopened.take_slot("b", 1, 60) > 0

        clock.advance(TTL)
        await reopened.settle("open", Decimal(1))
        for account in accounts:
            assert await reopened.read(account) == BudgetSnapshot(Decimal(3), ZERO, Decimal("4.5"))
        await reopened.settle("expiring", Decimal(4))
        for account in accounts:
            assert await reopened.read(account) == BudgetSnapshot(Decimal(7), ZERO, Decimal("0.5"))
    finally:
        await reopened.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("backend", ["memory"], indirect=True)
async def test_closing_the_memory_store_is_harmless(backend: Backend) -> None:
    await backend.store.cache_put("k", "v", ttl_seconds=10)

    await backend.store.aclose()

    assert await backend.store.cache_get("k") == "v"


# --- bounded books: releases, forgetting, pruning -------------------------------------------------------------------


@pytest.mark.anyio
async def test_releases_say_how_much_rolling_spend_leaves_the_window_and_when(backend: Backend) -> None:
    plain, rolling = _plain("session:a", 10), _rolling("principal:p", 10)
    backend.mark()
    await backend.store.reserve("r1", Decimal(3), [plain, rolling], LONG_TTL)
    await backend.store.settle("r1", Decimal(2), Decimal(1))

    releases = await backend.store.releases(rolling)
    elapsed = backend.elapsed()

    assert [r.amount for r in releases] == [Decimal(3)]
    assert WINDOW - BUCKET - elapsed - CLOCK_SLACK <= releases[0].after_seconds <= WINDOW + CLOCK_SLACK
    assert await backend.store.releases(plain) == []


@pytest.mark.anyio
@pytest.mark.parametrize("backend", FAKE_CLOCK, indirect=True)
async def test_releases_come_soonest_first_and_spend_outside_the_window_is_not_among_them(backend: Backend) -> None:
    rolling = _rolling("principal:p", 100)
    backend.mark()
    for index, amount in enumerate((4, 2, 1)):  # at 0, half a window and a whole window after the mark
        await backend.wait(WINDOW / 2 * index)
        await backend.store.reserve(f"r{index}", Decimal(amount), [rolling], LONG_TTL)
        await backend.store.settle(f"r{index}", Decimal(amount))

    releases = await backend.store.releases(rolling)  # the first spend has just left the window

    assert [r.amount for r in releases] == [Decimal(2), Decimal(1)]
    assert [r.after_seconds for r in releases] == [WINDOW / 2, WINDOW]


@pytest.mark.anyio
async def test_forget_drops_an_accounts_books_and_receipts_unless_something_is_held(backend: Backend) -> None:
    session, principal = _plain("session:a", 10), _rolling("principal:p", 10, 3600.0)
    await backend.store.reserve("done", Decimal(3), [session, principal], LONG_TTL)
    await backend.store.settle("done", Decimal(3))
    await backend.store.add_receipt("session:a", {"n": 1}, keep=10)
    await backend.store.reserve("open", Decimal(1), [_plain("session:b", 10)], LONG_TTL)

    assert await backend.store.forget("session:a") is True
    assert await backend.store.forget("session:b") is False
    assert await backend.store.forget("session:never-seen") is True

    assert await backend.store.read(session) == EMPTY
    assert await backend.store.receipts("session:a", 10) == []
    assert await backend.store.read(principal) == BudgetSnapshot(Decimal(3), ZERO, ZERO)  # the principal keeps it
    assert await backend.store.read(_plain("session:b", 10)) == BudgetSnapshot(ZERO, Decimal(1), ZERO)


def _held_rows(backend: Backend, tmp_path: Path) -> int:
    if backend.name == "sqlite":
        with sqlite3.connect(tmp_path / "state.db") as db:
            return int(db.execute("SELECT COUNT(*) FROM held").fetchone()[0])
    reply = redis_command(_redis_port(backend), "KEYS pe:held:*")
    return int(reply.split(b"\r\n", 1)[0][1:])


def _redis_port(backend: Backend) -> int:
    store = backend.store
    assert isinstance(store, RedisStore)
    return int(store._redis.connection_pool.connection_kwargs["port"])  # pyright: ignore[reportPrivateUsage]


@pytest.mark.anyio
@pytest.mark.parametrize("backend", SHARED, indirect=True)
async def test_a_hold_back_at_zero_leaves_no_row_or_key_behind(backend: Backend, tmp_path: Path) -> None:
    accounts = [_plain(f"session:{n}", 10) for n in range(20)] + [_rolling("principal:p", 1000)]
    for n, account in enumerate(accounts[:20]):
        await backend.store.reserve(f"r{n}", Decimal(1), [account, accounts[-1]], LONG_TTL)
    assert _held_rows(backend, tmp_path) == 21
    for n in range(20):
        await backend.store.settle(f"r{n}", Decimal(0) if n % 2 else Decimal(1))

    assert _held_rows(backend, tmp_path) == 0
    assert (await backend.store.read(accounts[-1])).spent == Decimal(10)


@pytest.mark.anyio
@pytest.mark.parametrize("backend", FAKE_CLOCK, indirect=True)
async def test_books_nobody_writes_to_are_forgotten_once_kept_long_enough_but_never_while_in_a_window(
    backend: Backend,
) -> None:
    session, day, fortnight = (
        _plain("session:a", 10),
        _rolling("principal:p", 10, 86_400.0),
        _rolling("principal:q", 10, 14 * 86_400.0),
    )
    await backend.store.reserve("r", Decimal(2), [session, day, fortnight], LONG_TTL)
    await backend.store.settle("r", Decimal(2))
    await backend.store.add_receipt("session:a", {"n": 1}, keep=10)
    backend.mark()

    await backend.wait(state_base.BOOKS_KEPT_SECONDS + state_base.PRUNE_INTERVAL_SECONDS)
    await backend.store.read(_plain("session:other"))  # any operation sweeps

    assert await backend.store.read(session) == EMPTY
    assert await backend.store.receipts("session:a", 10) == []
    assert await backend.store.read(day) == EMPTY
    assert await backend.store.read(fortnight) == BudgetSnapshot(Decimal(2), ZERO, ZERO)  # still inside its window


@pytest.mark.anyio
@pytest.mark.parametrize("backend", SHARED, indirect=True)
async def test_a_rolling_account_keeps_only_the_spend_buckets_inside_its_window(
    backend: Backend, tmp_path: Path
) -> None:
    rolling = _rolling("principal:p", 1000)
    backend.mark()
    for n in range(3 * WINDOW_BUCKETS):  # three windows' worth of buckets, one spend in each
        await backend.store.reserve(f"r{n}", Decimal(1), [rolling], LONG_TTL)
        await backend.store.settle(f"r{n}", Decimal(1))
        await backend.wait(BUCKET * (n + 1))

    if backend.name == "sqlite":
        with sqlite3.connect(tmp_path / "state.db") as db:
            buckets = int(db.execute("SELECT COUNT(*) FROM spend WHERE account = 'principal:p'").fetchone()[0])
    else:
        reply = redis_command(_redis_port(backend), "HLEN pe:spend:principal:p")
        buckets = int(reply.strip()[1:])  # spent and unverified fields: at most two per bucket
    assert buckets <= 2 * (WINDOW_BUCKETS + 1)


# --- SQLite URLs ----------------------------------------------------------------------------------------------------


def test_sqlite_urls_read_four_slashes_as_absolute_and_three_as_relative_to_the_start_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from person_enrich_mcp.state import sqlite_path

    monkeypatch.chdir(tmp_path)

    assert sqlite_path("sqlite:////var/lib/pe/state.db") == Path("/var/lib/pe/state.db")
    assert sqlite_path("sqlite:///var/lib/pe/state.db") == tmp_path / "var/lib/pe/state.db"
    assert sqlite_path("sqlite:///state.db") == tmp_path / "state.db"


@pytest.mark.parametrize(
    "url", ["sqlite:///:memory:", "sqlite:///file::memory:?cache=shared", "sqlite:///x.db?mode=memory", "sqlite://"]
)
def test_sqlite_urls_that_keep_nothing_are_refused(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # should one be accepted after all, its file lands here
    with pytest.raises(ConfigurationError, match="PERSON_ENRICH_STATE_URL"):
        open_store(url)


@pytest.mark.anyio
async def test_opening_a_relative_sqlite_url_logs_the_resolved_path_and_how_to_write_an_absolute_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///books/state.db")
    await store.aclose()

    (record,) = [r for r in caplog.records if r.name == "person_enrich_mcp.state"]
    assert record.levelname == "WARNING"
    assert str(tmp_path / "books/state.db") in record.getMessage()
    assert f"sqlite:///{tmp_path}/books/state.db" in record.getMessage()  # four slashes in all
    assert (tmp_path / "books/state.db").exists()
