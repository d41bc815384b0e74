"""The `StateStore` protocol: atomic budget reservations, a TTL cache, and sliding-window counters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Account:
    """A budget to charge (a session, later also a principal's rolling window) and its limit in credits."""

    key: str
    limit: Decimal


@dataclass(frozen=True, slots=True)
class BudgetSnapshot:
    """One account's books: settled spend, open reservations, and spend whose upstream outcome is unknown."""

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
        """Atomically hold `amount` on every account, or on none if any would exceed its limit."""
        ...

    async def settle(self, reservation_id: str, charged: Decimal, unverified: Decimal = Decimal(0)) -> None:
        """Close a reservation: `charged` becomes spent, `unverified` is kept as possibly spent, the rest is freed."""
        ...

    async def read(self, account_key: str) -> BudgetSnapshot:
        """The current books of one account (all zero if it has none)."""
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
        """Store a value for `ttl_seconds`."""
        ...

    async def take_slot(self, bucket: str, limit: int, window_seconds: float) -> float:
        """Take one request slot in a sliding window: 0.0 if taken, else seconds until one frees."""
        ...

    async def aclose(self) -> None:
        """Release connections and files."""
        ...
