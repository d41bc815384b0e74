"""The path every enrichment takes: plan against the cache and the account, quote, fetch, cache, assemble.

Each step is one call into one module; the tools compose them with the budget and confirmation steps. Which
upstream requests a look-up needs is `api.routes`' business; this module runs them (`upstream.py`), charges
each answer to the call's reservation, and joins the answers into one person per identifier.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

from person_enrich_mcp import fields as field_catalog
from person_enrich_mcp.account import AccountView
from person_enrich_mcp.api import CONTACT, ENRICH, LIVE, SEARCH, Dialect, EnrichMatch
from person_enrich_mcp.api.contract import PATHS, RESOLVING_TIER
from person_enrich_mcp.api.routes import Route, is_contact, route
from person_enrich_mcp.budget import Quote, Receipt, Reservation
from person_enrich_mcp.cache import CachedEntry, CachedLookup
from person_enrich_mcp.errors import PlanRestrictionError, format_credits
from person_enrich_mcp.fields import FieldSelection, fit_to_size, json_size, project
from person_enrich_mcp.identifiers import IdentifierBatch, check_profile_urls
from person_enrich_mcp.pricing import PriceTable
from person_enrich_mcp.privacy.audit import AuditCall
from person_enrich_mcp.privacy.guard import SUPPRESSED_FOUND, SUPPRESSED_UNSENT
from person_enrich_mcp.privacy.subjects import profile_url_in
from person_enrich_mcp.tools import upstream
from person_enrich_mcp.tools.context import AppState
from person_enrich_mcp.tools.empty_answers import EmptyAnswers
from person_enrich_mcp.tools.lookups import MATCH_TYPES, Fetched, Kind, Lookup, Need, Plan
from person_enrich_mcp.tools.results import EnrichResult, PersonOut, ProblemOut, receipt_out

logger = logging.getLogger(__name__)

# Room kept in a result for everything around the people (receipt, problems, cursor).
_ENVELOPE_BYTES = 1_500

# --- pricing a plan ----------------------------------------------------------------------------------------------


def need_cost(prices: PriceTable, kind: Kind, request: Route) -> Decimal:
    """The most one identifier's requests can cost: every step matches and returns every tier asked for."""
    if request.dialect is Dialect.OVERVIEW:
        return prices.live.of(request.fields) if request.live else prices.enrich.of(request.fields)
    cost = Decimal(0)
    if request.groups:
        cost += prices.live.of(request.groups) if request.live else prices.enrich.of(request.groups)
    tiers = request.tiers
    if kind == "email":
        tiers = tiers or (RESOLVING_TIER,)
        if request.groups:
            cost += prices.search_per_result  # the person id -> profile URL step before the profile request
    if tiers:
        cost += prices.contact.of(tiers)
    return cost


def ways_to_lower(lookup: Lookup, prices: PriceTable, identifiers: int) -> tuple[str, ...]:
    """Concrete ways to make a look-up cheaper, for refusal messages."""
    ways: list[str] = []
    dialect = prices.dialect
    addons = dict(prices.enrich.addons)
    if dialect is Dialect.CURRENT:
        addons.update({tier: price for tier, price in prices.contact.addons.items() if price})
    for path, price in addons.items():
        if price and lookup.selection.touches(path):
            ways.append(f"drop {path} (+{format_credits(price)} a profile)")
    if lookup.live:
        ways.append(f"drop force_fetch/enrich_realtime ({format_credits(prices.live.base)} a profile)")
    if identifiers > 1:
        ways.append("look up fewer people")
    return tuple(ways)


def quote_for(lookup: Lookup, prices: PriceTable, needs: list[Need], cached: int) -> Quote:
    """The worst case of fetching `needs`, with a one-line breakdown."""
    costs = Counter(need_cost(prices, lookup.kind, n.route) for n in needs)
    parts = [
        f"{count} profile{'s' if count != 1 else ''} × up to {format_credits(cost)} credit{'s' if cost != 1 else ''}"
        for cost, count in sorted(costs.items(), reverse=True)
    ]
    breakdown = " + ".join(parts) if parts else "nothing to fetch"
    if cached:
        breakdown += f", {cached} more served free from the cache"
    estimate = sum((cost * count for cost, count in costs.items()), Decimal(0))
    return Quote(estimate, breakdown, ways_to_lower(lookup, prices, len(needs)))


