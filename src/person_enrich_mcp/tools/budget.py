"""`get_budget`: the session's credits and receipts, and the upstream account's balance. Free: it spends nothing."""

from __future__ import annotations

from typing import Annotated

from mcp.types import CallToolResult

from person_enrich_mcp.errors import PersonEnrichError, format_credits
from person_enrich_mcp.tools.context import AppState, ToolContext, app_state, owner_of
from person_enrich_mcp.tools.results import BudgetResult, success

RECEIPTS_SHOWN = 10


async def get_budget(ctx: ToolContext) -> Annotated[CallToolResult, BudgetResult]:
    """Credits spent, reserved and left in this session; its last 10 receipts. Free."""
    app = app_state(ctx)
    owner = owner_of(ctx)
    view = await app.budget.view(owner)
    account = await _account(app)
    result = BudgetResult(
        limit=format_credits(view.limit),
        spent=format_credits(view.spent),
        reserved=format_credits(view.reserved),
        unverified=format_credits(view.unverified),
        remaining=format_credits(view.remaining),
        confirm_above=format_credits(app.settings.confirm_above),
        max_credits_approves_up_to=format_credits(app.settings.approval_limit),
        receipts=await app.budget.receipts(owner, RECEIPTS_SHOWN),
        window=(
            {
                "principal": view.window.principal,
                "hours": f"{view.window.window_seconds / 3600:g}",
                "limit": format_credits(view.window.limit),
                "committed": format_credits(view.window.committed),
                "remaining": format_credits(view.window.remaining),
            }
            if view.window is not None
            else None
        ),
        account=account,
    )
    return success(result)


async def _account(app: AppState) -> dict[str, str] | None:
    """The upstream account as far as it is known (read for free), or None when it cannot be read now."""
    try:
        view = await app.account.view()
    except PersonEnrichError:
        return None
    shown = {"api_revision": view.dialect.value, "prices": view.prices.source}
    if view.balance is not None:
        shown["balance"] = format_credits(view.balance)
    return shown
