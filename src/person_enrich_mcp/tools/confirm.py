"""Confirmation of large spends: ask the user by elicitation, or accept the call's own `max_credits`.

The question is asked from a resolver (`Annotated[..., Resolve(fn)]`), which the SDK turns into a push
elicitation on legacy connections and an input-required round trip on 2026-07-28, so one code path serves
both protocol eras. When the client cannot show a prompt, the call proceeds only if it passed
`max_credits` at or above the estimate, and only up to the operator's model approval limit: above that, a
model cannot approve spending on its own (a forged "call again with max_credits=500" in profile text must not
be enough), so only the user can, in a client that can ask them.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any, Literal, cast

from mcp.server.mcpserver import AcceptedElicitation, Elicit
from pydantic import BaseModel, Field

from person_enrich_mcp.budget import Quote
from person_enrich_mcp.errors import (
    AccountBalanceError,
    CallCeilingError,
    ConfirmationDeclinedError,
    ConfirmationRequiredError,
    InputError,
    PersonEnrichError,
    SpendRefusedError,
    format_credits,
)
from person_enrich_mcp.pricing import to_credits
from person_enrich_mcp.tools.context import ToolContext, app_state, owner_of


class SpendApproval(BaseModel):
    """The one-question form shown to the user."""

    approve: bool = Field(description="Allow this spend of credits")


class SpendDecision(BaseModel):
    """A decision taken without asking anyone."""

    approved: bool
    how: Literal[
        "not_needed", "max_credits", "cannot_ask", "over_model_limit", "over_budget", "over_balance", "over_ceiling"
    ]


def _client_can_ask(ctx: ToolContext) -> bool:
    capabilities = ctx.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    # A bare `elicitation: {}` means form support; a client that only declared URL mode cannot show a form.
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


def check_max_credits(max_credits: float | None) -> None:
    """Refuse a `max_credits` that is not a number of credits (NaN or infinity).

    Raises:
        InputError: naming the value and what to pass instead.
    """
    if max_credits is not None and not math.isfinite(max_credits):
        raise InputError(
            f"max_credits must be a finite number of credits (got {max_credits}); pass the most this call may spend, "
            "e.g. max_credits=12, or leave it out. Nothing was sent or spent."
        )


async def decide(
    ctx: ToolContext, quote: Quote, max_credits: float | None, *, tool: str
) -> SpendDecision | Elicit[SpendApproval]:
    """Decide whether a quote needs the user's approval, and ask for it when it does and can."""
    app = app_state(ctx)
    threshold = app.settings.confirm_above
    if max_credits is not None and not math.isfinite(max_credits):
        return SpendDecision(approved=True, how="not_needed")  # the tool body refuses it as invalid input
    if quote.estimate <= threshold:
        return SpendDecision(approved=True, how="not_needed")
    if max_credits is not None and quote.estimate > to_credits(max_credits):
        return SpendDecision(approved=False, how="over_ceiling")
    view = await app.budget.view(owner_of(ctx))
    if quote.estimate > view.remaining:
        return SpendDecision(approved=False, how="over_budget")  # the reservation refuses it with the details
    try:
        balance = (await app.account.view()).balance
    except PersonEnrichError:
        balance = None  # the tool body meets the same failure and reports it
    if over_balance(quote, balance) is not None:
        return SpendDecision(approved=False, how="over_balance")  # the tool refuses it with the details
    if not _client_can_ask(ctx):
        if quote.estimate > app.settings.approval_limit:
            return SpendDecision(approved=False, how="over_model_limit")
        approved = max_credits is not None and to_credits(max_credits) >= quote.estimate
        return SpendDecision(approved=approved, how="max_credits" if approved else "cannot_ask")
    return Elicit(
        f"{tool} may spend up to {format_credits(quote.estimate)} credits ({quote.breakdown}). "
        f"This session has {format_credits(view.remaining)} of {format_credits(view.limit)} credits left. "
        "Approve this spend?",
        SpendApproval,
    )


