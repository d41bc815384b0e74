"""The data a look-up carries from planning to fetching to the result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from person_enrich_mcp.account import AccountView
from person_enrich_mcp.api import EnrichMatch, MatchType
from person_enrich_mcp.api.routes import Route
from person_enrich_mcp.budget import Quote
from person_enrich_mcp.cache import CachedEntry, CachedLookup
from person_enrich_mcp.errors import PersonEnrichError
from person_enrich_mcp.fields import FieldSelection
from person_enrich_mcp.identifiers import IdentifierBatch

Kind = Literal["url", "email"]
MATCH_TYPES: dict[Kind, MatchType] = {"url": "professional_network_profile_url", "email": "business_email"}


@dataclass(slots=True)
class Lookup:
    """What a caller asked to enrich, after validation."""

    kind: Kind
    batch: IdentifierBatch
    selection: FieldSelection
    min_score: float | None = None
    force_fetch: bool = False
    enrich_realtime: bool = False

    @property
    def live(self) -> bool:
        """A fresh fetch was asked for: the cache is not read, and profiles come from Live Enrich."""
        return self.force_fetch or self.enrich_realtime


@dataclass(slots=True)
class Need:
    """One identifier the cache cannot answer: the paths to fetch, how, and the cached part to merge with."""

    identifier: str
    paths: tuple[str, ...]
    route: Route
    cached: CachedEntry | None = None


@dataclass(slots=True)
class Plan:
    """What the cache answers, what must be fetched and how, and the worst case of it."""

    lookup: Lookup
    view: AccountView
    hits: dict[str, CachedLookup]
    needs: list[Need]
    quote: Quote
    # Identifiers on the opt-out list (normalised -> as given): never sent, never charged.
    suppressed: dict[str, str] = field(default_factory=dict[str, str])

    @property
    def to_fetch(self) -> int:
        """How many identifiers go upstream."""
        return len(self.needs)


@dataclass(slots=True)
class Fetched:
    """What came back from upstream, per normalised identifier, and whether a request failed part-way."""

    matches: dict[str, list[EnrichMatch]] = field(default_factory=dict[str, list[EnrichMatch]])
    failure: PersonEnrichError | None = None
    # (identifier, reason) for look-ups that came back incomplete without a failed request
    problems: list[tuple[str, str]] = field(default_factory=list[tuple[str, str]])
    # Identifiers whose person turned out to be on the opt-out list (by a URL or email the upstream returned)
    withheld: set[str] = field(default_factory=set[str])
    # Other people dropped for the opt-out list (further candidates of an email look-up)
    dropped: int = 0

    def drop_candidates(self, identifier: str, had: int, kept: int) -> None:
        """Record that `had - kept` of an identifier's candidates were on the opt-out list."""
        if had and not kept:
            self.withheld.add(identifier)
        else:
            self.dropped += had - kept