def enrich_quote(identifiers: int, selection: FieldSelection, prices: PriceTable, *, live: bool = False) -> Quote:
    """The worst case of enriching `identifiers` profile URLs nobody has cached (a search's results)."""
    lookup = Lookup("url", IdentifierBatch(), selection, force_fetch=live)
    request = route(prices.dialect, selection.paths, live=live)
    needs = [Need(str(i), selection.paths, request) for i in range(identifiers)]
    return quote_for(lookup, prices, needs, 0)


# --- planning ----------------------------------------------------------------------------------------------------


def _need(view: AccountView, lookup: Lookup, identifier: str, entry: CachedEntry | None) -> Need:
    selection = lookup.selection
    usable = entry if entry is not None and not entry.negative else None
    dialect = view.dialect
    if dialect is Dialect.OVERVIEW:
        # One request returns everything asked for: ask for the cached paths too when that costs nothing more, so
        # the new entry covers both.
        fetch = selection
        if usable is not None:
            widened = selection.union(usable.selection)
            price = view.prices.enrich
            if lookup.live or price.of(widened.paths) == price.of(selection.paths):
                fetch = widened
        # A profile URL's entry that the fetch does not cover is kept and merged with the answer, so data already
        # paid for is not lost to a narrower look-up.
        keep = (
            usable if usable is not None and lookup.kind == "url" and fetch != usable.selection.union(fetch) else None
        )
        return Need(identifier, fetch.paths, route(dialect, fetch.paths, live=lookup.live), keep)
    if lookup.kind == "email" or usable is None:
        return Need(identifier, selection.paths, route(dialect, selection.paths, live=lookup.live))
    # A profile URL with part of the selection cached: ask only for what the entry lacks. Section groups come back
    # whole, so the entry's paths inside a re-fetched group are kept fresh at no extra cost; the merge keeps the rest.
    missing = selection.not_covered_by(usable.selection)
    request = route(dialect, missing, live=lookup.live)
    again = tuple(p for p in usable.selection.paths if not is_contact(p) and p.split(".", 1)[0] in request.groups)
    fetch = FieldSelection.of(missing + again)
    return Need(identifier, fetch.paths, route(dialect, fetch.paths, live=lookup.live), usable)


def endpoints_needed(kind: Kind, request: Route) -> dict[str, tuple[str, ...]]:
    """Each upstream endpoint a route calls, with the field paths that need it (for refusal messages)."""
    if request.dialect is Dialect.OVERVIEW:
        return {ENRICH: request.fields}
    needed: dict[str, tuple[str, ...]] = {}
    if request.groups:
        needed[LIVE if request.live else ENRICH] = request.groups
        if kind == "email":
            needed[SEARCH] = request.groups
    if request.tiers or kind == "email":
        needed[CONTACT] = request.tiers or (RESOLVING_TIER,)
    return needed


def _blocked(paths: tuple[str, ...], disabled: frozenset[str]) -> list[str]:
    return sorted({d for d in disabled for p in paths if d == p or d.startswith(p + ".") or p.startswith(d + ".")})


def check_access(view: AccountView, lookup: Lookup, needs: list[Need] | None = None) -> None:
    """Refuse, before anything is reserved, what the account listing says the plan does not include.

    Without `needs`, the whole selection is checked as if nothing were cached (before a search is paid for).

    Raises:
        PlanRestrictionError: naming the endpoint or fields and what to do instead.
    """
    if needs is None:
        paths = lookup.selection.paths
        needs = [Need("", paths, route(view.dialect, paths, live=lookup.live))]
    for need in needs:
        for endpoint, paths in endpoints_needed(lookup.kind, need.route).items():
            # The caller's own fields that need this endpoint (none when the server needs it on its own account,
            # as Contact Enrich to resolve a work email).
            asked = [p for p in lookup.selection.paths if p in paths or p.split(".", 1)[0] in paths]
            if not view.enabled(endpoint):
                raise PlanRestrictionError(
                    f"This Crustdata account's plan does not include {PATHS[endpoint]}, which "
                    f"{_what_needs(endpoint, lookup, asked)} needs. Nothing was sent or spent. "
                    f"{_instead(endpoint, lookup)} or ask the Crustdata account manager to enable the endpoint."
                )
            blocked = _blocked(tuple(lookup.selection.paths), view.disabled_fields(endpoint))
            if blocked:
                shown = ", ".join(blocked[:8]) + (f" and {len(blocked) - 8} more" if len(blocked) > 8 else "")
                raise PlanRestrictionError(
                    f"This Crustdata account's plan withholds {shown} on {PATHS[endpoint]}. Nothing was sent or "
                    "spent. Call again without those fields, or ask the Crustdata account manager to include them."
                )


