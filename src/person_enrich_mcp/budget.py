"""Per-session credit budgets: quote, reserve, settle or release, and receipts.

A session is what one client holds: the process (stdio), a legacy HTTP session of one principal, or, for a
client without a session (the 2026-07-28 protocol), the principal's rolling session window. Every HTTP session
is keyed by its principal too, so no principal can reach or spend another's.

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
from person_enrich_mcp.state import Account, Release, StateStore
from person_enrich_mcp.tracing import NO_TRACING, Tracer

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
    """Who a call is charged to: its session, and the principal behind it (if any).

    `rolling`: the session is a client without one (2026-07-28 over HTTP), so its budget rolls over the session
    window instead of lasting as long as a connection.
    """

    session: str
    principal: str | None = None
    rolling: bool = False

    @classmethod
    def legacy(cls, principal: str, session_id: str) -> Owner:
        """A legacy HTTP session the SDK opened for `principal` (its `Mcp-Session-Id`)."""
        return cls(f"http:{principal}:{session_id}", principal)

    @classmethod
    def sessionless(cls, principal: str) -> Owner:
        """A principal's calls without a session: one rolling session budget per principal."""
        return cls(f"http:{principal}", principal, rolling=True)


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


def span(seconds: float) -> str:
    """A window length as an adjective: "24-hour", "90-minute", "5-second"."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}-hour"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}-minute"
    return f"{seconds:g}-second"


def duration(seconds: float) -> str:
    """A wait, rounded up, for a person: "45 s", "12 min", "3 h 5 min"."""
    whole = max(int(-(-seconds // 1)), 1)
    if whole < 120:
        return f"{whole} s"
    minutes = -(-whole // 60)
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min" if minutes % 60 else f"{minutes // 60} h"


def _frees_up(estimate: Decimal, remaining: Decimal, limit: Decimal, releases: list[Release]) -> str:
    """When a rolling budget frees up: the next release, and when this call would fit (if it ever can)."""
    if not releases:
        return " Nothing frees up until the calls in progress finish."
    first = releases[0]
    text = f" {format_credits(first.amount)} credits free up in {duration(first.after_seconds)}"
    if estimate > limit:
        return text + "; this call is larger than the whole budget."
    available = remaining
    for release in releases:
        available += release.amount
        if available >= estimate:
            if release is first:
                return text + ", enough for this call."
            return text + f"; enough for this call in {duration(release.after_seconds)}."
    return text + "."


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
        tracer = self._budget.tracer
        metrics = self._budget.metrics
        principal = metrics.principal(self._owner.principal) if self._owner.principal is not None else None
        with tracer.span("person_enrich.reserve", estimate=self.quote.estimate, principal=principal) as span:
            accounts = self._budget.accounts(self._owner)
            outcome = await self._budget.store.reserve(
                self.id, self.quote.estimate, accounts, ttl_seconds=self._budget.reservation_ttl
            )
            span.set(granted=outcome.granted, remaining=outcome.remaining)
            if not outcome.granted:
                refused = next(a for a in accounts if a.key == outcome.refused_by)
                by_window = refused is not accounts[0]
                reason = "principal_window" if by_window else "session_window" if self._owner.rolling else "session"
                span.set(reason=reason)
                metrics.inc("person_enrich_budget_refusals_total", reason=reason)
                if principal is not None:
                    metrics.inc("person_enrich_principal_refusals_total", principal=principal)
                releases = await self._budget.store.releases(refused)
                raise self._budget.exceeded(
                    self.quote, outcome.remaining, by_window=by_window, rolling=self._owner.rolling, releases=releases
                )
        metrics.inc("person_enrich_credits_reserved_total", float(self.quote.estimate))
        self._open = True
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._open:
            return
        self._open = False
        with (
            self._budget.tracer.span(
                "person_enrich.settle", estimate=self.quote.estimate, charged=self.charged,
                unverified=self.unverified, released=self.unused,
            ),
            anyio.CancelScope(shield=True),
        ):  # fmt: skip
            await self._budget.store.settle(self.id, self.charged, self.unverified)
        metrics = self._budget.metrics
        metrics.inc("person_enrich_credits_charged_total", float(self.charged))
        if self._owner.principal is not None:
            metrics.inc(
                "person_enrich_principal_credits_charged_total",
                float(self.charged),
                principal=metrics.principal(self._owner.principal),
            )
        if self.unverified:
            metrics.inc("person_enrich_credits_unverified_total", float(self.unverified))


class Budget:
    """Budgets per session, and per authenticated principal over a rolling window, over a `StateStore`."""

    def __init__(
        self,
        store: StateStore,
        *,
        session_limit: Decimal,
        principal_limit: Decimal | None = None,
        principal_window_seconds: float = 86_400.0,
        session_window_seconds: float = 3_600.0,
        reservation_ttl: float = 900.0,
        metrics: Metrics | None = None,
        tracer: Tracer = NO_TRACING,
    ) -> None:
        self.store = store
        self.metrics = metrics if metrics is not None else Metrics()
        self.tracer = tracer
        self.session_limit = session_limit
        self.principal_limit = principal_limit
        self.principal_window_seconds = principal_window_seconds
        self.session_window_seconds = session_window_seconds
        self.reservation_ttl = reservation_ttl

    def _session(self, owner: Owner) -> Account:
        window = self.session_window_seconds if owner.rolling else None
        return Account(f"session:{owner.session}", self.session_limit, window)

    async def session_ended(self, owner: Owner) -> None:
        """Forget the books of a session that has ended (its spend stays in the principal's window).

        A session with a call still in flight keeps its books; they are forgotten once nobody writes to them.
        """
        await self.store.forget(self._session(owner).key)

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

    def exceeded(
        self,
        quote: Quote,
        remaining: Decimal,
        *,
        by_window: bool = False,
        rolling: bool = False,
        releases: list[Release] | None = None,
    ) -> BudgetExceededError:
        """The refusal for a quote that does not fit: which limit, what is left, when spend frees up, how to
        spend less, and who can raise the limit."""
        lower = f" To spend less: {'; '.join(quote.ways_to_lower)}." if quote.ways_to_lower else ""
        frees = ""
        if by_window and self.principal_limit is not None:
            whose = (
                f"of your rolling {span(self.principal_window_seconds)} budget of "
                f"{format_credits(self.principal_limit)} credits (shared by all your sessions)"
            )
            raise_it = "PERSON_ENRICH_PRINCIPAL_BUDGET"
            frees = _frees_up(quote.estimate, remaining, self.principal_limit, releases or [])
        elif rolling:
            whose = (
                f"of this client's session budget of {format_credits(self.session_limit)} credits per "
                f"{span(self.session_window_seconds)} window (a client without a session)"
            )
            raise_it = "PERSON_ENRICH_SESSION_BUDGET (or shorten PERSON_ENRICH_SESSION_WINDOW)"
            frees = _frees_up(quote.estimate, remaining, self.session_limit, releases or [])
        else:
            whose = f"of the session budget of {format_credits(self.session_limit)} credits"
            raise_it = "PERSON_ENRICH_SESSION_BUDGET"
            frees = " A session's spend does not free up."
        return BudgetExceededError(
            f"Refused before spending anything: this call could cost up to {format_credits(quote.estimate)} credits "
            f"({quote.breakdown}), but only {format_credits(remaining)} {whose} remain.{frees}{lower} The operator "
            f"can raise {raise_it}.",
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
