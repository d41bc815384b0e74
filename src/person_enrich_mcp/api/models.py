"""Response models of the Person API endpoints in scope (`/person/enrich`, `/person/search`)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")

MatchType = Literal["professional_network_profile_url", "business_email"]


class EnrichMatch(BaseModel):
    """One candidate person for an identifier."""

    model_config = ConfigDict(extra="ignore")

    confidence_score: float = Field(ge=0, le=1)
    person_data: dict[str, Any]


class EnrichEntry(BaseModel):
    """The answer for one identifier: the input echoed back and its candidates (empty for no match)."""

    model_config = ConfigDict(extra="ignore")

    matched_on: str
    match_type: str
    matches: list[EnrichMatch] = Field(default_factory=list[EnrichMatch])


class SearchPage(BaseModel):
    """One page of Person Search."""

    model_config = ConfigDict(extra="ignore")

    profiles: list[dict[str, Any]]
    next_cursor: str | None = None
    total_count: int = 0


@dataclass(frozen=True, slots=True)
class RateLimitInfo:
    """The upstream's view of our rate limit, from its response headers."""

    limit: int | None
    remaining: int | None
    reset_seconds: float | None


@dataclass(frozen=True, slots=True)
class APIResult(Generic[T]):
    """Parsed data plus what the upstream said about the call: credits billed and request id."""

    data: T
    credits_used: Decimal | None
    request_id: str | None
    rate_limit: RateLimitInfo | None
