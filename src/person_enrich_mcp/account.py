"""What this key may do, learned for free: dialect, enabled endpoints, disabled fields, rate limits, prices, balance.

`GET /account/endpoints` (filtered to the person category) and `GET /user/credits` cost nothing (docs
`/general/permissions`, `/general/credits`). They are read on first use, again when older than the refresh
interval or after a 403, and the balance more often. Where they are not served (an upstream of the overview's
revision, or a key without access to them) the server falls back to configuration and the documented tables and
says so once in the log.

Which dialect the upstream speaks is decided for free too: a listing that names `/person/contact/enrich` means
today's split endpoints; a listing without it means the overview's single enrich; without a listing, an empty
request to `/person/contact/enrich` tells (a 400 means it exists, a 404 that it does not; neither is billed). The
answer is remembered in the state store, so replicas share it; an operator can pin it instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Literal

import anyio

from person_enrich_mcp.api import (
    ACCOUNT,
    AUTOCOMPLETE,
    CONTACT,
    ENRICH,
    LIVE,
    SEARCH,
    AccountListing,
    Dialect,
    EndpointListing,
    PersonAPI,
    contract,
)
from person_enrich_mcp.errors import APIError, AuthenticationError, PersonEnrichError
from person_enrich_mcp.pricing import Price, PriceTable
from person_enrich_mcp.state import StateStore

logger = logging.getLogger(__name__)

ENDPOINT_NAMES: dict[str, str] = {path: name for name, path in contract.PATHS.items()}
# How long a decided dialect is remembered in the store (replicas and restarts reuse it).
DIALECT_MEMORY_SECONDS = 86_400.0

Source = Literal["account", "configuration"]
# How the dialect was decided: pinned by the operator, read from the listing, remembered in the store, probed
# with a free empty request, or assumed (today's) because nothing answered either way.
DialectSource = Literal["pinned", "listing", "remembered", "probe", "assumed"]


@dataclass(frozen=True, slots=True)
class EndpointAccess:
    """What the account listing says about one person endpoint."""

    name: str
    path: str
    enabled: bool
    rate_limit_rpm: int | None
    disabled_fields: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class AccountView:
    """Everything the server knows about the account right now."""

    dialect: Dialect
    source: Source
    prices: PriceTable
    dialect_source: DialectSource = "assumed"
    endpoints: Mapping[str, EndpointAccess] = field(default_factory=dict[str, EndpointAccess])
    token_limit_rpm: int | None = None
    balance: Decimal | None = None
    note: str | None = None

    def access(self, name: str) -> EndpointAccess | None:
        """The listing's entry for an endpoint, or None when the account listing is not known."""
        return self.endpoints.get(name)

    def enabled(self, name: str) -> bool:
        """Whether the endpoint may be called (assumed so when the listing is not known)."""
        entry = self.endpoints.get(name)
        return entry is None or entry.enabled

    def disabled_fields(self, name: str) -> frozenset[str]:
        """Response fields the plan withholds on an endpoint."""
        entry = self.endpoints.get(name)
        return entry.disabled_fields if entry is not None else frozenset()


def _rpm(value: float | None) -> int | None:
    if value is None or value <= 0:
        return None
    return max(int(value), 1)


def _price_from(entry: EndpointListing | None, documented: Price) -> tuple[Price, bool]:
    """The account's own price for an endpoint where it lists one (no documented cap then), else the table's."""
    if entry is None or (entry.base_credits is None and not entry.premium_fields):
        return documented, False
    addons = {p.field: p.credits for p in entry.premium_fields} if entry.premium_fields else dict(documented.addons)
    base = entry.base_credits if entry.base_credits is not None else documented.base
    return Price(base, addons, None), True


