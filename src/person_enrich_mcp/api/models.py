"""Response models of the Person API endpoints the server uses."""

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
    """The answer for one identifier: the input echoed back and its candidates (empty for no match).

    Enrich, Contact Enrich and Live Enrich all answer with a top-level array of these, in input order.
    """

    model_config = ConfigDict(extra="ignore")

    matched_on: str
    match_type: str
    matches: list[EnrichMatch] = Field(default_factory=list[EnrichMatch])


class SearchPage(BaseModel):
    """One page of Person Search; `remarks` carries what `explain` says about an empty result."""

    model_config = ConfigDict(extra="ignore")

    profiles: list[dict[str, Any]]
    next_cursor: str | None = None
    total_count: int = 0
    remarks: Any = None


class Suggestion(BaseModel):
    """One autocomplete suggestion: an exact indexed value and how many people have it."""

    model_config = ConfigDict(extra="ignore")

    value: str
    document_count: int | None = None


class Suggestions(BaseModel):
    """The autocomplete answer."""

    model_config = ConfigDict(extra="ignore")

    suggestions: list[Suggestion] = Field(default_factory=list[Suggestion])


class PremiumPrice(BaseModel):
    """An extra price the account pays for returning (or filtering on) a field."""

    model_config = ConfigDict(extra="ignore")

    field: str
    credits: Decimal = Decimal(0)


class FieldAccess(BaseModel):
    """The response fields an account receives from an endpoint, and those withheld from it."""

    model_config = ConfigDict(extra="ignore")

    enabled: list[str] = Field(default_factory=list[str])
    disabled: list[str] = Field(default_factory=list[str])


class EndpointListing(BaseModel):
    """One entry of `GET /account/endpoints`.

    `base_credits`, `premium_fields` and `premium_filters` are read by the upstream's own integration (n8n
    `resources/discover/index.ts`) but not on the docs pages, so every one of them is optional here.
    """

    model_config = ConfigDict(extra="ignore")

    path: str
    category: str | None = None
    status: str = "enabled"
    effective_rate_limit_rpm: float | None = None
    base_credits: Decimal | None = None
    premium_fields: list[PremiumPrice] = Field(default_factory=list[PremiumPrice])
    premium_filters: list[PremiumPrice] = Field(default_factory=list[PremiumPrice])
    fields: FieldAccess | None = None

    @property
    def enabled(self) -> bool:
        """The docs say `enabled` / `not_enabled`; another reading says `disabled`: only `enabled` is callable."""
        return self.status.strip().lower() == "enabled"


class AccountListing(BaseModel):
    """`GET /account/endpoints`: what this key may call, at what rate, for what price."""

    model_config = ConfigDict(extra="ignore")

    api_version: str | None = None
    token_limit_rpm: float | None = None
    endpoints: list[EndpointListing] = Field(default_factory=list[EndpointListing])


class UserCredits(BaseModel):
    """`GET /user/credits`: the account's balance (fractional on some plans)."""

    model_config = ConfigDict(extra="ignore")

    credits: Decimal


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
