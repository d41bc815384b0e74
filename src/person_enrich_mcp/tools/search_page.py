"""One page of a Person Search for `search_then_enrich`: the checked query, its cursor, the page cache, and the
paid request (leaving out people the session already has, and asking the upstream why an empty search is empty).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, cast

from person_enrich_mcp.api import SEARCH, Dialect, SearchPage, SearchRequest
from person_enrich_mcp.budget import Owner, Reservation
from person_enrich_mcp.errors import APIError, APIOutcomeUnknownError, APIResponseError, InputError, PersonEnrichError
from person_enrich_mcp.fields import PROFILE_URL_PATH, FieldSelection, parse_fields
from person_enrich_mcp.pricing import PriceTable
from person_enrich_mcp.privacy.audit import AuditCall
from person_enrich_mcp.privacy.policy import FieldPolicy
from person_enrich_mcp.search_rows import search_fields
from person_enrich_mcp.tools.context import AppState
from person_enrich_mcp.tools.filters import Filter, Sort, check_filters, check_sorts
from person_enrich_mcp.untrusted import clean_text

MAX_REMARKS = 5
MAX_REMARK_CHARS = 300


@dataclass(frozen=True, slots=True)
class SearchCall:
    """One call's search after the local checks: what goes upstream, and what the result shows."""

    filters: Filter
    sorts: list[Sort]
    limit: int
    selection: FieldSelection
    enrich: bool
    asked: list[str]  # the `fields` search is asked for
    fingerprint: str
    cursor: str | None  # the upstream's
    offset: int  # rows drawn before this page (excluded ones too), to tell how many a page left out
    notes: list[str]

    @property
    def page_key(self) -> str:
        """The page cache key shared by every session (a page fetched without exclusions)."""
        return f"{self.fingerprint}\0{self.cursor or ''}"

    def owner_page_key(self, owner: Owner) -> str:
        """The page cache key of a page fetched for one session, with the people it already had left out."""
        return f"{self.page_key}\0{owner.session}\0{owner.principal or ''}"


def prepare(
    filters: Filter,
    sorts: list[Sort] | None,
    limit: int,
    cursor: str | None,
    fields: list[str] | None,
    enrich: bool,
    policy: FieldPolicy,
) -> SearchCall:
    """Check everything the caller sent and build the search, before anything is priced, reserved or sent.

    Raises:
        InputError: naming the problem and the fix (a field the operator's policy denies included).
    """
    selection = policy.apply(parse_fields(fields), explicit=bool(fields))
    # Problems in the filters and in the sorts are reported together, so one corrected call fixes both.
    problems: list[str] = []
    normalised, notes, checked_sorts = filters, [], []
    try:
        normalised, notes = check_filters(filters)
    except InputError as exc:
        problems.append(str(exc))
    try:
        checked_sorts = check_sorts(sorts)
    except InputError as exc:
        problems.append(str(exc))
    if problems:
        raise InputError(" ".join(problems))
    if enrich:
        asked = [PROFILE_URL_PATH]
    else:
        asked, unavailable = search_fields(selection)
        if unavailable:
            raise InputError(
                f"Search rows (enrich: false) cannot carry {', '.join(unavailable)}: emails, phone numbers, skills "
                "and the like come only with enrichment. Drop them to look at candidates first, or set enrich: true. "
                "Nothing was sent or spent."
            )
    fingerprint = _fingerprint(normalised, checked_sorts, limit, asked)
    upstream, offset = decode_cursor(cursor, fingerprint)
    return SearchCall(normalised, checked_sorts, limit, selection, enrich, asked, fingerprint, upstream, offset, notes)


def _fingerprint(filters: Filter, sorts: list[Sort], limit: int, asked: list[str]) -> str:
    query: dict[str, Any] = {"f": filters.as_upstream(), "s": [s.model_dump(mode="json") for s in sorts], "l": limit}
    if asked != [PROFILE_URL_PATH]:
        query["a"] = asked  # the upstream's cursor is tied to its `fields` too
    return hashlib.sha256(json.dumps(query, sort_keys=True).encode()).hexdigest()[:16]


def encode_cursor(upstream: str | None, fingerprint: str, offset: int) -> str | None:
    """Wrap the upstream cursor with the query it belongs to and how many rows were drawn before it."""
    if upstream is None:
        return None
    raw = json.dumps({"u": upstream, "q": fingerprint, "o": offset}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, fingerprint: str) -> tuple[str | None, int]:
    """The upstream cursor inside ours and its offset, after checking it belongs to this same query.

    Raises:
        InputError: for a cursor of another query, or one that is not ours.
    """
    if not cursor:
        return None, 0
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data: Any = json.loads(base64.urlsafe_b64decode(padded.encode()))
        upstream, query, offset = str(data["u"]), str(data["q"]), int(data.get("o", 0))
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        raise InputError("cursor is not one this tool returned; pass next_cursor exactly as received.") from None
    if query != fingerprint:
        raise InputError(
            "This cursor belongs to a different search: repeat the same filters, sorts, limit, fields and enrich "
            "with it, or omit cursor to start a new search."
        )
    return upstream, max(offset, 0)


async def cached_page(app: AppState, owner: Owner, call: SearchCall) -> tuple[SearchPage, int] | None:
    """The page as read before (this session's own, with people it had left out, else anyone's), and how many of
    its rows are withheld for the opt-out list (people who opted out since it was cached leave it now)."""
    found = await app.cache.get_page_entry(call.owner_page_key(owner)) or await app.cache.get_page_entry(call.page_key)
    if found is None:
        return None
    page, withheld = found
    allowed, dropped = _allowed(app, page)
    return allowed, withheld + dropped


