"""A client-side sliding-window limiter per endpoint, so the server never causes upstream 429s itself.

The counters live behind `SlotSource` (the state store), so replicas sharing a store share the limit. The limits
start from configuration and the documented defaults, and are replaced by the account's own figures once the
account endpoints have been read (`update`); a key-wide ceiling (`token_limit_rpm`) is one more bucket that
every request also takes a slot in.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

import anyio

from person_enrich_mcp.errors import LocalRateLimitError

MAX_HOLD_SECONDS = 900.0
WINDOW_GUARD = 0.03
# The guard never drops below this: a busy host can delay a request this long between its slot and the wire.
MIN_GUARD_SECONDS = 0.5


class SlotSource(Protocol):
    """Anything that can hand out sliding-window slots (the state store does)."""

    async def take_slot(self, bucket: str, limit: int, window_seconds: float) -> float:
        """0.0 if a slot was taken, else seconds until one frees."""
        ...


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
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self._slots = slots
        self._limits = dict(limits)
        self._total: int | None = None
        # A small guard band: requests reach the upstream a few milliseconds after they take a slot, and a
        # window exactly as long as the upstream's would let boundary jitter turn into 429s.
        self._window = window_seconds + max(window_seconds * WINDOW_GUARD, MIN_GUARD_SECONDS)
        self._max_wait = max_wait
        self._prefix = bucket_prefix
        self._clock = clock
        self._sleep = sleep
        self._not_before: dict[str, float] = {}
        self._random = random.Random()

    def update(self, limits: Mapping[str, int], *, total: int | None = None) -> None:
        """Replace the per-endpoint limits (requests per window) and the key-wide ceiling."""
        self._limits.update(limits)
        self._total = total

    def limit(self, endpoint: str) -> int:
        """The requests per window `endpoint` is paced at now."""
        return self._limits[endpoint]

    @property
    def total(self) -> int | None:
        """The key-wide ceiling across endpoints, if the account has one."""
        return self._total

    async def acquire(self, endpoint: str) -> float:
        """Take a slot for `endpoint` (and in the key-wide bucket), waiting if needed; returns the seconds waited.

        Raises:
            LocalRateLimitError: if a slot would not free within `max_wait`.
        """
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
            if waited + pause > self._max_wait:
                raise LocalRateLimitError(
                    f"rate limit for {endpoint}: next slot in {pause:.1f} s", retry_after=pause + waited
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
