"""Per-session credit budgets: quote, reserve, settle or release, and receipts.

Nothing is spent before it is reserved. A reservation is an async context manager: inside it the caller
records what the upstream charged (synchronously, so a cancellation cannot slip between the answer and
the record); on exit, whatever happened, the reservation is settled to those charges and the rest is
freed. The exit is shielded from cancellation so no record of spend is ever lost.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from types import TracebackType
from typing import Any

import anyio

from person_enrich_mcp.errors import BudgetExceededError, format_credits
from person_enrich_mcp.state import Account, StateStore

logger = logging.getLogger(__name__)

_ZERO = Decimal(0)
RECEIPTS_KEPT = 50


@dataclass(frozen=True, slots=True)
class Quote:
    """The worst-case cost of a call, how it was computed, and how the caller could lower it."""

    estimate: Decimal
    breakdown: str
    ways_to_lower: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BudgetView:
    """A session's budget as reported to the model."""

    limit: Decimal
    spent: Decimal
    reserved: Decimal
    unverified: Decimal

    @property
    def remaining(self) -> Decimal:
        """What a new call may still reserve."""
        return max(self.limit - self.spent - self.reserved - self.unverified, _ZERO)


@dataclass(frozen=True, slots=True)
class Receipt:
    """What one tool call cost; every result carries one and the session keeps the newest."""

    tool: str
    estimated: Decimal
    charged: Decimal
    cache_hits: int
    unverified: Decimal
    session_spent: Decimal
    session_remaining: Decimal
    at: str

    def to_json(self) -> dict[str, Any]:
        """Plain JSON, credits as decimal strings."""
        return {k: (format_credits(v) if isinstance(v, Decimal) else v) for k, v in asdict(self).items()}


class Reservation:
    """Credits held for one call until it settles; use as `async with budget.reserve(...) as reservation`."""

    def __init__(self, budget: Budget, session_key: str, quote: Quote) -> None:
        self._budget = budget
        self._session_key = session_key
        self.quote = quote
        self.id = uuid.uuid4().hex
        self.charged = _ZERO
        self.unverified = _ZERO
        self._open = False

    def charge(self, credits: Decimal) -> None:
        """Record credits the upstream billed; settled when the reservation closes."""
        self.charged += credits
        if self.charged > self.quote.estimate:
            logger.warning("upstream charged %s, above the estimate %s", self.charged, self.quote.estimate)

    def charge_unverified(self, credits: Decimal) -> None:
        """Record credits that may have been billed (no answer came back); they stay counted as spent."""
        self.unverified += credits

    @property
    def unused(self) -> Decimal:
        """What is still held and not yet charged."""
        return max(self.quote.estimate - self.charged - self.unverified, _ZERO)

    async def __aenter__(self) -> Reservation:
        accounts = self._budget.accounts(self._session_key)
        outcome = await self._budget.store.reserve(
            self.id, self.quote.estimate, accounts, ttl_seconds=self._budget.reservation_ttl
        )
        if not outcome.granted:
            raise self._budget.exceeded(self.quote, outcome.remaining)
        self._open = True
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._open:
            return
        self._open = False
        with anyio.CancelScope(shield=True):
            await self._budget.store.settle(self.id, self.charged, self.unverified)


class Budget:
    """Budgets keyed by session, over a `StateStore`."""

    def __init__(self, store: StateStore, *, session_limit: Decimal, reservation_ttl: float = 900.0) -> None:
        self.store = store
        self.session_limit = session_limit
        self.reservation_ttl = reservation_ttl

    def accounts(self, session_key: str) -> list[Account]:
        """Every account a call of this session is charged to."""
        return [Account(f"session:{session_key}", self.session_limit)]

    def reserve(self, session_key: str, quote: Quote) -> Reservation:
        """A reservation of `quote.estimate`; entering it raises `BudgetExceededError` when it does not fit."""
        return Reservation(self, session_key, quote)

    async def view(self, session_key: str) -> BudgetView:
        """The session's current books."""
        snapshot = await self.store.read(f"session:{session_key}")
        return BudgetView(self.session_limit, snapshot.spent, snapshot.reserved, snapshot.unverified)

    def exceeded(self, quote: Quote, remaining: Decimal) -> BudgetExceededError:
        """The refusal for a quote that does not fit: estimate, what is left, and how to spend less."""
        lower = f" To spend less: {'; '.join(quote.ways_to_lower)}." if quote.ways_to_lower else ""
        return BudgetExceededError(
            f"Refused before spending anything: this call could cost up to {format_credits(quote.estimate)} credits "
            f"({quote.breakdown}), but only {format_credits(remaining)} of the session budget of "
            f"{format_credits(self.session_limit)} credits remain.{lower} The operator can raise "
            "PERSON_ENRICH_SESSION_BUDGET.",
            estimate=quote.estimate,
            remaining=remaining,
        )

    async def record(
        self, session_key: str, *, tool: str, quote: Quote, charged: Decimal, unverified: Decimal, cache_hits: int
    ) -> Receipt:
        """Write the receipt of a finished call and return it with the session's new totals."""
        view = await self.view(session_key)
        receipt = Receipt(
            tool=tool,
            estimated=quote.estimate,
            charged=charged,
            cache_hits=cache_hits,
            unverified=unverified,
            session_spent=view.spent,
            session_remaining=view.remaining,
            at=datetime.fromtimestamp(time.time(), UTC).isoformat(timespec="seconds"),
        )
        with anyio.CancelScope(shield=True):
            await self.store.add_receipt(f"session:{session_key}", receipt.to_json(), RECEIPTS_KEPT)
        return receipt

    async def receipts(self, session_key: str, limit: int = 10) -> list[dict[str, Any]]:
        """The session's newest receipts, oldest first."""
        return await self.store.receipts(f"session:{session_key}", limit)
