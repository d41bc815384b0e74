"""The sandbox's credit ledger: per-key totals, balances, request counts and the recent request log.

Keys are never stored: each is identified by the first 16 hex digits of its SHA-256 (the "fingerprint").
"""

from __future__ import annotations

import hashlib
import threading
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

RECENT_LIMIT = 200
CENTS = Decimal("0.01")


def fingerprint(key: str) -> str:
    """The ledger's name for an API key: `sha256(key).hexdigest()[:16]`."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def credits_str(amount: Decimal) -> str:
    """A per-request credit amount as sent in `x-credits-used` (`"0"`, `"3"`, `"0.09"`)."""
    if amount == amount.to_integral_value():
        return str(amount.to_integral_value())
    return str(amount)


def total_str(amount: Decimal) -> str:
    """A summed credit amount, quantized to two decimal places."""
    return str(amount.quantize(CENTS))


@dataclass
class Account:
    """Everything the ledger knows about one key."""

    key: str
    balance: Decimal | None
    credits_billed: Decimal = Decimal(0)
    requests: dict[str, dict[str, int]] = field(default_factory=dict[str, dict[str, int]])
    faults: dict[str, int] = field(default_factory=dict[str, int])
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque[dict[str, Any]](maxlen=RECENT_LIMIT))

    def to_json(self) -> dict[str, Any]:
        """The key's ledger entry as served by `GET /_sandbox/ledger`."""
        return {
            "key": self.key,
            "credits_billed": total_str(self.credits_billed),
            "requests": {endpoint: dict(counts) for endpoint, counts in self.requests.items()},
            "faults": dict(self.faults),
            "balance": None if self.balance is None else total_str(self.balance),
            "recent": list(self.recent),
        }


class Ledger:
    """Thread-safe ledger of every key's billing, balance and recent requests."""

    def __init__(self, default_balance: Decimal | None = None) -> None:
        self.default_balance = default_balance
        self._accounts: dict[str, Account] = {}
        self._lock = threading.Lock()

    def _account(self, key: str) -> Account:
        account = self._accounts.get(key)
        if account is None:
            account = Account(key=key, balance=self.default_balance)
            self._accounts[key] = account
        return account

    def remaining(self, key: str) -> Decimal | None:
        """The key's remaining balance (None means unlimited)."""
        with self._lock:
            return self._account(key).balance

    def billed(self, key: str) -> Decimal:
        """Everything the key was billed so far."""
        with self._lock:
            return self._account(key).credits_billed

    def set_balance(self, key: str, balance: Decimal | None) -> dict[str, Any]:
        """Set one key's balance (None for unlimited) and return its entry."""
        with self._lock:
            account = self._account(key)
            account.balance = balance
            return account.to_json()

    def record(
        self,
        key: str,
        endpoint: str,
        status: int | str,
        credits: Decimal = Decimal(0),
        fault: str | None = None,
        body: Any = None,
    ) -> None:
        """Count one request under its endpoint and status, bill `credits`, and log it in `recent`."""
        with self._lock:
            account = self._account(key)
            counts = account.requests.setdefault(endpoint, {})
            counts[str(status)] = counts.get(str(status), 0) + 1
            if credits:
                account.credits_billed += credits
                if account.balance is not None:
                    account.balance -= credits
            if fault is not None:
                account.faults[fault] = account.faults.get(fault, 0) + 1
            account.recent.append(
                {
                    "endpoint": endpoint,
                    "status": status if isinstance(status, int) else None,
                    "credits": credits_str(credits),
                    "fault": fault,
                    "body": body,
                }
            )

    def entry(self, key: str) -> dict[str, Any]:
        """One key's entry (an empty one if the key was never seen)."""
        with self._lock:
            return self._account(key).to_json()

    def snapshot(self) -> dict[str, Any]:
        """Every key's entry plus the grand total."""
        with self._lock:
            total = sum((a.credits_billed for a in self._accounts.values()), Decimal(0))
            return {
                "keys": {key: account.to_json() for key, account in self._accounts.items()},
                "total_credits": total_str(total),
            }

    def clear(self, key: str | None = None) -> None:
        """Forget one key's history (or everyone's); balances return to the default."""
        with self._lock:
            if key is None:
                self._accounts.clear()
            else:
                self._accounts.pop(key, None)
