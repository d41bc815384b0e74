"""Budgets over the memory store: reserve before spending, settle or release on every path, principal windows,
receipts."""

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

from person_enrich_mcp.budget import (
    RECEIPTS_KEPT,
    Budget,
    BudgetView,
    Owner,
    Quote,
    Receipt,
    Reservation,
    WindowView,
    duration,
    span,
)
from person_enrich_mcp.errors import BudgetExceededError
from person_enrich_mcp.metrics import Metrics
from person_enrich_mcp.state import Account, MemoryStore, Release

pytestmark = pytest.mark.anyio

ZERO = Decimal(0)
S = Owner("s")
A = Owner("a")
B = Owner("b")


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
    view = await _budget("25").view(S)

    assert view == BudgetView(Decimal(25), ZERO, ZERO, ZERO)
    assert view.remaining == Decimal(25)


async def test_a_session_is_charged_to_its_own_account() -> None:
    assert _budget("5").accounts(Owner("abc")) == [Account("session:abc", Decimal(5))]


async def test_inside_a_reservation_the_estimate_is_held() -> None:
    budget = _budget("10")

    async with budget.reserve(S, _quote("4")):
        view = await budget.view(S)
        assert view.reserved == Decimal(4)
        assert view.remaining == Decimal(6)


async def test_on_exit_the_reservation_settles_to_what_was_charged() -> None:
    budget = _budget("10")

    async with budget.reserve(S, _quote("7")) as reservation:
        reservation.charge(Decimal(2))
        reservation.charge(Decimal("0.5"))

    assert await budget.view(S) == BudgetView(Decimal(10), Decimal("2.5"), ZERO, ZERO)
    assert (await budget.view(S)).remaining == Decimal("7.5")


async def test_a_call_that_charged_nothing_releases_everything() -> None:
    budget = _budget("10")

    async with budget.reserve(S, _quote("7")):
        pass

    assert await budget.view(S) == BudgetView(Decimal(10), ZERO, ZERO, ZERO)


async def test_an_estimate_that_does_not_fit_is_refused_before_anything_is_held() -> None:
    budget = _budget("10")
    async with budget.reserve(S, _quote("7")) as first:
        first.charge(Decimal(7))

    with pytest.raises(BudgetExceededError) as caught:
        async with budget.reserve(S, _quote("5", "ask for fewer fields", "send fewer identifiers")):
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
    assert await budget.view(S) == BudgetView(Decimal(10), Decimal(7), ZERO, ZERO)


async def test_a_refusal_without_ways_to_lower_does_not_say_how_to_spend_less() -> None:
    budget = _budget("1")

    with pytest.raises(BudgetExceededError) as caught:
        async with budget.reserve(S, _quote("2")):
            pass

    assert "To spend less" not in str(caught.value)


async def test_an_estimate_exactly_equal_to_what_is_left_is_granted() -> None:
    budget = _budget("10")
    async with budget.reserve(S, _quote("6.97")) as first:
        first.charge(Decimal("6.97"))

    async with budget.reserve(S, _quote("3.03")) as second:
        second.charge(Decimal("3.03"))

    view = await budget.view(S)
    assert view.spent == Decimal(10)
    assert view.remaining == ZERO


async def test_open_reservations_count_against_later_ones() -> None:
    budget = _budget("10")

    async with budget.reserve(S, _quote("6")):
        with pytest.raises(BudgetExceededError) as caught:
            async with budget.reserve(S, _quote("5")):
                pass
        assert caught.value.remaining == Decimal(4)
        async with budget.reserve(S, _quote("4")):
            assert (await budget.view(S)).reserved == Decimal(10)

    assert (await budget.view(S)).reserved == ZERO


async def test_an_exception_inside_still_settles_what_was_charged() -> None:
    budget = _budget("10")

    with pytest.raises(RuntimeError, match="parse failed"):
        async with budget.reserve(S, _quote("5")) as reservation:
            reservation.charge(Decimal(3))
            raise RuntimeError("parse failed")

    assert await budget.view(S) == BudgetView(Decimal(10), Decimal(3), ZERO, ZERO)


