"""The API endpoints the sandbox serves: their ledger names, paths and which revision has them.

The ledger, the rate limiter and fault rules name endpoints by a short name; plans, error messages and
`GET /account/endpoints` name them by path. This table is the one place that ties the two together.
"""

from __future__ import annotations

from typing import Literal

Revision = Literal["current", "overview"]
EndpointName = Literal["enrich", "contact", "live", "search", "autocomplete", "account"]

REVISIONS: tuple[Revision, ...] = ("current", "overview")
ENDPOINT_NAMES: tuple[EndpointName, ...] = ("enrich", "contact", "live", "search", "autocomplete", "account")

ENRICH_PATH = "/person/enrich"
CONTACT_PATH = "/person/contact/enrich"
LIVE_PATH = "/person/professional_network/enrich/live"
SEARCH_PATH = "/person/search"
AUTOCOMPLETE_PATH = "/person/search/autocomplete"
ACCOUNT_ENDPOINTS_PATH = "/account/endpoints"
USER_CREDITS_PATH = "/user/credits"
ACCOUNT_CREDITS_PATH = "/account/credits"

# The endpoints a plan can enable, price and limit, in the order `GET /account/endpoints` lists them.
PLAN_PATHS: tuple[str, ...] = (ENRICH_PATH, CONTACT_PATH, LIVE_PATH, SEARCH_PATH, AUTOCOMPLETE_PATH)
PATH_NAMES: dict[str, EndpointName] = {
    ENRICH_PATH: "enrich",
    CONTACT_PATH: "contact",
    LIVE_PATH: "live",
    SEARCH_PATH: "search",
    AUTOCOMPLETE_PATH: "autocomplete",
    ACCOUNT_ENDPOINTS_PATH: "account",
    USER_CREDITS_PATH: "account",
    ACCOUNT_CREDITS_PATH: "account",
}
# Paths that did not exist in the overview revision: there the route is absent (404).
CURRENT_ONLY_PATHS: frozenset[str] = frozenset(
    {CONTACT_PATH, LIVE_PATH, ACCOUNT_ENDPOINTS_PATH, USER_CREDITS_PATH, ACCOUNT_CREDITS_PATH}
)
# The endpoints whose plan-disabled fields are enrich groups or their dot-paths (and which `gated_fields` joins).
PROFILE_PATHS: tuple[str, ...] = (ENRICH_PATH, LIVE_PATH)
