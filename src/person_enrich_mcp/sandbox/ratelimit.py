"""Sliding-window-log rate limiter per (key, endpoint), on an injectable clock."""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The outcome of one rate-limit check, with the values for the `x-ratelimit-*` headers."""

    allowed: bool
    limit: int
    remaining: int
    reset: int

    def headers(self) -> dict[str, str]:
        """The three `x-ratelimit-*` headers."""
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-reset": str(self.reset),
        }


class RateLimiter:
    """Counts accepted requests in a sliding window; rejected requests do not enter the window."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._windows: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str, endpoint: str, limit: int, window: float, enabled: bool = True) -> RateDecision:
        """Admit or refuse one request now; admitted requests are recorded."""
        if not enabled:
            return RateDecision(True, limit, limit, 0)
        now = self.clock()
        with self._lock:
            log = self._windows.setdefault((key, endpoint), deque())
            while log and log[0] + window <= now:
                log.popleft()
            if len(log) < limit:
                log.append(now)
                allowed = True
            else:
                allowed = False
            reset = max(0, math.ceil(log[0] + window - now)) if log else 0
            return RateDecision(allowed, limit, max(0, limit - len(log)), reset)

    def peek(self, key: str, endpoint: str, limit: int, window: float) -> RateDecision:
        """The current state without recording anything (for injected 429 faults)."""
        now = self.clock()
        with self._lock:
            log = [t for t in self._windows.get((key, endpoint), ()) if t + window > now]
            reset = max(1, math.ceil(log[0] + window - now)) if log else max(1, math.ceil(window))
            return RateDecision(False, limit, 0, reset)
