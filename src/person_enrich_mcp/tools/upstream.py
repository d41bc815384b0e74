"""Run one tool call's upstream requests: in batches of 25, each answer charged to the call's reservation.

What an answer cost is what it says in `x-credits-used`; when it does not say (the header is on no docs page),
it is computed from the answer with the account's prices: enrich and live per matched profile, contact tiers per
tier actually returned per matched person, search per result. A request whose outcome is unknown (no answer, or
an unreadable one that did not say what it billed) keeps its worst case as unverified spend. The first request to
fail stops the rest: what came back before it is kept (and was paid for); a failure of the very first request is
raised.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any, TypeVar, cast

from person_enrich_mcp.account import AccountView
from person_enrich_mcp.api import (
    CONTACT,
    ENRICH,
    LIVE,
    SEARCH,
    APIResult,
    EnrichEntry,
    EnrichMatch,
    MatchType,
    SearchPage,
    SearchRequest,
)
from person_enrich_mcp.api.contract import MAX_IDENTIFIERS
from person_enrich_mcp.budget import Reservation
from person_enrich_mcp.errors import (
    APIError,
    APIOutcomeUnknownError,
    APIResponseError,
    EndpointMissingError,
    PermissionDeniedError,
    PersonEnrichError,
)
from person_enrich_mcp.fields import PROFILE_URL_PATH
from person_enrich_mcp.identifiers import IdentifierRejected, normalise_business_email, normalise_profile_url
from person_enrich_mcp.privacy.audit import AuditCall, IdentifierKind
from person_enrich_mcp.privacy.subjects import profile_url_in
from person_enrich_mcp.tools.context import AppState

T = TypeVar("T")
# How many person ids one search may resolve to profile URLs (a page holds up to 1000 rows; kept modest).
PERSON_IDS_PER_SEARCH = 100
PERSON_ID_PATH = "crustdata_person_id"


class Runner:
    """Sends requests for one tool call, books each answer on its reservation, and audits each request."""

    def __init__(
        self,
        app: AppState,
        view: AccountView,
        reservation: Reservation,
        progress: Callable[[int, int], Awaitable[None]],
        total: int,
        call: AuditCall,
    ) -> None:
        self.app = app
        self.call = call
        self.prices = view.prices
        self._listed = view.source == "account"  # the account listing says what the plan allows
        self._reservation = reservation
        self._progress = progress
        self._total = max(total, 1)
        self._done = 0
        self._answered = 0
        self.failure: PersonEnrichError | None = None

    @property
    def stopped(self) -> bool:
        """A request failed: nothing more is sent."""
        return self.failure is not None

    async def advance(self, items: int) -> None:
        """Report `items` more look-ups done."""
        self._done = min(self._done + items, self._total)
        await self._progress(self._done, self._total)

    async def finish(self) -> None:
        """Report the work complete, whatever steps turned out to be unnecessary."""
        if self._done < self._total and not self.stopped:
            self._done = self._total
            await self._progress(self._done, self._total)

    async def send(
        self,
        endpoint: str,
        request: Callable[[], Awaitable[APIResult[T]]],
        *,
        worst: Decimal,
        cost_of: Callable[[T], Decimal],
        kind: IdentifierKind,
        identifiers: Sequence[str],
        fields: Sequence[str],
    ) -> T | None:
        """One request: its answer's charge booked, or the failure recorded (None); the first failure is raised.

        Whatever happens, one audit record says what was sent (identifiers hashed), what it cost and how it ended.

        Raises:
            PersonEnrichError: when the first request of the call fails outright.
        """
        if self.stopped:
            return None
        charged, unverified = self._reservation.charged, self._reservation.unverified
        outcome = "cancelled"
        try:
            result = await self._attempt(endpoint, request, worst)
            outcome = "ok" if result is not None else self.failure.code if self.failure is not None else "failed"
            if result is None:
                return None
            self._answered += 1
            self._book(result.credits_used if result.credits_used is not None else cost_of(result.data))
            return result.data
        except PersonEnrichError as exc:
            outcome = exc.code
            raise
        finally:
            self.call.request(
                endpoint, kind, identifiers, fields, estimated=worst,
                charged=self._reservation.charged - charged, unverified=self._reservation.unverified - unverified,
                outcome=outcome,
            )  # fmt: skip

    async def _attempt(
        self, endpoint: str, request: Callable[[], Awaitable[APIResult[T]]], worst: Decimal
    ) -> APIResult[T] | None:
        """The request itself: the answer, or None with the failure recorded (the first failure is raised).

        Raises:
            PersonEnrichError: when the first request of the call fails outright.
        """
        try:
            return await request()
        except APIResponseError as exc:
            # Answered but unreadable: what the upstream said it billed is recorded; when it did not say, nobody
            # knows, so the worst case stays counted as unverified (as for a lost answer).
            if exc.credits_used is not None:
                self._book(exc.credits_used)
            else:
                self._reservation.charge_unverified(worst)
            self.failure = exc
            return None
        except APIOutcomeUnknownError as exc:
            self._reservation.charge_unverified(worst)
            self.failure = exc
            return None
        except PersonEnrichError as exc:
            if isinstance(exc, APIError) and exc.credits_used:
                self._book(exc.credits_used)  # an error answer that still reported a bill
            if isinstance(exc, EndpointMissingError):
                await self.app.account.forget_dialect()  # a stale or wrong dialect: found out again next time
            if isinstance(exc, PermissionDeniedError):
                # The plan changed, or the listing did not say: refuse these fields locally now, and read the listing
                # again (it replaces what the 403 said). Without a listing a re-read would only forget the 403.
                if self._listed:
                    self.app.account.invalidate()
                self.app.account.record_denied(endpoint, exc.denied_fields)
            if self._answered == 0:
                raise
            self.failure = exc
            return None

    def _book(self, credits: Decimal) -> None:
        self._reservation.charge(credits)
        self.app.account.spent(credits)


def chunks(items: Sequence[T], size: int = MAX_IDENTIFIERS) -> list[list[T]]:
    """`items` in batches of at most `size`, in order."""
    return [list(items[start : start + size]) for start in range(0, len(items), size)]


def rejoin(match_type: MatchType, entries: list[EnrichEntry], sent: list[str]) -> dict[str, list[EnrichMatch]]:
    """Each sent identifier's matches, joined on `matched_on` (never by position), tolerating re-spelled echoes.

    An entry for something that was not sent is ignored; an identifier without an entry has no match.
    """
    wanted = set(sent)
    answers: dict[str, list[EnrichMatch]] = {identifier: [] for identifier in sent}
    normalise = normalise_profile_url if match_type == "professional_network_profile_url" else normalise_business_email
    for entry in entries:
        identifier: str | None = entry.matched_on if entry.matched_on in wanted else None
        if identifier is None:
            try:
                canonical = normalise(entry.matched_on)
            except IdentifierRejected:
                canonical = None
            identifier = canonical if canonical in wanted else None
        if identifier is None:
            continue
        answers[identifier] = sorted(entry.matches, key=lambda m: -m.confidence_score)
    return answers


def _matched(match_type: MatchType, entries: list[EnrichEntry], sent: list[str]) -> int:
    """Identifiers of this batch that matched (an answer for something not sent is not billable to it)."""
    return sum(1 for matches in rejoin(match_type, entries, sent).values() if matches)


async def profiles(
    runner: Runner, urls: list[str], groups: tuple[str, ...], *, live: bool
) -> dict[str, list[EnrichMatch]]:
    """Profile section groups for profile URLs, from `/person/enrich` or (fresh) Live Enrich."""
    api = runner.app.api
    price = runner.prices.live.of(groups) if live else runner.prices.enrich.of(groups)
    found: dict[str, list[EnrichMatch]] = {}
    for chunk in chunks(urls):

        def request(batch: list[str] = chunk) -> Awaitable[APIResult[list[EnrichEntry]]]:
            return api.enrich_live(batch, list(groups)) if live else api.enrich_profiles(batch, list(groups))

        def cost_of(answer: list[EnrichEntry], batch: list[str] = chunk) -> Decimal:
            return price * _matched("professional_network_profile_url", answer, batch)

        entries = await runner.send(
            LIVE if live else ENRICH, request, worst=price * len(chunk), cost_of=cost_of,
            kind="url", identifiers=chunk, fields=groups,
        )  # fmt: skip
        if entries is None:
            break
        found.update(rejoin("professional_network_profile_url", entries, chunk))
        await runner.advance(len(chunk))
    return found


async def contacts(
    runner: Runner, match_type: MatchType, identifiers: list[str], tiers: tuple[str, ...]
) -> dict[str, list[EnrichMatch]]:
    """Contact tiers (exactly those asked for) for profile URLs or work emails, from `/person/contact/enrich`."""
    api = runner.app.api
    price = runner.prices.contact
    found: dict[str, list[EnrichMatch]] = {}
    for chunk in chunks(identifiers):

        def request(batch: list[str] = chunk) -> Awaitable[APIResult[list[EnrichEntry]]]:
            return api.enrich_contacts(match_type, batch, list(tiers))

        def cost_of(answer: list[EnrichEntry], batch: list[str] = chunk) -> Decimal:
            # Billed per tier actually returned, per matched person (n8n `contact-enrich.ts`).
            joined = rejoin(match_type, answer, batch).values()
            return sum((price.of(returned_tiers(matches, tiers)) for matches in joined if matches), Decimal(0))

        entries = await runner.send(
            CONTACT, request, worst=price.of(tiers) * len(chunk), cost_of=cost_of,
            kind="url" if match_type == "professional_network_profile_url" else "email", identifiers=chunk,
            fields=tiers,
        )  # fmt: skip
        if entries is None:
            break
        found.update(rejoin(match_type, entries, chunk))
        await runner.advance(len(chunk))
    return found


def returned_tiers(matches: list[EnrichMatch], tiers: tuple[str, ...]) -> tuple[str, ...]:
    """The asked-for tiers that came back non-empty for at least one candidate."""
    returned: list[str] = []
    for tier in tiers:
        key = tier.split(".", 1)[1]
        for match in matches:
            contact: Any = match.person_data.get("contact")
            if isinstance(contact, dict) and cast(dict[str, Any], contact).get(key):
                returned.append(tier)
                break
    return tuple(returned)


async def overview(
    runner: Runner,
    match_type: MatchType,
    identifiers: list[str],
    paths: tuple[str, ...],
    *,
    min_score: float | None,
    force_fetch: bool,
    enrich_realtime: bool,
) -> dict[str, list[EnrichMatch]]:
    """The overview's single `/person/enrich`: any identifier kind, the exact paths, the threshold and flags."""
    api = runner.app.api
    live = force_fetch or enrich_realtime
    price = runner.prices.live.of(paths) if live else runner.prices.enrich.of(paths)
    found: dict[str, list[EnrichMatch]] = {}
    for chunk in chunks(identifiers):

        def request(batch: list[str] = chunk) -> Awaitable[APIResult[list[EnrichEntry]]]:
            return api.enrich_overview(
                match_type,
                batch,
                list(paths),
                min_similarity_score=min_score,
                force_fetch=force_fetch,
                enrich_realtime=enrich_realtime,
            )

        def cost_of(answer: list[EnrichEntry], batch: list[str] = chunk) -> Decimal:
            return price * _matched(match_type, answer, batch)

        entries = await runner.send(
            ENRICH, request, worst=price * len(chunk), cost_of=cost_of,
            kind="url" if match_type == "professional_network_profile_url" else "email", identifiers=chunk,
            fields=paths,
        )  # fmt: skip
        if entries is None:
            break
        found.update(rejoin(match_type, entries, chunk))
        await runner.advance(len(chunk))
    return found


