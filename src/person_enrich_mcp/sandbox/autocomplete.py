"""`POST /person/search/autocomplete`: the field allowlist, a per-field value index, and the suggestions."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from person_enrich_mcp.sandbox.calls import Call, Outcome, invalid
from person_enrich_mcp.sandbox.dataset import Person
from person_enrich_mcp.sandbox.filters import FilterError, SearchIndex, bitset, compile_filters
from person_enrich_mcp.sandbox.pricing import price_list
from person_enrich_mcp.sandbox.validation import object_body

AUTOCOMPLETE_KEYS = ("field", "query", "limit", "filters")
DEFAULT_LIMIT = 20
MAX_LIMIT = 100

_CURRENT = "experience.employment_details.current"
_PAST = "experience.employment_details.past"
# The sandbox's copy of the upstream's PERSON_AUTOCOMPLETE_FIELDS (n8n filter-fields.generated.ts), keeping
# the 42 the synthetic data can answer. Left out: `professional_network.location` (an object here),
# `experience.employment_details.employment_type`, and the unprefixed `open_to_cards` and `employment_type`,
# whose meaning no source explains.
AUTOCOMPLETE_FIELDS: tuple[str, ...] = (
    "basic_profile.name",
    "basic_profile.first_name",
    "basic_profile.last_name",
    "basic_profile.headline",
    "basic_profile.languages",
    "basic_profile.location",
    "basic_profile.location.raw",
    "basic_profile.location.full_location",
    "basic_profile.location.city",
    "basic_profile.location.state",
    "basic_profile.location.country",
    "basic_profile.location.continent",
    "professional_network.location.raw",
    "professional_network.location.city",
    "professional_network.location.state",
    "professional_network.location.country",
    "professional_network.location.continent",
    "professional_network.open_to_cards",
    "skills.professional_network_skills",
    *(
        f"{_CURRENT}.{key}"
        for key in (
            "name",
            "title",
            "seniority_level",
            "function_category",
            "company_industries",
            "company_type",
            "company_hq_location",
            "company_website_domain",
            "employment_type",
        )
    ),
    *(
        f"{_PAST}.{key}"
        for key in (
            "name",
            "title",
            "seniority_level",
            "function_category",
            "company_type",
            "company_hq_location",
            "company_website_domain",
            "employment_type",
        )
    ),
    "education.schools.school",
    "education.schools.degree",
    "education.schools.field_of_study",
    "certifications.name",
    "certifications.issuing_organization",
    "honors.title",
)
# A bare location is answered with its display form, as the filter on `basic_profile.location` reads it.
_ALIASES = {"basic_profile.location": "basic_profile.location.full_location"}


def values_at(data: Any, path: str) -> list[str]:
    """Every non-empty string at a dot-path, descending into lists (so list fields give each element)."""
    nodes: list[Any] = [data]
    for part in path.split("."):
        found: list[Any] = []
        for node in nodes:
            if isinstance(node, dict):
                child = cast("dict[str, Any]", node).get(part)
                found.extend(cast("list[Any]", child) if isinstance(child, list) else [child])
        nodes = found
    flat: list[Any] = []
    for node in nodes:
        flat.extend(cast("list[Any]", node) if isinstance(node, list) else [node])
    return [v for v in flat if isinstance(v, str) and v]


@dataclass(frozen=True, slots=True)
class _Value:
    text: str
    folded: str
    people: int  # bitset over the searchable people
    count: int


class SuggestionIndex:
    """The distinct values of each allowlisted field with the people holding them, built per field on first use."""

    def __init__(self, people: Sequence[Person]) -> None:
        self.people = people
        self._fields: dict[str, list[_Value]] = {}
        self._lock = threading.Lock()

    def field_values(self, field: str) -> list[_Value]:
        """The field's values, most frequent first (ties by value)."""
        cached = self._fields.get(field)
        if cached is not None:
            return cached
        positions: dict[str, list[int]] = {}
        path = _ALIASES.get(field, field)
        for position, person in enumerate(self.people):
            for value in dict.fromkeys(values_at(person.data, path)):  # one document counts once
                positions.setdefault(value, []).append(position)
        values = [_Value(text, text.casefold(), bitset(found), len(found)) for text, found in positions.items()]
        values.sort(key=lambda v: (-v.count, v.text))
        with self._lock:
            self._fields[field] = values
        return values

    def suggest(self, field: str, query: str, limit: int, among: int | None) -> list[dict[str, Any]]:
        """Values whose text holds every token of `query` (case-insensitive), by document count then value."""
        tokens = query.casefold().split()
        matches: list[tuple[int, str]] = []
        for value in self.field_values(field):
            if not all(token in value.folded for token in tokens):
                continue
            count = value.count if among is None else (value.people & among).bit_count()
            if count:
                matches.append((count, value.text))
        if among is not None:
            matches.sort(key=lambda m: (-m[0], m[1]))  # filtered counts change the order
        return [{"value": text, "document_count": count} for count, text in matches[:limit]]


def process_autocomplete(suggestions: SuggestionIndex, search_index: SearchIndex, call: Call) -> Outcome:
    """Validate an autocomplete request and answer with suggestions (free unless a plan prices it)."""
    request = object_body(call.body, AUTOCOMPLETE_KEYS)
    field = _field(request)
    query = request.get("query")
    if "query" not in request or query is None:
        raise invalid("Missing required parameter 'query' (an empty string asks for the most frequent values)")
    if not isinstance(query, str):
        raise invalid(f"'query' must be a string; got {query!r}")
    limit = _limit(request)
    among = _filter_mask(search_index, request.get("filters"))
    payload = {"suggestions": suggestions.suggest(field, query, limit, among)}
    cost = price_list(call.path, call.terms).base if call.config.revision == "current" else Decimal(0)
    return Outcome(200, payload, cost)


def _field(request: dict[str, Any]) -> str:
    field = request.get("field")
    if field is None:
        raise invalid("Missing required parameter 'field'")
    if not isinstance(field, str) or field not in AUTOCOMPLETE_FIELDS:
        # The upstream's message lists every accepted field; so does this one, untruncated.
        raise invalid(
            f"Field {field!r} is not valid for autocomplete. Available fields are: {', '.join(AUTOCOMPLETE_FIELDS)}",
            {"available_fields": list(AUTOCOMPLETE_FIELDS)},
        )
    return field


def _limit(request: dict[str, Any]) -> int:
    limit = request.get("limit")
    if limit is None:
        return DEFAULT_LIMIT
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise invalid(f"'limit' must be an integer between 1 and {MAX_LIMIT}; got {limit!r}")
    return limit


def _filter_mask(search_index: SearchIndex, filters: Any) -> int | None:
    if filters is None:
        return None
    try:
        compiled = compile_filters(filters)
    except FilterError as error:
        raise invalid(f"Failed to get autocomplete suggestions: {error.message}", error.metadata) from None
    return search_index.evaluate(compiled)
