"""What the tools return: structured content with the same object as compact JSON text, and error results.

Success: `structuredContent`, and one text block holding the same object as compact JSON, so a client that shows
the model only text (many do) still gives it everything the call paid for. Error: `isError`, no structured content,
and a text of the cause and next step followed by one compact JSON line of facts (error code, figures, receipt).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel, ConfigDict, Field

from person_enrich_mcp.budget import BudgetView, Receipt
from person_enrich_mcp.errors import PersonEnrichError, SpendRefusedError, format_credits, model_message


class ReceiptOut(BaseModel):
    """Credits of this call and of the session so far (decimal strings)."""

    estimated: str
    charged: str
    cache_hits: int
    session_spent: str
    session_remaining: str
    unverified: str | None = None


class PersonOut(BaseModel):
    """One matched person: the identifier as given, how it matched, and the trimmed profile.

    A search row (`match_type` "search") has no confidence score. `missing` names requested fields that came back
    empty where that matters: fields with a price, or all of them when nothing came back.
    """

    model_config = ConfigDict(extra="forbid")

    matched_on: str
    match_type: str
    confidence_score: float | None = None
    person_data: dict[str, Any]
    missing: list[str] | None = None
    cached: bool | None = None


class ProblemOut(BaseModel):
    """An identifier that was not looked up, and why (nothing was spent on it)."""

    identifier: str
    reason: str


class EnrichResult(BaseModel):
    """The result of every enrichment tool."""

    sandbox: bool | None = None  # first, so a model reads it before the people
    people: list[PersonOut]
    not_found: list[str] | None = None
    problems: list[ProblemOut] | None = None
    total_count: int | None = Field(default=None, description="search matches in total")
    next_cursor: str | None = Field(default=None, description="pass back as cursor for the next page")
    truncated: str | None = None
    incomplete: str | None = Field(default=None, description="why the call stopped early")
    why_empty: list[str] | None = Field(default=None, description="the upstream's explanation of an empty search")
    notes: list[str] | None = None
    receipt: ReceiptOut


class BudgetResult(BaseModel):
    """The session budget and its newest receipts."""

    limit: str
    spent: str
    reserved: str
    unverified: str
    remaining: str
    confirm_above: str
    max_credits_approves_up_to: str = Field(description="above this, only the user can approve a spend")
    receipts: list[dict[str, Any]]
    window: dict[str, str] | None = Field(default=None, description="the principal's rolling budget, over HTTP")
    account: dict[str, str] | None = Field(default=None, description="the upstream account: balance, API revision")


def receipt_out(receipt: Receipt) -> ReceiptOut:
    """The receipt as it appears in results."""
    return ReceiptOut(
        estimated=format_credits(receipt.estimated),
        charged=format_credits(receipt.charged),
        cache_hits=receipt.cache_hits,
        session_spent=format_credits(receipt.session_spent),
        session_remaining=format_credits(receipt.session_remaining),
        unverified=format_credits(receipt.unverified) if receipt.unverified else None,
    )


def compact_json(value: Any) -> str:
    """The compact JSON text a result carries (non-ASCII kept as is: the same bytes as structured content)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def success(result: BaseModel) -> CallToolResult:
    """A result every client can read: structured content, and the same object as compact JSON text.

    Text-only clients (LangChain's tool messages, the OpenAI Agents SDK by default) pass only the text on to the
    model, so the text must carry everything the call paid for; the spec asks for exactly this serialisation. No
    prose copy is added: a model reads one copy of the data, and third-party strings only ever appear inside it.
    """
    structured = result.model_dump(mode="json", exclude_none=True)
    return CallToolResult(
        content=[TextContent(type="text", text=compact_json(structured))], structured_content=structured
    )


def failure(
    exc: PersonEnrichError, *, receipt: Receipt | None = None, view: BudgetView | None = None
) -> CallToolResult:
    """An `isError` result: the sentence the model reads (cause, next step), then one compact JSON line of facts.

    No structured content: a client validates structured content against the tool's output schema even on errors
    (the TypeScript SDK does), and an error has no people to list, so the facts travel in the text.
    """
    message = model_message(exc, already_charged=receipt.charged if receipt is not None else Decimal(0))
    error: dict[str, Any] = {"code": exc.code}
    if isinstance(exc, SpendRefusedError):
        error["estimate"] = format_credits(exc.estimate)
        error["remaining"] = format_credits(exc.remaining)
    facts: dict[str, Any] = {"error": error}
    if receipt is not None:
        facts["receipt"] = receipt_out(receipt).model_dump(exclude_none=True)
    elif view is not None:
        facts["budget"] = {"spent": format_credits(view.spent), "remaining": format_credits(view.remaining)}
    return CallToolResult(content=[TextContent(type="text", text=f"{message}\n{compact_json(facts)}")], is_error=True)
