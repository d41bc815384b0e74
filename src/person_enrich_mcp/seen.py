"""Which people a session has already been given, so a later paid search can leave them out.

Person Search can drop listed profiles from a page before billing it (`post_processing.exclude_profiles`, today's
API). A session that already holds someone's profile (they are in the profile cache, free to read again) need not
pay 0.03 to see them in a search page again. The record is one bounded list per session in the state store, keyed
by a hash of the session, so one principal's record is never read for another. Entries older than the profile
cache's TTL are dropped: by then the person is no longer free to read again, and is worth finding again.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from typing import Any, cast

from person_enrich_mcp.budget import Owner
from person_enrich_mcp.state import StateStore

MAX_SEEN = 1_000


class SeenProfiles:
    """A bounded, per-session record of the profile URLs returned to it (newest kept)."""

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

    def _key(self, owner: Owner) -> str:
        digest = hashlib.sha256(f"{owner.session}\0{owner.principal or ''}".encode()).hexdigest()[:40]
        return f"seen:{self._scope}:{digest}"

    async def _read(self, owner: Owner) -> dict[str, float]:
        raw = await self._store.cache_get(self._key(owner))
        if raw is None:
            return {}
        try:
            stored: Any = json.loads(raw)
        except ValueError:
            return {}
        oldest = self._clock() - self._ttl
        pairs = cast(list[list[Any]], stored) if isinstance(stored, list) else []
        return {str(p[0]): float(p[1]) for p in pairs if len(p) == 2 and float(p[1]) >= oldest}

    async def urls(self, owner: Owner) -> list[str]:
        """The profile URLs this session was given within the cache's TTL, oldest first."""
        if self._ttl <= 0:
            return []
        return list(await self._read(owner))

    async def add(self, owner: Owner, urls: Iterable[str]) -> None:
        """Remember that these profile URLs were returned to this session (a no-op when nothing is new)."""
        if self._ttl <= 0:
            return
        fresh = list(dict.fromkeys(urls))
        if not fresh:
            return
        held = await self._read(owner)
        new = [url for url in fresh if url not in held]
        if not new:
            return  # an entry keeps its first time: that is when the profile went into the cache
        now = self._clock()
        held.update((url, now) for url in new)
        kept = list(held.items())[-self._max :]
        await self._store.cache_put(self._key(owner), json.dumps(kept, separators=(",", ":")), self._ttl)
