"""What a request can cost (the worst case, reserved before the call) and what an answer did cost.

Prices follow reference Part 1, item 4: per matched profile, base 1 credit, add-ons by the requested
contact and dev-platform fields, at most 7; search 0.03 per result returned; live look-ups
(`enrich_realtime` / `force_fetch`) are undocumented, so they are reserved at the cap.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from person_enrich_mcp.fields import FieldSelection

BASE_PROFILE = Decimal(1)
PROFILE_CAP = Decimal(7)
LIVE_PROFILE = PROFILE_CAP
SEARCH_PER_RESULT = Decimal("0.03")

# Each add-on is charged once per matched profile when the selection asks for anything at or under its path
# (so the whole `contact` group triggers all three contact add-ons).
ADDONS: dict[str, Decimal] = {
    "contact.business_emails": Decimal(1),
    "contact.personal_emails": Decimal(2),
    "contact.phone_numbers": Decimal(2),
    "dev_platform_profiles": Decimal(1),
}


def addon_for_path(path: str) -> Decimal:
    """The add-on credits a path triggers on its own (a group counts every add-on inside it)."""
    return _addons(FieldSelection((path,)))


@lru_cache(maxsize=1024)  # a few distinct selections, priced several times a call
def _addons(selection: FieldSelection) -> Decimal:
    return sum((price for addon, price in ADDONS.items() if selection.touches(addon)), start=Decimal(0))


def profile_cost(selection: FieldSelection, *, live: bool = False) -> Decimal:
    """Credits for one matched profile with this selection."""
    if live:
        return LIVE_PROFILE
    return min(BASE_PROFILE + _addons(selection), PROFILE_CAP)


def enrich_worst_case(identifiers: int, selection: FieldSelection, *, live: bool = False) -> Decimal:
    """The most an enrich of `identifiers` look-ups can cost: every one matches."""
    return profile_cost(selection, live=live) * identifiers


def search_cost(results: int) -> Decimal:
    """Credits for a search page that returned `results` profiles."""
    return SEARCH_PER_RESULT * results


def to_credits(value: float | int | str | Decimal) -> Decimal:
    """Convert a JSON number or header value to exact credits (via its decimal text, never binary float)."""
    return Decimal(str(value)) if not isinstance(value, Decimal) else value
