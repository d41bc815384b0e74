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
from person_enrich_mcp.errors import ShareRateLimitError
from person_enrich_mcp.state import MemoryStore
from tests.state_fixtures import FakeClock


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