async def test_a_cancelled_call_still_settles_even_when_the_store_yields() -> None:
    budget = _budget("10", CheckpointingStore(clock=FakeClock()))

    with anyio.CancelScope() as scope:
        async with budget.reserve(S, _quote("5")) as reservation:
            reservation.charge(Decimal(2))
            scope.cancel()
            await anyio.lowlevel.checkpoint()

    assert scope.cancelled_caught
    assert await budget.view(S) == BudgetView(Decimal(10), Decimal(2), ZERO, ZERO)


async def test_unverified_credits_stay_counted_against_the_session() -> None:
    budget = _budget("10")

    async with budget.reserve(S, _quote("6")) as reservation:
        reservation.charge_unverified(reservation.unused)

    view = await budget.view(S)
    assert view == BudgetView(Decimal(10), ZERO, ZERO, Decimal(6))
    assert view.remaining == Decimal(4)


async def test_unused_is_what_is_still_held_and_never_negative() -> None:
    budget = _budget("10")

    async with budget.reserve(S, _quote("5")) as reservation:
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
        async with budget.reserve(S, _quote("7")) as reservation:
            reservation.charge(Decimal(12))

    view = await budget.view(S)
    assert view.spent == Decimal(12)
    assert view.reserved == ZERO
    assert view.remaining == ZERO
    assert any("above the estimate" in record.getMessage() for record in caplog.records)
    with pytest.raises(BudgetExceededError):
        async with budget.reserve(S, _quote("0.01")):
            pass


async def test_sessions_have_separate_budgets() -> None:
    budget = _budget("5")

    async with budget.reserve(A, _quote("5")) as reservation:
        reservation.charge(Decimal(5))
    async with budget.reserve(B, _quote("5")) as other:
        other.charge(Decimal(1))

    assert (await budget.view(A)).spent == Decimal(5)
    assert (await budget.view(B)).spent == Decimal(1)


async def test_each_reservation_has_its_own_id() -> None:
    budget = _budget("10")

    first = budget.reserve(S, _quote("1"))
    second = budget.reserve(S, _quote("1"))

    assert isinstance(first, Reservation)
    assert first.id != second.id


async def test_decimal_search_charges_add_up_exactly() -> None:
    budget = _budget("1")

    for _ in range(10):
        async with budget.reserve(S, _quote("0.03")) as reservation:
            reservation.charge(Decimal("0.03"))

    view = await budget.view(S)
    assert view.spent == Decimal("0.30")
    assert view.remaining == Decimal("0.70")


# --- principal rolling windows -----------------------------------------------------------------------------------

DAY = 86_400.0
ALICE_1 = Owner("s1", "alice")
ALICE_2 = Owner("s2", "alice")
BOB = Owner("s3", "bob")


def _windowed(session: str, principal: str, clock: FakeClock | None = None) -> Budget:
    store = MemoryStore(clock=clock or FakeClock())
    return Budget(
        store, session_limit=Decimal(session), principal_limit=Decimal(principal), principal_window_seconds=DAY
    )


async def _spend(budget: Budget, owner: Owner, credits: str) -> None:
    async with budget.reserve(owner, _quote(credits)) as reservation:
        reservation.charge(Decimal(credits))


async def test_an_owner_with_a_principal_is_charged_to_its_session_and_the_principals_rolling_window() -> None:
    assert _windowed("10", "15").accounts(ALICE_1) == [
        Account("session:s1", Decimal(10)),
        Account("principal:alice", Decimal(15), DAY),
    ]


