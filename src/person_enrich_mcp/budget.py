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
from person_enrich_mcp.metrics import Metrics
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
class Owner:
    """Who a call is charged to: its session, and the authenticated principal behind it (if any)."""

    session: str
    principal: str | None = None


@dataclass(frozen=True, slots=True)
class WindowView:
    """A principal's rolling-window budget."""

    principal: str
    limit: Decimal
    window_seconds: float
    committed: Decimal

    @property
    def remaining(self) -> Decimal:
        """What a new call of this principal may still reserve."""
        return max(self.limit - self.committed, _ZERO)


@dataclass(frozen=True, slots=True)
class BudgetView:
    """A session's budget as reported to the model (and its principal's window, over HTTP)."""

    limit: Decimal
    spent: Decimal
    reserved: Decimal
    unverified: Decimal
    window: WindowView | None = None

    @property
    def remaining(self) -> Decimal:
        """What a new call may still reserve: the tighter of the session and the principal window."""
        session = max(self.limit - self.spent - self.reserved - self.unverified, _ZERO)
        return session if self.window is None else min(session, self.window.remaining)


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

    def __init__(self, budget: Budget, owner: Owner, quote: Quote) -> None:
        self._budget = budget
        self._owner = owner
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
        accounts = self._budget.accounts(self._owner)
        outcome = await self._budget.store.reserve(
            self.id, self.quote.estimate, accounts, ttl_seconds=self._budget.reservation_ttl
        )
        metrics = self._budget.metrics
        if not outcome.granted:
            by_window = outcome.refused_by != accounts[0].key
            metrics.inc("person_enrich_budget_refusals_total", reason="principal_window" if by_window else "session")
            raise self._budget.exceeded(self.quote, outcome.remaining, by_window=by_window)
        metrics.inc("person_enrich_credits_reserved_total", float(self.quote.estimate))
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
        self._budget.metrics.inc("person_enrich_credits_charged_total", float(self.charged))
        if self.unverified:
            self._budget.metrics.inc("person_enrich_credits_unverified_total", float(self.unverified))


class Budget:
    """Budgets per session, and per authenticated principal over a rolling window, over a `StateStore`."""

    def __init__(
        self,
        store: StateStore,
        *,
        session_limit: Decimal,
        principal_limit: Decimal | None = None,
        principal_window_seconds: float = 86_400.0,
        reservation_ttl: float = 900.0,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.metrics = metrics if metrics is not None else Metrics()
        self.session_limit = session_limit
        self.principal_limit = principal_limit
        self.principal_window_seconds = principal_window_seconds
        self.reservation_ttl = reservation_ttl

    def _session(self, owner: Owner) -> Account:
        return Account(f"session:{owner.session}", self.session_limit)

    def _window(self, owner: Owner) -> Account | None:
        if owner.principal is None or self.principal_limit is None:
            return None
        return Account(f"principal:{owner.principal}", self.principal_limit, self.principal_window_seconds)

    def accounts(self, owner: Owner) -> list[Account]:
        """Every account a call of this owner is charged to, the session first."""
        window = self._window(owner)
        return [self._session(owner)] if window is None else [self._session(owner), window]

    def reserve(self, owner: Owner, quote: Quote) -> Reservation:
        """A reservation of `quote.estimate`; entering it raises `BudgetExceededError` when it does not fit."""
        return Reservation(self, owner, quote)

    async def view(self, owner: Owner) -> BudgetView:
        """The session's current books, and the principal's window when there is one."""
        snapshot = await self.store.read(self._session(owner))
        window = self._window(owner)
        window_view = None
        if window is not None and owner.principal is not None:
            books = await self.store.read(window)
            window_view = WindowView(owner.principal, window.limit, self.principal_window_seconds, books.committed)
        return BudgetView(self.session_limit, snapshot.spent, snapshot.reserved, snapshot.unverified, window_view)

    def exceeded(self, quote: Quote, remaining: Decimal, *, by_window: bool = False) -> BudgetExceededError:
        """The refusal for a quote that does not fit: estimate, what is left, and how to spend less."""
        lower = f" To spend less: {'; '.join(quote.ways_to_lower)}." if quote.ways_to_lower else ""
        if by_window and self.principal_limit is not None:
            hours = self.principal_window_seconds / 3600
            whose = (
                f"of your rolling {hours:g}-hour budget of {format_credits(self.principal_limit)} credits (shared by "
                "all your sessions)"
            )
            raise_it = "PERSON_ENRICH_PRINCIPAL_BUDGET"
        else:
            whose = f"of the session budget of {format_credits(self.session_limit)} credits"
            raise_it = "PERSON_ENRICH_SESSION_BUDGET"
        return BudgetExceededError(
            f"Refused before spending anything: this call could cost up to {format_credits(quote.estimate)} credits "
            f"({quote.breakdown}), but only {format_credits(remaining)} {whose} remain.{lower} The operator can "
            f"raise {raise_it}.",
            estimate=quote.estimate,
            remaining=remaining,
        )

    async def record(
        self, owner: Owner, *, tool: str, quote: Quote, charged: Decimal, unverified: Decimal, cache_hits: int
    ) -> Receipt:
        """Write the receipt of a finished call and return it with the session's new totals."""
        view = await self.view(owner)
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
            await self.store.add_receipt(f"session:{owner.session}", receipt.to_json(), RECEIPTS_KEPT)
        self.metrics.inc("person_enrich_tool_calls_total", tool=tool, outcome="ok")
        if cache_hits:
            self.metrics.inc("person_enrich_cache_hits_total", cache_hits)
        return receipt

    async def receipts(self, owner: Owner, limit: int = 10) -> list[dict[str, Any]]:
        """The session's newest receipts, oldest first."""
        return await self.store.receipts(f"session:{owner.session}", limit)
