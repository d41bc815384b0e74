"""The upstream rate limiter shares each endpoint between principals (issue 12, finding 4), on a fake clock.

A principal gets its share of an endpoint's limit and no more, whatever it sends; requests waiting for the
shared slots are served to principals in turn, not in the order they arrived.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import anyio.lowlevel
import pytest

from person_enrich_mcp.api.limiter import RateLimiter, act_for
from person_enrich_mcp.errors import LocalRateLimitError, ShareRateLimitError
from person_enrich_mcp.metrics import Metrics
from person_enrich_mcp.state import MemoryStore
from tests.state_fixtures import FakeClock

# The limiter's window: the upstream's 60 s plus its guard band (3%, at least half a second).
GUARDED = 60.0 + max(60.0 * 0.03, 0.5)


def _fake_time() -> tuple[FakeClock, Callable[[float], Awaitable[None]]]:
    clock = FakeClock()

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)
        await anyio.lowlevel.checkpoint()

    return clock, sleep


@pytest.mark.anyio
async def test_queued_requests_are_served_to_principals_in_turn_not_first_come() -> None:
    clock = FakeClock()
    everyone_queued = anyio.Event()

    async def sleep(seconds: float) -> None:  # time moves only once every request is waiting
        await everyone_queued.wait()
        clock.advance(seconds)
        await anyio.lowlevel.checkpoint()

    limiter = RateLimiter(
        MemoryStore(clock=clock),
        limits={"enrich": 1},
        window_seconds=10.0,
        max_wait=1_000.0,
        bucket_prefix="t",
        clock=clock,
        sleep=sleep,
    )
    served: list[str] = []

    async def request(name: str) -> None:
        act_for(name[0])
        await limiter.acquire("enrich")
        served.append(name)

    await limiter.acquire("enrich")  # the only slot of this window is taken: everything below has to queue
    async with anyio.create_task_group() as group:
        for name in ("a1", "a2", "a3", "a4", "a5", "b1", "c1"):  # Alice queued five before Bob and Carol came
            group.start_soon(request, name)
        for _ in range(20):
            await anyio.lowlevel.checkpoint()
        everyone_queued.set()

    assert served == ["a1", "b1", "c1", "a2", "a3", "a4", "a5"]


@pytest.mark.anyio
async def test_a_principal_gets_its_share_of_an_endpoint_and_the_rest_stays_for_the_others() -> None:
    clock, sleep = _fake_time()
    limiter = RateLimiter(
        MemoryStore(clock=clock),
        limits={"enrich": 5},
        window_seconds=60.0,
        max_wait=5.0,
        bucket_prefix="t",
        principal_share=0.5,
        clock=clock,
        sleep=sleep,
    )

    async def take(principal: str) -> str:
        act_for(principal)
        try:
            await limiter.acquire("enrich")
        except ShareRateLimitError:
            return "share used up"
        return "slot"

    alice = [await take("alice") for _ in range(4)]
    bob = [await take("bob") for _ in range(3)]

    assert limiter.principal_limit("enrich") == 2
    assert alice == ["slot", "slot", "share used up", "share used up"]
    assert bob == ["slot", "slot", "share used up"]


# --- a principal's share: its size, its waits, its refusals, and what they are counted as ---------------------------


class RecordingSlots(MemoryStore):
    """A MemoryStore that records every bucket a slot was asked of, its limit and window."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock=clock)
        self.asked: list[tuple[str, int, float]] = []

    async def take_slot(self, bucket: str, limit: int, window_seconds: float) -> float:
        self.asked.append((bucket, limit, window_seconds))
        return await super().take_slot(bucket, limit, window_seconds)


def _shared_limiter(
    clock: FakeClock,
    sleep: Callable[[float], Awaitable[None]],
    *,
    limit: int = 4,
    share: float = 0.5,
    max_wait: float = 1_000.0,
    metrics: Metrics | None = None,
    slots: MemoryStore | None = None,
) -> RateLimiter:
    return RateLimiter(
        slots or MemoryStore(clock=clock),
        limits={"enrich": limit},
        window_seconds=60.0,
        max_wait=max_wait,
        bucket_prefix="t",
        principal_share=share,
        metrics=metrics,
        clock=clock,
        sleep=sleep,
    )


