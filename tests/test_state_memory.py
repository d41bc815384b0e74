"""MemoryStore: atomic all-or-nothing reservations, receipts, the TTL/LRU cache and sliding-window slots."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import anyio
import pytest

from person_enrich_mcp.state import Account, BudgetSnapshot, MemoryStore, ReserveOutcome, StateStore

pytestmark = pytest.mark.anyio

ZERO = Decimal(0)


class FakeClock:
    """A monotonic clock that only moves when told to."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _store(clock: FakeClock | None = None, *, max_cache_entries: int = 20_000) -> MemoryStore:
    return MemoryStore(clock=clock or FakeClock(), max_cache_entries=max_cache_entries)


# --- budgets ----------------------------------------------------------------------------------------------------


async def test_an_unknown_account_reads_all_zero() -> None:
    assert await _store().read("session:nobody") == BudgetSnapshot(ZERO, ZERO, ZERO)


async def test_a_granted_reservation_is_held_on_every_account() -> None:
    store = _store()
    accounts = [Account("session:a", Decimal(10)), Account("principal:p", Decimal(100))]

    outcome = await store.reserve("r1", Decimal("2.5"), accounts, ttl_seconds=60)

    assert outcome == ReserveOutcome(True)
    assert await store.read("session:a") == BudgetSnapshot(ZERO, Decimal("2.5"), ZERO)
    assert await store.read("principal:p") == BudgetSnapshot(ZERO, Decimal("2.5"), ZERO)


async def test_a_reservation_that_exactly_fills_the_limit_is_granted() -> None:
    store = _store()

    outcome = await store.reserve("r1", Decimal("10.00"), [Account("s", Decimal(10))], ttl_seconds=60)

    assert outcome.granted


async def test_one_hundredth_over_the_limit_is_refused_with_what_is_left() -> None:
    store = _store()
    await store.reserve("r1", Decimal("9.99"), [Account("s", Decimal(10))], ttl_seconds=60)

    outcome = await store.reserve("r2", Decimal("0.02"), [Account("s", Decimal(10))], ttl_seconds=60)

    assert outcome == ReserveOutcome(False, "s", Decimal("0.01"))
    assert (await store.read("s")).reserved == Decimal("9.99")


async def test_a_refusal_by_any_account_holds_nothing_on_the_others() -> None:
    store = _store()
    await store.reserve("existing", Decimal(8), [Account("principal:p", Decimal(10))], ttl_seconds=60)
    accounts = [Account("session:a", Decimal(100)), Account("principal:p", Decimal(10)), Account("org:o", Decimal(50))]

    outcome = await store.reserve("r1", Decimal(5), accounts, ttl_seconds=60)

    assert not outcome.granted
    assert outcome.refused_by == "principal:p"
    assert outcome.remaining == Decimal(2)
    assert (await store.read("session:a")).reserved == ZERO
    assert (await store.read("principal:p")).reserved == Decimal(8)
    assert (await store.read("org:o")).reserved == ZERO


async def test_a_refused_reservation_can_be_settled_without_effect() -> None:
    store = _store()
    await store.reserve("r1", Decimal(20), [Account("s", Decimal(10))], ttl_seconds=60)

    await store.settle("r1", Decimal(5))

    assert await store.read("s") == BudgetSnapshot(ZERO, ZERO, ZERO)


async def test_remaining_is_never_negative_when_already_overspent() -> None:
    store = _store()
    await store.reserve("r1", Decimal(5), [Account("s", Decimal(10))], ttl_seconds=60)
    await store.settle("r1", Decimal(12))

    outcome = await store.reserve("r2", Decimal(1), [Account("s", Decimal(10))], ttl_seconds=60)

    assert outcome == ReserveOutcome(False, "s", ZERO)


