"""What a request can cost (the worst case, reserved before the call) and what an answer did cost.

Prices are per endpoint: a base per matched person, add-ons by the fields asked for (or, for contact tiers, the
fields returned), and a cap. The documented tables (`api.contract`) are the fallback; an account's own prices
from `GET /account/endpoints` replace them where listed (`account.py` builds that table). Credits are `Decimal`
throughout: search costs 0.03 a result, and floats would drift.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from person_enrich_mcp.api import contract
from person_enrich_mcp.api.contract import Dialect

_ZERO = Decimal(0)
PROFILE_URL = "social_handles.professional_network_identifier.profile_url"


def _touches(paths: Iterable[str], addon: str) -> bool:
    """True if any path asks for data at or under `addon` (or is a group containing it)."""
    return any(p == addon or p.startswith(addon + ".") or addon.startswith(p + ".") for p in paths)


@dataclass(frozen=True, slots=True)
class Price:
    """One endpoint's prices: a base per matched person, add-ons by field, and an optional cap per person."""

    base: Decimal
    addons: Mapping[str, Decimal] = field(default_factory=dict[str, Decimal])
    cap: Decimal | None = None

    def of(self, paths: Iterable[str]) -> Decimal:
        """Credits for one matched person whose request (or answer) touches `paths`."""
        wanted = tuple(paths)
        total = self.base + sum((price for addon, price in self.addons.items() if _touches(wanted, addon)), _ZERO)
        return total if self.cap is None else min(total, self.cap)

    def addon(self, path: str) -> Decimal:
        """The add-on credits `path` triggers on its own (a group counts every add-on inside it)."""
        return sum((price for addon, price in self.addons.items() if _touches((path,), addon)), _ZERO)


Source = Literal["documented", "account"]


@dataclass(frozen=True, slots=True)
class PriceTable:
    """Every price the server quotes with, for one upstream dialect."""

    dialect: Dialect
    enrich: Price
    contact: Price
    live: Price
    search_per_result: Decimal
    verified_surcharge: Decimal
    source: Source = "documented"
    # Per-result extras of search fields the account's plan prices (`search_per_result` already holds the profile
    # URL's, the one field every search asks for).
    search_premiums: Mapping[str, Decimal] = field(default_factory=dict[str, Decimal])
    # Autocomplete is free as documented; an account's plan can price it per call.
    autocomplete_per_call: Decimal = _ZERO

    @classmethod
    def documented(cls, dialect: Dialect) -> PriceTable:
        """The upstream's published prices for `dialect` (reference: `api.contract`)."""
        if dialect is Dialect.OVERVIEW:
            enrich = Price(contract.OVERVIEW_BASE, dict(contract.OVERVIEW_ADDONS), contract.OVERVIEW_CAP)
        else:
            enrich = Price(contract.ENRICH_BASE, dict(contract.ENRICH_ADDONS), contract.ENRICH_CAP)
        return cls(
            dialect=dialect,
            enrich=enrich,
            contact=Price(contract.CONTACT_BASE, dict(contract.CONTACT_TIER_PRICES), contract.CONTACT_CAP),
            # The overview's refresh flags are undocumented in price: held at the overview's cap, which is 7 too.
            live=Price(contract.LIVE_PER_PROFILE),
            search_per_result=contract.SEARCH_PER_RESULT,
            verified_surcharge=contract.VERIFIED_SURCHARGE,
        )

    def search(self, results: int) -> Decimal:
        """Credits for a search page that returned `results` profiles."""
        return self.search_per_result * results

    def search_row(self, fields: Iterable[str]) -> Decimal:
        """Credits per result of a search that returns `fields` (the profile URL's price included)."""
        wanted = tuple(fields)
        extra = sum(
            (
                price
                for path, price in self.search_premiums.items()
                if not _touches((PROFILE_URL,), path) and _touches(wanted, path)
            ),
            _ZERO,
        )
        return self.search_per_result + extra


def to_credits(value: float | int | str | Decimal) -> Decimal:
    """Convert a JSON number or header value to exact credits (via its decimal text, never binary float)."""
    return Decimal(str(value)) if not isinstance(value, Decimal) else value
