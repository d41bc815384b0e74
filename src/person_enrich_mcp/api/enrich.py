"""`POST /person/enrich`: profile sections by profile URL (today), or the overview's single enrich.

Today the endpoint accepts only `professional_network_profile_urls`, `fields` and `preview`, and `fields` names
section groups (spec 2025-11-01, via n8n `filter-fields.generated.ts` `REQUEST_PARAMS` / `FIELD_VOCABULARY`).
The overview's revision also took `business_emails`, contact fields, `min_similarity_score` and the refresh
flags (`../seed/person-enrich-overview.txt`).
"""

from __future__ import annotations

from typing import Any

from person_enrich_mcp.api._body import checked
from person_enrich_mcp.api.contract import ENRICH, ENRICH_GROUPS, OVERVIEW_ENRICH_PARAMS, PATHS, REQUEST_PARAMS
from person_enrich_mcp.api.models import MatchType

_PATH = PATHS[ENRICH]
IDENTIFIER_KEYS: dict[str, str] = {
    "professional_network_profile_url": "professional_network_profile_urls",
    "business_email": "business_emails",
}


def profile_body(urls: list[str], groups: list[str]) -> dict[str, Any]:
    """Today's request: profile URLs and the section groups to return.

    Raises:
        ValueError: for a group outside the endpoint's vocabulary (a bug in the caller's routing).
    """
    unknown = [g for g in groups if g not in ENRICH_GROUPS]
    if unknown:
        raise ValueError(f"{_PATH} fields take section groups only, not {', '.join(unknown)}")
    body = {"professional_network_profile_urls": urls, "fields": groups}
    return checked(_PATH, body, REQUEST_PARAMS[_PATH])


def overview_body(
    match_type: MatchType,
    identifiers: list[str],
    fields: list[str],
    *,
    min_similarity_score: float | None,
    force_fetch: bool,
    enrich_realtime: bool,
) -> dict[str, Any]:
    """The overview's request: one identifier kind, any field paths, the optional threshold and flags."""
    body: dict[str, Any] = {IDENTIFIER_KEYS[match_type]: identifiers, "fields": fields}
    if min_similarity_score is not None:
        body["min_similarity_score"] = min_similarity_score
    # Sent only when set, as the overview lists them as optional advanced flags.
    if force_fetch:
        body["force_fetch"] = True
    if enrich_realtime:
        body["enrich_realtime"] = True
    return checked(_PATH, body, OVERVIEW_ENRICH_PARAMS)
