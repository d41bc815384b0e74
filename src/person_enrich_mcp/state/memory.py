"""The in-process backend (`memory://`): dictionaries behind one lock, so each operation is atomic."""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict, defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from person_enrich_mcp.state.base import (
    PRUNE_BATCH,
    PRUNE_INTERVAL_SECONDS,
    Account,
    BudgetSnapshot,
    Release,
    ReserveOutcome,
    books_kept_seconds,
    bucket_of,
    releases_of,
    window_range,
)

_ZERO = Decimal(0)
# How long a reaped reservation is remembered, so a late settle can replace the estimate with the truth.
_REAPED_MEMORY_SECONDS = 86_400.0


@dataclass(slots=True)
class _Books:
    spent: defaultdict[int, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    unverified: defaultdict[int, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    reserved: Decimal = _ZERO
    receipts: deque[str] = field(default_factory=deque[str])
    touched: float = 0.0
    window: float | None = None

    def drop_buckets_before(self, first: int) -> None:
        """Forget spend that has left a rolling window (it can never count again)."""
        for buckets in (self.spent, self.unverified):
            for bucket in [b for b in buckets if b < first]:
                del buckets[bucket]


@dataclass(slots=True)
class _Reservation:
    amount: Decimal
    accounts: tuple[Account, ...]
    expires_at: float
    reaped_at: float | None = None
    reaped_buckets: tuple[int, ...] = ()


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
        self._pruned_at = clock()

    def _account(self, key: str, now: float, account: Account | None = None) -> _Books:
        """The books of `key`, created if need be, marked as written at `now`."""
        books = self._books.get(key)
        if books is None:
            books = self._books[key] = _Books()
        books.touched = now
        if account is not None:
            books.window = account.window_seconds
            if account.window_seconds is not None:
                books.drop_buckets_before(window_range(account, now)[0])
        return books

    def _prune(self, now: float) -> None:
        """Forget books nobody holds or writes to any more, and empty rate-limit logs (at most once a minute)."""
        if now - self._pruned_at < PRUNE_INTERVAL_SECONDS:
            return
        self._pruned_at = now
        stale = [
            key
            for key, books in self._books.items()
            if books.reserved == 0 and books.touched + books_kept_seconds(books.window) <= now
        ][:PRUNE_BATCH]
        for key in stale:
            del self._books[key]
        for bucket in [b for b, log in self._windows.items() if not log or log[-1] <= now - 86_400.0]:
            del self._windows[bucket]

    def _snapshot(self, account: Account, now: float) -> BudgetSnapshot:
        books = self._books.get(account.key)
        if books is None:
            return BudgetSnapshot(_ZERO, _ZERO, _ZERO)
        first, last = window_range(account, now)
        spent = sum((v for b, v in books.spent.items() if first <= b <= last), start=_ZERO)
        unverified = sum((v for b, v in books.unverified.items() if first <= b <= last), start=_ZERO)
        return BudgetSnapshot(spent, books.reserved, unverified)

    def _reap(self, now: float) -> None:
        """Turn expired reservations into unverified spend; forget long-reaped ones and stale books."""
        self._prune(now)
        for reservation_id, reservation in list(self._reservations.items()):
            if reservation.reaped_at is None and reservation.expires_at <= now:
                buckets: list[int] = []
                for account in reservation.accounts:
                    books = self._account(account.key, now, account)
                    bucket = bucket_of(account, now)
                    books.reserved -= reservation.amount
                    books.unverified[bucket] += reservation.amount
                    buckets.append(bucket)
                reservation.reaped_at = now
                reservation.reaped_buckets = tuple(buckets)
            elif reservation.reaped_at is not None and reservation.reaped_at + _REAPED_MEMORY_SECONDS <= now:
                del self._reservations[reservation_id]

    async def reserve(
        self, reservation_id: str, amount: Decimal, accounts: Sequence[Account], ttl_seconds: float
    ) -> ReserveOutcome:
        """Hold `amount` on every account, or on none."""
        with self._lock:
            now = self._clock()
            self._reap(now)
            if reservation_id in self._reservations:
                raise ValueError(f"reservation {reservation_id} already exists")
            for account in accounts:
                committed = self._snapshot(account, now).committed
                if committed + amount > account.limit:
                    return ReserveOutcome(False, account.key, max(account.limit - committed, _ZERO))
            for account in accounts:
                self._account(account.key, now, account).reserved += amount
            self._reservations[reservation_id] = _Reservation(amount, tuple(accounts), now + ttl_seconds)
            return ReserveOutcome(True)

    async def settle(self, reservation_id: str, charged: Decimal, unverified: Decimal = _ZERO) -> None:
        """Close a reservation; settling an unknown (already closed) one is a no-op."""
        with self._lock:
            now = self._clock()
            reservation = self._reservations.pop(reservation_id, None)
            if reservation is None:
                return
            for index, account in enumerate(reservation.accounts):
                books = self._account(account.key, now, account)
                if reservation.reaped_at is None:
                    books.reserved -= reservation.amount
                else:  # the holder was presumed dead; its settle replaces the conservative estimate
                    books.unverified[reservation.reaped_buckets[index]] -= reservation.amount
                bucket = bucket_of(account, now)
                books.spent[bucket] += charged
                books.unverified[bucket] += unverified

    async def read(self, account: Account) -> BudgetSnapshot:
        """The books of one account."""
        with self._lock:
            now = self._clock()
            self._reap(now)
            return self._snapshot(account, now)

    async def releases(self, account: Account) -> list[Release]:
        """When the spend in a rolling window leaves it."""
        with self._lock:
            now = self._clock()
            self._reap(now)
            books = self._books.get(account.key)
            if books is None:
                return []
            per_bucket: defaultdict[int, Decimal] = defaultdict(Decimal)
            for buckets in (books.spent, books.unverified):
                for bucket, amount in buckets.items():
                    per_bucket[bucket] += amount
            return releases_of(account, dict(per_bucket), now)

    async def forget(self, account_key: str) -> bool:
        """Drop an account unless something is held on it."""
        with self._lock:
            books = self._books.get(account_key)
            if books is None:
                return True
            if books.reserved != 0:
                return False
            del self._books[account_key]
            return True

    async def add_receipt(self, account_key: str, receipt: dict[str, Any], keep: int) -> None:
        """Append a receipt (stored as JSON, like the shared backends do)."""
        encoded = json.dumps(receipt, separators=(",", ":"))
        with self._lock:
            receipts = self._account(account_key, self._clock()).receipts
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

    async def cache_items(self, prefix: str) -> list[tuple[str, str]]:
        """Live entries under a key prefix."""
        with self._lock:
            now = self._clock()
            return [(k, v) for k, (at, v) in self._cache.items() if k.startswith(prefix) and at > now]

    async def cache_delete(self, keys: Sequence[str]) -> int:
        """Drop entries (the dictionary's reference is the only one the store holds)."""
        with self._lock:
            return sum(self._cache.pop(key, None) is not None for key in keys)

    async def cache_purge_expired(self) -> int:
        """Drop every expired entry, read or not."""
        with self._lock:
            now = self._clock()
            expired = [key for key, (at, _) in self._cache.items() if at <= now]
            for key in expired:
                del self._cache[key]
            return len(expired)

    @property
    def cache_size(self) -> int:
        """Entries held right now, expired ones included until they are purged or read."""
        with self._lock:
            return len(self._cache)

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

    async def ping(self) -> None:
        """Always reachable."""

    async def aclose(self) -> None:
        """Nothing to release."""
