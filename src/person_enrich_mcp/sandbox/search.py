"""`POST /person/search` in both revisions: filters, sorts, cursors, projection, and today's extras.

Today's revision adds `post_processing` (exclusions applied after the page is drawn), plan-gated `preview`
(lighter rows at the plan's preview price) and `explain` (remarks naming the condition that emptied the
result). The overview revision refuses all three, as the sandbox always did.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import itertools
import json
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from person_enrich_mcp.sandbox.calls import Call, Outcome, fields_denied, invalid
from person_enrich_mcp.sandbox.catalog import build_tree, gated_hits, project, strip_gated
from person_enrich_mcp.sandbox.dataset import Person
from person_enrich_mcp.sandbox.filters import (
    CompiledLeaf,
    CompiledNode,
    FilterError,
    SearchIndex,
    compile_filters,
    compile_sorts,
    positions,
)
from person_enrich_mcp.sandbox.pricing import SEARCH_CREDITS_PER_PROFILE, price_list
from person_enrich_mcp.sandbox.state import SandboxState
from person_enrich_mcp.sandbox.validation import object_body, optional_bool, profile_slug, string_list

MAX_SEARCH_LIMIT = 1000
DEFAULT_SEARCH_LIMIT = 20
MAX_EXCLUDED_PROFILES = 50_000
SEARCH_KEYS = (
    "filters",
    "sorts",
    "limit",
    "count",
    "fields",
    "cursor",
    "post_processing",
    "preview",
    "explain",
    "return_query",
)
POST_PROCESSING_KEYS = ("exclude_profiles", "exclude_names")
PREVIEW_NOT_AVAILABLE = "error: PersonDB preview feature is not available for your account."
# A preview row: who the person is and where, nothing that costs a full row to assemble.
PREVIEW_TREE = build_tree(
    (
        "crustdata_person_id",
        "basic_profile.name",
        "basic_profile.headline",
        "basic_profile.location",
        "social_handles",
    )
)


@dataclass(frozen=True, slots=True)
class Exclusions:
    """`post_processing`: people to drop from a page by profile slug or by name (case-insensitive)."""

    slugs: frozenset[str]
    names: frozenset[str]

    def excludes(self, person: Person) -> bool:
        """Whether the person is dropped from the page."""
        name = person.data["basic_profile"]["name"] or ""
        return person.slug.lower() in self.slugs or name.strip().casefold() in self.names


@dataclass(frozen=True, slots=True)
class _Options:
    """The flags that differ between revisions, once validated."""

    exclusions: Exclusions | None
    preview: bool
    explain: bool


@dataclass(frozen=True, slots=True)
class _Search:
    """A validated search request."""

    options: _Options
    filters: CompiledNode
    sorts: tuple[tuple[str, str], ...]
    limit: int
    fields: list[str] | None
    query_fp: str
    offset: int


def process_search(state: SandboxState, call: Call) -> Outcome:
    """Validate a search, draw the page, apply today's extras, and bill per row returned."""
    request = object_body(call.body, SEARCH_KEYS)
    search = _validated(state, call, request)
    index = state.search_index
    mask = index.evaluate(search.filters)
    total = mask.bit_count()
    selected = _page(index, mask, search.sorts, search.offset, search.limit)
    end = search.offset + len(selected)
    next_cursor = _encode_cursor(end, search.query_fp) if selected and end < total else None
    people = [index.people[i] for i in selected]
    exclusions = search.options.exclusions
    if exclusions is not None:
        # After the page is drawn: a page can come back short without being the last one.
        people = [p for p in people if not exclusions.excludes(p)]
    shape = _row_shaper(search.fields, search.options.preview, call.disabled_fields())
    payload: dict[str, Any] = {
        "profiles": [shape(p) for p in people],
        "next_cursor": next_cursor,
        "total_count": total,
    }
    if search.options.explain and total == 0:
        payload["remarks"] = explain_empty(index, search.filters, request["filters"])
    return Outcome(200, payload, _unit_price(call, search.fields, search.options.preview) * len(people))