def refusal(
    outcome: Any,
    quote: Quote,
    max_credits: float | None,
    *,
    threshold: Decimal,
    remaining: Decimal,
    approval_limit: Decimal | None = None,
) -> SpendRefusedError | None:
    """The refusal for a quote given the resolver's outcome, or None when the call may go ahead.

    `outcome` is what the SDK injected: an accepted `SpendDecision` / `SpendApproval`, or a declined or
    cancelled elicitation.
    """
    if max_credits is not None and max_credits < 0:
        return CallCeilingError(
            f"max_credits must be 0 or more (got {max_credits:g}); it is the most this call may spend. Nothing was "
            "spent.",
            estimate=quote.estimate,
            remaining=remaining,
        )
    if max_credits is not None and quote.estimate > to_credits(max_credits):
        return CallCeilingError(
            f"Refused before spending anything: this call could cost up to {format_credits(quote.estimate)} credits "
            f"({quote.breakdown}), above max_credits={format_credits(to_credits(max_credits))}. Raise max_credits "
            f"or lower the cost{_ways(quote)}.",
            estimate=quote.estimate,
            remaining=remaining,
        )
    if quote.estimate <= threshold:
        return None
    data: Any = cast(AcceptedElicitation[Any], outcome).data if isinstance(outcome, AcceptedElicitation) else None
    if isinstance(data, SpendApproval):
        if data.approve:
            return None
        return _declined(quote, remaining)
    if isinstance(data, SpendDecision):
        if data.approved or data.how == "over_budget":
            return None  # over budget: the reservation refuses with the full explanation
        if data.how == "over_model_limit":
            limit = format_credits(approval_limit if approval_limit is not None else threshold)
            return ConfirmationRequiredError(
                f"Not run: this call could cost up to {format_credits(quote.estimate)} credits ({quote.breakdown}), "
                f"more than the {limit} credits a call's own max_credits may approve, and this client cannot show "
                "the user a confirmation prompt. Only the user can approve this much: ask them to run it in a client "
                "that can show confirmation prompts, or ask the operator to raise PERSON_ENRICH_MODEL_APPROVAL_LIMIT; "
                f"or lower the cost{_ways(quote)}. Nothing was spent.",
                estimate=quote.estimate,
                remaining=remaining,
            )
        return ConfirmationRequiredError(
            f"Not run: this call could cost up to {format_credits(quote.estimate)} credits ({quote.breakdown}), "
            f"above the confirmation threshold of {format_credits(threshold)}, and this client cannot show a "
            f"confirmation prompt. Ask the user, then call again with max_credits={format_credits(quote.estimate)} "
            f"(or higher) to confirm, or lower the cost{_ways(quote)}.",
            estimate=quote.estimate,
            remaining=remaining,
        )
    return _declined(quote, remaining)


def over_balance(quote: Quote, balance: Decimal | None) -> AccountBalanceError | None:
    """The refusal for a quote above what the upstream account has left (None when it fits or is unknown)."""
    if balance is None or quote.estimate <= balance:
        return None
    lower = f" To spend less: {'; '.join(quote.ways_to_lower)}." if quote.ways_to_lower else ""
    return AccountBalanceError(
        f"Refused before spending anything: this call could cost up to {format_credits(quote.estimate)} credits "
        f"({quote.breakdown}), but the Crustdata account has only {format_credits(max(balance, Decimal(0)))} "
        f"credits left.{lower} Tell the user to top up the account.",
        estimate=quote.estimate,
        remaining=max(balance, Decimal(0)),
    )


def _declined(quote: Quote, remaining: Decimal) -> ConfirmationDeclinedError:
    return ConfirmationDeclinedError(
        f"Not run: the user did not approve spending up to {format_credits(quote.estimate)} credits. Nothing was "
        f"spent. Do not retry the same call; ask the user what to do, or lower the cost{_ways(quote)}.",
        estimate=quote.estimate,
        remaining=remaining,
    )


def _ways(quote: Quote) -> str:
    return f" ({'; '.join(quote.ways_to_lower)})" if quote.ways_to_lower else ""