async def test_reusing_an_open_reservation_id_is_an_error() -> None:
    store = _store()
    await store.reserve("r1", Decimal(1), [Account("s", Decimal(10))], ttl_seconds=60)

    with pytest.raises(ValueError, match="r1"):
        await store.reserve("r1", Decimal(1), [Account("s", Decimal(10))], ttl_seconds=60)
    assert (await store.read("s")).reserved == Decimal(1)


async def test_settle_turns_the_charge_into_spend_and_frees_the_rest_on_every_account() -> None:
    store = _store()
    accounts = [Account("a", Decimal(10)), Account("b", Decimal(10))]
    await store.reserve("r1", Decimal(6), accounts, ttl_seconds=60)

    await store.settle("r1", Decimal("2.03"), Decimal(1))

    for key in ("a", "b"):
        snapshot = await store.read(key)
        assert snapshot == BudgetSnapshot(Decimal("2.03"), ZERO, Decimal(1))
        assert snapshot.committed == Decimal("3.03")


async def test_settling_frees_room_for_the_next_reservation() -> None:
    store = _store()
    account = [Account("s", Decimal(10))]
    await store.reserve("r1", Decimal(10), account, ttl_seconds=60)
    assert not (await store.reserve("r2", Decimal(3), account, ttl_seconds=60)).granted

    await store.settle("r1", Decimal(7))

    assert (await store.reserve("r3", Decimal(3), account, ttl_seconds=60)).granted
    assert not (await store.reserve("r4", Decimal("0.01"), account, ttl_seconds=60)).granted


async def test_unverified_spend_stays_counted_against_the_limit() -> None:
    store = _store()
    account = [Account("s", Decimal(10))]
    await store.reserve("r1", Decimal(7), account, ttl_seconds=60)
    await store.settle("r1", ZERO, Decimal(7))

    outcome = await store.reserve("r2", Decimal(4), account, ttl_seconds=60)

    assert outcome == ReserveOutcome(False, "s", Decimal(3))


async def test_settling_twice_or_an_unknown_id_changes_nothing() -> None:
    store = _store()
    await store.reserve("r1", Decimal(5), [Account("s", Decimal(10))], ttl_seconds=60)
    await store.settle("r1", Decimal(2))

    await store.settle("r1", Decimal(2))
    await store.settle("never-opened", Decimal(3), Decimal(3))

    assert await store.read("s") == BudgetSnapshot(Decimal(2), ZERO, ZERO)


async def test_a_settled_reservation_id_may_be_reused() -> None:
    store = _store()
    account = [Account("s", Decimal(10))]
    await store.reserve("r1", Decimal(1), account, ttl_seconds=60)
    await store.settle("r1", Decimal(1))

    assert (await store.reserve("r1", Decimal(1), account, ttl_seconds=60)).granted


async def test_decimal_fractions_add_up_exactly() -> None:
    store = _store()
    account = [Account("s", Decimal("0.3"))]
    for i in range(10):
        assert (await store.reserve(f"r{i}", Decimal("0.03"), account, ttl_seconds=60)).granted
        await store.settle(f"r{i}", Decimal("0.03"))

    assert (await store.read("s")).spent == Decimal("0.3")
    assert not (await store.reserve("extra", Decimal("0.01"), account, ttl_seconds=60)).granted


async def test_concurrent_tasks_never_over_reserve() -> None:
    store = _store()
    account = [Account("s", Decimal(10))]
    granted: list[bool] = []

    async def one(i: int) -> None:
        granted.append((await store.reserve(f"r{i}", Decimal(1), account, ttl_seconds=60)).granted)

    async with anyio.create_task_group() as tg:
        for i in range(40):
            tg.start_soon(one, i)

    assert granted.count(True) == 10
    assert (await store.read("s")).reserved == Decimal(10)


def test_concurrent_threads_never_over_reserve_and_books_balance() -> None:
    store: StateStore = _store()
    accounts = [Account("session:a", Decimal(100)), Account("principal:p", Decimal(150))]

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

    session = anyio.run(store.read, "session:a")
    principal = anyio.run(store.read, "principal:p")
    assert session.committed <= Decimal(100)
    assert session == principal
    assert session.reserved + session.spent * 2 == Decimal(total)