@pytest.mark.parametrize(("limit", "share", "expected"), [(100, 0.29, 29), (10, 0.01, 1), (10, 0.5, 5), (3, 1.0, 3)])
def test_a_principals_share_is_its_fraction_of_the_limit_rounded_down_and_at_least_one(
    limit: int, share: float, expected: int
) -> None:
    clock, sleep = _fake_time()

    assert _shared_limiter(clock, sleep, limit=limit, share=share).principal_limit("enrich") == expected


@pytest.mark.anyio
async def test_a_principal_takes_its_own_slot_then_a_shared_one_and_a_full_share_waits_for_its_own_window() -> None:
    clock, sleep = _fake_time()
    slots = RecordingSlots(clock)
    metrics = Metrics(principal_names=True)
    limiter = _shared_limiter(clock, sleep, slots=slots, metrics=metrics)
    act_for("alice")

    assert [await limiter.acquire("enrich") for _ in range(2)] == [0.0, 0.0]
    assert slots.asked[:2] == [("t:enrich:p:alice", 2, GUARDED), ("t:enrich", 4, GUARDED)]

    waited = await limiter.acquire("enrich")

    assert GUARDED <= waited <= GUARDED + 0.25
    labels = {"principal": "alice", "endpoint": "enrich"}
    assert metrics.value("person_enrich_principal_rate_limit_waits_total", **labels, limit="own") == 1
    assert metrics.value("person_enrich_principal_rate_limit_wait_seconds_total", **labels) == waited
    assert metrics.value("person_enrich_principal_rate_limit_waits_total", **labels, limit="shared") == 0
    act_for(None)


@pytest.mark.anyio
async def test_a_used_up_share_is_refused_with_its_size_and_when_the_next_slot_frees() -> None:
    clock, sleep = _fake_time()
    limiter = _shared_limiter(clock, sleep, max_wait=30.0)
    act_for("alice")
    await limiter.acquire("enrich")
    await limiter.acquire("enrich")
    clock.advance(10)

    with pytest.raises(ShareRateLimitError) as caught:
        await limiter.acquire("enrich")

    assert caught.value.retry_after == pytest.approx(GUARDED - 10)
    assert str(caught.value).startswith(
        f"this principal's share of the enrich rate limit (2 of 4 requests per 60 s) is used up: next slot in "
        f"{GUARDED - 10:.1f} s"
    )
    act_for(None)


@pytest.mark.anyio
async def test_without_a_principal_or_with_a_whole_share_only_the_shared_bucket_is_used() -> None:
    clock, sleep = _fake_time()
    slots = RecordingSlots(clock)
    whole = _shared_limiter(clock, sleep, share=1.0, slots=slots)
    act_for("alice")
    await whole.acquire("enrich")
    act_for(None)
    halved = _shared_limiter(clock, sleep, slots=slots)
    await halved.acquire("enrich")

    assert [bucket for bucket, _, _ in slots.asked] == ["t:enrich", "t:enrich"]


@pytest.mark.anyio
async def test_a_wait_for_a_shared_slot_is_counted_for_the_principal_that_waited() -> None:
    clock, sleep = _fake_time()
    metrics = Metrics(principal_names=True)
    limiter = _shared_limiter(clock, sleep, limit=1, share=1.0, metrics=metrics)
    await limiter.acquire("enrich")  # nobody's: not counted
    act_for("bob")

    waited = await limiter.acquire("enrich")

    labels = {"principal": "bob", "endpoint": "enrich"}
    assert waited >= GUARDED
    assert metrics.value("person_enrich_principal_rate_limit_waits_total", **labels, limit="shared") == 1
    assert metrics.value("person_enrich_principal_rate_limit_wait_seconds_total", **labels) == waited
    assert metrics.value("person_enrich_principal_rate_limit_waits_total", **labels, limit="own") == 0
    act_for(None)


