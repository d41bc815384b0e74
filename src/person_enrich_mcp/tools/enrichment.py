"""The path every enrichment takes: plan against the cache, quote, fetch in batches, cache, assemble.

Each step is one call into one module; the tools compose them with the budget and confirmation steps.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from person_enrich_mcp import pricing
from person_enrich_mcp.api import EnrichMatch, MatchType
from person_enrich_mcp.budget import Quote, Receipt, Reservation
from person_enrich_mcp.cache import CachedLookup
from person_enrich_mcp.errors import APIOutcomeUnknownError, APIResponseError, PersonEnrichError
from person_enrich_mcp.fields import FieldSelection, fit_to_size, json_size, project
from person_enrich_mcp.identifiers import (
    IdentifierBatch,
    IdentifierRejected,
    normalise_business_email,
    normalise_profile_url,
)
from person_enrich_mcp.tools.context import AppState
from person_enrich_mcp.tools.results import EnrichResult, PersonOut, ProblemOut, receipt_out

logger = logging.getLogger(__name__)

BATCH_SIZE = 25
# Room kept in a result for everything around the people (receipt, problems, cursor).
_ENVELOPE_BYTES = 1_500

Kind = Literal["url", "email"]
_MATCH_TYPES: dict[Kind, MatchType] = {"url": "professional_network_profile_url", "email": "business_email"}


@dataclass(slots=True)
class Lookup:
    """What a caller asked to enrich, after validation."""

    kind: Kind
    batch: IdentifierBatch
    selection: FieldSelection
    min_score: float | None = None
    force_fetch: bool = False
    enrich_realtime: bool = False

    @property
    def live(self) -> bool:
        """A fresh fetch was asked for: the cache is not read and the cost is reserved at the cap."""
        return self.force_fetch or self.enrich_realtime


@dataclass(slots=True)
class Plan:
    """Which identifiers the cache answers, which must be fetched (grouped by the fields to ask for), the quote."""

    lookup: Lookup
    hits: dict[str, CachedLookup]
    groups: list[tuple[FieldSelection, list[str]]]
    quote: Quote

    @property
    def to_fetch(self) -> int:
        """How many identifiers go upstream."""
        return sum(len(ids) for _, ids in self.groups)


@dataclass(slots=True)
class Fetched:
    """What came back from upstream, per normalised identifier, and whether a batch failed part-way."""

    matches: dict[str, list[EnrichMatch]] = field(default_factory=dict[str, list[EnrichMatch]])
    failure: PersonEnrichError | None = None


def ways_to_lower(selection: FieldSelection, identifiers: int, *, live: bool) -> tuple[str, ...]:
    """Concrete ways to make a look-up cheaper, for refusal messages."""
    ways: list[str] = []
    for path, price in pricing.ADDONS.items():
        if selection.touches(path):
            ways.append(f"drop {path} (+{price} a profile)")
    if live:
        ways.append("drop force_fetch/enrich_realtime (reserved at 7 a profile)")
    if identifiers > 1:
        ways.append("look up fewer people")
    return tuple(ways)


def enrich_quote(identifiers: int, selection: FieldSelection, *, live: bool, cached: int = 0) -> Quote:
    """The worst case of enriching `identifiers` people with `selection`."""
    each = pricing.profile_cost(selection, live=live)
    breakdown = (
        f"{identifiers} profile{'s' if identifiers != 1 else ''} × up to {each} credit{'s' if each != 1 else ''}"
    )
    if cached:
        breakdown += f", {cached} more served free from the cache"
    return Quote(
        pricing.enrich_worst_case(identifiers, selection, live=live),
        breakdown,
        ways_to_lower(selection, identifiers, live=live),
    )


async def plan(app: AppState, lookup: Lookup) -> Plan:
    """Answer what the cache can; fetch the rest in one group of fields.

    When the cache holds other fields for some of the people to fetch, the request asks for those too if
    that costs nothing more, so the refreshed entries cover both (one request, not one per field set).
    """
    hits: dict[str, CachedLookup] = {}
    misses: list[str] = []
    selection = lookup.selection
    requested_cost = pricing.profile_cost(lookup.selection, live=lookup.live)
    for identifier in lookup.batch.normalised:
        if not lookup.live:
            hit = await app.cache.get(lookup.kind, identifier, lookup.selection, lookup.min_score)
            if hit is not None:
                hits[identifier] = hit
                continue
        misses.append(identifier)
        cached = await app.cache.cached_selection(lookup.kind, identifier)
        if cached is not None:
            widened = selection.union(cached)
            if pricing.profile_cost(widened, live=lookup.live) == requested_cost:
                selection = widened
    groups = [(selection, misses)] if misses else []
    return Plan(lookup, hits, groups, enrich_quote(len(misses), lookup.selection, live=lookup.live, cached=len(hits)))


def _rejoin(kind: Kind, matched_on: str, sent: set[str]) -> str | None:
    """Join an answer to what was sent by `matched_on` (never by position), tolerating re-spelled echoes."""
    if matched_on in sent:
        return matched_on
    normalise = normalise_profile_url if kind == "url" else normalise_business_email
    try:
        canonical = normalise(matched_on)
    except IdentifierRejected:
        return None
    return canonical if canonical in sent else None


async def fetch(
    app: AppState,
    the_plan: Plan,
    reservation: Reservation,
    progress: Callable[[int, int], Awaitable[None]],
) -> Fetched:
    """Fetch every planned identifier in batches of 25, charging the reservation and filling the cache.

    A failed batch stops the loop; what was fetched before it is kept (and already paid for).
    """
    lookup = the_plan.lookup
    fetched = Fetched()
    total = the_plan.to_fetch
    done = 0
    for selection, identifiers in the_plan.groups:
        for start in range(0, len(identifiers), BATCH_SIZE):
            chunk = identifiers[start : start + BATCH_SIZE]
            worst = pricing.enrich_worst_case(len(chunk), selection, live=lookup.live)
            try:
                result = await app.api.enrich(
                    match_type=_MATCH_TYPES[lookup.kind],
                    identifiers=chunk,
                    fields=list(selection.paths),
                    min_similarity_score=lookup.min_score,
                    force_fetch=lookup.force_fetch,
                    enrich_realtime=lookup.enrich_realtime,
                )
            except APIResponseError as exc:
                # Answered but unreadable: the upstream said what it billed, so that is what is recorded.
                reservation.charge(exc.credits_used if exc.credits_used is not None else worst)
                fetched.failure = exc
                return fetched
            except APIOutcomeUnknownError as exc:
                reservation.charge_unverified(worst)
                fetched.failure = exc
                return fetched
            except PersonEnrichError as exc:
                if done == 0:
                    raise
                fetched.failure = exc
                return fetched
            answers = _collect(lookup.kind, chunk, result.data)
            charged = result.credits_used
            if charged is None:
                matched = sum(1 for matches in answers.values() if matches)
                charged = pricing.profile_cost(selection, live=lookup.live) * matched
            reservation.charge(charged)
            for identifier, matches in answers.items():
                fetched.matches[identifier] = matches
                await app.cache.put(lookup.kind, identifier, selection, lookup.min_score, matches)
            done += len(chunk)
            await progress(done, total)
    return fetched


def _collect(kind: Kind, chunk: list[str], entries: list[Any]) -> dict[str, list[EnrichMatch]]:
    sent = set(chunk)
    answers: dict[str, list[EnrichMatch]] = {identifier: [] for identifier in chunk}
    for entry in entries:
        identifier = _rejoin(kind, entry.matched_on, sent)
        if identifier is None:
            logger.warning("upstream answered for an identifier that was not sent; ignored")
            continue
        answers[identifier] = list(entry.matches)
    return answers


def assemble(
    app: AppState,
    the_plan: Plan,
    fetched: Fetched,
    receipt: Receipt,
    *,
    extra_problems: list[ProblemOut] | None = None,
    total_count: int | None = None,
    next_cursor: str | None = None,
    incomplete: str | None = None,
) -> EnrichResult:
    """Project, compact and cap the people into the result every enrichment tool returns."""
    lookup = the_plan.lookup
    people: list[dict[str, Any]] = []
    not_found: list[str] = []
    match_type = _MATCH_TYPES[lookup.kind]
    threshold = lookup.min_score or 0.0
    for identifier, original in lookup.batch.accepted.items():
        hit = the_plan.hits.get(identifier)
        if hit is not None:
            matches, cached = hit.matches, True
        elif identifier in fetched.matches:
            matches, cached = fetched.matches[identifier], False
        else:
            continue  # not reached because a batch failed; reported through `incomplete`
        kept = [m for m in matches if m.confidence_score >= threshold]
        if not kept:
            not_found.append(original)
        for match in kept:
            person: dict[str, Any] = {
                "matched_on": original,
                "match_type": match_type,
                "confidence_score": match.confidence_score,
                "person_data": project(match.person_data, lookup.selection),
            }
            if cached:
                person["cached"] = True
            people.append(person)
    problems = [ProblemOut(identifier=p.identifier, reason=p.reason) for p in lookup.batch.problems]
    problems.extend(extra_problems or [])
    # The people get what the cap leaves after everything else the result must carry.
    around = _ENVELOPE_BYTES + json_size([p.model_dump() for p in problems]) + json_size(not_found)
    people, truncation = fit_to_size(people, max(app.settings.max_result_bytes - around, 500))
    return EnrichResult(
        people=[PersonOut.model_validate(p) for p in people],
        not_found=not_found or None,
        problems=problems or None,
        total_count=total_count,
        next_cursor=next_cursor,
        truncated=truncation.note(app.settings.max_result_bytes) if truncation else None,
        incomplete=incomplete,
        sandbox=True if app.sandbox else None,
        receipt=receipt_out(receipt),
    )


def charged_total(reservation: Reservation | None) -> tuple[Decimal, Decimal]:
    """(charged, unverified) of a reservation, zero when nothing was reserved."""
    if reservation is None:
        return Decimal(0), Decimal(0)
    return reservation.charged, reservation.unverified