# --- receipts -----------------------------------------------------------------------------------------------------


async def test_receipts_come_back_oldest_first_limited_to_the_newest() -> None:
    store = _store()
    for i in range(5):
        await store.add_receipt("s", {"n": i, "charged": f"{i}.00"}, keep=50)

    assert await store.receipts("s", 3) == [
        {"n": 2, "charged": "2.00"},
        {"n": 3, "charged": "3.00"},
        {"n": 4, "charged": "4.00"},
    ]
    assert [r["n"] for r in await store.receipts("s", 100)] == [0, 1, 2, 3, 4]


async def test_only_the_newest_receipts_are_kept() -> None:
    store = _store()
    for i in range(12):
        await store.add_receipt("s", {"n": i}, keep=4)

    assert [r["n"] for r in await store.receipts("s", 100)] == [8, 9, 10, 11]


async def test_receipts_of_unknown_accounts_or_with_limit_zero_are_empty() -> None:
    store = _store()
    await store.add_receipt("s", {"n": 1}, keep=10)

    assert await store.receipts("nobody", 10) == []
    assert await store.receipts("s", 0) == []


async def test_receipts_are_stored_as_copies_not_references() -> None:
    store = _store()
    receipt: dict[str, object] = {"tool": "enrich", "nested": {"a": 1}}
    await store.add_receipt("s", receipt, keep=10)

    receipt["tool"] = "changed"
    (await store.receipts("s", 1))[0]["tool"] = "also changed"

    assert await store.receipts("s", 1) == [{"tool": "enrich", "nested": {"a": 1}}]


async def test_receipts_do_not_touch_the_budget() -> None:
    store = _store()
    await store.add_receipt("s", {"n": 1}, keep=10)

    assert await store.read("s") == BudgetSnapshot(ZERO, ZERO, ZERO)


# --- cache ------------------------------------------------------------------------------------------------------------


async def test_cache_returns_a_value_until_its_ttl_runs_out() -> None:
    clock = FakeClock()
    store = _store(clock)
    await store.cache_put("k", "v", ttl_seconds=30)

    clock.advance(29.999)
    assert await store.cache_get("k") == "v"
    clock.advance(0.001)
    assert await store.cache_get("k") is None


async def test_expired_entries_are_dropped_on_read() -> None:
    clock = FakeClock()
    store = _store(clock)
    await store.cache_put("k", "v", ttl_seconds=10)
    clock.advance(11)
    assert await store.cache_get("k") is None

    clock.advance(-11)

    assert await store.cache_get("k") is None


async def test_a_missing_key_is_none() -> None:
    assert await _store().cache_get("absent") is None


@pytest.mark.parametrize("ttl", [0, -1, 0.0])
async def test_a_non_positive_ttl_stores_nothing(ttl: float) -> None:
    store = _store()

    await store.cache_put("k", "v", ttl_seconds=ttl)

    assert await store.cache_get("k") is None


async def test_a_put_with_zero_ttl_does_not_leave_an_older_value_behind() -> None:
    store = _store()
    await store.cache_put("k", "old", ttl_seconds=60)

    await store.cache_put("k", "new", ttl_seconds=0)

    assert await store.cache_get("k") != "old"


async def test_overwriting_a_key_replaces_value_and_ttl() -> None:
    clock = FakeClock()
    store = _store(clock)
    await store.cache_put("k", "v1", ttl_seconds=100)
    await store.cache_put("k", "v2", ttl_seconds=5)

    assert await store.cache_get("k") == "v2"
    clock.advance(6)
    assert await store.cache_get("k") is None


