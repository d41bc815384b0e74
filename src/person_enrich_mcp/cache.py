"""A cache of enriched profiles, so a repeat look-up costs nothing.

Entries are keyed by (kind, normalised identifier) and remember the field selection that was paid for: a
cached superset serves any subset, and a look-up that needs more asks the upstream only for what the entry lacks
(the two are then merged and stored together). A look-up that matched nobody is cached too (for a shorter time):
it cost nothing, but skipping it saves a round trip and a rate-limit slot. For email look-ups the entry also
remembers the `min_similarity_score` it was fetched with, and only serves requests at least as strict. Keys are
hashed, so identifiers (emails are personal data) never appear in a shared store's key space.

Search pages are cached too (by query and cursor, for at most `PAGE_TTL_SECONDS`, since the index changes):
reading the same page twice in a session should not pay 0.03 a result twice.

Every value also carries `subj`, the subject hashes (`privacy.subjects`) of the people in it: the identifier it
is keyed by and every profile URL and email of its people, so `erase` can find and remove everything cached
about a person (an email look-up's entry, a URL look-up's entry, a search page listing them) without the
identifiers ever being stored in the clear. Which store holds the cache is the operator's choice
(`PERSON_ENRICH_CACHE_URL`): process memory unless they opt in to a shared one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, cast

from person_enrich_mcp.api import EnrichMatch, SearchPage, Suggestions
from person_enrich_mcp.fields import FieldSelection, project
from person_enrich_mcp.privacy.subjects import hashes_of_all, identifier_hashes, person_hashes, subject_hash
from person_enrich_mcp.state import StateStore

PAGE_TTL_SECONDS = 3_600.0
PROFILE_PREFIX = "profile:"
PAGE_PREFIX = "page:"
# The per-session record of profile URLs already returned (`seen.py`): person identifiers too, so erased like the rest.
SEEN_PREFIX = "seen:"
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

    def __repr__(self) -> str:
        return f"ProfileCache(ttl={self._ttl})"

    def for_principal(self, principal: str) -> ProfileCache:
        """The same cache, seen by one principal only: what one user looked up is never served to another (nor
        does its `cached` flag tell another user who was looked up)."""
        tag = hashlib.sha256(principal.encode()).hexdigest()[:16]
        return ProfileCache(
            self._store, scope=f"{self._scope}:p{tag}", ttl_seconds=self._ttl, negative_ttl_seconds=self._negative_ttl
        )

    @property
    def ttl_seconds(self) -> float:
        """How long a matched profile is kept."""
        return self._ttl

    def _key(self, kind: str, identifier: str) -> str:
        digest = hashlib.sha256(f"{ENTRY_FORMAT}\0{kind}\0{identifier}".encode()).hexdigest()[:40]
        return f"{PROFILE_PREFIX}{self._scope}:{digest}"

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
        subjects = identifier_hashes(identifier) | hashes_of_all(m.person_data for m in matches)
        subjects.update(subject_hash("url", url) for url in profile_urls if url)
        entry: dict[str, Any] = {
            "sel": list(selection.paths),
            "min": min_score or 0.0,
            "matches": stored,
            "subj": sorted(subjects),
        }
        if any(profile_urls):
            entry["urls"] = list(profile_urls)
        ttl = self._ttl if matches else self._negative_ttl
        await self._store.cache_put(self._key(kind, identifier), json.dumps(entry, separators=(",", ":")), ttl)

    async def drop(self, kind: str, identifier: str) -> None:
        """Remove one identifier's entry for good (a person found to be on the opt-out list)."""
        await self._store.cache_delete([self._key(kind, identifier)])

    def _page_key(self, query: str) -> str:
        digest = hashlib.sha256(f"{ENTRY_FORMAT}\0page\0{query}".encode()).hexdigest()[:40]
        return f"{PAGE_PREFIX}{self._scope}:{digest}"

    async def get_page(self, query: str) -> SearchPage | None:
        """A search page read before for exactly this query and cursor, if still fresh."""
        found = await self.get_page_entry(query)
        return found[0] if found is not None else None

    async def get_page_entry(self, query: str) -> tuple[SearchPage, int] | None:
        """A cached search page and how many of its rows were withheld for the opt-out list when it was stored."""
        if self._ttl <= 0:
            return None
        raw = await self._store.cache_get(self._page_key(query))
        if raw is None:
            return None
        stored: Any = json.loads(raw)
        if not isinstance(stored, dict) or "page" not in stored:
            return None  # written by an older version: read again
        entry = cast(dict[str, Any], stored)
        return SearchPage.model_validate(entry["page"]), int(entry.get("withheld") or 0)

    async def put_page(self, query: str, page: SearchPage, *, withheld: int = 0) -> None:
        """Remember a search page (it holds only the profile URLs search_then_enrich asked for, and only of people
        not on the opt-out list: `withheld` says how many rows were left out)."""
        if self._ttl <= 0:
            return
        value: dict[str, Any] = {"page": page.model_dump(mode="json"), "subj": sorted(hashes_of_all(page.profiles))}
        if withheld:
            value["withheld"] = withheld
        await self._store.cache_put(
            self._page_key(query), json.dumps(value, separators=(",", ":")), min(self._ttl, PAGE_TTL_SECONDS)
        )

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

    # --- erasure and expiry ----------------------------------------------------------------------------------------

    async def about(self, hashes: set[str] | frozenset[str]) -> list[tuple[str, dict[str, Any]]]:
        """Every live entry (of any API key's scope) about the people these subject hashes name, as
        (`profile` or `page`, the stored value): what `erase` would remove, and what an access request is owed."""
        found: list[tuple[str, dict[str, Any]]] = []
        if not hashes:
            return found
        for prefix, kind in ((PROFILE_PREFIX, "profile"), (PAGE_PREFIX, "page"), (SEEN_PREFIX, "seen")):
            for key, value in await self._store.cache_items(prefix):
                if not hashes.isdisjoint(_subjects_of(value)):
                    found.append((kind, {"key": key, **cast(dict[str, Any], json.loads(value))}))
        return found

    async def erase(self, hashes: set[str] | frozenset[str], *, dry_run: bool = False) -> Erased:
        """Remove every entry (of any API key's scope) about the people these subject hashes name: the entries
        keyed by their identifiers, email look-ups that returned them, search pages that listed them."""
        entries = await self.about(hashes)
        erased = Erased(
            profiles=sum(kind == "profile" for kind, _ in entries), pages=sum(kind == "page" for kind, _ in entries)
        )
        if entries and not dry_run:
            await self._store.cache_delete([str(value["key"]) for _, value in entries])
        return erased

    async def purge_expired(self) -> int:
        """Remove expired entries for good, whether or not anyone read them again."""
        return await self._store.cache_purge_expired()


