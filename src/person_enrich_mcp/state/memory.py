"""The in-process backend: everything in dictionaries, guarded by one lock so each operation is atomic."""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from person_enrich_mcp.state.base import Account, BudgetSnapshot, ReserveOutcome

_ZERO = Decimal(0)


@dataclass(slots=True)
class _Books:
    spent: Decimal = _ZERO
    reserved: Decimal = _ZERO
    unverified: Decimal = _ZERO
    receipts: deque[str] = field(default_factory=deque[str])


@dataclass(frozen=True, slots=True)
class _Reservation:
    amount: Decimal
    accounts: tuple[str, ...]
    expires_at: float


class MemoryStore:
    """A `StateStore` for one process: fast, and gone when the process ends."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, max_cache_entries: int = 20_000) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._books: dict[str, _Books] = {}
        self._reservations: dict[str, _Reservation] = {}
        self._cache: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._max_cache_entries = max_cache_entries
        self._windows: dict[str, deque[float]] = {}

    def _account(self, key: str) -> _Books:
        books = self._books.get(key)
        if books is None:
            books = self._books[key] = _Books()
        return books

    async def reserve(
        self, reservation_id: str, amount: Decimal, accounts: Sequence[Account], ttl_seconds: float
    ) -> ReserveOutcome:
        """Hold `amount` on every account, or on none."""
        with self._lock:
            if reservation_id in self._reservations:
                raise ValueError(f"reservation {reservation_id} already exists")
            for account in accounts:
                books = self._account(account.key)
                committed = books.spent + books.reserved + books.unverified
                if committed + amount > account.limit:
                    return ReserveOutcome(False, account.key, max(account.limit - committed, _ZERO))
            for account in accounts:
                self._account(account.key).reserved += amount
            self._reservations[reservation_id] = _Reservation(
                amount, tuple(a.key for a in accounts), self._clock() + ttl_seconds
            )
            return ReserveOutcome(True)

    async def settle(self, reservation_id: str, charged: Decimal, unverified: Decimal = _ZERO) -> None:
        """Close a reservation; settling an unknown (already closed) one is a no-op."""
        with self._lock:
            reservation = self._reservations.pop(reservation_id, None)
            if reservation is None:
                return
            for key in reservation.accounts:
                books = self._account(key)
                books.reserved -= reservation.amount
                books.spent += charged
                books.unverified += unverified

    async def read(self, account_key: str) -> BudgetSnapshot:
        """The books of one account."""
        with self._lock:
            books = self._books.get(account_key)
            if books is None:
                return BudgetSnapshot(_ZERO, _ZERO, _ZERO)
            return BudgetSnapshot(books.spent, books.reserved, books.unverified)

    async def add_receipt(self, account_key: str, receipt: dict[str, Any], keep: int) -> None:
        """Append a receipt (stored as JSON, like the shared backends do)."""
        encoded = json.dumps(receipt, separators=(",", ":"))
        with self._lock:
            receipts = self._account(account_key).receipts
            receipts.append(encoded)
            while len(receipts) > keep:
                receipts.popleft()

    async def receipts(self, account_key: str, limit: int) -> list[dict[str, Any]]:
        """The newest `limit` receipts, oldest first."""
        with self._lock:
            books = self._books.get(account_key)
            stored = list(books.receipts)[-limit:] if books is not None and limit > 0 else []
        return [json.loads(item) for item in stored]

    async def cache_get(self, key: str) -> str | None:
        """A live cached value; expired entries are dropped on read."""
        with self._lock:
            entry = self._cache.get(key)
            if entry is None:
                return None
            expires_at, value = entry
            if expires_at <= self._clock():
                del self._cache[key]
                return None
            self._cache.move_to_end(key)
            return value

    async def cache_put(self, key: str, value: str, ttl_seconds: float) -> None:
        """Store a value; the least recently used entries go first when the cache is full."""
        with self._lock:
            if ttl_seconds <= 0:  # "do not keep": and no older value may outlive it either
                self._cache.pop(key, None)
                return
            self._cache[key] = (self._clock() + ttl_seconds, value)
            self._cache.move_to_end(key)
            while len(self._cache) > self._max_cache_entries:
                self._cache.popitem(last=False)

    async def take_slot(self, bucket: str, limit: int, window_seconds: float) -> float:
        """Sliding-window log: a slot is free when fewer than `limit` requests started in the last window."""
        with self._lock:
            now = self._clock()
            window = self._windows.get(bucket)
            if window is None:
                window = self._windows[bucket] = deque()
            while window and window[0] <= now - window_seconds:
                window.popleft()
            if len(window) < limit:
                window.append(now)
                return 0.0
            return max(window[0] + window_seconds - now, 0.001)

    async def aclose(self) -> None:
        """Nothing to release."""
