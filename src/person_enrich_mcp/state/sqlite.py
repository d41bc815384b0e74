"""The durable single-host backend (`sqlite:///path`): survives restarts; several processes may share the file.

Every operation is one `BEGIN IMMEDIATE` transaction, so reservations are atomic across processes. Amounts
are stored as integer millionths of a credit and times as wall-clock seconds (they outlive the process).
`touched` records when each account was last written (and its window), so books nobody uses are forgotten.

Deleted cache rows leave no copy in the files: `secure_delete` zeroes freed space, and after a deletion of
cached values the write-ahead log is checkpointed and truncated, so the old pages it held are gone too. A value
replaced by a newer one leaves its old page image in the log until then, so `cache_purge_expired` (which a running
server calls every few seconds) also truncates the log whenever this store wrote to the cache since it last did.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread

from person_enrich_mcp.state.base import (
    BOOKS_KEPT_SECONDS,
    PRUNE_BATCH,
    PRUNE_INTERVAL_SECONDS,
    Account,
    BudgetSnapshot,
    Release,
    ReserveOutcome,
    bucket_of,
    decode_accounts,
    encode_accounts,
    from_micro,
    releases_of,
    to_micro,
    window_range,
)

T = TypeVar("T")
logger = logging.getLogger(__name__)
_REAPED_MEMORY_SECONDS = 86_400.0
# A checkpoint waits for readers of other connections to finish; this many tries, this far apart.
_CHECKPOINT_TRIES = 20
_CHECKPOINT_PAUSE = 0.05

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spend (
    account TEXT NOT NULL, bucket INTEGER NOT NULL,
    spent INTEGER NOT NULL DEFAULT 0, unverified INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account, bucket)
);
CREATE TABLE IF NOT EXISTS held (account TEXT PRIMARY KEY, reserved INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS reservations (
    id TEXT PRIMARY KEY, amount INTEGER NOT NULL, accounts TEXT NOT NULL, expires_at REAL NOT NULL,
    reaped_at REAL, reaped_buckets TEXT
);
CREATE INDEX IF NOT EXISTS reservations_expiry ON reservations (expires_at) WHERE reaped_at IS NULL;
CREATE TABLE IF NOT EXISTS receipts (seq INTEGER PRIMARY KEY AUTOINCREMENT, account TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS receipts_account ON receipts (account, seq);
CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS slots (bucket TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS slots_bucket ON slots (bucket, at);
CREATE TABLE IF NOT EXISTS touched (account TEXT PRIMARY KEY, at REAL NOT NULL, kept REAL NOT NULL);
CREATE INDEX IF NOT EXISTS touched_expiry ON touched (at + kept);
"""
# Rate-limit log rows older than this are swept whatever their bucket (no rate window is anywhere near a day).
_SLOT_ROWS_KEPT_SECONDS = 86_400.0


