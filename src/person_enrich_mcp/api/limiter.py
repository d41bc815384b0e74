"""A client-side sliding-window limiter per endpoint, so the server never causes upstream 429s itself.

The counters live behind `SlotSource` (the state store), so replicas sharing a store share the limit. The limits
start from configuration and the documented defaults, and are replaced by the account's own figures once the
account endpoints have been read (`update`); a key-wide ceiling (`token_limit_rpm`) is one more bucket that
every request also takes a slot in.

Sharing between principals: a request made for a principal (`act_for`) first takes a slot in that principal's
own bucket, sized to its share of the endpoint's limit, so one principal, however busy (paid look-ups or free
misses alike), can use at most that share and slows only itself. Then it queues for the endpoint's shared
slots, and the queue serves principals in turn (round-robin within this process), never first-come.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import Protocol

import anyio

from person_enrich_mcp.errors import LocalRateLimitError, ShareRateLimitError
from person_enrich_mcp.metrics import Metrics

MAX_HOLD_SECONDS = 900.0
WINDOW_GUARD = 0.03
# The guard never drops below this: a busy host can delay a request this long between its slot and the wire.
MIN_GUARD_SECONDS = 0.5

_requester: ContextVar[str | None] = ContextVar("person_enrich_requester", default=None)


def act_for(principal: str | None) -> None:
    """Count this request's upstream calls (in the current task and the tasks it starts) against `principal`."""
    _requester.set(principal)


def requester() -> str | None:
    """The principal the current upstream calls are made for, if any."""
    return _requester.get()


class SlotSource(Protocol):
    """Anything that can hand out sliding-window slots (the state store does)."""

    async def take_slot(self, bucket: str, limit: int, window_seconds: float) -> float:
        """0.0 if a slot was taken, else seconds until one frees."""
        ...


class _Turns:
    """Who may try for an endpoint's shared slots next: one waiter at a time, principals in turn."""

    def __init__(self) -> None:
        self._waiting: dict[str | None, deque[anyio.Event]] = {}
        self._ring: deque[str | None] = deque()  # principals with waiters; the first one's oldest waiter goes next

    def enter(self, who: str | None) -> anyio.Event:
        """Join the queue; the returned event is set when it is this waiter's turn."""
        turn = anyio.Event()
        queue = self._waiting.get(who)
        if queue is None:
            queue = self._waiting[who] = deque()
            self._ring.append(who)
        queue.append(turn)
        self._wake()
        return turn

    def leave(self, who: str | None, turn: anyio.Event) -> None:
        """Leave the queue (served, timed out or cancelled); a principal that was served goes to the back."""
        queue = self._waiting[who]
        was_first = self._ring[0] == who and queue[0] is turn
        queue.remove(turn)
        if not queue:
            del self._waiting[who]
            self._ring.remove(who)
        elif was_first:
            self._ring.rotate(-1)
        self._wake()

    def _wake(self) -> None:
        if self._ring:
            self._waiting[self._ring[0]][0].set()


