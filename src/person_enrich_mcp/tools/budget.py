"""`get_budget`: the session's credits and receipts. Free: it never calls the upstream."""

from __future__ import annotations

from typing import Annotated

from mcp.types import CallToolResult

from person_enrich_mcp.errors import format_credits
from person_enrich_mcp.tools.context import ToolContext, app_state, owner_of
from person_enrich_mcp.tools.results import BudgetResult, success

RECEIPTS_SHOWN = 10


async def get_budget(ctx: ToolContext) -> Annotated[CallToolResult, BudgetResult]:
    """Credits spent, reserved and left in this session, with the last 10 receipts. Free."""
    app = app_state(ctx)
    owner = owner_of(ctx)
    view = await app.budget.view(owner)
    result = BudgetResult(
        limit=format_credits(view.limit),
        spent=format_credits(view.spent),
        reserved=format_credits(view.reserved),
        unverified=format_credits(view.unverified),
        remaining=format_credits(view.remaining),
        confirm_above=format_credits(app.settings.confirm_above),
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
    )
    summary = (
        f"Session budget: {result.spent} of {result.limit} credits spent, {result.remaining} left "
        f"({result.reserved} reserved by calls in progress). Calls estimated above {result.confirm_above} "
        "credits ask for confirmation."
    )
    if view.window is not None:
        summary += (
            f" Your rolling {result.window['hours'] if result.window else ''}-hour budget across sessions has "
            f"{format_credits(view.window.remaining)} of {format_credits(view.window.limit)} left."
        )
    if view.unverified:
        summary += f" {result.unverified} credits are held for upstream calls whose outcome is unknown."
    return success(result, summary)