async def test_a_principals_spend_across_two_sessions_is_capped_by_the_principal_limit() -> None:
    budget = _windowed("10", "15")
    await _spend(budget, ALICE_1, "9")
    await _spend(budget, ALICE_2, "6")

    with pytest.raises(BudgetExceededError) as caught:
        async with budget.reserve(ALICE_2, _quote("0.01")):
            pytest.fail("the body of a refused reservation must not run")

    assert caught.value.remaining == ZERO
    assert (await budget.view(ALICE_2)).spent == Decimal(6)
    assert (await budget.view(ALICE_1)).window == WindowView("alice", Decimal(15), DAY, Decimal(15))
    await _spend(budget, BOB, "10")
    assert (await budget.view(BOB)).window == WindowView("bob", Decimal(15), DAY, Decimal(10))


async def test_an_open_reservation_in_one_session_holds_the_principals_window_for_the_others() -> None:
    budget = _windowed("10", "10")

    async with budget.reserve(ALICE_1, _quote("6")):
        assert (await budget.view(ALICE_2)).remaining == Decimal(4)
        with pytest.raises(BudgetExceededError) as caught:
            async with budget.reserve(ALICE_2, _quote("5")):
                pass
        assert caught.value.remaining == Decimal(4)

    assert (await budget.view(ALICE_2)).remaining == Decimal(10)


async def test_a_refusal_by_the_principal_window_names_the_rolling_budget_and_its_setting() -> None:
    budget = _windowed("10", "12")
    await _spend(budget, ALICE_1, "8")

    with pytest.raises(BudgetExceededError) as caught:
        async with budget.reserve(ALICE_2, _quote("5", "ask for fewer fields")):
            pytest.fail("the body of a refused reservation must not run")

    error = caught.value
    assert error.estimate == Decimal(5)
    assert error.remaining == Decimal(4)
    message = str(error)
    assert "only 4.00 of your rolling 24-hour budget of 12.00 credits (shared by all your sessions) remain" in message
    assert "To spend less: ask for fewer fields." in message
    assert "The operator can raise PERSON_ENRICH_PRINCIPAL_BUDGET." in message
    assert "session budget" not in message
    assert "PERSON_ENRICH_SESSION_BUDGET" not in message
    assert await budget.view(ALICE_2) == BudgetView(
        Decimal(10), ZERO, ZERO, ZERO, WindowView("alice", Decimal(12), DAY, Decimal(8))
    )


async def test_a_refusal_by_the_session_names_the_session_budget_even_when_there_is_a_window() -> None:
    budget = _windowed("10", "100")
    await _spend(budget, ALICE_1, "7")

    with pytest.raises(BudgetExceededError) as caught:
        async with budget.reserve(ALICE_1, _quote("5")):
            pytest.fail("the body of a refused reservation must not run")

    message = str(caught.value)
    assert caught.value.remaining == Decimal(3)
    assert "only 3.00 of the session budget of 10.00 credits remain" in message
    assert "The operator can raise PERSON_ENRICH_SESSION_BUDGET." in message
    assert "rolling" not in message
    assert "PERSON_ENRICH_PRINCIPAL_BUDGET" not in message


async def test_view_remaining_is_the_tighter_of_the_session_and_the_principal_window() -> None:
    budget = _windowed("10", "12")
    await _spend(budget, ALICE_1, "8")

    fresh_session = await budget.view(ALICE_2)
    spent_session = await budget.view(ALICE_1)

    assert fresh_session.window is not None
    assert fresh_session.window.remaining == Decimal(4)
    assert fresh_session.remaining == Decimal(4)  # the window is tighter than the untouched session
    assert spent_session.remaining == Decimal(2)  # the session is tighter than the window


async def test_the_window_reports_zero_remaining_when_overspent() -> None:
    budget = _windowed("100", "5")
    async with budget.reserve(ALICE_1, _quote("5")) as reservation:
        reservation.charge(Decimal(7))

    view = await budget.view(ALICE_2)

    assert view.window == WindowView("alice", Decimal(5), DAY, Decimal(7))
    assert view.remaining == ZERO


