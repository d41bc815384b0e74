"""What a running server does every few seconds for the people in its cache, whether or not anyone calls it:
expired entries are removed for good (not just ignored), people added to the opt-out file are erased from the
cache, and erasure requests posted by `forget` are applied."""

from __future__ import annotations

import logging

import anyio

from person_enrich_mcp.cache import ProfileCache
from person_enrich_mcp.privacy.erasure import ErasureFollower
from person_enrich_mcp.privacy.guard import OptOuts
from person_enrich_mcp.state import StateStore

logger = logging.getLogger(__name__)


class Housekeeper:
    """Keeps the cache honest: TTLs, opt-outs and erasure requests."""

    def __init__(
        self,
        *,
        cache: ProfileCache,
        cache_store: StateStore,
        state_store: StateStore,
        opt_outs: OptOuts,
        interval_seconds: float,
    ) -> None:
        self._cache = cache
        self._cache_store = cache_store
        self._state_store = state_store
        self._opt_outs = opt_outs
        self._follower = ErasureFollower(state_store, cache)
        self._interval = interval_seconds
        self._erased_for: frozenset[str] = frozenset()

    async def run(self) -> None:
        """Tick forever (until cancelled)."""
        while True:
            await self.tick()
            await anyio.sleep(self._interval)

    async def tick(self) -> None:
        """One round; a failing step is logged (by kind only: no person data) and retried next round."""
        try:
            await self._cache.purge_expired()
            if self._state_store is not self._cache_store:
                await self._state_store.cache_purge_expired()
            await self._erase_newly_suppressed()
            erased = await self._follower.poll()
            if erased.total:
                logger.info("erasure request applied: %d cached entries removed", erased.total)
        except anyio.get_cancelled_exc_class():
            raise
        except Exception as exc:  # a store outage must not stop housekeeping for good
            logger.warning("cache housekeeping failed (%s); retrying in %.0f s", type(exc).__name__, self._interval)

    async def _erase_newly_suppressed(self) -> None:
        suppression = self._opt_outs.suppression
        if suppression is None:
            return
        suppression.refresh()
        current = suppression.hashes
        added = current - self._erased_for
        if added:
            erased = await self._cache.erase(added)
            if erased.total:
                logger.info("opt-out list changed: %d cached entries removed", erased.total)
        self._erased_for = current
