"""`search_then_enrich`: a cheap Person Search for identifiers only, then enrichment of what it found."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from decimal import Decimal
from typing import Annotated, Any, Literal, cast

from mcp.server.mcpserver import Elicit, ElicitationResult, Resolve
from mcp.types import CallToolResult
from pydantic import BaseModel, ConfigDict, Field

from person_enrich_mcp.api import SEARCH, APIResult, SearchPage, SearchRequest
from person_enrich_mcp.api.contract import PATHS
from person_enrich_mcp.budget import Quote, Reservation
from person_enrich_mcp.errors import (
    APIError,
    APIOutcomeUnknownError,
    APIResponseError,
    InputError,
    PersonEnrichError,
    PlanRestrictionError,
    SuppressedFilterError,
    model_message,
)
from person_enrich_mcp.fields import PROFILE_URL_PATH, FieldSelection, parse_fields
from person_enrich_mcp.identifiers import IdentifierBatch, IdentifierRejected, check_profile_urls, normalise_profile_url
from person_enrich_mcp.pricing import PriceTable
from person_enrich_mcp.privacy.audit import AuditCall
from person_enrich_mcp.privacy.guard import OptOuts
from person_enrich_mcp.tools import enrichment
from person_enrich_mcp.tools.confirm import SpendApproval, SpendDecision, decide, over_balance, refusal
from person_enrich_mcp.tools.context import (
    AppState,
    ToolContext,
    app_state,
    audit_call,
    failed,
    owner_of,
    progress_reporter,
)
from person_enrich_mcp.tools.lookups import Fetched, Lookup, Plan
from person_enrich_mcp.tools.params import Fields, MaxCredits
from person_enrich_mcp.tools.results import EnrichResult, ProblemOut, enrich_summary, success

TOOL = "search_then_enrich"
MAX_LIMIT = 100
MAX_FILTER_DEPTH = 6
MAX_CONDITIONS = 100
MAX_VALUES = 500
MAX_VALUE_CHARS = 500
MAX_TOTAL_VALUES = 2_000
MAX_SORTS = 5
_FIX = " Nothing was spent; fix the filter and call again."

Operator = Literal["=", "!=", "<", "=<", ">", "=>", "in", "not_in", "(.)", "(!)", "[.]"]
Scalar = str | int | float | bool


class Filter(BaseModel):
    """A filter node: a leaf {field, type, value} or a group {op, conditions} of nested nodes.

    One model for both keeps the published schema small; `check_filters` enforces that each node is
    exactly one of the two shapes.
    """

    model_config = ConfigDict(extra="forbid")

    field: Annotated[str | None, Field(max_length=200)] = None
    type: Operator | None = None
    # A scalar, or an array of scalars for in/not_in; `check_filters` enforces which, with a clear message.
    value: Annotated[Any, Field(json_schema_extra={"type": ["string", "number", "boolean", "array"]})] = None
    op: Literal["and", "or"] | None = None
    conditions: list[Filter] | None = None

    def as_upstream(self) -> dict[str, Any]:
        """The node as the upstream expects it: only the keys of its shape."""
        if self.conditions is not None:
            return {"op": self.op, "conditions": [c.as_upstream() for c in self.conditions]}
        return {"field": self.field, "type": self.type, "value": self.value}


class Sort(BaseModel):
    """One sort key."""

    model_config = ConfigDict(extra="forbid")

    field: Annotated[str, Field(min_length=1, max_length=200)]
    order: Literal["asc", "desc"] = "asc"


def check_filters(node: Filter) -> None:
    """Check each node's shape, bound the work one call can cause, and catch what the upstream would reject.

    Raises:
        InputError: naming the problem and the fix (nothing is sent or spent).
    """
    leaves, values = _check_node(node, 1)
    if leaves > MAX_CONDITIONS:
        raise InputError(f"More than {MAX_CONDITIONS} filter conditions; combine them with 'in' lists.{_FIX}")
    if values > MAX_TOTAL_VALUES:
        raise InputError(f"More than {MAX_TOTAL_VALUES} filter values in all; narrow the lists.{_FIX}")


def _check_node(node: Filter, depth: int) -> tuple[int, int]:
    """(leaf conditions, values) under `node`."""
    if depth > MAX_FILTER_DEPTH:
        raise InputError(f"Filters nest deeper than {MAX_FILTER_DEPTH} levels; flatten them.{_FIX}")
    is_group = node.op is not None or node.conditions is not None
    is_leaf = node.field is not None or node.type is not None or node.value is not None
    if is_group == is_leaf:
        raise InputError(
            "Each filter is either a leaf {field, type, value} or a group {op: and|or, conditions: [...]}, "
            f"not both or neither.{_FIX}"
        )
    if is_group:
        if node.op is None or not node.conditions:
            raise InputError(f"A filter group needs op (and|or) and at least one condition.{_FIX}")
        leaves = values = 0
        for child in node.conditions:
            child_leaves, child_values = _check_node(child, depth + 1)
            leaves, values = leaves + child_leaves, values + child_values
            if leaves > MAX_CONDITIONS:  # stop early: thousands of conditions must not cost thousands of checks
                break
        return leaves, values
    if not node.field or node.type is None or node.value is None:
        raise InputError(f"A filter leaf needs field, type and value.{_FIX}")
    value: Any = node.value
    items = cast(list[Any], value) if isinstance(value, list) else [value]
    if isinstance(value, list):
        if node.type not in ("in", "not_in"):
            raise InputError(f"Filter on {node.field!r}: '{node.type}' takes one value; use 'in' for a list.{_FIX}")
        if not items or len(items) > MAX_VALUES or not all(isinstance(v, Scalar) for v in items):
            raise InputError(
                f"Filter on {node.field!r}: '{node.type}' needs an array of 1 to {MAX_VALUES} strings or numbers.{_FIX}"
            )
    elif node.type in ("in", "not_in"):
        raise InputError(f'Filter on {node.field!r}: \'{node.type}\' needs an array value, e.g. ["a", "b"].{_FIX}')
    elif not isinstance(value, Scalar):
        raise InputError(f"Filter on {node.field!r}: value must be a string, number or boolean.{_FIX}")
    if any(isinstance(v, str) and len(v) > MAX_VALUE_CHARS for v in items):
        raise InputError(f"Filter on {node.field!r}: values are limited to {MAX_VALUE_CHARS} characters.{_FIX}")
    return 1, len(items)


def _filter_strings(node: Filter) -> list[str]:
    """Every string value in a filter tree, `|` alternatives split apart."""
    if node.conditions is not None:
        return [text for child in node.conditions for text in _filter_strings(child)]
    value: Any = node.value
    items = cast(list[Any], value) if isinstance(value, list) else [value]
    return [part.strip() for item in items if isinstance(item, str) for part in item.split("|")]


def check_opt_outs(node: Filter, opt_outs: OptOuts) -> None:
    """Refuse a search whose filter names someone on the opt-out list (their URL, email or email domain): the
    identifier would be sent upstream.

    Raises:
        SuppressedFilterError: naming no value (the model sent it; the opt-out is the operator's).
    """
    if not opt_outs.active:
        return
    for text in _filter_strings(node):
        if "@" in text and "/" not in text:
            suppressed = opt_outs.names(text.lower())
        else:
            try:
                suppressed = opt_outs.names_url(normalise_profile_url(text))
            except IdentifierRejected:
                suppressed = False
        if suppressed:
            raise SuppressedFilterError(
                "A filter value names a person (or email domain) on this server's opt-out list, so the search was "
                "not sent. Nothing was spent. Remove that value and call again."
            )


def _fingerprint(filters: Filter, sorts: list[Sort] | None, limit: int) -> str:
    query = {
        "f": filters.as_upstream(),
        "s": [s.model_dump(mode="json") for s in sorts or []],
        "l": limit,
    }
    return hashlib.sha256(json.dumps(query, sort_keys=True).encode()).hexdigest()[:16]


def encode_cursor(upstream: str | None, fingerprint: str) -> str | None:
    """Wrap the upstream cursor with the query it belongs to."""
    if upstream is None:
        return None
    raw = json.dumps({"u": upstream, "q": fingerprint}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, fingerprint: str) -> str | None:
    """The upstream cursor inside ours, after checking it belongs to this same query.

    Raises:
        InputError: for a cursor of another query, or one that is not ours.
    """
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data: Any = json.loads(base64.urlsafe_b64decode(padded.encode()))
        upstream, query = str(data["u"]), str(data["q"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise InputError("cursor is not one this tool returned; pass next_cursor exactly as received.") from None
    if query != fingerprint:
        raise InputError(
            "This cursor belongs to a different search: repeat the same filters, sorts and limit with it, "
            "or omit cursor to start a new search."
        )
    return upstream


def search_quote(limit: int, selection: FieldSelection, prices: PriceTable, *, page_cached: bool = False) -> Quote:
    """Worst case: a full page of results (free when the page is cached), every one enriched at full price."""
    enrich = enrichment.enrich_quote(limit, selection, prices)
    search = Decimal(0) if page_cached else prices.search(limit)
    searching = "search page cached (free)" if page_cached else f"search {limit} × {prices.search_per_result}"
    return Quote(
        search + enrich.estimate,
        f"{searching} + {enrich.breakdown}",
        (*enrich.ways_to_lower, "lower limit") if limit > 1 else enrich.ways_to_lower,
    )


def _profile_urls(profiles: list[dict[str, Any]]) -> list[str]:
    urls: list[str] = []
    for profile in profiles:
        handles: Any = profile.get("social_handles")
        identifier: Any = (
            cast(dict[str, Any], handles).get("professional_network_identifier") if isinstance(handles, dict) else None
        )
        url: Any = cast(dict[str, Any], identifier).get("profile_url") if isinstance(identifier, dict) else None
        if isinstance(url, str) and url:
            urls.append(url)
    return urls


async def _confirm_search(
    ctx: ToolContext, limit: int, fields: list[str] | None, max_credits: float | None
) -> SpendDecision | Elicit[SpendApproval]:
    try:
        app = app_state(ctx)
        selection = app.policy.apply(parse_fields(fields), explicit=bool(fields))
        prices = (await app.account.view()).prices
    except PersonEnrichError:
        return SpendDecision(approved=True, how="not_needed")  # the tool body reports the problem
    return await decide(ctx, search_quote(limit, selection, prices), max_credits, tool="search_then_enrich")


async def search_then_enrich(
    filters: Filter,
    ctx: ToolContext,
    approval: Annotated[ElicitationResult[SpendApproval], Resolve(_confirm_search)],
    sorts: list[Sort] | None = None,
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT)] = 5,
    cursor: Annotated[str | None, Field(max_length=4096, description="next_cursor of the previous page")] = None,
    fields: Fields = None,
    max_credits: MaxCredits = None,
) -> Annotated[CallToolResult, EnrichResult]:
    """Find people with Person Search filters, then enrich them.

    0.03 credits a result + enrich prices; repeats are free. Filter: a leaf
    {field,type,value} or a group {op,conditions}, e.g. {"field":"experience.employment_details.current.title",
    "type":"(.)","value":"VP|Director"}.
    """
    app = app_state(ctx)
    owner = owner_of(ctx)
    call = audit_call(ctx, TOOL)
    reservation: Reservation | None = None
    withheld = 0
    try:
        selection = app.policy.apply(parse_fields(fields), explicit=bool(fields))
        check_filters(filters)
        app.opt_outs.require()
        app.audit.require()
        check_opt_outs(filters, app.opt_outs)
        if sorts and len(sorts) > MAX_SORTS:
            raise InputError(f"At most {MAX_SORTS} sort keys; keep the most important. Nothing was spent.")
        fingerprint = _fingerprint(filters, sorts, limit)
        upstream_cursor = decode_cursor(cursor, fingerprint)
        page_key = f"{fingerprint}\0{upstream_cursor or ''}"
        cached = await app.cache.get_page_entry(page_key)
        cached_page, withheld = cached if cached is not None else (None, 0)
        account = await app.account.view()
        if not account.enabled(SEARCH):
            raise PlanRestrictionError(
                f"This Crustdata account's plan does not include {PATHS[SEARCH]}. Nothing was sent or spent. Look "
                "people up by profile URL or work email instead, or ask the Crustdata account manager to enable it."
            )
        # What the enrich step would be refused is refused now, before the search is paid for.
        enrichment.check_access(account, Lookup("url", IdentifierBatch(), selection))
        quote = search_quote(limit, selection, account.prices, page_cached=cached_page is not None)
        view = await app.budget.view(owner)
        refused = over_balance(quote, account.balance) or refusal(
            approval, quote, max_credits, threshold=app.settings.confirm_above, remaining=view.remaining
        )
        if refused is not None:
            return failed(app, TOOL, refused, view=view)
        reservation = app.budget.reserve(owner, quote)
        async with reservation:
            if cached_page is None:
                page = await _paid_search(
                    app, reservation, account.prices, filters, sorts, limit, upstream_cursor, call
                )  # fmt: skip
            else:
                page = APIResult(cached_page, Decimal(0), None, None)
            # People on the opt-out list leave the page here: not cached, not enriched, not shown.
            allowed = [row for row in page.data.profiles if app.opt_outs.allows(row)]
            if len(allowed) < len(page.data.profiles):
                withheld += len(page.data.profiles) - len(allowed)
                page = APIResult(page.data.model_copy(update={"profiles": allowed}), Decimal(0), None, None)
                await app.cache.put_page(page_key, page.data, withheld=withheld)
            elif cached_page is None:
                await app.cache.put_page(page_key, page.data)
            found = page.data.profiles
            batch = check_profile_urls(_profile_urls(found))
            the_plan: Plan = await enrichment.plan(app, Lookup("url", batch, selection))
            call.cache_hits = len(the_plan.hits) + (cached_page is not None)
            fetched = Fetched()
            enrich_error: PersonEnrichError | None = None
            if the_plan.to_fetch:
                try:
                    fetched = await enrichment.fetch(app, the_plan, reservation, progress_reporter(ctx), call)
                except PersonEnrichError as exc:  # refused outright; the search itself was paid and is reported
                    enrich_error = exc
    except PersonEnrichError as exc:
        if reservation is not None and (reservation.charged or reservation.unverified):
            receipt = await app.budget.record(
                owner, tool=TOOL, quote=reservation.quote, charged=reservation.charged,
                unverified=reservation.unverified, cache_hits=0,
            )  # fmt: skip
            return failed(app, TOOL, exc, receipt=receipt)
        return failed(app, TOOL, exc, view=await app.budget.view(owner))
    receipt = await app.budget.record(
        owner,
        tool=TOOL,
        quote=quote,
        charged=reservation.charged,
        unverified=reservation.unverified,
        cache_hits=len(the_plan.hits) + (cached_page is not None),
    )
    if enrich_error is not None:
        return failed(app, TOOL, enrich_error, receipt=receipt)
    extra = (
        []
        if len(batch.accepted) + len(batch.problems) >= len(found)
        else [
            ProblemOut(identifier="(search)", reason=f"{len(found) - len(batch.accepted)} results had no profile URL")
        ]
    )
    if withheld:
        extra.append(
            ProblemOut(
                identifier="(search)",
                reason=f"{withheld} result{'s' if withheld != 1 else ''} withheld: on this server's opt-out list",
            )
        )
    incomplete = (
        model_message(fetched.failure, already_charged=receipt.charged) if fetched.failure is not None else None
    )
    result = enrichment.assemble(
        app,
        the_plan,
        fetched,
        receipt,
        extra_problems=extra,
        total_count=page.data.total_count,
        next_cursor=encode_cursor(page.data.next_cursor, fingerprint),
        incomplete=incomplete,
    )
    call.served_from_cache("url", list(the_plan.hits), selection.paths)
    return success(result, enrich_summary(result))


async def _paid_search(
    app: AppState,
    reservation: Reservation,
    prices: PriceTable,
    filters: Filter,
    sorts: list[Sort] | None,
    limit: int,
    cursor: str | None,
    call: AuditCall,
) -> APIResult[SearchPage]:
    """One search page for profile URLs only, its credits recorded on the reservation and audited whatever happens.

    An unreadable answer is charged what the upstream reported (else a full page); a lost one is held as
    unverified at a full page, because whether it was billed is unknown; an error answer that reported a bill is
    charged that bill.
    """
    charged, unverified = reservation.charged, reservation.unverified
    outcome = "cancelled"
    results: int | None = None
    try:
        page = await _search_page(app, reservation, prices, filters, sorts, limit, cursor)
        outcome, results = "ok", len(page.data.profiles)
        return page
    except PersonEnrichError as exc:
        outcome = exc.code
        raise
    finally:
        call.request(
            SEARCH, "none", [], [PROFILE_URL_PATH], estimated=prices.search(limit),
            charged=reservation.charged - charged, unverified=reservation.unverified - unverified, outcome=outcome,
            results=results,
        )  # fmt: skip


async def _search_page(
    app: AppState,
    reservation: Reservation,
    prices: PriceTable,
    filters: Filter,
    sorts: list[Sort] | None,
    limit: int,
    cursor: str | None,
) -> APIResult[SearchPage]:
    """The search request and the booking of its credits (see `_paid_search`)."""
    request = SearchRequest(
        filters=filters.as_upstream(),
        sorts=[s.model_dump(mode="json") for s in sorts or []],
        limit=limit,
        cursor=cursor,
        fields=[PROFILE_URL_PATH],
    )
    try:
        page = await app.api.search(request)
    except APIResponseError as exc:
        reservation.charge(exc.credits_used if exc.credits_used is not None else prices.search(limit))
        raise
    except APIOutcomeUnknownError:
        reservation.charge_unverified(prices.search(limit))
        raise
    except APIError as exc:
        if exc.credits_used:
            reservation.charge(exc.credits_used)
        raise
    found = len(page.data.profiles)
    charged = page.credits_used if page.credits_used is not None else prices.search(found)
    reservation.charge(charged)
    app.account.spent(charged)
    return page