async def test_an_owner_without_a_principal_has_no_window() -> None:
    budget = _windowed("10", "1")
    stdio = Owner("stdio")

    await _spend(budget, stdio, "5")

    assert budget.accounts(stdio) == [Account("session:stdio", Decimal(10))]
    view = await budget.view(stdio)
    assert view.window is None
    assert view.remaining == Decimal(5)


async def test_without_a_principal_limit_a_principal_has_no_window() -> None:
    budget = Budget(MemoryStore(clock=FakeClock()), session_limit=Decimal(10))

    await _spend(budget, ALICE_1, "9")

    assert budget.accounts(ALICE_1) == [Account("session:s1", Decimal(10))]
    assert (await budget.view(ALICE_2)).window is None
    assert (await budget.view(ALICE_2)).remaining == Decimal(10)


async def test_a_principals_spend_stops_counting_once_the_window_has_passed() -> None:
    clock = FakeClock()
    budget = _windowed("100", "10", clock)
    await _spend(budget, ALICE_1, "10")
    with pytest.raises(BudgetExceededError):
        async with budget.reserve(ALICE_2, _quote("1")):
            pass

    clock.now += DAY
    await _spend(budget, ALICE_2, "10")

    assert (await budget.view(ALICE_1)).spent == Decimal(10)  # the session keeps its own books
    assert (await budget.view(ALICE_1)).window == WindowView("alice", Decimal(10), DAY, Decimal(10))


# --- receipts ---------------------------------------------------------------------------------------------------------


async def test_record_returns_a_receipt_with_the_session_totals() -> None:
    budget = _budget("10")
    quote = _quote("4")
    async with budget.reserve(S, quote) as reservation:
        reservation.charge(Decimal("1.5"))

    receipt = await budget.record(
        S, tool="enrich_people", quote=quote, charged=Decimal("1.5"), unverified=ZERO, cache_hits=2
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
        await budget.record(S, tool=f"t{i}", quote=_quote("1"), charged=ZERO, unverified=ZERO, cache_hits=0)

    receipts = await budget.receipts(S)

    assert [r["tool"] for r in receipts] == [f"t{i}" for i in range(2, 12)]
    assert receipts[0]["charged"] == "0.00"


async def test_a_session_keeps_only_its_newest_receipts() -> None:
    budget = _budget("100")
    for i in range(RECEIPTS_KEPT + 5):
        await budget.record(S, tool=f"t{i}", quote=_quote("1"), charged=ZERO, unverified=ZERO, cache_hits=0)

    receipts = await budget.receipts(S, limit=1000)

    assert len(receipts) == RECEIPTS_KEPT
    assert receipts[-1]["tool"] == f"t{RECEIPTS_KEPT + 4}"
    assert receipts[0]["tool"] == "t5"


async def test_receipts_are_per_session() -> None:
    budget = _budget("100")
    await budget.record(A, tool="x", quote=_quote("1"), charged=ZERO, unverified=ZERO, cache_hits=0)

    assert await budget.receipts(B) == []


async def test_a_receipt_is_written_even_if_the_call_is_being_cancelled() -> None:
    budget = _budget("10", CheckpointingStore(clock=FakeClock()))

    with anyio.CancelScope() as scope:
        scope.cancel()
        await budget.record(S, tool="x", quote=_quote("1"), charged=ZERO, unverified=ZERO, cache_hits=0)

    assert [r["tool"] for r in await budget.receipts(S)] == ["x"]


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
        before = await budget.view(S)
        if op.kind == "open":
            estimate = Decimal(op.amount) / 100
            reservation = budget.reserve(S, Quote(estimate, "test"))
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

        view = await budget.view(S)
        assert view.spent + view.reserved + view.unverified <= limit
        assert view.reserved == sum((r.quote.estimate for r in open_reservations), start=ZERO)
        assert view.remaining == limit - view.spent - view.reserved - view.unverified

    for reservation in open_reservations:
        await reservation.__aexit__(None, None, None)

    final = await budget.view(S)
    assert final.reserved == ZERO
    assert final.spent == charged
    assert final.unverified == unverified
    assert final.spent + final.unverified <= limit


# --- the figures a refusal gives: window lengths, waits, and when a rolling budget frees up ---------------------------


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (86_400, "24-hour"),
        (3_600, "1-hour"),
        (7_200.0, "2-hour"),
        (5_400, "90-minute"),
        (3_660, "61-minute"),
        (60, "1-minute"),
        (90, "90-second"),
        (59, "59-second"),
        (2.5, "2.5-second"),
    ],
)
def test_a_window_is_named_in_the_largest_whole_unit(seconds: float, words: str) -> None:
    assert span(seconds) == words


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0, "1 s"),
        (0.2, "1 s"),
        (45, "45 s"),
        (119, "119 s"),
        (119.5, "2 min"),
        (120, "2 min"),
        (121, "3 min"),
        (7_140, "119 min"),
        (7_141, "2 h"),
        (7_200, "2 h"),
        (7_260, "2 h 1 min"),
        (11_100, "3 h 5 min"),
    ],
)
def test_a_wait_is_rounded_up_to_seconds_then_minutes_then_hours(seconds: float, words: str) -> None:
    assert duration(seconds) == words


