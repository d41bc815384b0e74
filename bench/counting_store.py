"""A `StateStore` that counts its calls: how many state-store round trips a tool call costs.

It delegates every method to the store it wraps and counts each call by method name. Every method of the
shared backend (`RedisStore`) is one round trip to Redis (one command, one Lua script or one pipeline), apart
from the erasure scans, which never run on a tool call, so calls counted here are round trips. Bench-only: the
server never wraps its store; `bench/replica.py` injects this one through `build_http_app(store=...)`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from person_enrich_mcp.state import Account, BudgetSnapshot, Release, ReserveOutcome, StateStore


class CountingStore:
    """Delegates to `inner`, counting calls per method in `calls`."""

    def __init__(self, inner: StateStore) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    async def reserve(
        self, reservation_id: str, amount: Decimal, accounts: Sequence[Account], ttl_seconds: float
    ) -> ReserveOutcome:
        self.calls["reserve"] += 1
        return await self.inner.reserve(reservation_id, amount, accounts, ttl_seconds)

    async def settle(self, reservation_id: str, charged: Decimal, unverified: Decimal = Decimal(0)) -> None:
        self.calls["settle"] += 1
        await self.inner.settle(reservation_id, charged, unverified)

    async def read(self, account: Account) -> BudgetSnapshot:
        self.calls["read"] += 1
        return await self.inner.read(account)

    async def releases(self, account: Account) -> list[Release]:
        self.calls["releases"] += 1
        return await self.inner.releases(account)

    async def forget(self, account_key: str) -> bool:
        self.calls["forget"] += 1
        return await self.inner.forget(account_key)

    async def add_receipt(self, account_key: str, receipt: dict[str, Any], keep: int) -> None:
        self.calls["add_receipt"] += 1
        await self.inner.add_receipt(account_key, receipt, keep)

    async def receipts(self, account_key: str, limit: int) -> list[dict[str, Any]]:
        self.calls["receipts"] += 1
        return await self.inner.receipts(account_key, limit)

    async def cache_get(self, key: str) -> str | None:
        self.calls["cache_get"] += 1
        return await self.inner.cache_get(key)

    async def cache_put(self, key: str, value: str, ttl_seconds: float) -> None:
        self.calls["cache_put"] += 1
        await self.inner.cache_put(key, value, ttl_seconds)

    async def cache_items(self, prefix: str) -> list[tuple[str, str]]:
        self.calls["cache_items"] += 1
        return await self.inner.cache_items(prefix)

    async def cache_delete(self, keys: Sequence[str]) -> int:
        self.calls["cache_delete"] += 1
        return await self.inner.cache_delete(keys)

    async def cache_purge_expired(self) -> int:
        self.calls["cache_purge_expired"] += 1
        return await self.inner.cache_purge_expired()

    async def take_slot(self, bucket: str, limit: int, window_seconds: float) -> float:
        self.calls["take_slot"] += 1
        return await self.inner.take_slot(bucket, limit, window_seconds)

    async def ping(self) -> None:
        self.calls["ping"] += 1
        await self.inner.ping()

    async def aclose(self) -> None:
        await self.inner.aclose()
