"""A cache of enriched profiles, so a repeat look-up costs nothing.

Entries are keyed by (kind, normalised identifier) and remember the field selection that was paid for: a
cached superset serves any subset, and a look-up that needs more asks the upstream only for what the entry lacks
(the two are then merged and stored together). A look-up that matched nobody is cached too (for a shorter time):
it cost nothing, but skipping it saves a round trip and a rate-limit slot. For email look-ups the entry also
remembers the `min_similarity_score` it was fetched with, and only serves requests at least as strict. Keys are
hashed, so identifiers (emails are personal data) never appear in a shared store's key space.

Search pages are cached too (by query and cursor, for at most `PAGE_TTL_SECONDS`, since the index changes):
reading the same page twice in a session should not pay 0.03 a result twice.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, cast

from person_enrich_mcp.api import EnrichMatch, SearchPage, Suggestions
from person_enrich_mcp.fields import FieldSelection, project
from person_enrich_mcp.state import StateStore

PAGE_TTL_SECONDS = 3_600.0
# Part of every hashed key: bumped when what an entry may hold changes, so a shared store never serves an entry
# written under the old rules (version 2: strings cleaned of control, bidi and zero-width characters).
ENTRY_FORMAT = "2"


@dataclass(frozen=True, slots=True)
class CachedLookup:
    """A look-up answered from the cache: the matches (empty for a known no-match)."""

    matches: list[EnrichMatch]


@dataclass(frozen=True, slots=True)
class CachedEntry:
    """What the cache holds for one identifier: the selection paid for, the threshold used, the matches.

    `profile_urls` holds, per match, the person's profile URL when it is known (email look-ups keep it, so a
    later request for more profile sections can go straight to the URL-keyed endpoint).
    """

    selection: FieldSelection
    min_score: float
    matches: list[EnrichMatch]
    profile_urls: tuple[str | None, ...] = ()

    @property
    def negative(self) -> bool:
        """A known no-match."""
        return not self.matches

    def serves(self, selection: FieldSelection, min_score: float | None) -> CachedLookup | None:
        """The answer for `selection` if this entry covers it at a threshold no stricter than asked."""
        threshold = min_score or 0.0
        if threshold < self.min_score:
            return None
        if self.negative:
            return CachedLookup([])
        if not self.selection.covers(selection):
            return None
        return CachedLookup([m for m in self.matches if m.confidence_score >= threshold])


class ProfileCache:
    """Profiles by identifier and field selection, with a TTL, over a `StateStore`."""

    def __init__(self, store: StateStore, *, scope: str, ttl_seconds: float, negative_ttl_seconds: float) -> None:
        self._store = store
        self._scope = scope
        self._ttl = ttl_seconds
        self._negative_ttl = negative_ttl_seconds

    def _key(self, kind: str, identifier: str) -> str:
        digest = hashlib.sha256(f"{ENTRY_FORMAT}\0{kind}\0{identifier}".encode()).hexdigest()[:40]
        return f"profile:{self._scope}:{digest}"

    async def entry(self, kind: str, identifier: str) -> CachedEntry | None:
        """The live entry for an identifier, if any."""
        if self._ttl <= 0:
            return None
        raw = await self._store.cache_get(self._key(kind, identifier))
        if raw is None:
            return None
        stored: dict[str, Any] = json.loads(raw)
        matches = [EnrichMatch.model_validate(m) for m in cast(list[dict[str, Any]], stored["matches"])]
        urls = tuple(cast(list[str | None], stored.get("urls") or []))
        return CachedEntry(
            FieldSelection(tuple(cast(list[str], stored["sel"]))), float(stored.get("min") or 0.0), matches, urls
        )

    async def get(
        self, kind: str, identifier: str, selection: FieldSelection, min_score: float | None
    ) -> CachedLookup | None:
        """The cached answer if it covers `selection` and was fetched at a threshold no stricter than asked."""
        entry = await self.entry(kind, identifier)
        return entry.serves(selection, min_score) if entry is not None else None

    async def put(
        self,
        kind: str,
        identifier: str,
        selection: FieldSelection,
        min_score: float | None,
        matches: list[EnrichMatch],
        *,
        profile_urls: tuple[str | None, ...] = (),
    ) -> None:
        """Remember what one identifier returned for the selection that was paid for (replacing the old entry)."""
        if self._ttl <= 0:
            return
        stored = [
            {"confidence_score": m.confidence_score, "person_data": project(m.person_data, selection)} for m in matches
        ]
        entry: dict[str, Any] = {"sel": list(selection.paths), "min": min_score or 0.0, "matches": stored}
        if any(profile_urls):
            entry["urls"] = list(profile_urls)
        ttl = self._ttl if matches else self._negative_ttl
        await self._store.cache_put(self._key(kind, identifier), json.dumps(entry, separators=(",", ":")), ttl)

    def _page_key(self, query: str) -> str:
        digest = hashlib.sha256(f"{ENTRY_FORMAT}\0page\0{query}".encode()).hexdigest()[:40]
        return f"page:{self._scope}:{digest}"

    async def get_page(self, query: str) -> SearchPage | None:
        """A search page read before for exactly this query and cursor, if still fresh."""
        if self._ttl <= 0:
            return None
        raw = await self._store.cache_get(self._page_key(query))
        return None if raw is None else SearchPage.model_validate_json(raw)

    async def put_page(self, query: str, page: SearchPage) -> None:
        """Remember a search page (the fields search_then_enrich asked for: profile URLs, or the rows it shows)."""
        if self._ttl <= 0:
            return
        await self._store.cache_put(self._page_key(query), page.model_dump_json(), min(self._ttl, PAGE_TTL_SECONDS))

    def _suggestions_key(self, field: str, query: str, limit: int) -> str:
        digest = hashlib.sha256(f"{ENTRY_FORMAT}\0suggest\0{field}\0{query}\0{limit}".encode()).hexdigest()[:40]
        return f"suggest:{self._scope}:{digest}"

    async def get_suggestions(self, field: str, query: str, limit: int) -> Suggestions | None:
        """Autocomplete values read before for this field, query and limit, if still fresh."""
        if self._ttl <= 0:
            return None
        raw = await self._store.cache_get(self._suggestions_key(field, query, limit))
        return None if raw is None else Suggestions.model_validate_json(raw)

    async def put_suggestions(self, field: str, query: str, limit: int, suggestions: Suggestions) -> None:
        """Remember autocomplete values (free to ask again, but each ask takes a rate-limit slot)."""
        if self._ttl <= 0:
            return
        key = self._suggestions_key(field, query, limit)
        await self._store.cache_put(key, suggestions.model_dump_json(), min(self._ttl, PAGE_TTL_SECONDS))
