"""The shared backend (`redis://host:port/db`): replicas share budgets, reservations, cache and rate limits.

Each budget operation is one Lua script, so it is atomic across replicas, and every script reads the clock
with Redis `TIME`, so replicas agree on time. Amounts are integer millionths of a credit. Needs a single
Redis (or a primary with replicas); a Redis Cluster is not supported because reaping touches keys that are
not known in advance.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from typing import Any, cast

from redis.asyncio import Redis

from person_enrich_mcp.state.base import (
    BOOKS_KEPT_SECONDS,
    WINDOW_BUCKETS,
    Account,
    BudgetSnapshot,
    Release,
    ReserveOutcome,
    encode_accounts,
    from_micro,
    releases_of,
    to_micro,
)

PREFIX = "pe:"
# Plain (session) books are kept this long after their last write; rolling ones for two windows.
SESSION_BOOKS_SECONDS = int(BOOKS_KEPT_SECONDS)

_COMMON = """
local P = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local BUCKETS = __BUCKETS__

local function bucket_of(a)
  if a.window == nil or a.window == cjson.null then return 0 end
  return math.floor(now / (a.window / BUCKETS))
end

local function books(a)
  local first, last = 0, 0
  if a.window ~= nil and a.window ~= cjson.null then
    last = bucket_of(a)
    first = last - BUCKETS + 1
  end
  local spent, unverified = 0, 0
  for b = first, last do
    local v = redis.call('HMGET', P .. 'spend:' .. a.key, 's:' .. b, 'u:' .. b)
    spent = spent + (tonumber(v[1]) or 0)
    unverified = unverified + (tonumber(v[2]) or 0)
  end
  local held = tonumber(redis.call('GET', P .. 'held:' .. a.key) or '0')
  return spent, held, unverified
end

