"""Erasure requests that reach running servers: how `person-enrich-mcp forget` empties caches it cannot open.

A persistent cache (SQLite, Redis) is erased directly by the command. A cache in a server's memory can only be
erased by that server, so the command also posts the request in the shared state store (`PERSON_ENRICH_STATE_URL`,
SQLite or Redis): subject hashes only, kept as long as a cached profile could live. Every running server polls for
new requests (`ErasureFollower.poll`, a single key read while nothing changed) and erases those people from its own
cache. With `--suppress`, the opt-out file reaches them too: a server that re-reads it erases every newly
suppressed person from its cache.
"""

from __future__ import annotations

import json
import secrets
from typing import Any, cast

from person_enrich_mcp.cache import Erased, ProfileCache
from person_enrich_mcp.state import StateStore

REQUEST_PREFIX = "erase:req:"
VERSION_KEY = "erase:version"


async def post_erasure(state: StateStore, hashes: set[str], *, keep_seconds: float) -> None:
    """Leave an erasure request for every server sharing this state store."""
    nonce = secrets.token_hex(8)
    body = json.dumps({"subj": sorted(hashes)}, separators=(",", ":"))
    await state.cache_put(REQUEST_PREFIX + nonce, body, keep_seconds)
    await state.cache_put(VERSION_KEY, nonce, keep_seconds)


class ErasureFollower:
    """Applies each posted erasure request once to this server's cache."""

    def __init__(self, state: StateStore, cache: ProfileCache) -> None:
        self._state = state
        self._cache = cache
        self._version: str | None = None
        self._applied: set[str] = set()

    async def poll(self) -> Erased:
        """Erase the people of requests not applied yet (nothing, cheaply, when no new request was posted)."""
        erased = Erased()
        version = await self._state.cache_get(VERSION_KEY)
        if version is None or version == self._version:
            return erased
        for key, value in await self._state.cache_items(REQUEST_PREFIX):
            if key in self._applied:
                continue
            hashes: set[str] = set()
            try:
                body: Any = json.loads(value)
                hashes = {str(h) for h in cast(list[Any], body["subj"])}
            except (ValueError, KeyError, TypeError):
                pass  # not a request this version wrote: nothing to erase
            found = await self._cache.erase(hashes)
            erased.profiles += found.profiles
            erased.pages += found.pages
            self._applied.add(key)
        self._version = version
        return erased