async def profile_urls_of(runner: Runner, person_ids: list[int]) -> dict[int, str]:
    """Profile URLs for person ids, from Person Search (0.03 a result): Contact Enrich names the person only by id,
    and `/person/enrich` takes profile URLs only."""
    api = runner.app.api
    found: dict[int, str] = {}
    for chunk in chunks(person_ids, PERSON_IDS_PER_SEARCH):
        request = SearchRequest(
            filters={"field": PERSON_ID_PATH, "type": "in", "value": chunk},
            limit=len(chunk),
            fields=[PERSON_ID_PATH, PROFILE_URL_PATH],
        )

        def send(page_request: SearchRequest = request) -> Awaitable[APIResult[SearchPage]]:
            return api.search(page_request)

        page = await runner.send(
            SEARCH,
            send,
            worst=runner.prices.search(len(chunk)),
            cost_of=lambda answer: runner.prices.search(len(answer.profiles)),
            kind="pid",
            identifiers=[str(person_id) for person_id in chunk],
            fields=[PERSON_ID_PATH, PROFILE_URL_PATH],
        )
        if page is None:
            break
        for profile in page.profiles:
            person_id: Any = profile.get(PERSON_ID_PATH)
            url = profile_url_in(profile)
            if isinstance(person_id, int) and url is not None:
                found[person_id] = url
    return found


def person_id_of(person_data: dict[str, Any]) -> int | None:
    """The upstream's person id in a person's data, if any."""
    value: Any = person_data.get(PERSON_ID_PATH)
    return value if isinstance(value, int) and not isinstance(value, bool) else None