def _rolling_refusal(estimate: str, remaining: str, releases: list[Release]) -> str:
    budget = Budget(MemoryStore(clock=FakeClock()), session_limit=Decimal(10))
    return str(budget.exceeded(_quote(estimate), Decimal(remaining), rolling=True, releases=releases))


def test_a_rolling_refusal_with_nothing_to_free_says_it_waits_for_the_calls_in_progress() -> None:
    assert " Nothing frees up until the calls in progress finish." in _rolling_refusal("4", "1", [])


def test_a_rolling_refusal_says_when_the_next_credits_free_up_and_whether_that_is_enough() -> None:
    first, second = Release(30, Decimal(2)), Release(600, Decimal(3))

    assert " 2.00 credits free up in 30 s, enough for this call." in _rolling_refusal("3", "1", [first, second])
    assert " 2.00 credits free up in 30 s; enough for this call in 10 min." in _rolling_refusal(
        "6", "1", [first, second]
    )
    assert " 2.00 credits free up in 30 s. " in _rolling_refusal("6.01", "1", [first, second])


def test_a_call_larger_than_the_whole_rolling_budget_is_told_so() -> None:
    text = _rolling_refusal("10.01", "9", [Release(5, Decimal(1))])

    assert " 1.00 credits free up in 5 s; this call is larger than the whole budget." in text
    # As large as the whole budget is not larger: it fits once enough frees up.
    fits = _rolling_refusal("10", "9", [Release(5, Decimal(1))])
    assert " 1.00 credits free up in 5 s, enough for this call." in fits


def test_a_session_refusal_says_its_spend_never_frees_up() -> None:
    budget = Budget(MemoryStore(clock=FakeClock()), session_limit=Decimal(10))

    text = str(budget.exceeded(_quote("4"), Decimal(1)))

    assert "only 1.00 of the session budget of 10.00 credits remain. A session's spend does not free up." in text


def test_a_refusal_without_ways_to_lower_ends_with_who_can_raise_the_limit() -> None:
    text = str(_budget("10").exceeded(_quote("4"), Decimal(1)))

    assert text == (
        "Refused before spending anything: this call could cost up to 4.00 credits (4 credits worst case), but only "
        "1.00 of the session budget of 10.00 credits remain. A session's spend does not free up. The operator can "
        "raise PERSON_ENRICH_SESSION_BUDGET."
    )


def test_a_refusal_is_a_session_refusal_unless_the_window_or_a_rolling_session_is_named() -> None:
    text = str(_windowed("10", "100").exceeded(_quote("4"), Decimal(1)))

    assert "of the session budget of 10.00 credits remain. A session's spend does not free up." in text
    assert "PERSON_ENRICH_PRINCIPAL_BUDGET" not in text