@dataclass(slots=True)
class Erased:
    """What `erase` removed (or, in a dry run, would remove)."""

    profiles: int = 0
    pages: int = 0

    @property
    def total(self) -> int:
        """Entries in all."""
        return self.profiles + self.pages


def _subjects_of(value: str) -> set[str]:
    """The subject hashes of a cached value: those it was stored with, and those its data reveals."""
    try:
        stored: Any = json.loads(value)
    except ValueError:
        return set()
    if not isinstance(stored, dict):
        return set()
    entry = cast(dict[str, Any], stored)
    found = {str(h) for h in cast(list[Any], entry.get("subj") or [])}
    people: list[Any] = []
    if isinstance(entry.get("matches"), list):
        people = [
            cast(dict[str, Any], m).get("person_data") for m in cast(list[Any], entry["matches"]) if isinstance(m, dict)
        ]
    elif isinstance(entry.get("page"), dict):
        people = cast(list[Any], cast(dict[str, Any], entry["page"]).get("profiles") or [])
    for person in people:
        if isinstance(person, dict):
            found |= person_hashes(cast(dict[str, Any], person))
    found.update(subject_hash("url", str(url)) for url in cast(list[Any], entry.get("urls") or []) if url)
    # A seen record (`seen.py`): `"u"` holds [profile URL, time, selection index] per person.
    found.update(
        subject_hash("url", str(cast(list[Any], item)[0]))
        for item in cast(list[Any], entry.get("u") or [])
        if isinstance(item, list) and item
    )
    return found