-- Spend that has left a rolling window can never count again: drop its fields.
local function drop_old(a, key)
  local first = bucket_of(a) - BUCKETS + 1
  local old = {}
  for _, f in ipairs(redis.call('HKEYS', key)) do
    local b = tonumber(string.sub(f, 3))
    if b ~= nil and b < first then old[#old + 1] = f end
  end
  if #old > 0 then redis.call('HDEL', key, unpack(old)) end
end

local function add(a, bucket, field, amount)
  if amount == 0 then return end
  local key = P .. 'spend:' .. a.key
  redis.call('HINCRBY', key, field .. bucket, amount)
  if a.window ~= nil and a.window ~= cjson.null then
    drop_old(a, key)
    redis.call('EXPIRE', key, math.ceil(math.max(a.window * 2, __SESSION_BOOKS__)))
  else
    redis.call('EXPIRE', key, __SESSION_BOOKS__)
  end
end

-- A hold back at zero is deleted, so finished calls leave no key behind.
local function hold(a, amount)
  local key = P .. 'held:' .. a.key
  if redis.call('INCRBY', key, amount) == 0 then redis.call('DEL', key) end
end

local function reap()
  local ids = redis.call('ZRANGEBYSCORE', P .. 'res-expiry', '-inf', now, 'LIMIT', 0, 100)
  for _, id in ipairs(ids) do
    local r = redis.call('HMGET', P .. 'res:' .. id, 'amount', 'accounts', 'reaped_at')
    if r[1] and not r[3] then
      local amount = tonumber(r[1])
      local buckets = {}
      for i, a in ipairs(cjson.decode(r[2])) do
        local b = bucket_of(a)
        hold(a, -amount)
        add(a, b, 'u:', amount)
        buckets[i] = b
      end
      redis.call('HSET', P .. 'res:' .. id, 'reaped_at', tostring(now), 'reaped_buckets', cjson.encode(buckets))
      redis.call('EXPIRE', P .. 'res:' .. id, 86400)
    end
    redis.call('ZREM', P .. 'res-expiry', id)
  end
end
""".replace("__BUCKETS__", str(WINDOW_BUCKETS)).replace("__SESSION_BOOKS__", str(SESSION_BOOKS_SECONDS))

_RESERVE = (
    _COMMON
    + """
reap()
local id, amount, ttl = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
if redis.call('EXISTS', P .. 'res:' .. id) == 1 then
  return {-1}
end
local accounts = cjson.decode(ARGV[5])
for _, a in ipairs(accounts) do
  local spent, held, unverified = books(a)
  local committed = spent + held + unverified
  if committed + amount > tonumber(a.limit_micro) then
    return {0, a.key, tostring(tonumber(a.limit_micro) - committed)}
  end
end
for _, a in ipairs(accounts) do
  hold(a, amount)
end
redis.call('HSET', P .. 'res:' .. id, 'amount', amount, 'accounts', ARGV[5])
redis.call('ZADD', P .. 'res-expiry', now + ttl, id)
return {1}
"""
)

_SETTLE = (
    _COMMON
    + """
local id, charged, unverified = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local r = redis.call('HMGET', P .. 'res:' .. id, 'amount', 'accounts', 'reaped_at', 'reaped_buckets')
if not r[1] then return 0 end
local amount = tonumber(r[1])
local reaped = {}
if r[3] then reaped = cjson.decode(r[4]) end
for i, a in ipairs(cjson.decode(r[2])) do
  if r[3] then
    add(a, reaped[i], 'u:', -amount)
  else
    hold(a, -amount)
  end
  local b = bucket_of(a)
  add(a, b, 's:', charged)
  add(a, b, 'u:', unverified)
end
redis.call('DEL', P .. 'res:' .. id)
redis.call('ZREM', P .. 'res-expiry', id)
return 1
"""
)

_READ = (
    _COMMON
    + """
reap()
local spent, held, unverified = books(cjson.decode(ARGV[2]))
return {tostring(spent), tostring(held), tostring(unverified)}
"""
)

_RELEASES = (
    _COMMON
    + """
reap()
local a = cjson.decode(ARGV[2])
local out = {tostring(now)}
for i, v in ipairs(redis.call('HGETALL', P .. 'spend:' .. a.key)) do out[#out + 1] = v end
return out
"""
)

_FORGET = """
local P, key = ARGV[1], ARGV[2]
local held = tonumber(redis.call('GET', P .. 'held:' .. key) or '0')
if held ~= 0 then return 0 end
redis.call('DEL', P .. 'spend:' .. key, P .. 'held:' .. key, P .. 'receipts:' .. key)
return 1
"""

_TAKE_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local key, limit, window = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) < limit then
  redis.call('ZADD', key, now, t[1] .. '.' .. t[2] .. ':' .. redis.call('INCR', key .. ':seq'))
  redis.call('PEXPIRE', key, math.ceil(window * 1000) + 1000)
  redis.call('PEXPIRE', key .. ':seq', math.ceil(window * 1000) + 1000)
  return '0'
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return tostring(math.max(tonumber(oldest[2]) + window - now, 0.001))
"""


def _glob_escape(text: str) -> str:
    """`text` matched literally by a Redis glob pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _account_json(account: Account) -> dict[str, Any]:
    return {**encode_accounts([account])[0], "limit_micro": str(to_micro(account.limit))}


class RedisStore:
    """A `StateStore` in Redis, shared by every replica that points at it."""

    def __init__(self, url: str) -> None:
        self._redis: Redis = Redis.from_url(url, decode_responses=True)  # pyright: ignore[reportUnknownMemberType]
        self._reserve = self._redis.register_script(_RESERVE)
        self._settle = self._redis.register_script(_SETTLE)
        self._read = self._redis.register_script(_READ)
        self._releases = self._redis.register_script(_RELEASES)
        self._forget = self._redis.register_script(_FORGET)
        self._take_slot = self._redis.register_script(_TAKE_SLOT)

    def __repr__(self) -> str:
        return "RedisStore()"  # the URL may carry a password

    async def reserve(
        self, reservation_id: str, amount: Decimal, accounts: Sequence[Account], ttl_seconds: float
    ) -> ReserveOutcome:
        """Hold `amount` on every account, or on none (one script)."""
        encoded = json.dumps([_account_json(a) for a in accounts])
        result = cast(
            list[Any],
            await self._reserve(args=[PREFIX, reservation_id, to_micro(amount), ttl_seconds, encoded]),
        )
        if int(result[0]) == -1:
            raise ValueError(f"reservation {reservation_id} already exists")
        if int(result[0]) == 1:
            return ReserveOutcome(True)
        return ReserveOutcome(False, str(result[1]), max(from_micro(int(float(result[2]))), Decimal(0)))

    async def settle(self, reservation_id: str, charged: Decimal, unverified: Decimal = Decimal(0)) -> None:
        """Close a reservation (one script); unknown ids are a no-op."""
        await self._settle(args=[PREFIX, reservation_id, to_micro(charged), to_micro(unverified)])

    async def read(self, account: Account) -> BudgetSnapshot:
        """The books of one account, after reaping expired reservations."""
        result = cast(list[Any], await self._read(args=[PREFIX, json.dumps(_account_json(account))]))
        spent, held, unverified = (from_micro(int(float(v))) for v in result)
        return BudgetSnapshot(spent, held, unverified)

    async def releases(self, account: Account) -> list[Release]:
        """When the spend in a rolling window leaves it (on Redis's clock)."""
        if account.window_seconds is None:
            return []
        raw = cast(list[str], await self._releases(args=[PREFIX, json.dumps(_account_json(account))]))
        now = float(raw[0])
        per_bucket: dict[int, Decimal] = {}
        for field, value in zip(raw[1::2], raw[2::2], strict=True):
            bucket = int(field[2:])
            per_bucket[bucket] = per_bucket.get(bucket, Decimal(0)) + from_micro(int(value))
        return releases_of(account, per_bucket, now)

    async def forget(self, account_key: str) -> bool:
        """Drop an account's keys unless something is held on it (one script)."""
        return int(cast(int, await self._forget(args=[PREFIX, account_key]))) == 1

    async def add_receipt(self, account_key: str, receipt: dict[str, Any], keep: int) -> None:
        """Append a receipt and trim to the newest `keep` (one transaction)."""
        key = f"{PREFIX}receipts:{account_key}"
        if keep <= 0:
            await self._redis.delete(key)
            return
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.lpush(key, json.dumps(receipt, separators=(",", ":")))
            pipe.ltrim(key, 0, max(keep - 1, 0))
            pipe.expire(key, SESSION_BOOKS_SECONDS)
            await pipe.execute()

    async def receipts(self, account_key: str, limit: int) -> list[dict[str, Any]]:
        """The newest `limit` receipts, oldest first."""
        if limit <= 0:
            return []
        raw = cast(list[str], await self._redis.lrange(f"{PREFIX}receipts:{account_key}", 0, limit - 1))
        return [json.loads(item) for item in reversed(raw)]

    async def cache_get(self, key: str) -> str | None:
        """A live cached value (Redis expires them)."""
        return cast(str | None, await self._redis.get(f"{PREFIX}cache:{key}"))

    async def cache_put(self, key: str, value: str, ttl_seconds: float) -> None:
        """Store a value with a TTL (0 or less removes it)."""
        if ttl_seconds <= 0:
            await self._redis.delete(f"{PREFIX}cache:{key}")
            return
        await self._redis.set(f"{PREFIX}cache:{key}", value, px=max(int(ttl_seconds * 1000), 1))

    async def cache_items(self, prefix: str) -> list[tuple[str, str]]:
        """Live entries under a key prefix: a SCAN of the keyspace, then the values in batches."""
        pattern = f"{PREFIX}cache:{_glob_escape(prefix)}*"
        scan = cast(AsyncIterator[str], self._redis.scan_iter(match=pattern, count=1000))  # pyright: ignore[reportUnknownMemberType]
        keys = [key async for key in scan]
        found: list[tuple[str, str]] = []
        strip = len(f"{PREFIX}cache:")
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            values = cast(list[str | None], await self._redis.mget(chunk))
            found.extend((key[strip:], value) for key, value in zip(chunk, values, strict=True) if value is not None)
        return found

    async def cache_delete(self, keys: Sequence[str]) -> int:
        """Delete entries (Redis frees them at once; persistence files are the operator's, see docs/privacy.md)."""
        removed = 0
        wanted = [f"{PREFIX}cache:{key}" for key in keys]
        for start in range(0, len(wanted), 500):
            removed += int(await self._redis.delete(*wanted[start : start + 500]))
        return removed

    async def cache_purge_expired(self) -> int:
        """Nothing to do: Redis removes expired keys itself (`PX` on every cached value)."""
        return 0

    async def take_slot(self, bucket: str, limit: int, window_seconds: float) -> float:
        """Sliding-window log in a sorted set, on Redis's clock: the same limit for every replica."""
        result = await self._take_slot(keys=[f"{PREFIX}slots:{bucket}"], args=[limit, window_seconds])
        return float(cast(str, result))

    async def ping(self) -> None:
        """Raise if Redis cannot be reached."""
        await self._redis.ping()  # pyright: ignore[reportUnknownMemberType]

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()