def _what_needs(endpoint: str, lookup: Lookup, asked: list[str]) -> str:
    if endpoint == LIVE:
        return "force_fetch/enrich_realtime (a fresh fetch from the web)"
    if endpoint == SEARCH:
        return "finding the profile behind a work email"
    if lookup.kind == "email" and endpoint == CONTACT:
        return "a look-up by work email"
    return ", ".join(asked[:6]) or "this look-up"


def _instead(endpoint: str, lookup: Lookup) -> str:
    if endpoint == LIVE:
        return "Call again without force_fetch and enrich_realtime (cached data),"
    if lookup.kind == "email":
        return "Look the person up by profile URL instead (enrich_person_by_url),"
    if endpoint == CONTACT:
        return "Call again without the contact fields,"
    return "Use another tool,"


async def plan(app: AppState, lookup: Lookup, *, quote_only: bool = False) -> Plan:
    """Set aside identifiers on the opt-out list, answer what the cache can, decide what to fetch for the rest, and
    quote it.

    A cache entry whose people have all opted out since is dropped, unless `quote_only` (a confirmation asking what
    the call will cost): the call's own plan must still find it, and so set the identifier aside for free instead of
    paying to find out again who is behind it.

    Raises:
        PrivacyUnavailableError: while the opt-out list or the audit log cannot be used (nothing is sent).
        PlanRestrictionError: when the account's plan lacks an endpoint or field the fetch needs.
        AuthenticationError: when reading the account shows the key is rejected.
    """
    with app.tracer.span(
        "person_enrich.plan", identifier_kind=lookup.kind, identifiers=len(lookup.batch.normalised)
    ) as span:
        the_plan = await _plan(app, lookup, quote_only=quote_only)
        span.set(
            dialect=the_plan.view.dialect.value, cache_hits=len(the_plan.hits), to_fetch=len(the_plan.needs),
            suppressed=len(the_plan.suppressed), estimate=the_plan.quote.estimate,
        )  # fmt: skip
    return the_plan


async def _plan(app: AppState, lookup: Lookup, *, quote_only: bool) -> Plan:
    app.opt_outs.require()
    app.audit.require()
    view = await app.account.view()
    hits: dict[str, CachedLookup] = {}
    needs: list[Need] = []
    suppressed: dict[str, str] = {}
    for identifier in lookup.batch.normalised:
        if app.opt_outs.names(identifier):
            suppressed[identifier] = lookup.batch.accepted.get(identifier, identifier)
            continue
        entry = None if lookup.live else await app.cache.entry(lookup.kind, identifier)
        if entry is not None:
            entry = _screened(app, entry)
            if entry is None:  # everyone it held is on the opt-out list now
                if not quote_only:
                    await app.cache.drop(lookup.kind, identifier)
                suppressed[identifier] = lookup.batch.accepted.get(identifier, identifier)
                continue
            hit = entry.serves(lookup.selection, lookup.min_score)
            if hit is not None:
                hits[identifier] = hit
                continue
        needs.append(_need(view, lookup, identifier, entry))
    check_access(view, lookup, needs)
    quote = quote_for(lookup, view.prices, needs, len(hits))
    return Plan(lookup, view, hits, needs, quote, suppressed)


def _screened(app: AppState, entry: CachedEntry) -> CachedEntry | None:
    """A cache entry without the candidates on the opt-out list (None when that was all of them)."""
    if entry.negative:
        return entry
    kept: list[EnrichMatch] = []
    urls: list[str | None] = []
    for index, match in enumerate(entry.matches):
        url = entry.profile_urls[index] if index < len(entry.profile_urls) else None
        if app.opt_outs.allows(match.person_data, url):
            kept.append(match)
            urls.append(url)
    if len(kept) == len(entry.matches):
        return entry
    return CachedEntry(entry.selection, entry.min_score, kept, tuple(urls)) if kept else None


