"""`POST /person/professional_network/enrich/live` (Live Enrich): profiles fetched from the web at request time.

It replaced the overview's `force_fetch` / `enrich_realtime` flags (docs `/migrations/person/person-enrich`,
"Removed features"); it takes profile URLs and section groups only (spec 2025-11-01, via n8n `REQUEST_PARAMS`),
is plan-gated, slower, priced per profile, and has its own rate limit.
"""

from __future__ import annotations

from typing import Any

from person_enrich_mcp.api._body import checked
from person_enrich_mcp.api.contract import ENRICH_GROUPS, LIVE, PATHS, REQUEST_PARAMS

_PATH = PATHS[LIVE]


def live_body(urls: list[str], groups: list[str]) -> dict[str, Any]:
    """The request: profile URLs and the section groups to return.

    Raises:
        ValueError: for a group outside the vocabulary (a bug in the caller's routing).
    """
    unknown = [g for g in groups if g not in ENRICH_GROUPS]
    if unknown:
        raise ValueError(f"{_PATH} fields take section groups only, not {', '.join(unknown)}")
    return checked(_PATH, {"professional_network_profile_urls": urls, "fields": groups}, REQUEST_PARAMS[_PATH])
