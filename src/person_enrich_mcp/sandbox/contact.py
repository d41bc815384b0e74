"""`POST /person/contact/enrich` (today's revision): contact data only, billed per tier returned.

Sources: the request keys and `fields` vocabulary from the n8n node's generated tables; "contact data only"
from the docs; per-tier billing with no base fee and a cap of 5, and the `verified` surcharge, from the n8n
node (`resources/person/contact-enrich.ts`, README).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from person_enrich_mcp.sandbox.calls import Call, Outcome, fields_denied, not_found
from person_enrich_mcp.sandbox.catalog import CONTACT_FIELDS, DEFAULT_CONTACT_FIELDS, gated_hits
from person_enrich_mcp.sandbox.dataset import EmailCandidate
from person_enrich_mcp.sandbox.enrich import EMAIL_MATCH, URL_MATCH, entry, url_candidates
from person_enrich_mcp.sandbox.pricing import VERIFIED_SURCHARGE, PriceList, price_list, touches
from person_enrich_mcp.sandbox.state import SandboxState
from person_enrich_mcp.sandbox.validation import EMAILS, URLS, closed_fields, identifiers, object_body, optional_bool

CONTACT_KEYS = (EMAILS, URLS, "fields", "verified")
# The dataset's status for an address that passed verification (the others are "unverified").
DELIVERABLE_STATUS = "verified"
NO_DELIVERABLE_MESSAGE = "No deliverable business email found"


def process_contact_enrich(state: SandboxState, call: Call) -> Outcome:
    """Validate a contact-enrich request, answer contact blocks per candidate, and bill the tiers returned."""
    request = object_body(call.body, CONTACT_KEYS)
    kind, items = identifiers(request, emails_allowed=True)
    fields = closed_fields(request.get("fields"), CONTACT_FIELDS, call.path)
    verified = optional_bool(request, "verified")
    tiers = _tiers(fields, call.disabled_fields())
    prices = price_list(call.path, call.terms)
    entries: list[dict[str, Any]] = []
    cost = Decimal(0)
    matched = 0
    for identifier in items:
        if kind == URLS:
            candidates = url_candidates(state.dataset, identifier)
        else:
            candidates = state.dataset.email_candidates(identifier)
        blocks = [_contact_block(c, tiers, verified) for c in candidates]
        matches = [
            {"confidence_score": c.score, "person_data": {"crustdata_person_id": c.person.person_id, "contact": b}}
            for c, b in zip(candidates, blocks, strict=True)
        ]
        entries.append(entry(identifier, URL_MATCH if kind == URLS else EMAIL_MATCH, matches))
        if candidates:
            matched += 1
            cost += _identifier_cost(prices, tiers, blocks, verified)
    if not matched and call.config.no_match_status == 404:
        return Outcome(404, not_found().payload())
    return Outcome(200, entries, cost)


def _tiers(fields: list[str] | None, disabled: Sequence[str]) -> list[str]:
    """The tiers to return: those asked for (a disabled one is a 403), or the default three minus disabled ones."""
    if fields is not None:
        denied = gated_hits(fields, disabled)
        if denied:
            raise fields_denied("current", denied)
        return list(dict.fromkeys(fields))
    return [t for t in DEFAULT_CONTACT_FIELDS if not any(touches(t, d) for d in disabled)]


def _contact_block(candidate: EmailCandidate, tiers: Sequence[str], verified: bool) -> dict[str, Any]:
    """The person's `contact` object with one key per requested tier (an empty list when nothing is on file)."""
    contact = candidate.person.data["contact"]
    block: dict[str, Any] = {}
    for tier in tiers:
        key = tier.removeprefix("contact.")
        items: list[Any] = list(contact[key])
        if key == "business_emails" and verified:
            items = [e for e in items if e["status"] == DELIVERABLE_STATUS]
            block[key] = items
            if not items:
                block["business_emails_message"] = NO_DELIVERABLE_MESSAGE
            continue
        block[key] = items
    return block


def _identifier_cost(
    prices: PriceList, tiers: Sequence[str], blocks: Sequence[dict[str, Any]], verified: bool
) -> Decimal:
    """One matched identifier: each tier non-empty in any candidate (capped), plus the `verified` surcharge."""
    returned = [t for t in tiers if any(b[t.removeprefix("contact.")] for b in blocks)]
    cost = prices.unit_cost(returned)
    if verified and any(b.get("business_emails") for b in blocks):
        cost += VERIFIED_SURCHARGE
    return cost