# --- fetching ----------------------------------------------------------------------------------------------------


async def fetch(
    app: AppState,
    the_plan: Plan,
    reservation: Reservation,
    progress: Callable[[int, int], Awaitable[None]],
    call: AuditCall,
) -> Fetched:
    """Fetch every planned identifier, charging the reservation, auditing each request and filling the cache.

    A failed request stops the rest; what was fetched before it is kept (and already paid for). A failure of the
    very first request is raised. A person the upstream names by a URL or email on the opt-out list is dropped on
    sight: not cached, not looked up further, not returned.
    """
    lookup = the_plan.lookup
    steps = _steps(the_plan)
    runner = upstream.Runner(app, the_plan.view, reservation, progress, steps, call)
    fetched = Fetched()
    with app.tracer.span(
        "person_enrich.fetch", identifier_kind=lookup.kind, identifiers=len(the_plan.needs), steps=steps
    ) as span:
        if the_plan.view.dialect is Dialect.OVERVIEW:
            await _fetch_overview(app, runner, lookup, the_plan.needs, fetched)
        elif lookup.kind == "url":
            await _fetch_urls(app, runner, the_plan.needs, fetched)
        else:
            await _fetch_emails(app, runner, lookup, the_plan.needs, fetched)
        await runner.finish()
        fetched.failure = runner.failure
        span.set(charged=reservation.charged, unverified=reservation.unverified, found=len(fetched.matches))
        if runner.failure is not None:
            span.fail(runner.failure.code)
    return fetched


def _steps(the_plan: Plan) -> int:
    """Identifier look-ups the plan sends upstream, counted per request kind (for progress)."""
    total = 0
    for need in the_plan.needs:
        request = need.route
        if request.dialect is Dialect.OVERVIEW:
            total += 1
        else:
            total += bool(request.groups) + bool(request.tiers or the_plan.lookup.kind == "email")
    return total


def _grouped(needs: list[Need], key: Callable[[Need], tuple[Any, ...]]) -> dict[tuple[Any, ...], list[Need]]:
    groups: dict[tuple[Any, ...], list[Need]] = {}
    for need in needs:
        groups.setdefault(key(need), []).append(need)
    return groups


async def _fetch_overview(
    app: AppState, runner: upstream.Runner, lookup: Lookup, needs: list[Need], fetched: Fetched
) -> None:
    """The overview's single enrich: one request a batch, the answer cached (merged with what a profile URL's entry
    held beyond it)."""
    by_identifier = {need.identifier: need for need in needs}
    for (paths,), group in _grouped(needs, lambda n: (n.paths,)).items():
        answers = await upstream.overview(
            runner,
            MATCH_TYPES[lookup.kind],
            [n.identifier for n in group],
            paths,
            min_score=lookup.min_score,
            force_fetch=lookup.force_fetch,
            enrich_realtime=lookup.enrich_realtime,
        )
        for identifier, matches in answers.items():
            kept = [m for m in matches if app.opt_outs.allows(m.person_data)]
            fetched.drop_candidates(identifier, len(matches), len(kept))
            if identifier in fetched.withheld:
                await app.cache.drop(lookup.kind, identifier)
                continue
            selection = FieldSelection(paths)
            cached = by_identifier[identifier].cached
            if cached is not None and cached.matches and kept:
                merged = field_catalog.merge(cached.matches[0].person_data, kept[0].person_data)
                kept = [EnrichMatch(confidence_score=kept[0].confidence_score, person_data=merged)]
                selection = selection.union(cached.selection)
            fetched.matches[identifier] = kept
            await app.cache.put(lookup.kind, identifier, selection, lookup.min_score, kept)
        if runner.stopped:
            return


@dataclass(slots=True)
class _Person:
    """One profile URL's answers as they come in from the profile and contact requests."""

    need: Need
    data: dict[str, Any] = field(default_factory=dict[str, Any])
    got: list[str] = field(default_factory=list[str])
    confidence: float = 1.0
    answered: bool = False
    identity_checked: bool = False
    missing: bool = False
    withheld: bool = False  # on the opt-out list, by a URL or email the upstream returned


