"""`POST /person/search` and `POST /person/search/autocomplete`.

Search keys per the spec 2025-11-01 (n8n `REQUEST_PARAMS`): filters, sorts, limit/count, cursor, fields,
post_processing, preview, explain, return_query. `post_processing.exclude_profiles` drops rows after the page is
drawn (n8n `resources/person/search.ts`), so a page can come back short without being the last. Autocomplete
takes `field`, `query` and `limit` in the generated spec; the docs also list `filters`, which is not sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from person_enrich_mcp.api._body import checked
from person_enrich_mcp.api.contract import AUTOCOMPLETE, PATHS, REQUEST_PARAMS, SEARCH

_SEARCH_PATH = PATHS[SEARCH]
_AUTOCOMPLETE_PATH = PATHS[AUTOCOMPLETE]
# The n8n node allows this many excluded profile URLs in one request.
MAX_EXCLUDED_PROFILES = 50_000


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """One page of a Person Search."""

    filters: dict[str, Any]
    limit: int
    fields: list[str]
    sorts: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])
    cursor: str | None = None
    exclude_profiles: list[str] = field(default_factory=list[str])
    explain: bool = False
    preview: bool = False

    def body(self) -> dict[str, Any]:
        """The JSON body, with only the keys that carry something (the docs: omit rather than send empties)."""
        body: dict[str, Any] = {"filters": self.filters, "limit": self.limit, "fields": self.fields}
        if self.sorts:
            body["sorts"] = self.sorts
        if self.cursor:
            body["cursor"] = self.cursor
        if self.exclude_profiles:
            body["post_processing"] = {"exclude_profiles": self.exclude_profiles[:MAX_EXCLUDED_PROFILES]}
        if self.explain:
            body["explain"] = True
        if self.preview:
            body["preview"] = True
        return checked(_SEARCH_PATH, body, REQUEST_PARAMS[_SEARCH_PATH])


def autocomplete_body(field_path: str, query: str, limit: int) -> dict[str, Any]:
    """The autocomplete request for one filter field."""
    return checked(
        _AUTOCOMPLETE_PATH, {"field": field_path, "query": query, "limit": limit}, REQUEST_PARAMS[_AUTOCOMPLETE_PATH]
    )
