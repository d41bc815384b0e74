"""A paid look-up that comes back empty says so: which requested fields were empty, what that cost, and why.

Today's contact enrich bills each tier only when it is returned; the overview's enrich bills what was requested.
The result names the rule that applied, so "charged 9.00, got {}" can never happen silently again.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

import pytest
from mcp import Client

from tests.conftest import Upstream, sample_identifiers, text_of

PHONES = ["contact.phone_numbers"]


def _args(urls: list[str], fields: list[str]) -> dict[str, Any]:
    """A look-up confirmed with max_credits (12 people with contact tiers are above the confirmation threshold)."""
    return {"professional_network_profile_urls": urls, "fields": fields, "max_credits": 40}


def _ok(result: Any) -> dict[str, Any]:
    assert result.is_error is False, text_of(result)
    return cast(dict[str, Any], result.structured_content)


@pytest.mark.anyio
async def test_phone_look_ups_that_find_no_phone_say_which_were_empty_what_they_cost_and_the_billing_rule(
    client: Client, upstream: Upstream, revision: str
) -> None:
    urls = sample_identifiers(upstream.url, "url", 12, offset=900)
    result = _ok(await client.call_tool("enrich_person_by_url", _args(urls, PHONES)))
    people = result["people"]
    empty = [p for p in people if not p["person_data"]]
    found = [p for p in people if p["person_data"]]
    assert empty and found, "the sample should hold people with and without a phone number"
    assert all(p["missing"] == PHONES for p in empty) and all("missing" not in p for p in found)
    [note] = result["notes"]
    assert f"contact.phone_numbers for {len(empty)} people" in note
    charged = Decimal(result["receipt"]["charged"])
    assert charged == upstream.billed()
    if revision == "current":
        assert "contact tiers only when they are returned" in note and "nothing was charged for them" in note
        assert charged == 2 * len(found)
    else:
        assert "bills the fields requested, whether or not they are returned" in note
        assert f"{Decimal(3) * len(empty):.2f} credits of this call were for them" in note
        assert charged == 3 * len(people)
    # Read again from the cache: the same people say what is missing, and nothing is charged or claimed.
    again = _ok(await client.call_tool("enrich_person_by_url", _args(urls, PHONES)))
    assert [p.get("missing") for p in again["people"]] == [p.get("missing") for p in people]
    assert "notes" not in again and again["receipt"]["charged"] == "0.00"


@pytest.mark.anyio
async def test_a_priced_field_that_came_back_empty_is_named_while_the_rest_of_the_person_is_kept(
    client: Client, upstream: Upstream
) -> None:
    urls = sample_identifiers(upstream.url, "url", 12, offset=940)
    fields = ["basic_profile.name", "contact.business_emails"]
    result = _ok(await client.call_tool("enrich_person_by_url", _args(urls, fields)))
    without = [p for p in result["people"] if "contact" not in p["person_data"]]
    assert without, "the sample should hold someone without a work email"
    for person in without:
        assert person["person_data"]["basic_profile"]["name"] and person["missing"] == ["contact.business_emails"]
    assert any("contact.business_emails for" in n for n in result["notes"])


@pytest.mark.anyio
async def test_default_look_ups_carry_no_missing_notes(client: Client, upstream: Upstream) -> None:
    urls = sample_identifiers(upstream.url, "url", 5, offset=980)
    result = _ok(await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": urls}))
    assert "notes" not in result and all("missing" not in p for p in result["people"])
