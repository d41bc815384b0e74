"""The upstream Person API: request/response models, the HTTP client, the rate limiter."""

from person_enrich_mcp.api.client import ENRICH, SEARCH, PersonAPI, RetryPolicy, map_status
from person_enrich_mcp.api.limiter import RateLimiter, SlotSource
from person_enrich_mcp.api.models import APIResult, EnrichEntry, EnrichMatch, MatchType, RateLimitInfo, SearchPage

__all__ = [
    "ENRICH",
    "SEARCH",
    "APIResult",
    "EnrichEntry",
    "EnrichMatch",
    "MatchType",
    "PersonAPI",
    "RateLimitInfo",
    "RateLimiter",
    "RetryPolicy",
    "SearchPage",
    "SlotSource",
    "map_status",
]
