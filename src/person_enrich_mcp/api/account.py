"""`GET /account/endpoints` and `GET /user/credits`: free reads of what this key may do and what it has left.

Shapes per docs `/general/permissions`, `/api-reference/account-apis/list-endpoint-permissions-and-rate-limits`
and `/general/credits`; prices (`base_credits`, `premium_fields`) as the upstream's own integration reads them
(n8n `resources/discover/index.ts`).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from person_enrich_mcp.api.models import AccountListing, UserCredits
from person_enrich_mcp.errors import APIResponseError


def parse_listing(payload: Any, request_id: str | None) -> AccountListing:
    """The account listing.

    Raises:
        APIResponseError: when the answer is not the documented object.
    """
    try:
        return AccountListing.model_validate(payload)
    except ValidationError:
        raise APIResponseError("account endpoints answer is not the documented object", request_id=request_id) from None


def parse_credits(payload: Any, request_id: str | None) -> UserCredits:
    """The balance.

    Raises:
        APIResponseError: when the answer is not `{"credits": number}`.
    """
    try:
        return UserCredits.model_validate(payload)
    except ValidationError:
        raise APIResponseError("user credits answer is not the documented object", request_id=request_id) from None
