"""What the tools return: compact structured results, a short text summary, and error results.

The structured content is the data; the text block is a few lines a person (or a client that ignores
structured content) can read, never a second copy of the JSON.
"""

from __future__ import annotations

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
    """One matched person: the identifier as given, how it matched, and the trimmed profile."""

    model_config = ConfigDict(extra="forbid")

    matched_on: str
    match_type: str
    confidence_score: float
    person_data: dict[str, Any]
    cached: bool | None = None


class ProblemOut(BaseModel):
    """An identifier that was not looked up, and why (nothing was spent on it)."""

    identifier: str
    reason: str


class EnrichResult(BaseModel):
    """The result of every enrichment tool."""

    people: list[PersonOut]
    not_found: list[str] | None = None
    problems: list[ProblemOut] | None = None
    total_count: int | None = Field(default=None, description="search matches in total")
    next_cursor: str | None = Field(default=None, description="pass back as cursor for the next page")
    truncated: str | None = None
    incomplete: str | None = Field(default=None, description="why the call stopped early")
    sandbox: bool | None = None
    receipt: ReceiptOut


class BudgetResult(BaseModel):
    """The session budget and its newest receipts."""

    limit: str
    spent: str
    reserved: str
    unverified: str
    remaining: str
    confirm_above: str
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


def _dig(data: dict[str, Any], *path: str) -> Any:
    value: Any = data
    for part in path:
        if isinstance(value, list):
            value = value[0] if value else None  # pyright: ignore[reportUnknownVariableType]
        if not isinstance(value, dict):
            return None
        value = value.get(part)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    return value  # pyright: ignore[reportUnknownVariableType]


def _person_line(person: PersonOut) -> str:
    data = person.person_data
    name = _dig(data, "basic_profile", "name") or _dig(data, "professional_network", "name") or "(name not selected)"
    title = _dig(data, "basic_profile", "current_title")
    employer = _dig(data, "experience", "employment_details", "current", "name")
    role = " at ".join(str(p) for p in (title, employer) if p)
    place = _dig(data, "basic_profile", "location", "full_location")
    parts = [str(name), role, str(place) if place else ""]
    score = f" ({person.confidence_score:.2f})" if person.match_type == "business_email" else ""
    cached = " [cache]" if person.cached else ""
    return f"- {' | '.join(p for p in parts if p)}{score}{cached} <- {person.matched_on}"


def enrich_summary(result: EnrichResult, *, max_lines: int = 10) -> str:
    """A few readable lines: who was found, what was not, what it cost."""
    lines: list[str] = []
    head = "[sandbox data] " if result.sandbox else ""
    counts = [f"{len(result.people)} {'person' if len(result.people) == 1 else 'people'}"]
    if result.total_count is not None:
        counts.append(f"of {result.total_count} matching the search")
    if result.not_found:
        counts.append(f"{len(result.not_found)} not found")
    if result.problems:
        counts.append(f"{len(result.problems)} invalid, not sent")
    r = result.receipt
    lines.append(
        f"{head}{', '.join(counts)}. Charged {r.charged} credits (estimate {r.estimated}, {r.cache_hits} from cache); "
        f"session {r.session_spent} spent, {r.session_remaining} left."
    )
    lines.extend(_person_line(p) for p in result.people[:max_lines])
    if len(result.people) > max_lines:
        lines.append(f"- ... and {len(result.people) - max_lines} more in the structured result")
    lines.extend(f"! {p.identifier}: {p.reason}" for p in (result.problems or [])[:5])
    lines.extend(note for note in (result.incomplete, result.truncated) if note)
    if result.next_cursor:
        lines.append("More results: call again with the same filters, sorts and limit, and cursor=next_cursor.")
    return "\n".join(lines)


def success(result: BaseModel, summary: str) -> CallToolResult:
    """A result with structured content and a short summary."""
    return CallToolResult(
        content=[TextContent(type="text", text=summary)],
        structured_content=result.model_dump(mode="json", exclude_none=True),
    )


def failure(
    exc: PersonEnrichError, *, receipt: Receipt | None = None, view: BudgetView | None = None
) -> CallToolResult:
    """An `isError` result: the sentence the model reads, plus the same facts as structured content."""
    message = model_message(exc, already_charged=receipt.charged if receipt is not None else Decimal(0))
    error: dict[str, Any] = {"code": exc.code, "message": message}
    if isinstance(exc, SpendRefusedError):
        error["estimate"] = format_credits(exc.estimate)
        error["remaining"] = format_credits(exc.remaining)
    structured: dict[str, Any] = {"error": error}
    if receipt is not None:
        structured["receipt"] = receipt_out(receipt).model_dump(exclude_none=True)
    elif view is not None:
        structured["budget"] = {"spent": format_credits(view.spent), "remaining": format_credits(view.remaining)}
    return CallToolResult(
        content=[TextContent(type="text", text=message)], structured_content=structured, is_error=True
    )