class RateLimiter:
    """Waits for a free slot per endpoint, bounded by `max_wait`; honours upstream `remaining: 0` hints."""

    def __init__(
        self,
        slots: SlotSource,
        *,
        limits: dict[str, int],
        window_seconds: float,
        max_wait: float,
        bucket_prefix: str,
        principal_share: float = 1.0,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self._slots = slots
        self._limits = dict(limits)
        self._total: int | None = None
        # A small guard band: requests reach the upstream a few milliseconds after they take a slot, and a
        # window exactly as long as the upstream's would let boundary jitter turn into 429s.
        self._window = window_seconds + max(window_seconds * WINDOW_GUARD, MIN_GUARD_SECONDS)
        self._window_seconds = window_seconds
        self._max_wait = max_wait
        self._prefix = bucket_prefix
        self._share = principal_share
        self._metrics = metrics
        self._clock = clock
        self._sleep = sleep
        self._not_before: dict[str, float] = {}
        self._turns: dict[str, _Turns] = {}
        self._random = random.Random()

    def update(self, limits: Mapping[str, int], *, total: int | None = None) -> None:
        """Replace the per-endpoint limits (requests per window) and the key-wide ceiling."""
        self._limits.update(limits)
        self._total = total

    def limit(self, endpoint: str) -> int:
        """The requests per window `endpoint` is paced at now."""
        return self._limits[endpoint]

    def principal_limit(self, endpoint: str) -> int:
        """The requests per window one principal may make to `endpoint`: its share, at least one."""
        return max(1, math.floor(self._limits[endpoint] * self._share + 1e-9))

    @property
    def total(self) -> int | None:
        """The key-wide ceiling across endpoints, if the account has one."""
        return self._total

    async def acquire(self, endpoint: str) -> float:
        """Take a slot for `endpoint` (the principal's own, then a shared one), waiting if needed; returns the
        seconds waited.

        Raises:
            LocalRateLimitError: if a slot would not free within `max_wait` (`ShareRateLimitError` when it is the
                principal's own share that is used up).
        """
        who = _requester.get()
        try:
            return await self._acquire(endpoint, who)
        except LocalRateLimitError as exc:
            if who is not None and self._metrics is not None:
                self._metrics.inc(
                    "person_enrich_principal_throttled_total", principal=self._metrics.principal(who),
                    endpoint=endpoint, limit="own" if isinstance(exc, ShareRateLimitError) else "shared",
                )  # fmt: skip
            raise

    async def _acquire(self, endpoint: str, who: str | None) -> float:
        waited = 0.0
        if who is not None and self._share < 1:
            waited = await self._own_slot(endpoint, who)
        turns = self._turns.setdefault(endpoint, _Turns())
        turn = turns.enter(who)
        try:
            started = self._clock()
            with anyio.move_on_after(max(self._max_wait - waited, 0.0)):
                await turn.wait()
            queued = self._clock() - started
            if not turn.is_set():
                raise LocalRateLimitError(
                    f"rate limit for {endpoint}: other requests are queued ahead", retry_after=waited + queued
                )
            shared = await self._shared_slot(endpoint, waited + queued)
        finally:
            turns.leave(who, turn)
        if who is not None and queued + shared > 0:
            self._count_wait(who, endpoint, queued + shared, "shared")
        return waited + queued + shared

    def _count_wait(self, who: str, endpoint: str, seconds: float, limit: str) -> None:
        if self._metrics is None:
            return
        label = self._metrics.principal(who)
        self._metrics.inc(
            "person_enrich_principal_rate_limit_waits_total", principal=label, endpoint=endpoint, limit=limit
        )
        self._metrics.inc(
            "person_enrich_principal_rate_limit_wait_seconds_total", seconds, principal=label, endpoint=endpoint
        )

    async def _own_slot(self, endpoint: str, who: str) -> float:
        """Wait for a slot in the principal's own bucket; returns the seconds waited."""
        limit = self.principal_limit(endpoint)
        waited = 0.0
        while True:
            pause = await self._slots.take_slot(f"{self._prefix}:{endpoint}:p:{who}", limit, self._window)
            if pause <= 0:
                break
            if waited + pause > self._max_wait:
                raise ShareRateLimitError(
                    f"this principal's share of the {endpoint} rate limit ({limit} of {self._limits[endpoint]} "
                    f"requests per {self._window_seconds:g} s) is used up: next slot in {pause:.1f} s",
                    retry_after=pause + waited,
                )
            delay = pause + self._random.uniform(0, min(0.25, pause / 4 + 0.01))
            await self._sleep(delay)
            waited += delay
        if waited > 0:
            self._count_wait(who, endpoint, waited, "own")
        return waited

    async def _shared_slot(self, endpoint: str, already: float) -> float:
        """Take the endpoint's shared slot (and a key-wide one), waiting if needed; returns the seconds waited."""
        waited = 0.0
        holding = False  # the endpoint's slot, kept while waiting for a key-wide one: erring slow, never into a 429
        while True:
            pause = 0.0 if holding else self._not_before.get(endpoint, 0.0) - self._clock()
            if pause <= 0:
                if not holding:
                    pause = await self._slots.take_slot(
                        f"{self._prefix}:{endpoint}", self._limits[endpoint], self._window
                    )
                    holding = pause <= 0
                if holding and self._total is not None:
                    pause = await self._slots.take_slot(f"{self._prefix}:*", self._total, self._window)
                if pause <= 0:
                    return waited
            if already + waited + pause > self._max_wait:
                raise LocalRateLimitError(
                    f"rate limit for {endpoint}: next slot in {pause:.1f} s", retry_after=pause + waited + already
                )
            delay = pause + self._random.uniform(0, min(0.25, pause / 4 + 0.01))
            await self._sleep(delay)
            waited += delay

    def observe(self, endpoint: str, *, remaining: int | None, reset_seconds: float | None) -> None:
        """Take the upstream's word: with nothing remaining, hold the endpoint until its reset."""
        if remaining is not None and remaining <= 0 and reset_seconds is not None and reset_seconds > 0:
            # Bounded: a bad header must not hold an endpoint for good.
            hold = min(reset_seconds, MAX_HOLD_SECONDS)
            self._not_before[endpoint] = max(self._not_before.get(endpoint, 0.0), self._clock() + hold)
