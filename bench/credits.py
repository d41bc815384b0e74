"""4. Credits: a scripted research session, billed by the sandbox, against the minimum any server could pay.

The session searches with overlapping results, pages on and back, looks the same people up again by URL
(once re-spelled), asks for more fields and then for a subset of what it has, looks up work e-mails twice
and at a stricter threshold, and tries unknown and opted-out people.

The minimum is computed here, independently of the server, from the sandbox's dataset and the documented
price list: a look-up costs its field price when its identifier matched and no earlier paid look-up of the
same identifier could have served it. The price of a look-up depends only on the add-ons it asks for, so a
paid look-up could have fetched every field without an add-on at the same price: an earlier paid look-up
(for e-mails, one made at the same or a looser `min_similarity_score`) can serve a later one unless the later
one needs an add-on that none of them paid for. A search page costs 0.03 a result the first time that page
of that query is read; reading it again could have been served too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

import httpx2
from mcp import Client

from bench.common import Figures, Sizes, ledger, new_key, sample_identifiers, server_env, stdio_params, upstream_headers
from bench.context import DEFAULT_FIELDS
from person_enrich_mcp.sandbox import SandboxServer
from person_enrich_mcp.sandbox.dataset import Dataset

# The documented price list (README, "Tools"): per matched profile 1 + add-ons, at most 7; search 0.03 a result.
BASE = Decimal(1)
CAP = Decimal(7)
ADDONS = {
    "contact.business_emails": Decimal(1),
    "contact.personal_emails": Decimal(2),
    "contact.phone_numbers": Decimal(2),
    "dev_platform_profiles": Decimal(1),
}
PER_RESULT = Decimal("0.03")
PROFILE_URL = "social_handles.professional_network_identifier.profile_url"
PAGE = 10
CONTACT = ("basic_profile", "contact.business_emails")
NARROW = ("basic_profile.name", "contact.business_emails.email")
SORTS = [{"field": "crustdata_person_id", "order": "asc"}]
ENGINEER = {"field": "experience.employment_details.current.title", "type": "(.)", "value": "Engineer"}
QUERIES: dict[str, dict[str, Any]] = {
    "us": {
        "op": "and",
        "conditions": [ENGINEER, {"field": "basic_profile.location.country", "type": "=", "value": "United States"}],
    },
    "us_de": {
        "op": "and",
        "conditions": [
            ENGINEER,
            {"field": "basic_profile.location.country", "type": "in", "value": ["United States", "Germany"]},
        ],
    },
}
_SLUG = re.compile(r"linkedin\.com/in/([^/?#]+)", re.IGNORECASE)


def addons(fields: tuple[str, ...]) -> frozenset[str]:
    """The add-ons `fields` ask for: a field at, under or above an add-on's path (`contact` asks for three)."""
    return frozenset(
        addon
        for addon in ADDONS
        if any(f == addon or f.startswith(addon + ".") or addon.startswith(f + ".") for f in fields)
    )


def price(fields: tuple[str, ...]) -> Decimal:
    """Credits for one matched profile asked for with `fields`."""
    return min(BASE + sum((ADDONS[a] for a in addons(fields)), start=Decimal(0)), CAP)


@dataclass
class Minimum:
    """The least any server could have paid for the look-ups so far, and what re-reading pages cost."""

    dataset: Dataset
    total: Decimal = Decimal(0)
    repeated_pages: Decimal = Decimal(0)
    paid: dict[tuple[str, str], list[tuple[frozenset[str], float]]] = field(
        default_factory=dict[tuple[str, str], list[tuple[frozenset[str], float]]]
    )
    pages: set[tuple[str, int]] = field(default_factory=set[tuple[str, int]])

    def _matched(self, kind: str, identifier: str, min_score: float | None) -> str | None:
        if kind == "url":
            found = _SLUG.search(identifier)
            person = self.dataset.lookup_slug(found.group(1).rstrip("/")) if found else None
            return person.slug.lower() if person is not None and not person.opted_out else None
        candidates = self.dataset.email_candidates(identifier)
        kept = [c for c in candidates if min_score is None or c.score >= min_score]
        return identifier.strip().lower() if kept else None

    def lookup(
        self, kind: str, identifiers: list[str], fields: tuple[str, ...], min_score: float | None = None
    ) -> None:
        """One look-up call: each matched identifier not servable from earlier paid look-ups costs its price."""
        threshold = min_score or 0.0
        for identifier in identifiers:
            key = self._matched(kind, identifier, min_score)
            if key is None:
                continue  # no match is free
            earlier = [(paid, at) for paid, at in self.paid.setdefault((kind, key), []) if at <= threshold]
            held = frozenset(a for paid, _ in earlier for a in paid)
            if not earlier or not addons(fields) <= held:
                self.total += price(fields)
                self.paid[(kind, key)].append((addons(fields), threshold))

    def page(self, query: str, number: int, results: int) -> None:
        """One search page read."""
        cost = PER_RESULT * results
        if (query, number) in self.pages:
            self.repeated_pages += cost
            return
        self.pages.add((query, number))
        self.total += cost