def test_a_window_refusal_without_releases_says_it_waits_for_the_calls_in_progress() -> None:
    text = str(_windowed("10", "12").exceeded(_quote("5"), Decimal(4), by_window=True))

    assert text.endswith(
        "remain. Nothing frees up until the calls in progress finish. The operator can raise "
        "PERSON_ENRICH_PRINCIPAL_BUDGET."
    )


def test_a_window_refusal_says_when_its_credits_free_up() -> None:
    text = str(
        _windowed("10", "12").exceeded(_quote("5"), Decimal(4), by_window=True, releases=[Release(90, Decimal(1))])
    )

    assert " remain. 1.00 credits free up in 90 s, enough for this call. The operator" in text


def test_a_legacy_session_is_its_principals_and_lasts_as_long_as_the_connection() -> None:
    assert Owner.legacy("alice", "abc") == Owner("http:alice:abc", "alice", rolling=False)


def test_a_client_without_a_session_gets_one_rolling_session_per_principal() -> None:
    assert Owner.sessionless("alice") == Owner("http:alice", "alice", rolling=True)


async def test_an_ended_session_forgets_its_books_but_its_spend_stays_in_the_principals_window() -> None:
    budget = _windowed("10", "15")
    await _spend(budget, ALICE_1, "4")
    await _spend(budget, ALICE_2, "2")

    await budget.session_ended(ALICE_1)

    assert await budget.view(ALICE_1) == BudgetView(
        Decimal(10), ZERO, ZERO, ZERO, WindowView("alice", Decimal(15), DAY, Decimal(6))
    )
    assert (await budget.view(ALICE_2)).spent == Decimal(2)


# --- defaults, metrics and the reservation's life --------------------------------------------------------------


def test_by_default_a_principal_rolls_over_a_day_and_a_client_without_a_session_over_an_hour() -> None:
    budget = Budget(MemoryStore(clock=FakeClock()), session_limit=Decimal(10), principal_limit=Decimal(15))

    assert budget.accounts(Owner("s", "alice", rolling=True)) == [
        Account("session:s", Decimal(10), 3_600.0),
        Account("principal:alice", Decimal(15), 86_400.0),
    ]
    assert budget.accounts(Owner("s", "alice")) == [
        Account("session:s", Decimal(10)),
        Account("principal:alice", Decimal(15), 86_400.0),
    ]


async def test_by_default_a_reservation_nobody_settles_turns_unverified_after_fifteen_minutes() -> None:
    clock = FakeClock()
    budget = _budget("10", MemoryStore(clock=clock))

    reservation = budget.reserve(S, _quote("6"))
    await reservation.__aenter__()
    clock.now += 899.5
    async with budget.reserve(A, _quote("1")):
        pass
    assert await budget.view(S) == BudgetView(Decimal(10), ZERO, Decimal(6), ZERO)

    clock.now += 0.5
    async with budget.reserve(A, _quote("1")):
        pass
    assert await budget.view(S) == BudgetView(Decimal(10), ZERO, ZERO, Decimal(6))


async def test_a_charge_equal_to_the_estimate_is_not_logged_as_above_it(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="person_enrich_mcp.budget"):
        async with _budget("10").reserve(S, _quote("7")) as reservation:
            reservation.charge(Decimal(7))

    assert not [record for record in caplog.records if "above the estimate" in record.getMessage()]


async def test_a_reservation_settles_once_even_if_closed_twice_and_never_if_it_was_never_open() -> None:
    metrics = Metrics()
    budget = Budget(MemoryStore(clock=FakeClock()), session_limit=Decimal(10), metrics=metrics)

    never_opened = budget.reserve(S, _quote("3"))
    never_opened.charge(Decimal(3))
    await never_opened.__aexit__(None, None, None)
    assert metrics.value("person_enrich_credits_charged_total") == 0

    reservation = budget.reserve(S, _quote("3"))
    async with reservation:
        reservation.charge(Decimal(2))
    await reservation.__aexit__(None, None, None)

    assert metrics.value("person_enrich_credits_charged_total") == 2
    assert (await budget.view(S)).spent == Decimal(2)


