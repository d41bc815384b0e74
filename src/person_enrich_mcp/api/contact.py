"""`POST /person/contact/enrich`: contact tiers (work emails, personal emails, phones) for up to 25 people.

Keys `business_emails` or `professional_network_profile_urls` (one kind a request), `fields`, `verified` (spec
2025-11-01, via n8n `REQUEST_PARAMS`); `fields` is limited to the contact tiers and an omitted `fields` buys every
tier, the dearest request (docs `/api-reference/person-apis/enrich-only-person-contact-data-from-cached-dataset`),
so the client always names the tiers it wants.
"""

from __future__ import annotations

from typing import Any

from person_enrich_mcp.api._body import checked
from person_enrich_mcp.api.contract import CONTACT, CONTACT_TIERS, PATHS, REQUEST_PARAMS
from person_enrich_mcp.api.enrich import IDENTIFIER_KEYS
from person_enrich_mcp.api.models import MatchType

_PATH = PATHS[CONTACT]


def contact_body(match_type: MatchType, identifiers: list[str], tiers: list[str], *, verified: bool) -> dict[str, Any]:
    """The request for `tiers` of `identifiers`.

    Raises:
        ValueError: for no tiers (that would buy all of them) or a tier outside the vocabulary.
    """
    if not tiers:
        raise ValueError(f"{_PATH} needs explicit tiers: without fields it returns (and bills) every tier")
    unknown = [t for t in tiers if t not in CONTACT_TIERS]
    if unknown:
        raise ValueError(f"{_PATH} fields take contact tiers only, not {', '.join(unknown)}")
    body: dict[str, Any] = {IDENTIFIER_KEYS[match_type]: identifiers, "fields": tiers}
    if verified:
        body["verified"] = True
    return checked(_PATH, body, REQUEST_PARAMS[_PATH])
