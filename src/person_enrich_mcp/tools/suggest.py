"""`suggest_filter_values`: the exact values a search field holds, from the upstream's free autocomplete.

`=` and `in` filters need the exact indexed value ("Vice President", not "VP"), and a value no one has silently
matches no one. This tool lets a model look values up mid-task for free: nothing is reserved or charged, it has
its own rate-limit bucket (`autocomplete`), and answers are cached for an hour. Fields with a closed value set
are answered locally, without asking the upstream at all.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from person_enrich_mcp.api import AUTOCOMPLETE, Suggestions
from person_enrich_mcp.api.contract import PATHS, PERSON_AUTOCOMPLETE_FIELDS, PERSON_FILTER_FIELDS
from person_enrich_mcp.budget import Quote
from person_enrich_mcp.errors import (
    BadRequestError,
    InputError,
    PersonEnrichError,
    PlanRestrictionError,
    format_credits,
)
from person_enrich_mcp.search_fields import CLOSED_VALUES, SEARCH_FIELDS_RESOURCE_URI, nearest
from person_enrich_mcp.tools.context import AppState, ToolContext, app_state, failed, owner_of
from person_enrich_mcp.tools.results import success

TOOL = "suggest_filter_values"
MAX_SUGGESTIONS = 50


class SuggestionOut(BaseModel):
    """One exact value and how many people have it (when the upstream says)."""

    value: str
    count: int | None = None


class SuggestResult(BaseModel):
    """Values of one search field, most common first."""

    sandbox: bool | None = None
    field: str
    suggestions: list[SuggestionOut]
    note: str | None = None


def _closed(field: str) -> tuple[str, ...] | None:
    return CLOSED_VALUES.get(field.rsplit(".", 1)[-1]) if field in PERSON_FILTER_FIELDS else None


def _check_field(field: str) -> str:
    """The field, if autocomplete serves it or it has a closed value set.

    Raises:
        InputError: with the nearest fields autocomplete serves.
    """
    name = field.strip()
    if name in PERSON_AUTOCOMPLETE_FIELDS or _closed(name) is not None:
        return name
    close = nearest(name, PERSON_AUTOCOMPLETE_FIELDS)
    hint = f" Nearest: {', '.join(close)}." if close else ""
    where = (
        "It is filterable, but has no value list: use (.) to match words in it."
        if name in PERSON_FILTER_FIELDS
        else "Filter field names differ from result names."
    )
    raise InputError(
        f"suggest_filter_values has no values for {name[:80]!r}.{hint} {where} The fields it serves are "
        f"autocomplete_fields in {SEARCH_FIELDS_RESOURCE_URI}. Nothing was spent."
    )


async def suggest_filter_values(
    field: Annotated[str, Field(max_length=200, description="e.g. basic_profile.location.country")],
    ctx: ToolContext,
    query: Annotated[str, Field(max_length=200, description="words in the values")] = "",
    limit: Annotated[int, Field(ge=1, le=MAX_SUGGESTIONS)] = 10,
) -> Annotated[CallToolResult, SuggestResult]:
    """Exact values of a search field, most common first, with counts. Free; use before = or in filters."""
    app = app_state(ctx)
    try:
        name = _check_field(field)
        closed = _closed(name)
        if closed is not None:
            words = query.lower().split()
            values = [v for v in closed if all(w in v.lower() for w in words)][:limit]
            note = "A closed value set: these are all the values it takes."
            result = SuggestResult(field=name, suggestions=[SuggestionOut(value=v) for v in values], note=note)
            return _done(app, result)
        suggestions = await _suggestions(app, ctx, name, query.strip(), limit)
    except PersonEnrichError as exc:
        return failed(app, TOOL, exc, view=await app.budget.view(owner_of(ctx)))
    values = [SuggestionOut(value=s.value, count=s.document_count) for s in suggestions.suggestions if s.value]
    note = None if values else "No values contain those words; try fewer or shorter words, or an empty query."
    return _done(app, SuggestResult(field=name, suggestions=values, note=note))


def _done(app: AppState, result: SuggestResult) -> CallToolResult:
    app.budget.metrics.inc("person_enrich_tool_calls_total", tool=TOOL, outcome="ok")
    result.sandbox = True if app.sandbox else None
    return success(result)


async def _suggestions(app: AppState, ctx: ToolContext, field: str, query: str, limit: int) -> Suggestions:
    """The upstream's autocomplete for one field (from the cache when asked lately), never a paid call.

    Raises:
        PlanRestrictionError: when the account's plan lacks autocomplete or prices it.
        APIError: when the upstream call fails.
    """
    cached = await app.cache.get_suggestions(field, query, limit)
    if cached is not None:
        return cached
    account = await app.account.view()
    if not account.enabled(AUTOCOMPLETE):
        raise PlanRestrictionError(
            f"This Crustdata account's plan does not include {PATHS[AUTOCOMPLETE]}. Nothing was sent or spent. Use the "
            f"closed value sets in {SEARCH_FIELDS_RESOURCE_URI}, or filter with (.) to match words."
        )
    price = account.prices.autocomplete_per_call
    if price > 0:
        raise PlanRestrictionError(
            f"This Crustdata account's plan prices autocomplete at {format_credits(price)} credits a call, and "
            "suggest_filter_values only makes free calls. Nothing was sent or spent. Use the closed value sets in "
            f"{SEARCH_FIELDS_RESOURCE_URI}, or filter with (.) to match words."
        )
    try:
        answer = await app.api.autocomplete(field, query, limit)
    except BadRequestError as exc:
        if exc.status_code != 400:
            raise
        # The upstream's allowlist can be narrower than its published table: say so, and what to do instead.
        close = [f for f in nearest(field, PERSON_AUTOCOMPLETE_FIELDS) if f != field]
        said = str(exc).split(". ", 1)[0]
        raise InputError(
            f"The Person API has no value list for {field!r} on this account ({said}). Nothing was charged. Try "
            f"{', '.join(close[:3]) or 'another field'}, use the closed value sets in {SEARCH_FIELDS_RESOURCE_URI}, "
            "or filter with (.) to match words."
        ) from None
    if answer.credits_used:
        await _book_unexpected(app, ctx, answer.credits_used)
    await app.cache.put_suggestions(field, query, limit, answer.data)
    return answer.data


async def _book_unexpected(app: AppState, ctx: ToolContext, credits: Decimal) -> None:
    """An autocomplete the upstream billed after all: booked on the session, so no spend is ever off the books."""
    reservation = app.budget.reserve(owner_of(ctx), Quote(Decimal(0), "autocomplete (documented free)"))
    async with reservation:
        reservation.charge(credits)
    app.account.spent(credits)
