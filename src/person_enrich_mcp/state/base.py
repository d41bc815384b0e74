"""The `StateStore` protocol: atomic budget reservations, a TTL cache, and sliding-window counters.

Every backend keeps the same books. An account (a session, or a principal over a rolling window) has
`spent` (settled charges), `reserved` (held by calls in progress) and `unverified` (possibly spent: a call
whose holder died, or whose upstream outcome is unknown). All three count against the account's limit.
A reservation that outlives its TTL is reaped: its amount moves to `unverified`, so a crashed holder never
loses spend from the books; if the holder settles after all, the reaped amount is replaced by the truth.

Nothing grows without bound: a rolling account drops its spend buckets once they leave the window, an account
with nothing held and nothing in its window is forgotten after `BOOKS_KEPT_SECONDS` without a write (or at
once through `forget`, when its session ends), and holds that return to zero are removed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any, Protocol

MICRO = Decimal("0.000001")
# A rolling-window account keeps its spend in this many buckets per window.
WINDOW_BUCKETS = 24
# How long the books of an account nobody writes to are kept (a rolling account's: at least two windows).
BOOKS_KEPT_SECONDS = 7 * 86_400.0
# How often the local backends sweep for books to forget (Redis expires keys itself).
PRUNE_INTERVAL_SECONDS = 60.0
# The most accounts one sweep forgets, so a sweep never holds the store for long.
PRUNE_BATCH = 500


def to_micro(amount: Decimal) -> int:
    """Credits as integer millionths (how the shared backends store them), rounded up."""
    return int((amount / MICRO).to_integral_value(rounding=ROUND_CEILING))


def from_micro(value: int) -> Decimal:
    """Integer millionths back to credits."""
    return (Decimal(value) * MICRO).quantize(MICRO)


@dataclass(frozen=True, slots=True)
class Account:
    """A budget to charge and its limit; with `window_seconds`, only spend inside that rolling window counts."""

    key: str
    limit: Decimal
    window_seconds: float | None = None

    def bucket_seconds(self) -> float | None:
        """Width of one spend bucket of a rolling account."""
        return None if self.window_seconds is None else self.window_seconds / WINDOW_BUCKETS

    def kept_seconds(self) -> float:
        """How long after its last write this account's books are kept if nothing is held."""
        return books_kept_seconds(self.window_seconds)


def books_kept_seconds(window_seconds: float | None) -> float:
    """How long the books of an account with this window are kept after their last write."""
    return BOOKS_KEPT_SECONDS if window_seconds is None else max(BOOKS_KEPT_SECONDS, 2 * window_seconds)


@dataclass(frozen=True, slots=True)
class Release:
    """Spend that leaves a rolling account's window: how much, and how many seconds from now."""

    after_seconds: float
    amount: Decimal


@dataclass(frozen=True, slots=True)
class BudgetSnapshot:
    """One account's books: settled spend, open reservations, and spend whose outcome is unknown."""

    spent: Decimal
    reserved: Decimal
    unverified: Decimal

    @property
    def committed(self) -> Decimal:
        """Everything counted against the limit right now."""
        return self.spent + self.reserved + self.unverified


@dataclass(frozen=True, slots=True)
class ReserveOutcome:
    """The answer to a reservation request: granted, or refused by one account with what it had left."""

    granted: bool
    refused_by: str | None = None
    remaining: Decimal = Decimal(0)


class StateStore(Protocol):
    """State shared by every call of a server (and, with a shared backend, by every replica)."""

    async def reserve(
        self, reservation_id: str, amount: Decimal, accounts: Sequence[Account], ttl_seconds: float
    ) -> ReserveOutcome:
        """Atomically hold `amount` on every account, or on none if any would exceed its limit.

        Raises:
            ValueError: if a reservation with this id is still open (or remembered as reaped).
        """
        ...

    async def settle(self, reservation_id: str, charged: Decimal, unverified: Decimal = Decimal(0)) -> None:
        """Close a reservation: `charged` becomes spent, `unverified` is kept as possibly spent, the rest is freed."""
        ...

    async def read(self, account: Account) -> BudgetSnapshot:
        """The current books of one account (all zero if it has none)."""
        ...

    async def releases(self, account: Account) -> list[Release]:
        """When the spend in a rolling account's window leaves it, soonest first ([] for a plain account)."""
        ...

    async def forget(self, account_key: str) -> bool:
        """Drop an account's books and receipts, unless a reservation on it is still open; True if dropped."""
        ...

    async def add_receipt(self, account_key: str, receipt: dict[str, Any], keep: int) -> None:
        """Append a receipt to an account's history, keeping the newest `keep`."""
        ...

    async def receipts(self, account_key: str, limit: int) -> list[dict[str, Any]]:
        """The newest receipts of an account, oldest first."""
        ...

    async def cache_get(self, key: str) -> str | None:
        """A cached value, or None if absent or expired."""
        ...

    async def cache_put(self, key: str, value: str, ttl_seconds: float) -> None:
        """Store a value for `ttl_seconds` (0 or less removes it)."""
        ...

    async def cache_items(self, prefix: str) -> list[tuple[str, str]]:
        """Every live cached (key, value) whose key starts with `prefix` (a full scan: for erasure, not hot paths)."""
        ...

    async def cache_delete(self, keys: Sequence[str]) -> int:
        """Remove cached values for good (no copy left in the backend's files); returns how many existed."""
        ...

    async def cache_purge_expired(self) -> int:
        """Remove every expired cached value for good; returns how many were removed."""
        ...

    async def take_slot(self, bucket: str, limit: int, window_seconds: float) -> float:
        """Take one request slot in a sliding window: 0.0 if taken, else seconds until one frees."""
        ...

    async def ping(self) -> None:
        """Raise if the store cannot be reached (readiness)."""
        ...

    async def aclose(self) -> None:
        """Release connections and files."""
        ...


def window_range(account: Account, now: float) -> tuple[int, int]:
    """The bucket indexes (first, last) that count for a rolling account at `now`."""
    width = account.bucket_seconds()
    if width is None:
        return (0, 0)
    current = int(now // width)
    return (current - WINDOW_BUCKETS + 1, current)


def releases_of(account: Account, buckets: dict[int, Decimal], now: float) -> list[Release]:
    """The releases of a rolling account from its spend per bucket (buckets outside the window ignored)."""
    width = account.bucket_seconds()
    if width is None:
        return []
    first, last = window_range(account, now)
    return [
        Release(max((bucket + WINDOW_BUCKETS) * width - now, 0.0), amount)
        for bucket, amount in sorted(buckets.items())
        if first <= bucket <= last and amount > 0
    ]


def bucket_of(account: Account, now: float) -> int:
    """The bucket index new spend of an account goes into (0 for plain accounts)."""
    width = account.bucket_seconds()
    return 0 if width is None else int(now // width)


def encode_accounts(accounts: Sequence[Account]) -> list[dict[str, Any]]:
    """Accounts as JSON, stored with a reservation so settling and reaping know where to book."""
    return [{"key": a.key, "limit": str(a.limit), "window": a.window_seconds} for a in accounts]


def decode_accounts(raw: list[dict[str, Any]]) -> list[Account]:
    """The inverse of `encode_accounts`."""
    return [Account(str(a["key"]), Decimal(str(a["limit"])), a.get("window")) for a in raw]
