"""The sandbox's price tables, for both revisions, and the per-account prices a plan can set.

The sandbox keeps its own copy of every price on purpose: it must be able to disagree with the MCP server.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from person_enrich_mcp.sandbox.endpoints import (
    AUTOCOMPLETE_PATH,
    CONTACT_PATH,
    ENRICH_PATH,
    LIVE_PATH,
    SEARCH_PATH,
)
from person_enrich_mcp.sandbox.plans import EndpointPlan

# --- the overview revision (/person/enrich did everything) -----------------------------------------------

OVERVIEW_BASE_CREDITS = Decimal(1)
OVERVIEW_MAX_CREDITS = Decimal(7)
OVERVIEW_REALTIME_CREDITS = Decimal(7)
OVERVIEW_CONTACT_ADD_ONS: dict[str, Decimal] = {
    "contact.business_emails": Decimal(1),
    "contact.personal_emails": Decimal(2),
    "contact.phone_numbers": Decimal(2),
}
OVERVIEW_DEV_PLATFORM_ADD_ON = Decimal(1)
SEARCH_CREDITS_PER_PROFILE = Decimal("0.03")

# --- today's revision ------------------------------------------------------------------------------------

# n8n resources/person/contact-enrich.ts: "+0.5 per matched person who receives at least one" address.
VERIFIED_SURCHARGE = Decimal("0.5")


@dataclass(frozen=True, slots=True)
class PriceList:
    """An endpoint's prices: a base per billed unit, extras per premium field, and an optional cap per unit."""

    base: Decimal
    premium: Mapping[str, Decimal]
    cap: Decimal | None = None

    def unit_cost(self, fields: Iterable[str]) -> Decimal:
        """Base plus the premium of every premium field that `fields` touches, capped when a cap applies."""
        names = list(fields)
        cost = self.base + sum(
            (price for premium, price in self.premium.items() if any(touches(premium, f) for f in names)),
            Decimal(0),
        )
        return cost if self.cap is None else min(cost, self.cap)


DOCUMENTED_PRICES: dict[str, PriceList] = {
    # docs /person-docs/enrich: base 1, +1 for developer-platform data, max 2.
    ENRICH_PATH: PriceList(Decimal(1), {"dev_platform_profiles": Decimal(1)}, Decimal(2)),
    # n8n README and contact-enrich.ts: no base fee, per tier returned, capped at 5 (websites are free).
    CONTACT_PATH: PriceList(
        Decimal(0),
        {
            "contact.business_emails": Decimal(1),
            "contact.personal_emails": Decimal(2),
            "contact.phone_numbers": Decimal(2),
        },
        Decimal(5),
    ),
    # crowd.dev: "Live enrich costs 7 credits per profile".
    LIVE_PATH: PriceList(Decimal(7), {}),
    SEARCH_PATH: PriceList(SEARCH_CREDITS_PER_PROFILE, {}),
    AUTOCOMPLETE_PATH: PriceList(Decimal(0), {}),
}


def price_list(path: str, terms: EndpointPlan) -> PriceList:
    """The prices a key pays on one endpoint: the plan's where it sets them (then uncapped), else the documented."""
    documented = DOCUMENTED_PRICES[path]
    if not terms.overrides_prices:
        return documented
    base = documented.base if terms.base_credits is None else terms.base_credits
    premium = documented.premium if terms.premium_fields is None else terms.premium_fields
    return PriceList(base, premium)


def touches(first: str, second: str) -> bool:
    """Whether two dot-paths overlap: equal, or one is inside the other."""
    return first == second or first.startswith(second + ".") or second.startswith(first + ".")


def overview_enrich_unit_cost(fields: Sequence[str] | None, *, default_fields: str, realtime: bool) -> Decimal:
    """Overview pricing per matched identifier: base 1 plus add-ons named by the requested fields, capped at 7."""
    if realtime:
        return OVERVIEW_REALTIME_CREDITS
    if fields is None:
        return OVERVIEW_MAX_CREDITS if default_fields == "all" else OVERVIEW_BASE_CREDITS
    cost = OVERVIEW_BASE_CREDITS
    for add_on, price in OVERVIEW_CONTACT_ADD_ONS.items():
        if any(f == "contact" or f == add_on or f.startswith(add_on + ".") for f in fields):
            cost += price
    if any(f == "dev_platform_profiles" or f.startswith("dev_platform_profiles.") for f in fields):
        cost += OVERVIEW_DEV_PLATFORM_ADD_ON
    return min(cost, OVERVIEW_MAX_CREDITS)


def json_number(amount: Decimal) -> int | float:
    """A credit amount as a JSON number, the way the upstream's account endpoints send them."""
    if amount == amount.to_integral_value():
        return int(amount)
    return float(amount)