async def _fetch_urls(app: AppState, runner: upstream.Runner, needs: list[Need], fetched: Fetched) -> None:
    """Today's split endpoints for profile URLs: section groups, then contact tiers, joined into one person."""
    people = {need.identifier: _Person(need) for need in needs}
    with_groups = [n for n in needs if n.route.groups]
    for (groups, live), group in _grouped(with_groups, lambda n: (n.route.groups, n.route.live)).items():
        answers = await upstream.profiles(runner, [n.identifier for n in group], groups, live=live)
        for identifier, matches in answers.items():
            person = people[identifier]
            person.answered = person.identity_checked = True
            if not matches:
                person.missing = True
                continue
            if not app.opt_outs.allows(matches[0].person_data):
                person.withheld = True  # and so no contact request for them
                continue
            person.confidence = matches[0].confidence_score
            person.data = field_catalog.merge(person.data, matches[0].person_data)
            person.got.extend(p for p in person.need.paths if not is_contact(p))
        if runner.stopped:
            break
    # Contact tiers only for people the profile step found (or did not look for): a miss there is a miss here.
    with_tiers = [
        n for n in needs if n.route.tiers and not people[n.identifier].missing and not people[n.identifier].withheld
    ]
    for (tiers,), group in _grouped(with_tiers, lambda n: (n.route.tiers,)).items():
        if runner.stopped:
            break
        answers = await upstream.contacts(
            runner, "professional_network_profile_url", [n.identifier for n in group], tiers
        )
        for identifier, matches in answers.items():
            person = people[identifier]
            person.answered = True
            if matches and not app.opt_outs.allows(matches[0].person_data):
                person.withheld = True
                continue
            if matches:
                person.confidence = matches[0].confidence_score if not person.identity_checked else person.confidence
                person.data = field_catalog.merge(person.data, _contact_part(matches[0].person_data))
            elif not person.identity_checked:
                person.missing = True  # nothing else said whether the person exists; not cached as a no-match
                continue
            person.got.extend(p for p in person.need.paths if is_contact(p))
    for identifier, person in people.items():
        if person.withheld:
            fetched.withheld.add(identifier)
            await app.cache.drop("url", identifier)
        elif person.answered:
            fetched.matches[identifier] = await _store_url(app, person)


def _contact_part(person_data: dict[str, Any]) -> dict[str, Any]:
    contact: Any = person_data.get("contact")
    return {"contact": cast(dict[str, Any], contact) if isinstance(contact, dict) else {}}


async def _store_url(app: AppState, person: _Person) -> list[EnrichMatch]:
    """The person's matches (merged with what the cache held) and their cache entry."""
    need = person.need
    if person.missing:
        if person.identity_checked:
            await app.cache.put("url", need.identifier, FieldSelection(need.paths), None, [])
        return []
    cached = need.cached
    data = person.data
    covered = tuple(person.got)
    if cached is not None and cached.matches:
        data = field_catalog.merge(cached.matches[0].person_data, data)
        covered += cached.selection.paths
    match = EnrichMatch(confidence_score=person.confidence, person_data=data)
    if covered:
        await app.cache.put("url", need.identifier, FieldSelection.of(covered), None, [match])
    return [match]