class SQLiteStore:
    """A `StateStore` in one SQLite file, in WAL mode."""

    def __init__(self, path: str | Path, *, clock: Callable[[], float] = time.time) -> None:
        self._path = str(path)
        self._clock = clock
        self._lock = threading.Lock()
        self._cache_written = False  # since the log was last truncated
        if self._path != ":memory:":
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA secure_delete=ON")  # freed pages and cells are zeroed, not left readable
        self._db.executescript(_SCHEMA)
        self._pruned_at = 0.0

    async def _run(self, work: Callable[[sqlite3.Connection, float], T]) -> T:
        """Run `work` in one immediate transaction on a worker thread."""

        def transaction() -> T:
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    result = work(self._db, self._clock())
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
                return result

        return await anyio.to_thread.run_sync(transaction)

    # --- budgets ------------------------------------------------------------------------------------------

    @staticmethod
    def _snapshot(db: sqlite3.Connection, account: Account, now: float) -> BudgetSnapshot:
        first, last = window_range(account, now)
        spent, unverified = db.execute(
            "SELECT COALESCE(SUM(spent), 0), COALESCE(SUM(unverified), 0) FROM spend "
            "WHERE account = ? AND bucket BETWEEN ? AND ?",
            (account.key, first, last),
        ).fetchone()
        row = db.execute("SELECT reserved FROM held WHERE account = ?", (account.key,)).fetchone()
        return BudgetSnapshot(from_micro(spent), from_micro(row[0] if row else 0), from_micro(unverified))

    @staticmethod
    def _touch(db: sqlite3.Connection, account: Account, now: float) -> None:
        """Mark an account written now; a rolling one also drops the buckets that left its window."""
        db.execute(
            "INSERT INTO touched (account, at, kept) VALUES (?, ?, ?) "
            "ON CONFLICT (account) DO UPDATE SET at = excluded.at, kept = excluded.kept",
            (account.key, now, account.kept_seconds()),
        )
        if account.window_seconds is not None:
            first, _ = window_range(account, now)
            db.execute("DELETE FROM spend WHERE account = ? AND bucket < ?", (account.key, first))

    @classmethod
    def _add(
        cls, db: sqlite3.Connection, account: Account, bucket: int, now: float, *, spent: int = 0, unverified: int = 0
    ) -> None:
        cls._touch(db, account, now)
        if spent == 0 and unverified == 0:
            return
        db.execute(
            "INSERT INTO spend (account, bucket, spent, unverified) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (account, bucket) DO UPDATE SET spent = spent + excluded.spent, "
            "unverified = unverified + excluded.unverified",
            (account.key, bucket, spent, unverified),
        )

    @classmethod
    def _hold(cls, db: sqlite3.Connection, account: Account, amount: int, now: float) -> None:
        cls._touch(db, account, now)
        db.execute(
            "INSERT INTO held (account, reserved) VALUES (?, ?) "
            "ON CONFLICT (account) DO UPDATE SET reserved = reserved + excluded.reserved",
            (account.key, amount),
        )
        db.execute("DELETE FROM held WHERE account = ? AND reserved = 0", (account.key,))

    def _prune(self, db: sqlite3.Connection, now: float) -> None:
        """Forget books nobody holds or writes to any more, and old rate-limit rows (at most once a minute)."""
        if now - self._pruned_at < PRUNE_INTERVAL_SECONDS:
            return
        self._pruned_at = now
        stale = db.execute(
            "SELECT account FROM touched WHERE at + kept <= ? "
            "AND account NOT IN (SELECT account FROM held WHERE reserved != 0) LIMIT ?",
            (now, PRUNE_BATCH),
        ).fetchall()
        for (key,) in stale:
            self._drop(db, str(key))
        db.execute("DELETE FROM slots WHERE at <= ?", (now - _SLOT_ROWS_KEPT_SECONDS,))
        db.execute(
            "DELETE FROM cache WHERE rowid IN (SELECT rowid FROM cache WHERE expires_at <= ? LIMIT ?)",
            (now, PRUNE_BATCH),
        )

    @staticmethod
    def _drop(db: sqlite3.Connection, key: str) -> None:
        for table in ("spend", "held", "receipts", "touched"):
            db.execute(f"DELETE FROM {table} WHERE account = ?", (key,))  # fixed table names, never input

    def _reap(self, db: sqlite3.Connection, now: float) -> None:
        self._prune(db, now)
        expired = db.execute(
            "SELECT id, amount, accounts FROM reservations WHERE reaped_at IS NULL AND expires_at <= ?", (now,)
        ).fetchall()
        for reservation_id, amount, raw_accounts in expired:
            buckets: list[int] = []
            for account in decode_accounts(json.loads(raw_accounts)):
                bucket = bucket_of(account, now)
                self._hold(db, account, -amount, now)
                self._add(db, account, bucket, now, unverified=amount)
                buckets.append(bucket)
            db.execute(
                "UPDATE reservations SET reaped_at = ?, reaped_buckets = ? WHERE id = ?",
                (now, json.dumps(buckets), reservation_id),
            )
        db.execute(
            "DELETE FROM reservations WHERE reaped_at IS NOT NULL AND reaped_at <= ?", (now - _REAPED_MEMORY_SECONDS,)
        )

    async def reserve(
        self, reservation_id: str, amount: Decimal, accounts: Sequence[Account], ttl_seconds: float
    ) -> ReserveOutcome:
        """Hold `amount` on every account, or on none."""
        micro = to_micro(amount)

        def work(db: sqlite3.Connection, now: float) -> ReserveOutcome:
            self._reap(db, now)
            for account in accounts:
                committed = self._snapshot(db, account, now).committed
                if committed + from_micro(micro) > account.limit:
                    return ReserveOutcome(False, account.key, max(account.limit - committed, Decimal(0)))
            exists = db.execute("SELECT 1 FROM reservations WHERE id = ?", (reservation_id,)).fetchone()
            if exists is not None:
                raise ValueError(f"reservation {reservation_id} already exists")
            for account in accounts:
                self._hold(db, account, micro, now)
            db.execute(
                "INSERT INTO reservations (id, amount, accounts, expires_at) VALUES (?, ?, ?, ?)",
                (reservation_id, micro, json.dumps(encode_accounts(accounts)), now + ttl_seconds),
            )
            return ReserveOutcome(True)

        return await self._run(work)

    async def settle(self, reservation_id: str, charged: Decimal, unverified: Decimal = Decimal(0)) -> None:
        """Close a reservation; settling an unknown (already closed) one is a no-op."""
        charged_micro, unverified_micro = to_micro(charged), to_micro(unverified)

        def work(db: sqlite3.Connection, now: float) -> None:
            row = db.execute(
                "SELECT amount, accounts, reaped_at, reaped_buckets FROM reservations WHERE id = ?", (reservation_id,)
            ).fetchone()
            if row is None:
                return
            amount, raw_accounts, reaped_at, reaped_buckets = row
            reaped: list[int] = json.loads(reaped_buckets) if reaped_at is not None else []
            for index, account in enumerate(decode_accounts(json.loads(raw_accounts))):
                if reaped_at is None:
                    self._hold(db, account, -amount, now)
                else:
                    self._add(db, account, reaped[index], now, unverified=-amount)
                self._add(db, account, bucket_of(account, now), now, spent=charged_micro, unverified=unverified_micro)
            db.execute("DELETE FROM reservations WHERE id = ?", (reservation_id,))

        await self._run(work)

    async def read(self, account: Account) -> BudgetSnapshot:
        """The books of one account."""

        def work(db: sqlite3.Connection, now: float) -> BudgetSnapshot:
            self._reap(db, now)
            return self._snapshot(db, account, now)

        return await self._run(work)

    async def releases(self, account: Account) -> list[Release]:
        """When the spend in a rolling window leaves it."""
        if account.window_seconds is None:
            return []

        def work(db: sqlite3.Connection, now: float) -> list[Release]:
            self._reap(db, now)
            first, last = window_range(account, now)
            rows = db.execute(
                "SELECT bucket, spent + unverified FROM spend WHERE account = ? AND bucket BETWEEN ? AND ?",
                (account.key, first, last),
            ).fetchall()
            return releases_of(account, {int(b): from_micro(int(v)) for b, v in rows}, now)

        return await self._run(work)

    async def forget(self, account_key: str) -> bool:
        """Drop an account unless something is held on it."""

        def work(db: sqlite3.Connection, _now: float) -> bool:
            row = db.execute("SELECT reserved FROM held WHERE account = ?", (account_key,)).fetchone()
            if row is not None and row[0] != 0:
                return False
            self._drop(db, account_key)
            return True

        return await self._run(work)

    # --- receipts -----------------------------------------------------------------------------------------

    async def add_receipt(self, account_key: str, receipt: dict[str, Any], keep: int) -> None:
        """Append a receipt, keeping the newest `keep`."""
        body = json.dumps(receipt, separators=(",", ":"))

        def work(db: sqlite3.Connection, now: float) -> None:
            db.execute(
                "INSERT INTO touched (account, at, kept) VALUES (?, ?, ?) "
                "ON CONFLICT (account) DO UPDATE SET at = excluded.at",
                (account_key, now, BOOKS_KEPT_SECONDS),
            )
            db.execute("INSERT INTO receipts (account, body) VALUES (?, ?)", (account_key, body))
            db.execute(
                "DELETE FROM receipts WHERE account = ? AND seq NOT IN "
                "(SELECT seq FROM receipts WHERE account = ? ORDER BY seq DESC LIMIT ?)",
                (account_key, account_key, keep),
            )

        await self._run(work)

    async def receipts(self, account_key: str, limit: int) -> list[dict[str, Any]]:
        """The newest `limit` receipts, oldest first."""

        def work(db: sqlite3.Connection, _now: float) -> list[str]:
            rows = db.execute(
                "SELECT body FROM receipts WHERE account = ? ORDER BY seq DESC LIMIT ?", (account_key, max(limit, 0))
            ).fetchall()
            return [str(r[0]) for r in reversed(rows)]

        return [json.loads(body) for body in await self._run(work)]

    # --- cache and limiter --------------------------------------------------------------------------------

    async def cache_get(self, key: str) -> str | None:
        """A live cached value."""

        def work(db: sqlite3.Connection, now: float) -> str | None:
            row = db.execute("SELECT value, expires_at FROM cache WHERE key = ?", (key,)).fetchone()
            if row is None:
                return None
            if row[1] <= now:
                db.execute("DELETE FROM cache WHERE key = ?", (key,))
                return None
            return str(row[0])

        return await self._run(work)

    async def cache_put(self, key: str, value: str, ttl_seconds: float) -> None:
        """Store a value (0 or less removes it); expired rows are swept (for good) as a side effect."""

        def work(db: sqlite3.Connection, now: float) -> int:
            if ttl_seconds <= 0:
                return db.execute("DELETE FROM cache WHERE key = ?", (key,)).rowcount
            db.execute(
                "INSERT INTO cache (key, value, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
                (key, value, now + ttl_seconds),
            )
            return db.execute(
                "DELETE FROM cache WHERE rowid IN (SELECT rowid FROM cache WHERE expires_at <= ? LIMIT 100)", (now,)
            ).rowcount

        self._cache_written = True
        if await self._run(work):
            await anyio.to_thread.run_sync(self._truncate_log)

    async def cache_items(self, prefix: str) -> list[tuple[str, str]]:
        """Live rows under a key prefix (a range scan of the primary key)."""

        def work(db: sqlite3.Connection, now: float) -> list[tuple[str, str]]:
            rows = db.execute(
                "SELECT key, value FROM cache WHERE key >= ? AND key < ? AND expires_at > ?",
                (prefix, prefix + "\U0010ffff", now),
            ).fetchall()
            return [(str(k), str(v)) for k, v in rows]

        return await self._run(work)

    async def cache_delete(self, keys: Sequence[str]) -> int:
        """Delete rows, then checkpoint and truncate the write-ahead log so no old copy remains on disk."""
        wanted = list(keys)

        def work(db: sqlite3.Connection, _now: float) -> int:
            removed = 0
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                removed += db.execute(f"DELETE FROM cache WHERE key IN ({marks})", chunk).rowcount
            return removed

        removed = await self._run(work)
        if removed:
            await anyio.to_thread.run_sync(self._truncate_log)
        return removed

    async def cache_purge_expired(self) -> int:
        """Delete every expired row, and truncate the log if that removed anything or values were written (replaced
        values leave their old page images there)."""

        def work(db: sqlite3.Connection, now: float) -> int:
            return db.execute("DELETE FROM cache WHERE expires_at <= ?", (now,)).rowcount

        removed = await self._run(work)
        if removed or self._cache_written:
            await anyio.to_thread.run_sync(self._truncate_log)
        return removed

    def _truncate_log(self) -> None:
        """Copy the write-ahead log into the database and empty it (retried while another reader holds it)."""
        for attempt in range(_CHECKPOINT_TRIES):
            with self._lock:
                busy = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            if not busy:
                self._cache_written = False
                return
            if attempt + 1 < _CHECKPOINT_TRIES:
                time.sleep(_CHECKPOINT_PAUSE)  # a worker thread: another connection is mid-read
        logger.warning("could not truncate the SQLite write-ahead log of %s (busy); retried later", self._path)

    async def take_slot(self, bucket: str, limit: int, window_seconds: float) -> float:
        """Sliding-window log shared by every process on this host."""

        def work(db: sqlite3.Connection, now: float) -> float:
            db.execute("DELETE FROM slots WHERE bucket = ? AND at <= ?", (bucket, now - window_seconds))
            count, oldest = db.execute("SELECT COUNT(*), MIN(at) FROM slots WHERE bucket = ?", (bucket,)).fetchone()
            if count < limit:
                db.execute("INSERT INTO slots (bucket, at) VALUES (?, ?)", (bucket, now))
                return 0.0
            return max(float(oldest) + window_seconds - now, 0.001)

        return await self._run(work)

    async def ping(self) -> None:
        """A trivial query."""

        def work(db: sqlite3.Connection, _now: float) -> None:
            db.execute("SELECT 1").fetchone()

        await self._run(work)

    async def aclose(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