async def test_the_metrics_count_what_was_reserved_charged_and_left_unverified_per_principal() -> None:
    metrics = Metrics(principal_names=True)
    budget = Budget(
        MemoryStore(clock=FakeClock()), session_limit=Decimal(10), principal_limit=Decimal(15), metrics=metrics
    )

    async with budget.reserve(ALICE_1, _quote("4")) as reservation:
        reservation.charge(Decimal("1.5"))
        reservation.charge_unverified(Decimal("0.5"))
    async with budget.reserve(S, _quote("2")) as reservation:
        reservation.charge(Decimal(1))

    assert metrics.value("person_enrich_credits_reserved_total") == 6
    assert metrics.value("person_enrich_credits_charged_total") == 2.5
    assert metrics.value("person_enrich_principal_credits_charged_total", principal="alice") == 1.5
    assert metrics.value("person_enrich_credits_unverified_total") == 0.5


async def test_each_refusal_is_counted_by_the_limit_that_refused_it_and_by_principal() -> None:
    metrics = Metrics(principal_names=True)
    store = MemoryStore(clock=FakeClock())
    budget = Budget(store, session_limit=Decimal(10), principal_limit=Decimal(12), metrics=metrics)
    await _spend(budget, ALICE_1, "8")

    for owner, estimate in ((ALICE_2, "5"), (ALICE_1, "3"), (Owner("r", "bob", rolling=True), "11"), (S, "11")):
        with pytest.raises(BudgetExceededError):
            async with budget.reserve(owner, _quote(estimate)):
                pass

    assert metrics.value("person_enrich_budget_refusals_total", reason="principal_window") == 1
    assert metrics.value("person_enrich_budget_refusals_total", reason="session") == 2
    assert metrics.value("person_enrich_budget_refusals_total", reason="session_window") == 1
    assert metrics.value("person_enrich_principal_refusals_total", principal="alice") == 2
    assert metrics.value("person_enrich_principal_refusals_total", principal="bob") == 1
    assert metrics.value("person_enrich_credits_reserved_total") == 8


async def test_a_rolling_sessions_refusal_through_a_reservation_says_when_its_spend_frees_up() -> None:
    clock = FakeClock()
    budget = Budget(MemoryStore(clock=clock), session_limit=Decimal(10))
    rolling = Owner("r", rolling=True)
    await _spend(budget, rolling, "8")
    clock.now += 600

    with pytest.raises(BudgetExceededError) as caught:
        async with budget.reserve(rolling, _quote("5")):
            pass

    text = str(caught.value)
    assert "of this client's session budget of 10.00 credits per 1-hour window" in text
    assert text.endswith(
        "The operator can raise PERSON_ENRICH_SESSION_BUDGET (or shorten PERSON_ENRICH_SESSION_WINDOW)."
    )
    assert " 8.00 credits free up in " in text
    assert "enough for this call." in text


async def test_a_receipt_carries_what_stayed_unverified_and_the_metrics_count_the_call_and_its_cache_hits() -> None:
    metrics = Metrics()
    budget = Budget(MemoryStore(clock=FakeClock()), session_limit=Decimal(10), metrics=metrics)

    receipt = await budget.record(
        S, tool="enrich_people", quote=_quote("4"), charged=Decimal(1), unverified=Decimal("1.5"), cache_hits=3
    )
    await budget.record(S, tool="search_people", quote=_quote("1"), charged=ZERO, unverified=ZERO, cache_hits=0)

    assert receipt.unverified == Decimal("1.5")
    assert metrics.value("person_enrich_tool_calls_total", tool="enrich_people", outcome="ok") == 1
    assert metrics.value("person_enrich_tool_calls_total", tool="search_people", outcome="ok") == 1
    assert metrics.value("person_enrich_cache_hits_total") == 3