async def test_the_least_recently_used_entry_is_evicted_when_full() -> None:
    store = _store(max_cache_entries=3)
    for key in ("a", "b", "c"):
        await store.cache_put(key, key.upper(), ttl_seconds=60)
    assert await store.cache_get("a") == "A"

    await store.cache_put("d", "D", ttl_seconds=60)

    assert await store.cache_get("b") is None
    assert [await store.cache_get(k) for k in ("a", "c", "d")] == ["A", "C", "D"]


async def test_rewriting_a_key_refreshes_its_recency_and_does_not_evict() -> None:
    store = _store(max_cache_entries=2)
    await store.cache_put("a", "1", ttl_seconds=60)
    await store.cache_put("b", "2", ttl_seconds=60)
    await store.cache_put("a", "3", ttl_seconds=60)

    await store.cache_put("c", "4", ttl_seconds=60)

    assert await store.cache_get("a") == "3"
    assert await store.cache_get("b") is None
    assert await store.cache_get("c") == "4"


async def test_the_cache_never_holds_more_than_its_bound() -> None:
    store = _store(max_cache_entries=10)
    for i in range(100):
        await store.cache_put(f"k{i}", str(i), ttl_seconds=60)

    present = [i for i in range(100) if await store.cache_get(f"k{i}") is not None]

    assert present == list(range(90, 100))


# --- sliding-window slots ---------------------------------------------------------------------------------------------


async def test_slots_are_free_until_the_limit_then_report_the_wait() -> None:
    clock = FakeClock()
    store = _store(clock)

    first = [await store.take_slot("enrich", 3, 60) for _ in range(3)]
    clock.advance(10)
    refused = await store.take_slot("enrich", 3, 60)

    assert first == [0.0, 0.0, 0.0]
    assert refused == pytest.approx(50.0)


async def test_a_refused_request_does_not_use_a_slot() -> None:
    clock = FakeClock()
    store = _store(clock)
    await store.take_slot("b", 1, 60)
    for _ in range(5):
        assert await store.take_slot("b", 1, 60) > 0

    clock.advance(60)

    assert await store.take_slot("b", 1, 60) == 0.0
    assert await store.take_slot("b", 1, 60) == pytest.approx(60.0)


async def test_the_window_slides_rather_than_resetting_on_fixed_buckets() -> None:
    clock = FakeClock()
    store = _store(clock)
    assert await store.take_slot("b", 2, 60) == 0.0
    clock.advance(30)
    assert await store.take_slot("b", 2, 60) == 0.0

    clock.advance(30)
    assert await store.take_slot("b", 2, 60) == 0.0
    assert await store.take_slot("b", 2, 60) == pytest.approx(30.0)
    clock.advance(29.5)
    assert await store.take_slot("b", 2, 60) == pytest.approx(0.5)
    clock.advance(0.5)
    assert await store.take_slot("b", 2, 60) == 0.0


async def test_the_wait_is_never_reported_as_zero_while_full() -> None:
    clock = FakeClock()
    store = _store(clock)
    await store.take_slot("b", 1, 60)
    clock.advance(59.99999999)

    wait = await store.take_slot("b", 1, 60)

    assert wait >= 0.001


async def test_buckets_are_independent() -> None:
    store = _store()
    await store.take_slot("enrich", 1, 60)

    assert await store.take_slot("enrich", 1, 60) > 0
    assert await store.take_slot("search", 1, 60) == 0.0


async def test_at_most_limit_slots_are_taken_in_any_window() -> None:
    clock = FakeClock()
    store = _store(clock)
    taken: list[float] = []
    for _ in range(600):
        if await store.take_slot("b", 15, 60) == 0.0:
            taken.append(clock())
        clock.advance(0.7)

    for i, start in enumerate(taken):
        in_window = [t for t in taken[i:] if t < start + 60]
        assert len(in_window) <= 15
    assert len(taken) >= 15 * 6


async def test_aclose_is_harmless() -> None:
    store = _store()
    await store.cache_put("k", "v", ttl_seconds=10)

    await store.aclose()

    assert await store.cache_get("k") == "v"