async def run(sandbox: SandboxServer, sizes: Sizes) -> Figures:
    del sizes  # the session is the same in every mode
    api = sandbox.url
    key = new_key("credits")
    minimum = Minimum(sandbox.state.dataset)
    fresh = sample_identifiers(api, "url", 3, offset=500)
    emails = sample_identifiers(api, "email", 4, offset=300)
    multi = sample_identifiers(api, "multi_email", 1)
    opted_out = sample_identifiers(api, "opted_out_url", 1)
    unknown = "https://www.linkedin.com/in/nobody-at-all-bench-0000"

    # The search pages as the upstream answers them, read directly (this key's spend is not counted).
    direct_pages: dict[tuple[str, int], list[str]] = {}
    async with httpx2.AsyncClient(base_url=api, headers=upstream_headers(new_key("credits-direct"))) as http:
        for query, filters in QUERIES.items():
            cursor: str | None = None
            for number in (1, 2):
                body: dict[str, Any] = {"filters": filters, "sorts": SORTS, "limit": PAGE, "fields": [PROFILE_URL]}
                if cursor:
                    body["cursor"] = cursor
                answer = cast(dict[str, Any], (await http.post("/person/search", json=body)).json())
                profiles = cast(list[dict[str, Any]], answer["profiles"])
                direct_pages[(query, number)] = [
                    p["social_handles"]["professional_network_identifier"]["profile_url"] for p in profiles
                ]
                cursor = cast(str | None, answer["next_cursor"])

    env = server_env(api, key)  # the cache on, as shipped
    calls = 0
    async with Client(stdio_params(env), mode="legacy", cache=None) as client:
        cursors: dict[tuple[str, int], str | None] = {}

        async def call(tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
            nonlocal calls
            calls += 1
            result = await client.call_tool(tool, arguments)
            structured = cast(dict[str, Any], result.structured_content)
            if result.is_error:
                raise RuntimeError(f"credits: {tool} failed: {structured}")
            return structured

        async def search(query: str, number: int) -> None:
            arguments: dict[str, Any] = {"filters": QUERIES[query], "sorts": SORTS, "limit": PAGE}
            if number > 1:
                arguments["cursor"] = cursors[(query, number)]
            result = await call("search_then_enrich", arguments)
            cursors[(query, number + 1)] = cast(str | None, result.get("next_cursor"))
            urls = direct_pages[(query, number)]
            minimum.page(query, number, len(urls))
            minimum.lookup("url", urls, DEFAULT_FIELDS)

        async def by_url(urls: list[str], fields: tuple[str, ...] | None = None) -> None:
            arguments: dict[str, Any] = {"professional_network_profile_urls": urls}
            if fields is not None:
                arguments["fields"] = list(fields)
            await call("enrich_person_by_url", arguments)
            minimum.lookup("url", urls, fields or DEFAULT_FIELDS)

        async def by_email(
            addresses: list[str], fields: tuple[str, ...] | None = None, at: float | None = None
        ) -> None:
            arguments: dict[str, Any] = {"business_emails": addresses}
            if fields is not None:
                arguments["fields"] = list(fields)
            if at is not None:
                arguments["min_similarity_score"] = at
            await call("enrich_person_by_email", arguments)
            minimum.lookup("email", addresses, fields or DEFAULT_FIELDS, at)

        await search("us", 1)
        await search("us_de", 1)  # overlaps the first page
        await search("us", 2)
        await search("us", 1)  # back to the first page
        shortlist = direct_pages[("us", 1)][:5]
        await by_url(shortlist)  # already seen through the search
        first = shortlist[0].rsplit("/", 1)[1]
        await by_url([f"http://LinkedIn.com/in/{first.upper()}/"])  # the same person, spelled differently
        await by_url(shortlist + fresh, CONTACT)  # their work e-mails, and three new people
        await by_url(shortlist + fresh, NARROW)  # a subset of what was just paid for
        await by_url(fresh)  # the basics of the new people
        await by_url(shortlist + fresh, CONTACT)  # the e-mails again
        await by_email(emails, at=0.9)
        await by_email(emails, at=0.9)
        await by_email(multi)
        await by_email(multi, at=0.9)  # stricter than what is cached
        await by_email(emails[:2], CONTACT, at=0.9)
        await by_url([unknown])
        await by_url([unknown])
        await by_url(opted_out)
        await search("us_de", 2)
        books = await call("get_budget", {})

    charged = Decimal(str(ledger(api, key)["credits_billed"]))
    if Decimal(str(books["spent"])) != charged:
        raise RuntimeError(f"credits: the server recorded {books['spent']}, the sandbox billed {charged}")
    return {
        "credits_ratio": float(charged / minimum.total),
        "credits_charged": float(charged),
        "credits_minimum": float(minimum.total),
        "credits_excess": float(charged - minimum.total),
        "credits_repeated_search_pages": float(minimum.repeated_pages),
        "credits_calls": calls,
    }