async def _fetch_emails(
    app: AppState, runner: upstream.Runner, lookup: Lookup, needs: list[Need], fetched: Fetched
) -> None:
    """Today's split endpoints for work emails: Contact Enrich says who is behind each address (with the tiers
    asked for, else the cheapest one), then the best candidate's profile sections come from the URL-keyed enrich."""
    resolved: dict[str, list[EnrichMatch]] = {}
    for (tiers,), group in _grouped(needs, lambda n: (n.route.tiers or (RESOLVING_TIER,),)).items():
        resolved.update(await upstream.contacts(runner, "business_email", [n.identifier for n in group], tiers))
        if runner.stopped:
            break
    # Candidates whose emails are on the opt-out list go now: no profile URL or profile request is made for them.
    for email, candidates in resolved.items():
        resolved[email] = [c for c in candidates if app.opt_outs.allows(c.person_data)]
        fetched.drop_candidates(email, len(candidates), len(resolved[email]))
    threshold = lookup.min_score or 0.0
    profile_paths = tuple(p for p in lookup.selection.paths if not is_contact(p))
    best = {
        n.identifier: resolved[n.identifier][0]
        for n in needs
        if n.route.groups and resolved.get(n.identifier) and resolved[n.identifier][0].confidence_score >= threshold
    }
    urls = await _profile_urls(runner, best)
    # A best candidate whose profile URL is on the opt-out list is dropped before its profile is asked for (the
    # others keep their contact data only, so the entry cached for the address does not claim profile sections).
    best_dropped: set[str] = set()
    for email, url in list(urls.items()):
        if url is not None and app.opt_outs.names_url(url):
            best_dropped.add(email)
            had = len(resolved[email])
            resolved[email] = [c for c in resolved[email] if c is not best[email]]
            fetched.drop_candidates(email, had, len(resolved[email]))
            del best[email], urls[email]
    profiles, withheld = await _profiles_by_url(app, runner, sorted({u for u in urls.values() if u}), profile_paths)
    for need in needs:
        candidates = resolved.get(need.identifier)
        if candidates is None:
            continue  # its request failed: reported through `incomplete`
        matches: list[EnrichMatch] = []
        known: list[str | None] = []
        complete = need.identifier not in best_dropped
        lost = 0
        for index, candidate in enumerate(candidates):
            data = {**candidate.person_data}
            url = urls.get(need.identifier) if index == 0 and need.identifier in best else None
            if url is not None and url in withheld:
                lost += 1  # its profile showed a suppressed address (or it was suppressed meanwhile)
                complete = False
                continue
            if url is not None and profiles.get(url):
                data = field_catalog.merge(data, profiles[url][0].person_data)
            elif index == 0 and need.identifier in best:
                complete = False
                fetched.problems.append(
                    (
                        need.identifier,
                        "profile sections not fetched: the person behind this address has no profile "
                        "URL the upstream could name, or that request failed",
                    )
                )
            if not app.opt_outs.allows(data, url):
                lost += 1
                continue
            matches.append(EnrichMatch(confidence_score=candidate.confidence_score, person_data=data))
            known.append(url)
        if lost:
            fetched.drop_candidates(need.identifier, len(candidates), len(matches))
        if need.identifier in fetched.withheld:
            await app.cache.drop("email", need.identifier)  # nobody it found may be kept
            continue
        fetched.matches[need.identifier] = matches
        covered = lookup.selection.paths if complete else tuple(p for p in lookup.selection.paths if is_contact(p))
        if covered or not matches:
            # The whole contact answer is kept (the upstream takes no threshold here); the look-up filters it.
            await app.cache.put(
                "email", need.identifier, FieldSelection(covered or lookup.selection.paths), None, matches,
                profile_urls=tuple(known),
            )  # fmt: skip


async def _profile_urls(runner: upstream.Runner, best: dict[str, EnrichMatch]) -> dict[str, str | None]:
    """Each email's best candidate's profile URL: from its data when the upstream gave one, else from its id."""
    urls = {email: profile_url_in(match.person_data) for email, match in best.items()}
    ids = {email: upstream.person_id_of(best[email].person_data) for email, url in urls.items() if url is None}
    wanted = sorted({i for i in ids.values() if i is not None})
    if wanted and not runner.stopped:
        found = await upstream.profile_urls_of(runner, wanted)
        for email, person_id in ids.items():
            urls[email] = found.get(person_id) if person_id is not None else None
    return urls


async def _profiles_by_url(
    app: AppState, runner: upstream.Runner, urls: list[str], paths: tuple[str, ...]
) -> tuple[dict[str, list[EnrichMatch]], set[str]]:
    """Profile sections for profile URLs, through the URL cache like any other URL look-up; and the URLs whose
    person turned out to be on the opt-out list."""
    if not urls or not paths or runner.stopped:
        return {}, set()
    sub = Lookup("url", check_profile_urls(urls), FieldSelection.of(paths))
    sub_plan = await plan(app, sub)
    found = {url: hit.matches for url, hit in sub_plan.hits.items()}
    withheld = set(sub_plan.suppressed)
    if sub_plan.needs:
        sub_fetched = Fetched()
        await _fetch_urls(app, runner, sub_plan.needs, sub_fetched)
        found.update(sub_fetched.matches)
        withheld |= sub_fetched.withheld
    return found, withheld


