"""Sliding-window-log rate limiter per (key, endpoint), on an injectable clock."""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable, Sequence
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

    def check_all(
        self, key: str, limits: Sequence[tuple[str, int]], window: float, enabled: bool = True
    ) -> tuple[RateDecision, str]:
        """Admit one request only if every (scope, limit) window has room, and then record it in each.

        Returns the decision of the first window that refused, or of the first window when admitted, with that
        window's scope. A key-wide limit is one more scope: a request refused by either window enters neither.
        """
        first_scope, first_limit = limits[0]
        if not enabled:
            return RateDecision(True, first_limit, first_limit, 0), first_scope
        now = self.clock()
        with self._lock:
            logs = [self._pruned(key, scope, now, window) for scope, _limit in limits]
            refused = next((i for i, (_s, limit) in enumerate(limits) if len(logs[i]) >= limit), None)
            if refused is None:
                for log in logs:
                    log.append(now)
            shown = 0 if refused is None else refused
            scope, limit = limits[shown]
            log = logs[shown]
            reset = max(0, math.ceil(log[0] + window - now)) if log else 0
            return RateDecision(refused is None, limit, max(0, limit - len(log)), reset), scope

    def _pruned(self, key: str, scope: str, now: float, window: float) -> deque[float]:
        log = self._windows.setdefault((key, scope), deque())
        while log and log[0] + window <= now:
            log.popleft()
        return log

    def peek(self, key: str, endpoint: str, limit: int, window: float) -> RateDecision:
        """The current state without recording anything (for injected 429 faults)."""
        now = self.clock()
        with self._lock:
            log = [t for t in self._windows.get((key, endpoint), ()) if t + window > now]
            reset = max(1, math.ceil(log[0] + window - now)) if log else max(1, math.ceil(window))
            return RateDecision(False, limit, 0, reset)