def _validated(state: SandboxState, call: Call, request: dict[str, Any]) -> _Search:
    """Every check a search goes through, in the order the sandbox has always run them."""
    options = _current_options(call, request) if call.config.revision == "current" else _overview_options(request)
    optional_bool(request, "return_query")  # accepted and ignored, as upstream does
    if "filters" not in request or request["filters"] is None:
        raise invalid("Missing required parameter 'filters'")
    try:
        compiled = compile_filters(request["filters"])
        sorts = compile_sorts(request.get("sorts"))
    except FilterError as error:
        raise invalid(error.message, error.metadata) from None
    limit = _search_limit(request)
    fields = _search_fields(state, call, request.get("fields"))
    query_fp = _query_fingerprint(request["filters"], request.get("sorts"), request.get("fields"), limit)
    offset = _decode_cursor(request.get("cursor"), query_fp)
    return _Search(options, compiled, sorts, limit, fields, query_fp, offset)


def _overview_options(request: dict[str, Any]) -> _Options:
    if request.get("post_processing") is not None:
        raise invalid("'post_processing' is not supported by the sandbox")
    if optional_bool(request, "preview"):
        raise invalid(PREVIEW_NOT_AVAILABLE)
    if optional_bool(request, "explain"):
        raise invalid("'explain' is not supported by the sandbox")
    return _Options(None, preview=False, explain=False)


def _current_options(call: Call, request: dict[str, Any]) -> _Options:
    exclusions = _exclusions(request.get("post_processing"))
    preview = optional_bool(request, "preview")
    if preview and not call.plan.preview:
        raise invalid(PREVIEW_NOT_AVAILABLE)
    return _Options(exclusions, preview=preview, explain=optional_bool(request, "explain"))


def _exclusions(value: Any) -> Exclusions | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid("'post_processing' must be an object with 'exclude_profiles' and/or 'exclude_names'")
    spec = cast("dict[str, Any]", value)
    unknown = [k for k in spec if k not in POST_PROCESSING_KEYS]
    if unknown:
        raise invalid(
            f"Unknown key(s) in 'post_processing': {', '.join(repr(u) for u in unknown)}. "
            f"Allowed keys: {', '.join(POST_PROCESSING_KEYS)}"
        )
    slugs: set[str] = set()
    if "exclude_profiles" in spec:
        urls = string_list(spec["exclude_profiles"], "post_processing.exclude_profiles", MAX_EXCLUDED_PROFILES)
        slugs = {profile_slug(url) for url in urls}
    names: set[str] = set()
    if "exclude_names" in spec:
        names = {
            n.strip().casefold() for n in string_list(spec["exclude_names"], "post_processing.exclude_names", None)
        }
    return Exclusions(frozenset(slugs), frozenset(names))


def _search_fields(state: SandboxState, call: Call, value: Any) -> list[str] | None:
    if value is None:
        return None
    names = string_list(value, "fields", max_items=None)
    catalog = state.catalog
    unknown = [f for f in names if f not in catalog.search_paths]
    if unknown:
        raise invalid(
            f"Unsupported field(s) in 'fields': {', '.join(repr(u) for u in unknown)}. "
            "See metadata.available_fields for the fields search can return.",
            {"available_fields": catalog.search_sorted},
        )
    denied = gated_hits(names, call.disabled_fields())
    if denied:
        raise fields_denied(call.config.revision, denied)
    return names


def _page(index: SearchIndex, mask: int, sorts: tuple[tuple[str, str], ...], offset: int, limit: int) -> list[int]:
    if not sorts:
        return positions(mask)[offset : offset + limit]
    order = index.order(sorts)
    if mask == index.all:
        return order[offset : offset + limit]
    members = set(positions(mask))
    matching = (i for i in order if i in members)
    return list(itertools.islice(matching, offset, offset + limit))


def _row_shaper(fields: list[str] | None, preview: bool, disabled: Sequence[str]) -> Callable[[Person], Any]:
    tree = None if fields is None else build_tree(fields)

    def shape(person: Person) -> Any:
        row: Any = project(person.search, PREVIEW_TREE) if preview else person.search
        if tree is not None:
            row = project(row, tree)
        return strip_gated(row, disabled) if disabled else row

    return shape