# --- assembling the result ---------------------------------------------------------------------------------------


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
    why_empty: list[str] | None = None,
    notes: list[str] | None = None,
) -> EnrichResult:
    """Project, compact and cap the people into the result every enrichment tool returns."""
    lookup = the_plan.lookup
    people: list[dict[str, Any]] = []
    not_found: list[str] = []
    unsent: list[str] = []
    withheld: list[str] = []
    dropped = fetched.dropped
    match_type = MATCH_TYPES[lookup.kind]
    threshold = lookup.min_score or 0.0
    empties = EmptyAnswers(lookup.selection, the_plan.view.prices)
    for identifier, original in lookup.batch.accepted.items():
        if identifier in the_plan.suppressed:
            unsent.append(original)
            continue
        if identifier in fetched.withheld:
            withheld.append(original)
            continue
        hit = the_plan.hits.get(identifier)
        if hit is not None:
            matches, cached = hit.matches, True
        elif identifier in fetched.matches:
            matches, cached = fetched.matches[identifier], False
        else:
            continue  # not reached because a request failed; reported through `incomplete`
        # The last check before the model sees anyone: nobody on the opt-out list passes, whatever path they took.
        allowed = [m for m in matches if app.opt_outs.allows(m.person_data)]
        if matches and not allowed:
            withheld.append(original)
            continue
        dropped += len(matches) - len(allowed)
        kept = [m for m in allowed if m.confidence_score >= threshold]
        if not kept:
            not_found.append(original)
        for match in kept:
            projected = project(match.person_data, lookup.selection)
            person: dict[str, Any] = {
                "matched_on": original,
                "match_type": match_type,
                "confidence_score": match.confidence_score,
                "person_data": projected,
            }
            if (missing := empties.add(projected, fetched=not cached)) is not None:
                person["missing"] = missing  # say what came back empty, and (fetched now) what that cost
            if cached:
                person["cached"] = True
            people.append(person)
    problems = [ProblemOut(identifier=p.identifier, reason=p.reason) for p in lookup.batch.problems]
    problems.extend(ProblemOut(identifier=original, reason=SUPPRESSED_UNSENT) for original in unsent)
    problems.extend(ProblemOut(identifier=original, reason=SUPPRESSED_FOUND) for original in withheld)
    if dropped:
        problems.append(
            ProblemOut(
                identifier="(opt-out)",
                reason=f"{dropped} further candidate{'s' if dropped != 1 else ''} withheld: on this server's "
                "opt-out list",
            )
        )
    originals = lookup.batch.accepted
    problems.extend(ProblemOut(identifier=originals.get(i, i), reason=r) for i, r in fetched.problems)
    problems.extend(extra_problems or [])
    # The people get what the cap leaves after everything else the result must carry.
    around = _ENVELOPE_BYTES + json_size([p.model_dump() for p in problems]) + json_size(not_found)
    around += json_size(notes or []) + json_size(why_empty or [])
    people, truncation = fit_to_size(people, max(app.settings.max_result_bytes - around, 500))
    empty_note = empties.note()
    return EnrichResult(
        people=[PersonOut.model_validate(p) for p in people],
        not_found=not_found or None,
        problems=problems or None,
        total_count=total_count,
        next_cursor=next_cursor,
        truncated=truncation.note(app.settings.max_result_bytes) if truncation else None,
        incomplete=incomplete,
        why_empty=why_empty,
        notes=[*(notes or []), *([empty_note] if empty_note else [])] or None,
        sandbox=True if app.sandbox else None,
        receipt=receipt_out(receipt),
    )


def returned_urls(the_plan: Plan, fetched: Fetched) -> list[str]:
    """The profile URLs (normalised) of the people a URL look-up returned, from the cache or the upstream."""
    if the_plan.lookup.kind != "url":
        return []
    found = {**{i: hit.matches for i, hit in the_plan.hits.items()}, **fetched.matches}
    return [identifier for identifier, matches in found.items() if matches]


def charged_total(reservation: Reservation | None) -> tuple[Decimal, Decimal]:
    """(charged, unverified) of a reservation, zero when nothing was reserved."""
    if reservation is None:
        return Decimal(0), Decimal(0)
    return reservation.charged, reservation.unverified
