"""The upstream Person API: its tables, one module per endpoint, the HTTP client and the rate limiter."""

from person_enrich_mcp.api.client import PersonAPI, RetryPolicy, map_status
from person_enrich_mcp.api.contract import (
    ACCOUNT,
    AUTOCOMPLETE,
    CONTACT,
    ENRICH,
    LIVE,
    SEARCH,
    Dialect,
)
from person_enrich_mcp.api.limiter import RateLimiter, SlotSource
from person_enrich_mcp.api.models import (
    AccountListing,
    APIResult,
    EndpointListing,
    EnrichEntry,
    EnrichMatch,
    MatchType,
    RateLimitInfo,
    SearchPage,
    Suggestion,
    Suggestions,
    UserCredits,
)
from person_enrich_mcp.api.search import SearchRequest

__all__ = [
    "ACCOUNT",
    "AUTOCOMPLETE",
    "CONTACT",
    "ENRICH",
    "LIVE",
    "SEARCH",
    "APIResult",
    "AccountListing",
    "Dialect",
    "EndpointListing",
    "EnrichEntry",
    "EnrichMatch",
    "MatchType",
    "PersonAPI",
    "RateLimitInfo",
    "RateLimiter",
    "RetryPolicy",
    "SearchPage",
    "SearchRequest",
    "SlotSource",
    "Suggestion",
    "Suggestions",
    "UserCredits",
    "map_status",
]