class GatedSlots(MemoryStore):
    """A store whose slot requests wait at a gate once it is closed: a request can hold its turn there."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock=clock)
        self.closed = False
        self.gate = anyio.Event()
        self.arrived = anyio.Event()

    async def take_slot(self, bucket: str, limit: int, window_seconds: float) -> float:
        if self.closed:
            self.arrived.set()
            await self.gate.wait()
        return await super().take_slot(bucket, limit, window_seconds)


@pytest.mark.anyio
async def test_a_request_queued_behind_another_longer_than_max_wait_is_refused_and_leaves_the_queue() -> None:
    clock, sleep = _fake_time()
    slots = GatedSlots(clock)
    limiter = _shared_limiter(clock, sleep, limit=5, share=1.0, max_wait=0.05, slots=slots)
    slots.closed = True

    async with anyio.create_task_group() as group:
        group.start_soon(limiter.acquire, "enrich")  # takes its turn, then waits at the gate
        with anyio.fail_after(10):
            await slots.arrived.wait()
        with pytest.raises(LocalRateLimitError) as caught, anyio.fail_after(10):
            await limiter.acquire("enrich")
        slots.closed = False
        slots.gate.set()
        assert str(caught.value) == "rate limit for enrich: other requests are queued ahead"
        assert caught.value.retry_after == 0.0  # the fake clock did not move while it queued

    with anyio.fail_after(10):
        assert await limiter.acquire("enrich") == 0.0  # the refused request left the queue


# --- waits: how they add up, their jitter, their bounds (a scripted slot source says how long each slot is away) ----


class ScriptedSlots:
    """Answers each slot request with the next scripted pause for its bucket kind (0.0: granted)."""

    def __init__(self, own: list[float] | None = None, shared: list[float] | None = None) -> None:
        self.own = list(own or [])
        self.shared = list(shared or [])

    async def take_slot(self, bucket: str, limit: int, window_seconds: float) -> float:
        script = self.own if ":p:" in bucket else self.shared
        return script.pop(0) if script else 0.0


def _scripted(
    slots: ScriptedSlots, *, max_wait: float = 50.0, share: float = 0.5, metrics: Metrics | None = None
) -> tuple[RateLimiter, list[float]]:
    clock, _ = _fake_time()
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds)

    limiter = RateLimiter(
        slots,
        limits={"enrich": 4},
        window_seconds=60.0,
        max_wait=max_wait,
        bucket_prefix="t",
        principal_share=share,
        metrics=metrics,
        clock=clock,
        sleep=sleep,
    )
    return limiter, waits


def _jitter_ok(pause: float, delay: float) -> bool:
    return pause <= delay <= pause + min(0.25, pause / 4 + 0.01)


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["own", "shared"])
async def test_successive_waits_add_up_each_with_a_small_jitter_and_short_waits_count_too(kind: str) -> None:
    metrics = Metrics(principal_names=True)
    script = [0.2, 3.0, 0.0]
    slots = ScriptedSlots(own=script) if kind == "own" else ScriptedSlots(shared=script)
    limiter, waits = _scripted(slots, metrics=metrics)
    act_for("alice")

    waited = await limiter.acquire("enrich")

    assert len(waits) == 2
    assert _jitter_ok(0.2, waits[0]) and _jitter_ok(3.0, waits[1])
    assert waited == pytest.approx(sum(waits))
    labels = {"principal": "alice", "endpoint": "enrich"}
    assert metrics.value("person_enrich_principal_rate_limit_waits_total", **labels, limit=kind) == 1
    act_for(None)


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["own", "shared"])
async def test_a_sub_second_wait_is_waited_and_counted(kind: str) -> None:
    metrics = Metrics(principal_names=True)
    slots = ScriptedSlots(own=[0.4]) if kind == "own" else ScriptedSlots(shared=[0.4])
    limiter, waits = _scripted(slots, metrics=metrics)
    act_for("alice")

    waited = await limiter.acquire("enrich")

    assert len(waits) == 1 and _jitter_ok(0.4, waits[0])
    assert waited == waits[0]
    labels = {"principal": "alice", "endpoint": "enrich"}
    assert metrics.value("person_enrich_principal_rate_limit_wait_seconds_total", **labels) == waited
    act_for(None)


@pytest.mark.anyio
async def test_the_jitter_stays_within_a_quarter_of_the_pause_and_uses_all_of_it() -> None:
    pause = 0.2
    limiter, waits = _scripted(ScriptedSlots(shared=[pause, 0.0] * 200), share=1.0)

    for _ in range(200):
        await limiter.acquire("enrich")

    bound = pause / 4 + 0.01
    assert all(pause <= w <= pause + bound for w in waits)
    assert max(waits) > pause + bound * 0.8  # 200 draws: all below 80% of the range has odds of 0.8**200


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["own", "shared"])
async def test_a_wait_of_exactly_max_wait_is_waited_and_a_longer_one_refused_with_everything_waited(kind: str) -> None:
    error = ShareRateLimitError if kind == "own" else LocalRateLimitError
    exactly = ScriptedSlots(own=[50.0]) if kind == "own" else ScriptedSlots(shared=[50.0])
    limiter, waits = _scripted(exactly, max_wait=50.0)
    act_for("alice")
    assert await limiter.acquire("enrich") == waits[0]

    after_a_wait = ScriptedSlots(own=[5.0, 100.0]) if kind == "own" else ScriptedSlots(shared=[5.0, 100.0])
    limiter, waits = _scripted(after_a_wait)
    with pytest.raises(error) as caught:
        await limiter.acquire("enrich")
    assert caught.value.retry_after == pytest.approx(100.0 + waits[0])
    act_for(None)


@pytest.mark.anyio
async def test_a_shared_wait_beyond_what_is_left_of_max_wait_after_the_own_wait_is_refused() -> None:
    limiter, waits = _scripted(ScriptedSlots(own=[30.0], shared=[15.0]), max_wait=40.0)
    act_for("alice")

    with pytest.raises(LocalRateLimitError) as caught:
        await limiter.acquire("enrich")

    assert caught.value.retry_after == pytest.approx(15.0 + waits[0])
    act_for(None)


def test_by_default_a_principal_may_use_the_whole_limit() -> None:
    clock, sleep = _fake_time()
    limiter = RateLimiter(
        MemoryStore(clock=clock),
        limits={"enrich": 4},
        window_seconds=60.0,
        max_wait=5.0,
        bucket_prefix="t",
        clock=clock,
    )

    assert limiter.principal_limit("enrich") == 4
    del sleep


@pytest.mark.anyio
async def test_an_upstream_hold_of_half_a_second_is_waited() -> None:
    limiter, waits = _scripted(ScriptedSlots(), share=1.0)

    limiter.observe("enrich", remaining=0, reset_seconds=0.5)
    waited = await limiter.acquire("enrich")

    assert len(waits) == 1 and _jitter_ok(0.5, waits[0])
    assert waited == waits[0]


@pytest.mark.anyio
async def test_a_request_queued_for_one_endpoint_does_not_hold_up_another() -> None:
    clock, sleep = _fake_time()
    slots = GatedSlots(clock)
    limiter = RateLimiter(
        slots,
        limits={"enrich": 5, "search": 5},
        window_seconds=60.0,
        max_wait=0.05,
        bucket_prefix="t",
        clock=clock,
        sleep=sleep,
    )
    slots.closed = True

    async with anyio.create_task_group() as group:
        group.start_soon(limiter.acquire, "enrich")
        with anyio.fail_after(10):
            await slots.arrived.wait()
        slots.closed = False
        with anyio.fail_after(10):
            assert await limiter.acquire("search") == 0.0
        slots.gate.set()
