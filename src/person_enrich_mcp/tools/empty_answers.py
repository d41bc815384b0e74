"""The truth about paid look-ups that came back empty: which requested fields were empty, and what they cost.

A look-up can match a person and still return none of what was asked (no phone number on file). Whether that was
charged depends on the API revision: today's contact enrich bills each contact tier only when it is returned, while
the overview's single enrich bills every field that was requested. The result says which rule applied, per call.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from person_enrich_mcp.api import Dialect
from person_enrich_mcp.api.routes import is_contact
from person_enrich_mcp.errors import format_credits
from person_enrich_mcp.fields import FieldSelection, project
from person_enrich_mcp.pricing import PriceTable

_RULES = {
    Dialect.CURRENT: "today's API bills contact tiers only when they are returned, and a profile per match",
    Dialect.OVERVIEW: "this API revision bills the fields requested, whether or not they are returned",
}


def _priced(path: str, prices: PriceTable) -> Decimal:
    """The add-on a path carries on its own (a contact tier, developer-platform data)."""
    return prices.enrich.addon(path) + (prices.contact.addon(path) if prices.dialect is Dialect.CURRENT else 0)


def missing_paths(projected: dict[str, Any], selection: FieldSelection, prices: PriceTable) -> list[str]:
    """Requested paths that came back empty and matter: every one when nothing came back, else the priced ones."""
    if not projected:
        return list(selection.paths)
    return [
        path for path in selection.paths if _priced(path, prices) and not project(projected, FieldSelection((path,)))
    ]


def charged_for(
    missing: list[str], *, everything_missing: bool, selection: FieldSelection, prices: PriceTable
) -> Decimal:
    """What the price list charges for a matched person's empty fields under the revision's billing rule."""
    if prices.dialect is Dialect.OVERVIEW:
        return (
            prices.enrich.of(selection.paths)
            if everything_missing
            else sum((prices.enrich.addon(p) for p in missing), Decimal(0))
        )
    # Today: contact tiers are billed per tier returned (nothing for an empty one); profile sections per match.
    profile = tuple(p for p in selection.paths if not is_contact(p))
    if everything_missing:
        return prices.enrich.of(profile) if profile else Decimal(0)
    return sum((prices.enrich.addon(p) for p in missing if not is_contact(p)), Decimal(0))


@dataclass(slots=True)
class EmptyAnswers:
    """Tally of one call's fetched people whose requested fields came back empty."""

    selection: FieldSelection
    prices: PriceTable
    counts: Counter[str] = field(default_factory=Counter[str])
    nothing: int = 0
    charged: Decimal = Decimal(0)

    def add(self, projected: dict[str, Any], *, fetched: bool = True) -> list[str] | None:
        """The `missing` list to show on one person (None when nothing is missing); a person this call fetched (not
        one served from the cache) is also counted for the note on what the empty fields cost."""
        missing = missing_paths(projected, self.selection, self.prices)
        if not missing or not fetched:
            return missing or None
        everything = not projected
        self.nothing += everything
        self.counts.update(missing)
        self.charged += charged_for(
            missing, everything_missing=everything, selection=self.selection, prices=self.prices
        )
        return missing

    def note(self) -> str | None:
        """One sentence: what came back empty for how many people, the billing rule, and what it cost."""
        if not self.counts:
            return None
        parts = [f"{path} for {count} {'person' if count == 1 else 'people'}" for path, count in self.counts.items()]
        nothing = f" ({self.nothing} matched but returned none of the fields asked for)" if self.nothing else ""
        cost = (
            f"{format_credits(self.charged)} credits of this call were for them by the price list"
            if self.charged
            else "nothing was charged for them"
        )
        return (
            f"Came back empty (see each person's missing): {'; '.join(parts)}{nothing}. Billing: "
            f"{_RULES[self.prices.dialect]}, so {cost}."
        )
