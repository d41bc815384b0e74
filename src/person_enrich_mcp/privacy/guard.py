"""The opt-out list applied to look-ups: which identifiers may be sent, and which people may be returned.

Every look-up asks `require()` first (so a broken opt-out file refuses it before anything is sent), then
`screen()`s its identifiers; every person that comes back from the upstream or the cache is checked with
`allows()` before it is cached, looked up further, or shown to the model.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from person_enrich_mcp.privacy.subjects import identifier_hashes, person_hashes, subject_hash
from person_enrich_mcp.privacy.suppression import SuppressionList

SUPPRESSED_UNSENT = "on this server's opt-out list: not looked up (nothing sent or spent)"
SUPPRESSED_FOUND = "the person found is on this server's opt-out list: their data is withheld and not kept"


class OptOuts:
    """The operator's suppression list, or nothing (then everyone is allowed)."""

    def __init__(self, suppression: SuppressionList | None = None) -> None:
        self.suppression = suppression

    def __repr__(self) -> str:
        return f"OptOuts({self.suppression!r})"

    @property
    def active(self) -> bool:
        """True when an opt-out file is configured (even if it is empty right now)."""
        return self.suppression is not None

    @property
    def _hashes(self) -> frozenset[str]:
        return self.suppression.hashes if self.suppression is not None else frozenset()

    def require(self) -> None:
        """Re-read the list if it changed.

        Raises:
            PrivacyUnavailableError: while the file is missing, unreadable or malformed.
        """
        if self.suppression is not None:
            self.suppression.require()

    def names(self, identifier: str) -> bool:
        """True when a normalised look-up identifier (profile URL or email) is suppressed (email: or its domain)."""
        hashes = self._hashes
        return bool(hashes) and not hashes.isdisjoint(identifier_hashes(identifier))

    def names_url(self, url: str) -> bool:
        """True when a normalised profile URL is suppressed."""
        return subject_hash("url", url) in self._hashes

    def screen(self, identifiers: Iterable[str]) -> tuple[list[str], list[str]]:
        """(allowed, suppressed) identifiers, in order."""
        allowed: list[str] = []
        suppressed: list[str] = []
        for identifier in identifiers:
            (suppressed if self.names(identifier) else allowed).append(identifier)
        return allowed, suppressed

    def allows(self, person_data: dict[str, Any], *known_urls: str | None) -> bool:
        """False when the person's profile URL, any email in their data (or its domain), or a URL known for them
        is suppressed."""
        hashes = self._hashes
        if not hashes:
            return True
        if any(url is not None and subject_hash("url", url) in hashes for url in known_urls):
            return False
        return hashes.isdisjoint(person_hashes(person_data))