def prices_from(listing: AccountListing, dialect: Dialect) -> PriceTable:
    """The documented table with every price the listing states replaced by the account's own."""
    table = PriceTable.documented(dialect)
    by_path = {e.path: e for e in listing.endpoints}
    enrich, e1 = _price_from(by_path.get(contract.PATHS[ENRICH]), table.enrich)
    contact_price, e2 = _price_from(by_path.get(contract.PATHS[CONTACT]), table.contact)
    live, e3 = _price_from(by_path.get(contract.PATHS[LIVE]), table.live)
    search = by_path.get(contract.PATHS[SEARCH])
    per_result = search.base_credits if search is not None and search.base_credits is not None else None
    if per_result is not None and search is not None:
        # Premium fields of search are priced per result too. Every search asks for profile URLs, so theirs is in the
        # base; the fields a search-only call adds are priced from `search_premiums` (`PriceTable.search_row`).
        per_result += sum((p.credits for p in search.premium_fields if _covers_profile_url(p.field)), Decimal(0))
    listed = e1 or e2 or e3 or per_result is not None
    suggest = by_path.get(contract.PATHS[AUTOCOMPLETE])
    per_call = suggest.base_credits if suggest is not None and suggest.base_credits is not None else Decimal(0)
    return replace(
        table,
        enrich=enrich,
        contact=contact_price,
        live=live,
        search_per_result=per_result if per_result is not None else table.search_per_result,
        search_premiums={p.field: p.credits for p in search.premium_fields} if search is not None else {},
        autocomplete_per_call=per_call,
        source="account" if listed else "documented",
    )


def _covers_profile_url(path: str) -> bool:
    wanted = "social_handles.professional_network_identifier.profile_url"
    return wanted == path or wanted.startswith(path + ".")


def _endpoint_access(listing: AccountListing) -> dict[str, EndpointAccess]:
    found: dict[str, EndpointAccess] = {}
    for entry in listing.endpoints:
        name = ENDPOINT_NAMES.get(entry.path)
        if name is None:
            continue
        disabled: frozenset[str] = frozenset(entry.fields.disabled if entry.fields is not None else ())
        found[name] = EndpointAccess(name, entry.path, entry.enabled, _rpm(entry.effective_rate_limit_rpm), disabled)
    return found


def dialect_of(listing: AccountListing) -> Dialect | None:
    """Today's dialect when the listing names contact enrich; the overview's when it names person endpoints
    without it; None when it names none (a category spelled differently, say)."""
    paths = {e.path for e in listing.endpoints}
    if contract.PATHS[CONTACT] in paths:
        return Dialect.CURRENT
    if paths & set(contract.PATHS.values()):
        return Dialect.OVERVIEW
    return None