def _allowed(app: AppState, page: SearchPage) -> tuple[SearchPage, int]:
    """The page without the rows of people on the opt-out list (never cached, enriched or shown), and their count."""
    kept = [row for row in page.profiles if app.opt_outs.allows(row)]
    if len(kept) == len(page.profiles):
        return page, 0
    return page.model_copy(update={"profiles": kept}), len(page.profiles) - len(kept)


@dataclass(slots=True)
class PaidPage:
    """A page the upstream answered, and what the server did about it."""

    page: SearchPage
    left_out: int = 0  # people this session already had, dropped from the page before billing
    withheld: int = 0  # people on the opt-out list, dropped from the page as it came back


async def paid_page(
    app: AppState,
    reservation: Reservation,
    prices: PriceTable,
    dialect: Dialect,
    owner: Owner,
    call: SearchCall,
    audit: AuditCall,
) -> PaidPage:
    """Search one page, leaving out people this session already has with these fields (today's API); when it matches
    no one, ask the upstream again with `explain` (free: no rows, no bill) for the condition that emptied it. The page
    is cached afterwards (for this session alone when people were left out of it).

    Raises:
        APIError: when the search fails (its bill, if it reported one, is on the reservation).
    """
    exclusions = await app.seen.covering(owner, call.selection) if dialect is Dialect.CURRENT else []
    # An exclusion is sent upstream too: never one naming a person on the opt-out list.
    exclusions = [url for url in exclusions if not app.opt_outs.names_url(url)]
    request = SearchRequest(
        filters=call.filters.as_upstream(),
        sorts=[s.model_dump(mode="json") for s in call.sorts],
        limit=call.limit,
        cursor=call.cursor,
        fields=call.asked,
        exclude_profiles=exclusions,
    )
    page = await _search(app, reservation, prices, request, call, audit)
    if not page.profiles and page.total_count == 0 and dialect is Dialect.CURRENT:
        page = await _explained(app, reservation, prices, request, call, audit) or page
    left_out = _left_out(page, call) if exclusions else 0
    page, withheld = _allowed(app, page)
    key = call.owner_page_key(owner) if exclusions else call.page_key
    await app.cache.put_page(key, page, withheld=withheld)
    return PaidPage(page, left_out, withheld)


async def _search(
    app: AppState,
    reservation: Reservation,
    prices: PriceTable,
    request: SearchRequest,
    call: SearchCall,
    audit: AuditCall,
) -> SearchPage:
    """One search request, its credits recorded on the reservation and audited whatever happens."""
    charged, unverified = reservation.charged, reservation.unverified
    outcome = "cancelled"
    results: int | None = None
    try:
        page = await _booked_search(app, reservation, prices, request, call)
        outcome, results = "ok", len(page.profiles)
        return page
    except PersonEnrichError as exc:
        outcome = exc.code
        raise
    finally:
        audit.request(
            SEARCH, "none", [], call.asked, estimated=prices.search_row(call.asked) * call.limit,
            charged=reservation.charged - charged, unverified=reservation.unverified - unverified, outcome=outcome,
            results=results,
        )  # fmt: skip


async def _booked_search(
    app: AppState, reservation: Reservation, prices: PriceTable, request: SearchRequest, call: SearchCall
) -> SearchPage:
    """The search request and the booking of its credits.

    An unreadable answer is charged what the upstream reported; a lost one, or an unreadable one that did not say,
    is held as unverified at a full page, because whether it was billed is unknown; an error answer that reported a
    bill is charged that bill.
    """
    row = prices.search_row(call.asked)
    try:
        result = await app.api.search(request)
    except APIResponseError as exc:
        if exc.credits_used is not None:
            _charge(app, reservation, exc.credits_used)
        else:
            reservation.charge_unverified(row * call.limit)
        raise
    except APIOutcomeUnknownError:
        reservation.charge_unverified(row * call.limit)
        raise
    except APIError as exc:
        if exc.credits_used:
            _charge(app, reservation, exc.credits_used)
        raise
    found = len(result.data.profiles)
    _charge(app, reservation, result.credits_used if result.credits_used is not None else row * found)
    return result.data


def _charge(app: AppState, reservation: Reservation, credits: Decimal) -> None:
    reservation.charge(credits)
    app.account.spent(credits)


async def _explained(
    app: AppState,
    reservation: Reservation,
    prices: PriceTable,
    request: SearchRequest,
    call: SearchCall,
    audit: AuditCall,
) -> SearchPage | None:
    """The same search with `explain: true`; None when the upstream would not explain (the empty page stands)."""
    try:
        return await _search(app, reservation, prices, replace(request, explain=True), call, audit)
    except APIError:
        return None  # anything it billed is on the reservation; the first answer already said "no one"


def _left_out(page: SearchPage, call: SearchCall) -> int:
    """How many rows the exclusions dropped: a page draws `limit` rows, or what is left of `total_count`."""
    drawn = call.limit if page.next_cursor else max(min(call.limit, page.total_count - call.offset), 0)
    return max(drawn - len(page.profiles), 0)


def remarks_text(remarks: Any) -> list[str] | None:
    """The upstream's `explain` remarks as short sentences (its `message`s where it gives them)."""
    if not remarks:
        return None
    items = cast(list[Any], remarks) if isinstance(remarks, list) else [remarks]
    out: list[str] = []
    for item in items[:MAX_REMARKS]:
        message: Any = cast(dict[str, Any], item).get("message") if isinstance(item, dict) else item
        text = message if isinstance(message, str) else json.dumps(item, separators=(",", ":"), ensure_ascii=False)
        out.append(clean_text(text)[:MAX_REMARK_CHARS])
    return out or None


def next_offset(call: SearchCall) -> int:
    """The offset the next page starts at: every page but the last draws `limit` rows."""
    return call.offset + call.limit
