"""Budgets over the memory store: reserve before spending, settle or release on every path, receipts."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

import anyio
import anyio.lowlevel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from person_enrich_mcp.budget import RECEIPTS_KEPT, Budget, BudgetView, Quote, Receipt, Reservation
from person_enrich_mcp.errors import BudgetExceededError
from person_enrich_mcp.state import Account, MemoryStore

pytestmark = pytest.mark.anyio

ZERO = Decimal(0)


class FakeClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class CheckpointingStore(MemoryStore):
    """A store whose writes yield to the event loop first, as a networked store would; unshielded, a
    cancelled caller would lose them."""

    async def settle(self, reservation_id: str, charged: Decimal, unverified: Decimal = ZERO) -> None:
        await anyio.lowlevel.checkpoint()
        await super().settle(reservation_id, charged, unverified)

    async def add_receipt(self, account_key: str, receipt: dict[str, object], keep: int) -> None:
        await anyio.lowlevel.checkpoint()
        await super().add_receipt(account_key, receipt, keep)


def _budget(limit: str = "10", store: MemoryStore | None = None) -> Budget:
    return Budget(store or MemoryStore(clock=FakeClock()), session_limit=Decimal(limit))


def _quote(estimate: str, *ways: str) -> Quote:
    return Quote(Decimal(estimate), f"{estimate} credits worst case", ways)


async def test_a_new_session_has_its_whole_limit_remaining() -> None:
    view = await _budget("25").view("s")

    assert view == BudgetView(Decimal(25), ZERO, ZERO, ZERO)
    assert view.remaining == Decimal(25)


async def test_a_session_is_charged_to_its_own_account() -> None:
    assert _budget("5").accounts("abc") == [Account("session:abc", Decimal(5))]


async def test_inside_a_reservation_the_estimate_is_held() -> None:
    budget = _budget("10")

    async with budget.reserve("s", _quote("4")):
        view = await budget.view("s")
        assert view.reserved == Decimal(4)
        assert view.remaining == Decimal(6)


async def test_on_exit_the_reservation_settles_to_what_was_charged() -> None:
    budget = _budget("10")

    async with budget.reserve("s", _quote("7")) as reservation:
        reservation.charge(Decimal(2))
        reservation.charge(Decimal("0.5"))

    assert await budget.view("s") == BudgetView(Decimal(10), Decimal("2.5"), ZERO, ZERO)
    assert (await budget.view("s")).remaining == Decimal("7.5")


async def test_a_call_that_charged_nothing_releases_everything() -> None:
    budget = _budget("10")

    async with budget.reserve("s", _quote("7")):
        pass

    assert await budget.view("s") == BudgetView(Decimal(10), ZERO, ZERO, ZERO)


async def test_an_estimate_that_does_not_fit_is_refused_before_anything_is_held() -> None:
    budget = _budget("10")
    async with budget.reserve("s", _quote("7")) as first:
        first.charge(Decimal(7))

    with pytest.raises(BudgetExceededError) as caught:
        async with budget.reserve("s", _quote("5", "ask for fewer fields", "send fewer identifiers")):
            pytest.fail("the body of a refused reservation must not run")

    error = caught.value
    assert error.estimate == Decimal(5)
    assert error.remaining == Decimal(3)
    message = str(error)
    assert "Refused before spending anything" in message
    assert "up to 5.00 credits (5 credits worst case)" in message
    assert "only 3.00 of the session budget of 10.00 credits remain" in message
    assert "To spend less: ask for fewer fields; send fewer identifiers." in message
    assert "PERSON_ENRICH_SESSION_BUDGET" in message
    assert await budget.view("s") == BudgetView(Decimal(10), Decimal(7), ZERO, ZERO)


async def test_a_refusal_without_ways_to_lower_does_not_say_how_to_spend_less() -> None:
    budget = _budget("1")

    with pytest.raises(BudgetExceededError) as caught:
        async with budget.reserve("s", _quote("2")):
            pass

    assert "To spend less" not in str(caught.value)


async def test_an_estimate_exactly_equal_to_what_is_left_is_granted() -> None:
    budget = _budget("10")
    async with budget.reserve("s", _quote("6.97")) as first:
        first.charge(Decimal("6.97"))

    async with budget.reserve("s", _quote("3.03")) as second:
        second.charge(Decimal("3.03"))

    view = await budget.view("s")
    assert view.spent == Decimal(10)
    assert view.remaining == ZERO


async def test_open_reservations_count_against_later_ones() -> None:
    budget = _budget("10")

    async with budget.reserve("s", _quote("6")):
        with pytest.raises(BudgetExceededError) as caught:
            async with budget.reserve("s", _quote("5")):
                pass
        assert caught.value.remaining == Decimal(4)
        async with budget.reserve("s", _quote("4")):
            assert (await budget.view("s")).reserved == Decimal(10)

    assert (await budget.view("s")).reserved == ZERO


async def test_an_exception_inside_still_settles_what_was_charged() -> None:
    budget = _budget("10")

    with pytest.raises(RuntimeError, match="parse failed"):
        async with budget.reserve("s", _quote("5")) as reservation:
            reservation.charge(Decimal(3))
            raise RuntimeError("parse failed")

    assert await budget.view("s") == BudgetView(Decimal(10), Decimal(3), ZERO, ZERO)


async def test_a_cancelled_call_still_settles_even_when_the_store_yields() -> None:
    budget = _budget("10", CheckpointingStore(clock=FakeClock()))

    with anyio.CancelScope() as scope:
        async with budget.reserve("s", _quote("5")) as reservation:
            reservation.charge(Decimal(2))
            scope.cancel()
            await anyio.lowlevel.checkpoint()

    assert scope.cancelled_caught
    assert await budget.view("s") == BudgetView(Decimal(10), Decimal(2), ZERO, ZERO)


async def test_unverified_credits_stay_counted_against_the_session() -> None:
    budget = _budget("10")

    async with budget.reserve("s", _quote("6")) as reservation:
        reservation.charge_unverified(reservation.unused)

    view = await budget.view("s")
    assert view == BudgetView(Decimal(10), ZERO, ZERO, Decimal(6))
    assert view.remaining == Decimal(4)


async def test_unused_is_what_is_still_held_and_never_negative() -> None:
    budget = _budget("10")

    async with budget.reserve("s", _quote("5")) as reservation:
        assert reservation.unused == Decimal(5)
        reservation.charge(Decimal(2))
        reservation.charge_unverified(Decimal(1))
        assert reservation.unused == Decimal(2)
        reservation.charge(Decimal(9))
        assert reservation.unused == ZERO


async def test_an_upstream_charge_above_the_estimate_is_recorded_in_full_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    budget = _budget("10")

    with caplog.at_level(logging.WARNING, logger="person_enrich_mcp.budget"):
        async with budget.reserve("s", _quote("7")) as reservation:
            reservation.charge(Decimal(12))

    view = await budget.view("s")
    assert view.spent == Decimal(12)
    assert view.reserved == ZERO
    assert view.remaining == ZERO
    assert any("above the estimate" in record.getMessage() for record in caplog.records)
    with pytest.raises(BudgetExceededError):
        async with budget.reserve("s", _quote("0.01")):
            pass


async def test_sessions_have_separate_budgets() -> None:
    budget = _budget("5")

    async with budget.reserve("a", _quote("5")) as reservation:
        reservation.charge(Decimal(5))
    async with budget.reserve("b", _quote("5")) as other:
        other.charge(Decimal(1))

    assert (await budget.view("a")).spent == Decimal(5)
    assert (await budget.view("b")).spent == Decimal(1)


async def test_each_reservation_has_its_own_id() -> None:
    budget = _budget("10")

    first = budget.reserve("s", _quote("1"))
    second = budget.reserve("s", _quote("1"))

    assert isinstance(first, Reservation)
    assert first.id != second.id


async def test_decimal_search_charges_add_up_exactly() -> None:
    budget = _budget("1")

    for _ in range(10):
        async with budget.reserve("s", _quote("0.03")) as reservation:
            reservation.charge(Decimal("0.03"))

    view = await budget.view("s")
    assert view.spent == Decimal("0.30")
    assert view.remaining == Decimal("0.70")


# --- receipts ---------------------------------------------------------------------------------------------------------


async def test_record_returns_a_receipt_with_the_session_totals() -> None:
    budget = _budget("10")
    quote = _quote("4")
    async with budget.reserve("s", quote) as reservation:
        reservation.charge(Decimal("1.5"))

    receipt = await budget.record(
        "s", tool="enrich_people", quote=quote, charged=Decimal("1.5"), unverified=ZERO, cache_hits=2
    )

    assert receipt.tool == "enrich_people"
    assert receipt.estimated == Decimal(4)
    assert receipt.charged == Decimal("1.5")
    assert receipt.cache_hits == 2
    assert receipt.session_spent == Decimal("1.5")
    assert receipt.session_remaining == Decimal("8.5")
    assert datetime.fromisoformat(receipt.at).utcoffset() is not None


async def test_a_receipt_serialises_credits_as_decimal_strings() -> None:
    receipt = Receipt("search_people", Decimal(3), Decimal("0.09"), 0, ZERO, Decimal("0.09"), Decimal("9.91"), "t")

    assert receipt.to_json() == {
        "tool": "search_people",
        "estimated": "3.00",
        "charged": "0.09",
        "cache_hits": 0,
        "unverified": "0.00",
        "session_spent": "0.09",
        "session_remaining": "9.91",
        "at": "t",
    }


async def test_receipts_come_back_oldest_first_and_the_default_is_the_last_ten() -> None:
    budget = _budget("100")
    for i in range(12):
        await budget.record("s", tool=f"t{i}", quote=_quote("1"), charged=ZERO, unverified=ZERO, cache_hits=0)

    receipts = await budget.receipts("s")

    assert [r["tool"] for r in receipts] == [f"t{i}" for i in range(2, 12)]
    assert receipts[0]["charged"] == "0.00"


async def test_a_session_keeps_only_its_newest_receipts() -> None:
    budget = _budget("100")
    for i in range(RECEIPTS_KEPT + 5):
        await budget.record("s", tool=f"t{i}", quote=_quote("1"), charged=ZERO, unverified=ZERO, cache_hits=0)

    receipts = await budget.receipts("s", limit=1000)

    assert len(receipts) == RECEIPTS_KEPT
    assert receipts[-1]["tool"] == f"t{RECEIPTS_KEPT + 4}"
    assert receipts[0]["tool"] == "t5"


async def test_receipts_are_per_session() -> None:
    budget = _budget("100")
    await budget.record("a", tool="x", quote=_quote("1"), charged=ZERO, unverified=ZERO, cache_hits=0)

    assert await budget.receipts("b") == []


async def test_a_receipt_is_written_even_if_the_call_is_being_cancelled() -> None:
    budget = _budget("10", CheckpointingStore(clock=FakeClock()))

    with anyio.CancelScope() as scope:
        scope.cancel()
        await budget.record("s", tool="x", quote=_quote("1"), charged=ZERO, unverified=ZERO, cache_hits=0)

    assert [r["tool"] for r in await budget.receipts("s")] == ["x"]


# --- invariants under random sequences ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    kind: str
    index: int
    amount: int


_OPS = st.lists(
    st.builds(
        Op,
        st.sampled_from(["open", "open", "charge", "unverified", "close"]),
        st.integers(0, 20),
        st.integers(0, 400),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2000), _OPS)
async def test_random_reserve_charge_settle_sequences_keep_the_books(limit_cents: int, ops: list[Op]) -> None:
    limit = Decimal(limit_cents) / 100
    budget = Budget(MemoryStore(clock=FakeClock()), session_limit=limit)
    open_reservations: list[Reservation] = []
    charged = ZERO
    unverified = ZERO

    for op in ops:
        before = await budget.view("s")
        if op.kind == "open":
            estimate = Decimal(op.amount) / 100
            reservation = budget.reserve("s", Quote(estimate, "test"))
            fits = before.spent + before.reserved + before.unverified + estimate <= limit
            try:
                await reservation.__aenter__()
            except BudgetExceededError as exc:
                assert not fits
                assert exc.remaining == max(limit - before.spent - before.reserved - before.unverified, ZERO)
            else:
                assert fits
                open_reservations.append(reservation)
        elif open_reservations:
            reservation = open_reservations[op.index % len(open_reservations)]
            share = (reservation.unused * min(op.amount, 100) / 100).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
            if op.kind == "charge":
                reservation.charge(share)
                charged += share
            elif op.kind == "unverified":
                reservation.charge_unverified(share)
                unverified += share
            else:
                open_reservations.remove(reservation)
                await reservation.__aexit__(None, None, None)

        view = await budget.view("s")
        assert view.spent + view.reserved + view.unverified <= limit
        assert view.reserved == sum((r.quote.estimate for r in open_reservations), start=ZERO)
        assert view.remaining == limit - view.spent - view.reserved - view.unverified

    for reservation in open_reservations:
        await reservation.__aexit__(None, None, None)

    final = await budget.view("s")
    assert final.reserved == ZERO
    assert final.spent == charged
    assert final.unverified == unverified
    assert final.spent + final.unverified <= limit
