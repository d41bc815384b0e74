"""Which people a session has already been given, with which fields, so a later paid search can leave them out.

Person Search can drop listed profiles from a page before billing it (`post_processing.exclude_profiles`, today's
API). A session that already holds someone's profile with the fields it asks for now (earlier results have them, and
the profile cache serves them again for free) need not pay 0.03 to see them in a search page again. Someone it holds
with fewer fields (names, and now phone numbers are asked for) is not left out: the search is how it gets them.

The record is one bounded list per session in the profile cache's store (person data: erased with the cache),
keyed by a hash of the session and principal, so one principal's record is never read for another. Entries older
than the profile cache's TTL are dropped: by then the person is no longer free to read again, and is worth finding
again.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, cast

from person_enrich_mcp.budget import Owner
from person_enrich_mcp.cache import SEEN_PREFIX
from person_enrich_mcp.fields import FieldSelection
from person_enrich_mcp.state import StateStore

MAX_SEEN = 1_000
# Records kept parsed in process memory, the most recently used sessions' (see `SeenProfiles`).
PARSED_KEPT = 8


class _Record:
    """One session's record: the field selections it was given (stored once each) and, per URL, when and which.

    `urls` is kept oldest first, and each URL's stored form (`[url, time, selection index]` as JSON) is encoded
    once, so writing the record back after a call adds a few people joins strings instead of re-encoding a
    thousand entries; `raw` is the stored value this record was read from or written as.
    """

    def __init__(self, selections: list[str], urls: dict[str, tuple[float, int]], raw: str | None = None) -> None:
        self.selections = selections
        self.urls = urls
        self.raw = raw
        self._encoded: dict[str, str] = {}

    @classmethod
    def parse(cls, raw: str | None, oldest: float) -> _Record:
        try:
            stored: Any = json.loads(raw) if raw else {}
        except ValueError:
            stored = {}
        if not isinstance(stored, dict):
            stored = {}
        data = cast(dict[str, Any], stored)
        selections = [str(s) for s in cast(list[Any], data.get("s") or [])]
        found: list[tuple[str, float, int]] = []
        for entry in cast(list[Any], data.get("u") or []):
            if isinstance(entry, list) and len(cast(list[Any], entry)) == 3:
                url, at, index = cast(list[Any], entry)
                if float(at) >= oldest and 0 <= int(index) < len(selections):
                    found.append((str(url), float(at), int(index)))
        found.sort(key=lambda item: item[1])
        return cls(selections, {url: (at, index) for url, at, index in found}, raw)

    def selection(self, index: int) -> FieldSelection:
        return FieldSelection(tuple(self.selections[index].split(",")) if self.selections[index] else ())

    def index_of(self, selection: FieldSelection) -> int:
        if selection.key not in self.selections:
            self.selections.append(selection.key)
        return self.selections.index(selection.key)

    def expire(self, oldest: float) -> None:
        """Drop the entries older than `oldest` (the oldest come first)."""
        while self.urls:
            url, (at, _) = next(iter(self.urls.items()))
            if at >= oldest:
                return
            del self.urls[url]
            self._encoded.pop(url, None)

    def put(self, url: str, at: float, index: int) -> None:
        """Record `url` as given at `at` with selection `index`, as the newest entry."""
        self.urls.pop(url, None)
        self._encoded.pop(url, None)
        self.urls[url] = (at, index)

    def dump(self, keep: int) -> str:
        """The stored form, the newest `keep` entries; also becomes `raw`."""
        while len(self.urls) > keep:
            oldest = next(iter(self.urls))
            del self.urls[oldest]
            self._encoded.pop(oldest, None)
        used = sorted({index for _, index in self.urls.values()})
        if used != list(range(len(self.selections))):  # a selection nobody holds any more: renumber the rest
            renumber = {old: new for new, old in enumerate(used)}
            self.selections = [self.selections[i] for i in used]
            self.urls = {url: (at, renumber[index]) for url, (at, index) in self.urls.items()}
            self._encoded.clear()
        encoded = self._encoded
        for url, (at, index) in self.urls.items():
            if url not in encoded:
                encoded[url] = json.dumps([url, round(at, 1), index], separators=(",", ":"))
        selections = json.dumps(self.selections, separators=(",", ":"))
        self.raw = '{"s":' + selections + ',"u":[' + ",".join(encoded[url] for url in self.urls) + "]}"
        return self.raw


class SeenProfiles:
    """A bounded, per-session record of the profile URLs returned to it and the fields returned with them.

    The last `PARSED_KEPT` sessions' records stay parsed in memory, each used again only while the store still
    holds exactly the value it was read from or written as (another replica's write, or an erasure, makes it
    parse the store's value again). A long session's record holds up to `MAX_SEEN` people, and parsing and
    re-encoding all of them on every call cost more CPU than the rest of a one-person look-up.
    """

    def __init__(
        self,
        store: StateStore,
        *,
        scope: str,
        ttl_seconds: float,
        max_urls: int = MAX_SEEN,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._scope = scope
        self._ttl = ttl_seconds
        self._max = max_urls
        self._clock = clock
        self._parsed: OrderedDict[str, _Record] = OrderedDict()

    def _key(self, owner: Owner) -> str:
        digest = hashlib.sha256(f"{owner.session}\0{owner.principal or ''}".encode()).hexdigest()[:40]
        return f"{SEEN_PREFIX}{self._scope}:{digest}"

    async def _read(self, owner: Owner) -> _Record:
        key = self._key(owner)
        raw = await self._store.cache_get(key)
        oldest = self._clock() - self._ttl
        record = self._parsed.pop(key, None)
        if record is None or raw is None or record.raw != raw:
            record = _Record.parse(raw, oldest)
        else:
            record.expire(oldest)
        self._parsed[key] = record
        while len(self._parsed) > PARSED_KEPT:
            self._parsed.popitem(last=False)
        return record

    async def covering(self, owner: Owner, selection: FieldSelection) -> list[str]:
        """The profile URLs this session was given, within the cache's TTL, with at least `selection`'s fields."""
        if self._ttl <= 0:
            return []
        record = await self._read(owner)
        wide = {i for i in range(len(record.selections)) if record.selection(i).covers(selection)}
        return [url for url, (_, index) in record.urls.items() if index in wide]

    async def add(self, owner: Owner, urls: Iterable[str], selection: FieldSelection) -> None:
        """Remember that these profile URLs were returned to this session with `selection` (a no-op when known)."""
        if self._ttl <= 0:
            return
        wanted = list(dict.fromkeys(urls))
        if not wanted:
            return
        record = await self._read(owner)
        now = self._clock()
        changed = False
        for url in wanted:
            held = record.urls.get(url)
            if held is not None and record.selection(held[1]).covers(selection):
                continue  # already known with these fields: its time stays when they went into the cache
            widened = selection if held is None else record.selection(held[1]).union(selection)
            record.put(url, now, record.index_of(widened))
            changed = True
        if changed:
            await self._store.cache_put(self._key(owner), record.dump(self._max), self._ttl)