def _unit_price(call: Call, fields: list[str] | None, preview: bool) -> Decimal:
    if call.config.revision == "overview":
        return SEARCH_CREDITS_PER_PROFILE
    if preview:
        return call.plan.preview_credits
    # Premium fields are charged when asked for, or always when `fields` is omitted (every group comes back).
    prices = price_list(call.path, call.terms)
    return prices.unit_cost(fields if fields is not None else list(prices.premium))


# --- explain -----------------------------------------------------------------------------------------------


def explain_empty(index: SearchIndex, compiled: CompiledNode, raw: Any) -> list[dict[str, Any]]:
    """Remarks naming the leaf condition(s) that emptied the result.

    Within an AND group the leaves are added in order; the first whose addition empties the result is named.
    If that condition matches nothing on its own (or is an OR whose alternatives all match nothing), each such
    leaf is named instead, since each is a reason on its own.
    """
    return [_remark(leaf, alone) for leaf, alone in _culprits(index, compiled, raw, index.all)]


def _culprits(index: SearchIndex, node: CompiledNode, raw: Any, context: int) -> list[tuple[dict[str, Any], bool]]:
    if isinstance(node, CompiledLeaf):
        return [(cast("dict[str, Any]", raw), index.evaluate(node) == 0)]
    children = zip(node.children, cast("dict[str, Any]", raw)["conditions"], strict=True)
    if node.op == "or":
        # An OR is empty only when every alternative is: each of them is a reason.
        return [c for child, child_raw in children for c in _culprits(index, child, child_raw, context)]
    running = context
    for child, child_raw in children:
        result = index.evaluate(child)
        if not running & result:
            return _culprits(index, child, child_raw, index.all if not result else running)
        running &= result
    return []


def _remark(condition: dict[str, Any], alone: bool) -> dict[str, Any]:
    field, operator, value = condition["field"], condition["type"], condition.get("value")
    stated = f"{field} {operator} {json.dumps(value, ensure_ascii=False)}"
    if alone:
        message = f"No profile matches {stated}: this condition matches nothing on its own."
    else:
        message = f"{stated} matches profiles, but none that also match the conditions before it."
    return {"type": "empty_result", "field": field, "type_operator": operator, "value": value, "message": message}


# --- limits and cursors ------------------------------------------------------------------------------------


def _search_limit(request: dict[str, Any]) -> int:
    limit = request.get("limit")
    count = request.get("count")
    if limit is not None and count is not None and limit != count:
        raise invalid("'count' is an alias of 'limit': send one of them")
    value = limit if limit is not None else count
    if value is None:
        return DEFAULT_SEARCH_LIMIT
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SEARCH_LIMIT:
        raise invalid(f"'limit' must be an integer between 1 and {MAX_SEARCH_LIMIT}; got {value!r}")
    return value


def _query_fingerprint(filters: Any, sorts: Any, fields: Any, limit: int) -> str:
    canonical = json.dumps([filters, sorts, fields, limit], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _encode_cursor(offset: int, query_fp: str) -> str:
    raw = json.dumps({"v": 1, "o": offset, "q": query_fp}, separators=(",", ":")).encode()
    # gzip then base64, so cursors look like upstream's "H4sI..." tokens; mtime=0 keeps them deterministic.
    return base64.urlsafe_b64encode(gzip.compress(raw, mtime=0)).decode().rstrip("=")


def _decode_cursor(cursor: Any, query_fp: str) -> int:
    if cursor is None:
        return 0
    if not isinstance(cursor, str) or not cursor:
        raise invalid("'cursor' must be a string returned as next_cursor, or null")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(gzip.decompress(base64.urlsafe_b64decode(padded)))
    except (ValueError, binascii.Error, OSError, EOFError, zlib.error):
        raise invalid("Invalid cursor: pass the next_cursor of the previous page unchanged") from None
    if not isinstance(data, dict):
        raise invalid("Invalid cursor: pass the next_cursor of the previous page unchanged")
    decoded = cast("dict[str, Any]", data)
    offset = decoded.get("o")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0 or decoded.get("q") is None:
        raise invalid("Invalid cursor: pass the next_cursor of the previous page unchanged")
    if decoded["q"] != query_fp:
        raise invalid(
            "This cursor belongs to a different query: keep filters, sorts, fields and limit identical between pages"
        )
    return offset
