"""Today's free account endpoints: `GET /account/endpoints`, `GET /user/credits` and `GET /account/credits`.

Sources: docs `/general/permissions` and `/api-reference/account-apis/list-endpoint-permissions-and-rate-limits`
(filters, top-level shape, per-endpoint `status`, `fields`, `effective_rate_limit_rpm`); the n8n node's
`resources/discover/index.ts` (`base_credits`, `premium_fields`, `premium_filters`); docs `/general/credits`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from person_enrich_mcp.sandbox.calls import Call, Outcome, disabled_fields_for, invalid
from person_enrich_mcp.sandbox.catalog import CONTACT_FIELDS
from person_enrich_mcp.sandbox.endpoints import (
    AUTOCOMPLETE_PATH,
    CONTACT_PATH,
    PATH_NAMES,
    PLAN_PATHS,
    PROFILE_PATHS,
    SEARCH_PATH,
)
from person_enrich_mcp.sandbox.plans import STATUSES
from person_enrich_mcp.sandbox.pricing import json_number, price_list, touches
from person_enrich_mcp.sandbox.state import SandboxState

API_VERSION = "2025-11-01"
ENDPOINTS_PARAMS = ("path", "category", "status")
# What a key without a balance reports: a large round pool, minus what it spent, so spending still shows.
UNLIMITED_CREDITS = Decimal(1_000_000)
# Two company endpoints the sandbox does not serve, listed (never enabled) so category and status filters
# have something to tell apart. /company/enrich's price is the docs' example; /company/search's is invented.
_COMPANY_ENTRIES: tuple[tuple[str, Decimal], ...] = (
    ("/company/enrich", Decimal(2)),
    ("/company/search", Decimal("0.03")),
)
_AUTOCOMPLETE_RETURNS = ["suggestions.document_count", "suggestions.value"]


def process_account_endpoints(state: SandboxState, call: Call) -> Outcome:
    """List the key's endpoints, filtered by exact `path`, case-insensitive `category` and `status` (ANDed)."""
    _refuse_unknown_params(call, ENDPOINTS_PARAMS)
    status = call.query.get("status")
    if status is not None and status not in STATUSES:
        raise invalid(f"status must be 'enabled' or 'not_enabled'; got {status!r}")
    path = call.query.get("path")
    category = call.query.get("category")
    entries = [_person_entry(state, call, p) for p in PLAN_PATHS] + [_company_entry(p, c) for p, c in _COMPANY_ENTRIES]
    kept = [
        e
        for e in entries
        if (path is None or e["path"] == path)
        and (category is None or e["category"].casefold() == category.casefold())
        and (status is None or e["status"] == status)
    ]
    payload = {"api_version": API_VERSION, "token_limit_rpm": call.plan.token_limit_rpm, "endpoints": kept}
    return Outcome(200, payload)


def process_user_credits(state: SandboxState, call: Call) -> Outcome:
    """`{"credits": N}`: the key's remaining balance."""
    _refuse_unknown_params(call, ())
    return Outcome(200, {"credits": json_number(remaining_credits(state, call.key))})


def process_account_credits(state: SandboxState, call: Call) -> Outcome:
    """The account's balance and (absent, in the sandbox) recurring grant."""
    _refuse_unknown_params(call, ())
    account = {
        "credits": json_number(remaining_credits(state, call.key)),
        "recurring_credits": 0,
        "recurring_credits_frequency": None,
        "recurring_credits_refresh_date": None,
        "credit_rollover": False,
    }
    return Outcome(200, {"account": account})


def remaining_credits(state: SandboxState, key: str) -> Decimal:
    """The key's balance, or, for an unlimited key, 1,000,000 minus what it was billed."""
    remaining = state.ledger.remaining(key)
    if remaining is None:
        return UNLIMITED_CREDITS - state.ledger.billed(key)
    return remaining


def _refuse_unknown_params(call: Call, allowed: tuple[str, ...]) -> None:
    unknown = [k for k in call.query if k not in allowed]
    if unknown:
        accepted = f"Allowed parameters: {', '.join(allowed)}" if allowed else "This endpoint takes no parameters"
        raise invalid(f"Unknown query parameter(s): {', '.join(repr(u) for u in unknown)}. {accepted}")


def _person_entry(state: SandboxState, call: Call, path: str) -> dict[str, Any]:
    terms = call.plan.endpoint(path)
    prices = price_list(path, terms)
    disabled = disabled_fields_for(call.plan, call.config, path)
    return {
        "path": path,
        "category": "Person",
        "status": terms.status,
        "effective_rate_limit_rpm": terms.rpm or call.config.rpm_for(PATH_NAMES[path]),
        "base_credits": json_number(prices.base),
        "premium_fields": [{"field": f, "credits": json_number(c)} for f, c in prices.premium.items()],
        "premium_filters": [],
        "fields": {
            "enabled": [f for f in _returnable(state, path) if not any(touches(f, d) for d in disabled)],
            "disabled": list(disabled),
        },
    }


def _returnable(state: SandboxState, path: str) -> list[str]:
    if path in PROFILE_PATHS:
        return state.catalog.profile_leaves
    if path == CONTACT_PATH:
        return list(CONTACT_FIELDS)
    if path == SEARCH_PATH:
        return state.catalog.search_leaves
    assert path == AUTOCOMPLETE_PATH
    return _AUTOCOMPLETE_RETURNS


def _company_entry(path: str, base: Decimal) -> dict[str, Any]:
    return {
        "path": path,
        "category": "Company",
        "status": "not_enabled",
        "effective_rate_limit_rpm": None,
        "base_credits": json_number(base),
        "premium_fields": [],
        "premium_filters": [],
        "fields": {"enabled": [], "disabled": []},
    }
