"""`POST /person/enrich` in both revisions, and today's Live Enrich (`/person/professional_network/enrich/live`).

The overview revision's enrich did everything (profile URLs or business e-mails, contact fields, realtime
flags); today's takes profile URLs only, returns profile groups only, and prices only developer-platform data
as an extra. Live Enrich answers in the same shape from the same synthetic people, at its own price.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from person_enrich_mcp.sandbox.calls import Call, Outcome, fields_denied, invalid, not_found
from person_enrich_mcp.sandbox.catalog import (
    CURRENT_ENRICH_GROUPS,
    DEFAULT_FAMILIES,
    ENRICH_TOP_LEVEL_SCALARS,
    build_tree,
    enrich_selection,
    gated_hits,
    project,
    strip_gated,
)
from person_enrich_mcp.sandbox.dataset import Dataset, EmailCandidate, Person
from person_enrich_mcp.sandbox.pricing import overview_enrich_unit_cost, price_list
from person_enrich_mcp.sandbox.state import SandboxState
from person_enrich_mcp.sandbox.validation import (
    EMAILS,
    URLS,
    closed_fields,
    identifiers,
    object_body,
    optional_bool,
    profile_slug,
    string_list,
)

OVERVIEW_ENRICH_KEYS = (URLS, EMAILS, "fields", "min_similarity_score", "force_fetch", "enrich_realtime", "preview")
CURRENT_ENRICH_KEYS = (URLS, "fields", "preview")
LIVE_ENRICH_KEYS = (URLS, "fields")
URL_MATCH = "professional_network_profile_url"
EMAIL_MATCH = "business_email"
PREVIEW_SELECTION = ("crustdata_person_id", "basic_profile")
PREVIEW_NOT_AVAILABLE = "Preview feature is not available for your account"


def url_candidates(dataset: Dataset, url: str) -> list[EmailCandidate]:
    """The one person a profile URL names (confidence 1.0), or nobody when unknown or opted out."""
    person = dataset.lookup_slug(profile_slug(url))
    return [EmailCandidate(person, 1.0)] if person is not None and not person.opted_out else []


def entry(identifier: str, match_type: str, matches: list[dict[str, Any]]) -> dict[str, Any]:
    """One element of the enrich answer array."""
    return {"matched_on": identifier, "match_type": match_type, "matches": matches}


# --- the overview revision -------------------------------------------------------------------------------


def process_overview_enrich(state: SandboxState, call: Call) -> Outcome:
    """The overview revision's enrich: URLs or e-mails, any catalog path, realtime flags, add-on pricing."""
    config = call.config
    request = object_body(call.body, OVERVIEW_ENRICH_KEYS)
    kind, items = identifiers(request, emails_allowed=True)
    fields = _overview_fields(state, request.get("fields"))
    min_score = _min_similarity_score(request.get("min_similarity_score"))
    flags = {name: optional_bool(request, name) for name in ("force_fetch", "enrich_realtime", "preview")}
    if flags["preview"]:
        raise invalid(PREVIEW_NOT_AVAILABLE)
    disabled = call.disabled_fields()
    if fields is not None:
        denied = gated_hits(fields, disabled)
        if denied:
            raise fields_denied("overview", denied)
    tree = enrich_selection(
        fields, default_fields=config.default_fields, include_default_families=config.include_default_families
    )

    def shape(person: Person) -> dict[str, Any]:
        data: dict[str, Any] = person.data if tree is None else project(person.data, tree)
        return strip_gated(data, disabled) if disabled else data

    entries: list[dict[str, Any]] = []
    matched = 0
    for identifier in items:
        if kind == URLS:
            candidates = url_candidates(state.dataset, identifier)
        else:
            candidates = state.dataset.email_candidates(identifier)
        if min_score is not None:
            candidates = [c for c in candidates if c.score >= min_score]
        matched += bool(candidates)
        matches = [{"confidence_score": c.score, "person_data": shape(c.person)} for c in candidates]
        entries.append(entry(identifier, URL_MATCH if kind == URLS else EMAIL_MATCH, matches))
    if not matched and config.no_match_status == 404:
        return Outcome(404, not_found().payload())
    realtime = flags["force_fetch"] or flags["enrich_realtime"]
    unit = overview_enrich_unit_cost(fields, default_fields=config.default_fields, realtime=realtime)
    return Outcome(200, entries, unit * matched)