class AccountService:
    """Reads the account for free, keeps the answer fresh, and paces the limiter at the account's real limits."""

    def __init__(
        self,
        api: PersonAPI,
        store: StateStore,
        *,
        scope: str,
        pinned: Dialect | None = None,
        configured_rpm: Mapping[str, int | None] | None = None,
        refresh_seconds: float = 600.0,
        balance_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = api
        self._store = store
        self._scope = scope
        self._pinned = pinned
        self._configured = dict(configured_rpm or {})
        self._refresh_seconds = refresh_seconds
        self._balance_seconds = balance_seconds
        self._clock = clock
        self._lock = anyio.Lock()
        self._view: AccountView | None = None
        self._read_at = 0.0
        self._balance_at = 0.0
        self._warned = False
        self.apply_limits(None)

    async def view(self) -> AccountView:
        """The account as last read, refreshed first when stale.

        Raises:
            AuthenticationError: when the upstream rejects the key (nothing else is worth doing then).
        """
        now = self._clock()
        if self._view is not None and now - self._read_at < self._refresh_seconds:
            # Where the account is served, the balance is re-read more often (and again after a failed read).
            if self._view.source == "account" and now - self._balance_at >= self._balance_seconds:
                await self._refresh_balance()
            return self._view
        async with self._lock:
            if self._view is None or self._clock() - self._read_at >= self._refresh_seconds:
                self._view = await self._read()
                self._read_at = self._balance_at = self._clock()
                self.apply_limits(self._view)
        return self._view

    def invalidate(self) -> None:
        """Read the account again on next use (after a 403: the plan may have changed)."""
        self._read_at = float("-inf")

    async def forget_dialect(self) -> None:
        """The upstream answered as another revision would: decide the dialect again on the next read."""
        self.invalidate()
        await self._store.cache_put(self._dialect_key, "", 0)

    def record_denied(self, endpoint: str, fields: tuple[str, ...]) -> None:
        """Remember fields a 403 named, so the next call refuses them locally before the refresh confirms it."""
        view = self._view
        if view is None or not fields:
            return
        entry = view.endpoints.get(endpoint) or EndpointAccess(endpoint, contract.PATHS.get(endpoint, ""), True, None)
        updated = replace(entry, disabled_fields=entry.disabled_fields | frozenset(fields))
        self._view = replace(view, endpoints={**view.endpoints, endpoint: updated})

    def spent(self, credits: Decimal) -> None:
        """Lower the known balance by credits just billed, until the next read."""
        view = self._view
        if view is not None and view.balance is not None and credits > 0:
            self._view = replace(view, balance=view.balance - credits)

    def apply_limits(self, view: AccountView | None) -> None:
        """Pace each endpoint at the account's limit; configuration can only lower it."""
        limits: dict[str, int] = {}
        for name in (ENRICH, CONTACT, LIVE, SEARCH, AUTOCOMPLETE, ACCOUNT):
            entry = view.access(name) if view is not None else None
            account_rpm = entry.rate_limit_rpm if entry is not None else None
            configured = self._configured.get(name)
            candidates = [r for r in (account_rpm, configured) if r is not None]
            limits[name] = min(candidates) if candidates else contract.DOCUMENTED_RPM[name]
        total = view.token_limit_rpm if view is not None else None
        self._api.limiter.update(limits, total=total)

    # --- reading -----------------------------------------------------------------------------------------------

    async def _read(self) -> AccountView:
        listing: AccountListing | None = None
        problem: str | None = None
        try:
            listing = (await self._api.account_endpoints(category=contract.PERSON_CATEGORY)).data
        except AuthenticationError:
            raise
        except APIError as exc:
            problem = f"{contract.ACCOUNT_ENDPOINTS_PATH} is not available ({type(exc).__name__})"
        dialect, decided_by = await self._dialect(listing)
        endpoints = _endpoint_access(listing) if listing is not None else {}
        if listing is None or not endpoints:
            self._warn_once(problem or f"{contract.ACCOUNT_ENDPOINTS_PATH} lists no person endpoints")
            return AccountView(
                dialect=dialect,
                dialect_source=decided_by,
                source="configuration",
                prices=PriceTable.documented(dialect),
                balance=await self._balance(),
                note=problem or "the account listing names no person endpoints",
            )
        return AccountView(
            dialect=dialect,
            dialect_source=decided_by,
            source="account",
            prices=prices_from(listing, dialect),
            endpoints=endpoints,
            token_limit_rpm=_rpm(listing.token_limit_rpm),
            balance=await self._balance(),
        )

    async def _dialect(self, listing: AccountListing | None) -> tuple[Dialect, DialectSource]:
        if self._pinned is not None:
            return self._pinned, "pinned"
        decided = dialect_of(listing) if listing is not None else None
        source: DialectSource = "listing"
        if decided is None:
            remembered = await self._store.cache_get(self._dialect_key)
            if remembered in (Dialect.CURRENT.value, Dialect.OVERVIEW.value):
                return Dialect(remembered), "remembered"
            exists = await self._api.contact_route_exists()
            decided = None if exists is None else (Dialect.CURRENT if exists else Dialect.OVERVIEW)
            source = "probe"
        if decided is None:
            # Undecided (the upstream answered neither way): today's contract, asked again on the next read.
            logger.warning("could not tell which API revision the upstream speaks; assuming today's")
            return Dialect.CURRENT, "assumed"
        await self._store.cache_put(self._dialect_key, decided.value, DIALECT_MEMORY_SECONDS)
        logger.info("the upstream speaks the %s revision of the Person API", decided.value)
        return decided, source

    @property
    def _dialect_key(self) -> str:
        return f"dialect:{self._scope}"

    async def _balance(self) -> Decimal | None:
        try:
            return (await self._api.user_credits()).data.credits
        except AuthenticationError:
            raise
        except PersonEnrichError:
            return None

    async def _refresh_balance(self) -> None:
        self._balance_at = self._clock()
        try:
            balance = await self._balance()
        except PersonEnrichError:
            return
        if balance is not None and self._view is not None:
            self._view = replace(self._view, balance=balance)

    def _warn_once(self, problem: str) -> None:
        if not self._warned:
            self._warned = True
            logger.warning(
                "%s: using configured rate limits and the documented prices; endpoint and field access is learned "
                "from the upstream's answers instead",
                problem,
            )