def _overview_fields(state: SandboxState, value: Any) -> list[str] | None:
    if value is None:
        return None
    fields = string_list(value, "fields", max_items=None)
    catalog = state.catalog
    unknown = [f for f in fields if f not in catalog.enrich_paths]
    if unknown:
        raise invalid(
            f"Unsupported field(s) in 'fields': {', '.join(repr(u) for u in unknown)}. "
            "See metadata.available_fields for the valid ones.",
            {"available_fields": catalog.enrich_sorted},
        )
    return fields


def _min_similarity_score(value: Any) -> float | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1):
        raise invalid(f"'min_similarity_score' must be a number between 0 and 1, or null; got {value!r}")
    return value


# --- today's revision ------------------------------------------------------------------------------------


def process_current_enrich(state: SandboxState, call: Call) -> Outcome:
    """Today's `/person/enrich`: profile URLs, group `fields`, optional plan-gated `preview`."""
    request = object_body(call.body, CURRENT_ENRICH_KEYS)
    preview = optional_bool(request, "preview")
    return _profile_enrich(state, call, request, preview=preview)


def process_live_enrich(state: SandboxState, call: Call) -> Outcome:
    """Live Enrich: the same shape from the same people, at its own price, after `live_latency_ms`."""
    request = object_body(call.body, LIVE_ENRICH_KEYS)
    outcome = _profile_enrich(state, call, request, preview=False)
    outcome.delay_seconds = call.config.live_latency_ms / 1000
    return outcome


def _profile_enrich(state: SandboxState, call: Call, request: dict[str, Any], *, preview: bool) -> Outcome:
    _kind, urls = identifiers(request, emails_allowed=False)
    fields = closed_fields(request.get("fields"), CURRENT_ENRICH_GROUPS, call.path)
    if preview and not call.plan.preview:
        raise invalid(PREVIEW_NOT_AVAILABLE)
    disabled = call.disabled_fields()
    denied = gated_hits(fields or (), disabled)
    if denied:
        raise fields_denied("current", denied)
    requested = _requested_groups(fields, call.config.default_fields)
    shape = _profile_shaper(_returned_groups(fields, requested, call, preview), disabled)
    entries: list[dict[str, Any]] = []
    matched = 0
    for url in urls:
        candidates = url_candidates(state.dataset, url)
        matched += bool(candidates)
        matches = [{"confidence_score": c.score, "person_data": shape(c.person)} for c in candidates]
        entries.append(entry(url, URL_MATCH, matches))
    if not matched and call.config.no_match_status == 404:
        return Outcome(404, not_found().payload())
    if preview:
        return Outcome(200, entries)  # a preview is free
    return Outcome(200, entries, price_list(call.path, call.terms).unit_cost(requested) * matched)


def _requested_groups(fields: list[str] | None, default_fields: str) -> Sequence[str]:
    """What the request asks for, and is billed on: its `fields`, or the default selection when omitted."""
    if fields is not None:
        return fields
    return CURRENT_ENRICH_GROUPS if default_fields == "all" else DEFAULT_FAMILIES


def _returned_groups(fields: list[str] | None, requested: Sequence[str], call: Call, preview: bool) -> list[str]:
    """What comes back: more than asked (the default families, as upstream), never `contact`."""
    if preview:
        return list(PREVIEW_SELECTION)
    selected = [*ENRICH_TOP_LEVEL_SCALARS, *requested]
    if fields is not None and call.config.include_default_families:
        selected.extend(DEFAULT_FAMILIES)
    return selected


def _profile_shaper(selection: Sequence[str], disabled: Sequence[str]) -> Callable[[Person], dict[str, Any]]:
    tree = build_tree(selection)

    def shape(person: Person) -> dict[str, Any]:
        data: dict[str, Any] = project(person.data, tree)
        # Groups the synthetic people lack (assessment, social_posts) are simply absent, as for a real person
        # with no such data. Disabled paths are withheld even from groups returned unasked.
        return strip_gated(data, disabled) if disabled else data

    return shape
