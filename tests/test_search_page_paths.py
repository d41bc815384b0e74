"""One page of `search_then_enrich` (`tools/search_page.py`): the checked query and its cursor, the page cache and
whose it is, people the session already has left out, the opt-out list, the free `explain` re-ask of an empty
search, and how each search request is charged (0.03 credits a result row) and audited.

Fast on purpose (the `search_page` mutation group runs these once per mutant): the module's own functions where
they are pure, otherwise small flows through a real MCP client in-process against the sandbox over HTTP.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import anyio
import httpx2
import pytest
from mcp import Client

from person_enrich_mcp.api import SearchPage
from person_enrich_mcp.api.contract import PATHS
from person_enrich_mcp.budget import Owner
from person_enrich_mcp.errors import InputError
from person_enrich_mcp.fields import PROFILE_URL_PATH
from person_enrich_mcp.privacy.policy import FieldPolicy
from person_enrich_mcp.privacy.subjects import parse_subject
from person_enrich_mcp.privacy.suppression import add_entries
from person_enrich_mcp.sandbox import SandboxConfig, SandboxServer
from person_enrich_mcp.server import build_server
from person_enrich_mcp.state import MemoryStore
from person_enrich_mcp.tools.filters import Filter, Sort
from person_enrich_mcp.tools.search_page import (
    MAX_REMARK_CHARS,
    MAX_REMARKS,
    SearchCall,
    _left_out,  # pyright: ignore[reportPrivateUsage]
    decode_cursor,
    encode_cursor,
    next_offset,
    prepare,
    remarks_text,
)
from tests.conftest import Upstream, canary_key, error_facts, settings_for, text_of

CURRENT = pytest.mark.parametrize("revision", ["current"], indirect=True)
OVERVIEW = pytest.mark.parametrize("revision", ["overview"], indirect=True)

GERMANY = {"field": "basic_profile.location.country", "type": "=", "value": "Germany"}
TITLE = "experience.employment_details.current.title"
ENGINEERS_IN_GERMANY = {"op": "and", "conditions": [GERMANY, {"field": TITLE, "type": "(.)", "value": "Engineer"}]}
NOBODY = {"op": "and", "conditions": [GERMANY, {"field": TITLE, "type": "(.)", "value": "Astronaut"}]}
BY_CONNECTIONS = [{"field": "professional_network.connections", "order": "desc"}]
ROW = Decimal("0.03")  # the sandbox's search price: 0.03 credits a result row
NO_POLICY = FieldPolicy()
SETTLED = {"confirm_above": 1000, "session_budget": 1000}


def _ok(result: Any) -> dict[str, Any]:
    assert result.is_error is False, text_of(result)
    return cast(dict[str, Any], result.structured_content)


def _urls(result: dict[str, Any]) -> list[str]:
    return [p["matched_on"] for p in result["people"]]


def _left_out_notes(result: dict[str, Any]) -> list[str]:
    notes = cast(list[str], result.get("notes") or [])
    return [n for n in notes if "this session already has" in n]


def _call(filters: dict[str, Any] = ENGINEERS_IN_GERMANY, **options: Any) -> SearchCall:
    arguments: dict[str, Any] = {"sorts": None, "limit": 5, "cursor": None, "fields": None, "enrich": True}
    arguments.update(options)
    sorts = [Sort.model_validate(s) for s in arguments["sorts"]] if arguments["sorts"] else None
    return prepare(
        Filter.model_validate(filters),
        sorts,
        arguments["limit"],
        arguments["cursor"],
        arguments["fields"],
        arguments["enrich"],
        arguments.get("policy", NO_POLICY),
    )


# --- the explain remarks ------------------------------------------------------------------------------------------


def test_no_remarks_give_no_reasons() -> None:
    nothings: list[Any] = [None, [], "", {}]
    for nothing in nothings:
        assert remarks_text(nothing) is None


def test_remarks_read_as_the_upstreams_messages_else_its_text_else_compact_json() -> None:
    remarks = [
        {"type": "empty_result", "message": 'No profile matches title (.) "Astronaut".'},
        "a plain sentence",
        {"type": "empty_result", "field": "basic_profile.name", "value": "Zoë"},
        {"message": {"nested": 1}},
    ]
    assert remarks_text(remarks) == [
        'No profile matches title (.) "Astronaut".',
        "a plain sentence",
        '{"type":"empty_result","field":"basic_profile.name","value":"Zoë"}',  # no message: the remark, compact
        '{"message":{"nested":1}}',  # a message that is no sentence: the remark as it came
    ]


def test_a_single_remark_not_in_a_list_is_one_reason_and_many_are_capped() -> None:
    assert remarks_text("only this") == ["only this"]
    assert remarks_text({"message": "one object"}) == ["one object"]
    many = [{"message": f"reason {i} " + "x" * 400} for i in range(MAX_REMARKS + 3)]
    read = remarks_text(many)
    assert read is not None and len(read) == MAX_REMARKS
    assert all(len(r) == MAX_REMARK_CHARS and r.startswith(f"reason {i} ") for i, r in enumerate(read))


# --- cursors ------------------------------------------------------------------------------------------------------


def test_no_cursor_starts_at_the_first_row() -> None:
    assert decode_cursor(None, "fp") == (None, 0)
    assert decode_cursor("", "fp") == (None, 0)
    first = _call()
    assert (first.cursor, first.offset) == (None, 0)
    assert encode_cursor(None, first.fingerprint, 5) is None  # the last page: no cursor to hand out


def test_a_cursor_carries_the_upstream_cursor_and_the_rows_drawn_before_it_for_any_value() -> None:
    fingerprint = _call().fingerprint
    for length in range(1, 40):
        for offset in (0, 1, 5, 99, 12345):
            upstream = ("H4sI" + "xyzXW-_/+=?" * 4)[:length]
            cursor = encode_cursor(upstream, fingerprint, offset)
            assert cursor is not None
            assert decode_cursor(cursor, fingerprint) == (upstream, offset)


def test_a_cursor_is_unpadded_url_safe_base64_of_compact_json_so_it_costs_the_model_few_tokens() -> None:
    cursor = encode_cursor("H4sIAAAA", "0123456789abcdef", 10)
    assert cursor is not None and "=" not in cursor and "+" not in cursor and "/" not in cursor
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    assert raw == '{"u":"H4sIAAAA","q":"0123456789abcdef","o":10}'


def test_a_cursor_without_an_offset_starts_counting_at_zero_and_a_negative_one_is_read_as_zero() -> None:
    def ours(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    assert decode_cursor(ours({"u": "up", "q": "fp"}), "fp") == ("up", 0)
    assert decode_cursor(ours({"u": "up", "q": "fp", "o": -3}), "fp") == ("up", 0)
    assert decode_cursor(ours({"u": "up", "q": "fp", "o": 0}), "fp") == ("up", 0)
    assert decode_cursor(ours({"u": "up", "q": "fp", "o": 40}), "fp") == ("up", 40)
    for broken in ("not-ours", ours({"q": "fp"}), ours({"u": "up"}), ours({"u": "up", "q": "fp", "o": "x"})):
        with pytest.raises(InputError, match="not one this tool returned"):
            decode_cursor(broken, "fp")


# Cursors handed out by this release (a model keeps next_cursor across a server restart or a rolling upgrade, and
# replicas sharing one store serve the same session): the recipe of the query fingerprint must not drift.
RELEASED_ENRICH_CURSOR = "eyJ1IjoiSDRzSXVwIiwicSI6IjJiNjAwY2RmY2U3YTgxZjkiLCJvIjoxNH0"
RELEASED_ROWS_CURSOR = "eyJ1IjoiSDRzSXVwMiIsInEiOiIwOGNhODllY2IyZmRlY2I2IiwibyI6N30"


def test_a_cursor_handed_out_before_an_upgrade_still_continues_the_same_search() -> None:
    enriched = _call(sorts=BY_CONNECTIONS, limit=7, cursor=RELEASED_ENRICH_CURSOR)
    assert (enriched.cursor, enriched.offset) == ("H4sIup", 14)
    assert enriched.page_key == "2b600cdfce7a81f9\0H4sIup"
    rows = _call(
        sorts=BY_CONNECTIONS, limit=7, cursor=RELEASED_ROWS_CURSOR, fields=["basic_profile.name"], enrich=False
    )
    assert (rows.cursor, rows.offset) == ("H4sIup2", 7)
    assert rows.asked == ["basic_profile.name", PROFILE_URL_PATH]


@pytest.mark.parametrize(
    ("changed", "why"),
    [
        ({"filters": GERMANY}, "other filters"),
        ({"sorts": [{"field": "professional_network.connections", "order": "asc"}]}, "another order"),
        ({"sorts": None}, "no sorts"),
        ({"limit": 6}, "another limit"),
        ({"fields": ["basic_profile.name"], "enrich": False}, "rows only"),
    ],
)
def test_a_cursor_is_refused_with_any_other_part_of_the_query(changed: dict[str, Any], why: str) -> None:
    first = _call(sorts=BY_CONNECTIONS)
    cursor = encode_cursor("H4sIup", first.fingerprint, next_offset(first))
    assert _call(sorts=BY_CONNECTIONS, cursor=cursor).offset == 5
    options: dict[str, Any] = {"sorts": BY_CONNECTIONS, "cursor": cursor, **changed}
    with pytest.raises(InputError, match="belongs to a different search"):
        _call(options.pop("filters", ENGINEERS_IN_GERMANY), **options)


def test_a_search_only_cursor_is_refused_with_other_fields() -> None:
    names = _call(fields=["basic_profile.name"], enrich=False)
    cursor = encode_cursor("H4sIup", names.fingerprint, 5)
    assert _call(fields=["basic_profile.name"], enrich=False, cursor=cursor).cursor == "H4sIup"
    with pytest.raises(InputError, match="belongs to a different search"):
        _call(fields=["basic_profile.name", "basic_profile.headline"], enrich=False, cursor=cursor)


def test_the_next_page_starts_a_limit_further() -> None:
    first = _call(limit=7)
    second = _call(limit=7, cursor=encode_cursor("H4sIup", first.fingerprint, next_offset(first)))
    assert (next_offset(first), second.offset, next_offset(second)) == (7, 7, 14)


# --- the checked query --------------------------------------------------------------------------------------------


def test_the_checked_query_holds_the_normalised_filters_sorts_fields_and_what_search_is_asked_for() -> None:
    filters = {"field": "professional_network.connections", "type": ">=", "value": 10}
    call = _call(filters, sorts=BY_CONNECTIONS, limit=9, fields=["basic_profile.name"], enrich=False)
    assert call.filters.as_upstream() == {"field": "professional_network.connections", "type": "=>", "value": 10}
    assert [s.model_dump() for s in call.sorts] == BY_CONNECTIONS
    assert (call.limit, call.enrich, call.cursor, call.offset) == (9, False, None, 0)
    assert call.selection.paths == ("basic_profile.name",)
    assert call.asked == ["basic_profile.name", PROFILE_URL_PATH]
    assert call.notes == ["type '>=' was read as '=>' (greater than or equal), the API's spelling."]
    enriched = _call(filters, fields=["basic_profile.name", "contact.business_emails"])
    assert enriched.asked == [PROFILE_URL_PATH] and enriched.enrich is True
    assert enriched.selection.paths == ("basic_profile.name", "contact.business_emails")


def test_problems_in_filters_and_sorts_are_reported_together() -> None:
    with pytest.raises(InputError) as raised:
        _call({"field": "current_title", "type": "=", "value": "CEO"}, sorts=[{"field": "connections"}])
    message = str(raised.value)
    assert "'current_title' (nearest: experience.employment_details.current.title)" in message
    assert "Cannot sort on 'connections'. Nearest sortable: professional_network.connections" in message
    with pytest.raises(InputError, match="Cannot sort on 'connections'") as sorts_only:
        _call(GERMANY, sorts=[{"field": "connections"}])
    assert "nearest: experience" not in str(sorts_only.value)


def test_search_rows_refuse_fields_only_enrichment_carries_naming_them() -> None:
    with pytest.raises(InputError, match=r"cannot carry contact\.business_emails, skills: emails"):
        _call(fields=["basic_profile.name", "contact.business_emails", "skills"], enrich=False)


def test_an_explicitly_asked_field_the_operator_denies_is_refused_while_the_default_just_leaves_it_out() -> None:
    policy = FieldPolicy.of(("basic_profile.headline",))
    with pytest.raises(InputError, match=r"forbids basic_profile\.headline"):
        _call(fields=["basic_profile.name", "basic_profile.headline"], policy=policy)
    default = _call(policy=policy, enrich=False)
    assert "basic_profile.headline" not in default.selection.paths and default.selection.paths
    assert "basic_profile.headline" not in json.dumps(default.asked)


# --- how many people a page left out -----------------------------------------------------------------------------


def test_a_page_before_the_last_drew_a_full_limit_whatever_total_count_says_is_left() -> None:
    # total_count is the upstream's count, not a promise (it may be estimated or have changed since the first page):
    # a page that hands out a next cursor drew `limit` rows, so every missing one was left out.
    call = _call(limit=5)
    assert _left_out(SearchPage(profiles=[{}, {}], next_cursor="more", total_count=3), call) == 3
    assert _left_out(SearchPage(profiles=[{}, {}], next_cursor=None, total_count=3), call) == 1
    assert _left_out(SearchPage(profiles=[], next_cursor=None, total_count=0), call) == 0


# --- whose cached page it is --------------------------------------------------------------------------------------


def test_a_page_with_people_left_out_is_keyed_to_its_session_and_principal() -> None:
    call = _call()
    alice, bob = Owner("http:session-1", "alice"), Owner("http:session-1", "bob")
    keys = {call.owner_page_key(alice), call.owner_page_key(bob), call.owner_page_key(Owner("http:session-2", "bob"))}
    assert len(keys) == 3 and call.page_key not in keys
    assert all(key.startswith(call.page_key) for key in keys)


# --- flows against the sandbox ------------------------------------------------------------------------------------


class SearchGateway(httpx2.AsyncBaseTransport):
    """The real sandbox behind a gateway that changes successful search answers: drops their last row (an upstream
    whose page comes back short), reports another bill in `x-credits-used`, or turns the first one into a 502 that
    keeps its bill (the work was done, the answer lost)."""

    def __init__(self, *, drop_last_row: bool = False, report: str | None = None, billed_502: bool = False) -> None:
        self._inner = httpx2.AsyncHTTPTransport()
        self._drop_last_row = drop_last_row
        self._report = report
        self._billed_502 = billed_502
        self.rewritten = 0

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self._inner.handle_async_request(request)
        if request.url.path != PATHS["search"] or response.status_code != 200:
            return response
        content = await response.aread()
        await response.aclose()
        headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-encoding")}
        self.rewritten += 1
        if self._billed_502 and self.rewritten == 1:
            error: dict[str, Any] = {"error": {"type": "bad_gateway", "message": "Bad gateway", "metadata": []}}
            return httpx2.Response(502, headers=headers, json=error)
        payload = json.loads(content)
        if self._drop_last_row and payload["profiles"]:
            payload["profiles"] = payload["profiles"][:-1]
        if self._report is not None:
            headers["x-credits-used"] = self._report
        return httpx2.Response(200, headers=headers, json=payload)

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.fixture(scope="module")
def own_sandbox() -> Iterator[SandboxServer]:
    """A sandbox of this module's own (today's revision) for faults and the header switch, which act on all keys."""
    with SandboxServer(SandboxConfig(revision="current", people=400, companies=40)) as server:
        yield server


@pytest.fixture
def own(own_sandbox: SandboxServer) -> Iterator[Upstream]:
    upstream = Upstream(own_sandbox.url, canary_key("search-page"))
    httpx2.delete(f"{own_sandbox.url}/_sandbox/faults", timeout=10).raise_for_status()
    yield upstream
    httpx2.delete(f"{own_sandbox.url}/_sandbox/faults", timeout=10).raise_for_status()
    httpx2.post(f"{own_sandbox.url}/_sandbox/config", json={"credits_header": True}, timeout=10).raise_for_status()


def _fault(upstream: Upstream, **rule: Any) -> None:
    httpx2.post(f"{upstream.url}/_sandbox/faults", json={"endpoint": "search", **rule}, timeout=10).raise_for_status()


def _records(path: Path) -> list[dict[str, Any]]:
    return [cast(dict[str, Any], json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines()]


def _six_people(sandbox: SandboxServer) -> tuple[dict[str, Any], list[str]]:
    """A filter matching exactly six people (by their unique names), and their profile URLs."""
    people = sandbox.state.dataset.searchable
    counts: dict[str, int] = {}
    for person in people:
        name = person.data["basic_profile"]["name"] or ""
        counts[name] = counts.get(name, 0) + 1
    chosen = [p for p in people if counts[p.data["basic_profile"]["name"] or ""] == 1][10:16]
    names = [p.data["basic_profile"]["name"] for p in chosen]
    return {"field": "basic_profile.name", "type": "in", "value": names}, [p.profile_url for p in chosen]


# --- an empty search explained --------------------------------------------------------------------------------------


@CURRENT
@pytest.mark.anyio
async def test_an_empty_search_is_asked_again_with_explain_and_the_reasons_reach_the_model_for_free(
    client: Client, upstream: Upstream
) -> None:
    result = _ok(await client.call_tool("search_then_enrich", {"filters": NOBODY, "enrich": False}))
    sent = upstream.bodies("search")
    assert [body.get("explain") for body in sent] == [None, True]
    assert sent[1] == {**sent[0], "explain": True}
    assert result["why_empty"] == [
        'No profile matches experience.employment_details.current.title (.) "Astronaut": this condition matches '
        "nothing on its own."
    ]
    assert result["people"] == [] and result["total_count"] == 0 and _left_out_notes(result) == []
    assert result["receipt"]["charged"] == "0.00" and upstream.billed() == 0


@OVERVIEW
@pytest.mark.anyio
async def test_an_upstream_without_explain_is_asked_once_about_an_empty_search(
    client: Client, upstream: Upstream
) -> None:
    result = _ok(await client.call_tool("search_then_enrich", {"filters": NOBODY, "enrich": False}))
    [sent] = upstream.bodies("search")
    assert "explain" not in sent and "why_empty" not in result
    assert any("suggest_filter_values" in n for n in result["notes"])


@pytest.mark.anyio
async def test_an_explain_re_ask_that_fails_leaves_the_empty_page_standing(own: Upstream) -> None:
    _fault(own, kind="status", status=500, count=3, after=1)  # the first search answers; every later one fails
    async with Client(build_server(settings_for(own.url, own.key, **SETTLED))) as client:
        result = _ok(await client.call_tool("search_then_enrich", {"filters": NOBODY, "enrich": False}))
    assert result["people"] == [] and "why_empty" not in result and result["receipt"]["charged"] == "0.00"
    assert any("No one matched" in n for n in result["notes"])
    assert [r.get("body", {}).get("explain") for r in own.paid_requests()] == [None, True, True, True]


@CURRENT
@pytest.mark.anyio
async def test_a_page_that_matched_people_is_never_re_asked_with_explain(client: Client, upstream: Upstream) -> None:
    result = _ok(await client.call_tool("search_then_enrich", {"filters": GERMANY, "limit": 3, "enrich": False}))
    [sent] = upstream.bodies("search")
    assert "explain" not in sent and "why_empty" not in result and len(result["people"]) == 3
    assert "notes" not in result and "problems" not in result  # nothing left out, nothing withheld


# --- charges --------------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_search_is_charged_003_a_result_row_with_or_without_the_credits_header(own: Upstream) -> None:
    async with Client(build_server(settings_for(own.url, own.key, **SETTLED))) as client:
        told = _ok(await client.call_tool("search_then_enrich", {"filters": GERMANY, "limit": 4, "enrich": False}))
        httpx2.post(f"{own.url}/_sandbox/config", json={"credits_header": False}, timeout=10).raise_for_status()
        computed = _ok(await client.call_tool("search_then_enrich", {"filters": GERMANY, "limit": 3, "enrich": False}))
    assert (told["receipt"]["estimated"], told["receipt"]["charged"]) == ("0.12", "0.12")
    assert (computed["receipt"]["estimated"], computed["receipt"]["charged"]) == ("0.09", "0.09")
    assert "unverified" not in computed["receipt"]
    assert computed["receipt"]["session_spent"] == "0.21" == str(own.billed())


@CURRENT
@pytest.mark.anyio
async def test_what_the_upstream_reports_for_a_search_is_what_is_booked(upstream: Upstream) -> None:
    gateway = SearchGateway(report="0.50")
    async with Client(build_server(settings_for(upstream.url, upstream.key, **SETTLED), transport=gateway)) as client:
        result = _ok(await client.call_tool("search_then_enrich", {"filters": GERMANY, "limit": 4, "enrich": False}))
    assert result["receipt"]["charged"] == "0.50" and gateway.rewritten == 1


@CURRENT
@pytest.mark.anyio
async def test_a_search_error_that_reports_a_bill_is_charged_that_bill_and_not_retried(upstream: Upstream) -> None:
    gateway = SearchGateway(billed_502=True)
    async with Client(build_server(settings_for(upstream.url, upstream.key, **SETTLED), transport=gateway)) as client:
        failed = await client.call_tool("search_then_enrich", {"filters": GERMANY, "limit": 4, "enrich": False})
    facts = error_facts(failed)
    assert facts["error"]["code"] == "upstream_unavailable"
    assert facts["receipt"]["charged"] == "0.12" == str(upstream.billed()) and "unverified" not in facts["receipt"]
    assert len(upstream.bodies("search")) == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("fault", "header", "charged", "unverified"),
    [
        ("malformed", True, "0.12", None),  # billed and said so: the bill is booked
        ("truncated", True, "0.12", None),
        ("malformed", False, "0.00", "0.12"),  # did not say: a full page held as unverified
        ("reset", True, "0.00", "0.12"),  # no answer at all: a full page held as unverified
        ("status", True, "0.00", None),  # refused before processing (its header says 0): nothing
    ],
)
async def test_a_failed_search_books_what_it_is_known_or_feared_to_have_cost(
    own: Upstream, fault: str, header: bool, charged: str, unverified: str | None
) -> None:
    httpx2.post(f"{own.url}/_sandbox/config", json={"credits_header": header}, timeout=10).raise_for_status()
    _fault(own, kind=fault, count=3, **({"status": 400} if fault == "status" else {}))
    async with Client(build_server(settings_for(own.url, own.key, **SETTLED))) as client:
        failed = await client.call_tool("search_then_enrich", {"filters": GERMANY, "limit": 4, "enrich": False})
    facts = error_facts(failed)
    receipt = facts.get("receipt") or {"charged": "0.00"}
    assert (receipt["charged"], receipt.get("unverified")) == (charged, unverified), facts
    assert len(own.paid_requests()) == 1  # never retried


@CURRENT
@pytest.mark.anyio
async def test_the_known_balance_drops_by_what_a_search_cost_so_the_next_worst_case_is_refused(
    upstream: Upstream,
) -> None:
    assert upstream.post("/_sandbox/balance", {"credits": "0.20"}).status_code == 200
    async with Client(build_server(settings_for(upstream.url, upstream.key, **SETTLED))) as client:
        first = _ok(await client.call_tool("search_then_enrich", {"filters": GERMANY, "limit": 4, "enrich": False}))
        second = await client.call_tool("search_then_enrich", {"filters": NOBODY, "limit": 4, "enrich": False})
    assert first["receipt"]["charged"] == "0.12"
    assert error_facts(second)["error"]["code"] == "account_balance_low" and "0.08 credits left" in text_of(second)
    assert len(upstream.bodies("search")) == 1


# --- the audit record of each search request ------------------------------------------------------------------------


@CURRENT
@pytest.mark.anyio
async def test_each_search_request_is_audited_with_its_fields_estimate_bill_and_rows(
    upstream: Upstream, tmp_path: Path
) -> None:
    log = tmp_path / "audit.jsonl"
    settings = settings_for(upstream.url, upstream.key, audit_log=str(log), **SETTLED)
    async with Client(build_server(settings)) as client:
        _ok(await client.call_tool("search_then_enrich", {"filters": GERMANY, "limit": 4, "enrich": False}))
        _ok(await client.call_tool("search_then_enrich", {"filters": NOBODY, "limit": 2, "enrich": False}))
    records = [r for r in _records(log) if r["endpoint"] == "search"]
    fields = upstream.bodies("search")[0]["fields"]
    common: dict[str, Any] = {"endpoint": "search", "kind": "none", "identifiers": 0, "subjects": [], "fields": fields}
    keys = (*common, "estimated", "charged", "unverified", "outcome", "results")
    assert [{k: r[k] for k in keys} for r in records] == [
        {**common, "estimated": "0.12", "charged": "0.12", "unverified": "0.00", "outcome": "ok", "results": 4},
        {**common, "estimated": "0.06", "charged": "0.00", "unverified": "0.00", "outcome": "ok", "results": 0},
        {**common, "estimated": "0.06", "charged": "0.00", "unverified": "0.00", "outcome": "ok", "results": 0},
    ]
    assert len({r["call"] for r in records}) == 2


@pytest.mark.anyio
async def test_a_failed_search_is_audited_with_its_error_and_what_it_holds_unverified(
    own: Upstream, tmp_path: Path
) -> None:
    httpx2.post(f"{own.url}/_sandbox/config", json={"credits_header": False}, timeout=10).raise_for_status()
    _fault(own, kind="malformed", count=1)
    log = tmp_path / "audit.jsonl"
    settings = settings_for(own.url, own.key, audit_log=str(log), **SETTLED)
    async with Client(build_server(settings)) as client:
        failed = await client.call_tool("search_then_enrich", {"filters": GERMANY, "limit": 4})
    code = error_facts(failed)["error"]["code"]
    [record] = [r for r in _records(log) if r["endpoint"] == "search"]
    assert record["fields"] == [PROFILE_URL_PATH] and record["estimated"] == "0.12"
    assert (record["charged"], record["unverified"], record["outcome"]) == ("0.00", "0.12", code)
    assert "results" not in record


# --- people the session already has -----------------------------------------------------------------------------


@CURRENT
@pytest.mark.anyio
async def test_people_the_session_has_are_left_out_uncharged_and_the_page_is_its_own_to_read_again(
    client: Client, upstream: Upstream
) -> None:
    had = _urls(_ok(await client.call_tool("search_then_enrich", {"filters": GERMANY, "limit": 3})))
    wider = _ok(await client.call_tool("search_then_enrich", {"filters": GERMANY, "limit": 6, "enrich": False}))
    again = _ok(await client.call_tool("search_then_enrich", {"filters": GERMANY, "limit": 6, "enrich": False}))
    bodies = upstream.bodies("search")
    assert len(bodies) == 2 and sorted(bodies[1]["post_processing"]["exclude_profiles"]) == sorted(had)
    assert len(wider["people"]) == 3 and not set(had) & set(_urls(wider))
    assert _left_out_notes(wider) == [
        "3 people this session already has with these fields were left out of this page, not charged: they are in "
        "earlier results (enrich_person_by_url serves them again free from the cache). next_cursor continues."
    ]
    assert wider["receipt"]["charged"] == "0.09" and "problems" not in wider
    # Read again: this session's own cached page, free, with the same people.
    assert _urls(again) == _urls(wider) and again["receipt"]["charged"] == "0.00"


@CURRENT
@pytest.mark.anyio
async def test_left_out_counts_a_full_page_before_the_last_and_what_was_left_of_the_total_on_it(
    client: Client, upstream: Upstream, sandbox: SandboxServer
) -> None:
    six, urls = _six_people(sandbox)
    _ok(await client.call_tool("search_then_enrich", {"filters": six, "limit": 6}))  # the session has all six
    first = _ok(await client.call_tool("search_then_enrich", {"filters": six, "limit": 4, "enrich": False}))
    assert first["people"] == [] and first["total_count"] == 6 and first["next_cursor"]
    last = _ok(
        await client.call_tool(
            "search_then_enrich", {"filters": six, "limit": 4, "enrich": False, "cursor": first["next_cursor"]}
        )
    )
    assert last["people"] == [] and "next_cursor" not in last
    assert _left_out_notes(first)[0].startswith("4 people this session already has")
    assert _left_out_notes(last)[0].startswith("2 people this session already has")
    assert not any("No one matched" in n for n in first["notes"] + last["notes"]) and "why_empty" not in last
    bodies = upstream.bodies("search")
    assert len(bodies) == 3 and all("explain" not in b for b in bodies)  # emptied by exclusions: nothing to explain
    assert sorted(bodies[2]["post_processing"]["exclude_profiles"]) == sorted(urls)
    assert (first["receipt"]["charged"], last["receipt"]["charged"]) == ("0.00", "0.00")


@CURRENT
@pytest.mark.anyio
async def test_a_search_matching_no_one_claims_no_one_left_out_even_when_the_session_has_people(
    client: Client, upstream: Upstream
) -> None:
    _ok(await client.call_tool("search_then_enrich", {"filters": GERMANY, "limit": 2}))
    result = _ok(await client.call_tool("search_then_enrich", {"filters": NOBODY, "limit": 4, "enrich": False}))
    assert upstream.bodies("search")[1]["post_processing"]["exclude_profiles"]  # exclusions were sent
    assert _left_out_notes(result) == [] and any("No one matched" in n for n in result["notes"])
    assert result["why_empty"]


@CURRENT
@pytest.mark.anyio
async def test_a_page_the_upstream_returns_short_is_not_blamed_on_exclusions_that_were_never_sent(
    upstream: Upstream,
) -> None:
    gateway = SearchGateway(drop_last_row=True)
    async with Client(build_server(settings_for(upstream.url, upstream.key), transport=gateway)) as client:
        result = _ok(await client.call_tool("search_then_enrich", {"filters": GERMANY, "limit": 4, "enrich": False}))
    assert len(result["people"]) == 3 and result["next_cursor"] and "notes" not in result


@OVERVIEW
@pytest.mark.anyio
async def test_an_upstream_without_exclusions_is_sent_none_and_shows_the_session_its_people_again(
    client: Client, upstream: Upstream
) -> None:
    had = _urls(_ok(await client.call_tool("search_then_enrich", {"filters": GERMANY, "limit": 2})))
    wider = _ok(await client.call_tool("search_then_enrich", {"filters": GERMANY, "limit": 4, "enrich": False}))
    assert "post_processing" not in upstream.bodies("search")[1]
    assert set(had) <= set(_urls(wider)) and "notes" not in wider and wider["receipt"]["charged"] == "0.12"


@CURRENT
@pytest.mark.anyio
async def test_a_page_with_people_left_out_stays_its_sessions_while_a_plain_page_is_shared(
    upstream: Upstream,
) -> None:
    # Two sessions over one cache store (as replicas share one).
    cache = MemoryStore()
    settings = settings_for(upstream.url, upstream.key, **SETTLED)
    async with Client(build_server(settings, cache_store_factory=lambda: cache)) as alice:
        had = _urls(_ok(await alice.call_tool("search_then_enrich", {"filters": GERMANY, "limit": 3})))
        own = _ok(await alice.call_tool("search_then_enrich", {"filters": GERMANY, "limit": 6, "enrich": False}))
    async with Client(build_server(settings, cache_store_factory=lambda: cache)) as bob:
        rows = _ok(await bob.call_tool("search_then_enrich", {"filters": GERMANY, "limit": 6, "enrich": False}))
        shared = _ok(await bob.call_tool("search_then_enrich", {"filters": GERMANY, "limit": 3}))
    assert len(own["people"]) == 3 and len(rows["people"]) == 6 and set(had) < set(_urls(rows))
    assert rows["receipt"]["charged"] == "0.18" and "notes" not in rows
    # Alice's plain page of three (and its people) were cached for everyone: Bob reads them free.
    assert _urls(shared) == had and shared["receipt"]["charged"] == "0.00"
    assert len(upstream.bodies("search")) == 3


# --- the opt-out list -----------------------------------------------------------------------------------------------


def _optout(path: Path, *urls: str) -> None:
    add_entries(path, [(parse_subject(u).hash, "test") for u in urls])


def _withheld(result: dict[str, Any]) -> list[str]:
    problems = cast(list[dict[str, str]], result.get("problems") or [])
    return [p["reason"] for p in problems if p["identifier"] == "(search)"]


@CURRENT
@pytest.mark.anyio
async def test_a_person_on_the_opt_out_list_is_withheld_from_a_fresh_page_and_counted_once(
    upstream: Upstream, sandbox: SandboxServer, tmp_path: Path
) -> None:
    six, urls = _six_people(sandbox)
    _optout(tmp_path / "optout", urls[2])
    settings = settings_for(upstream.url, upstream.key, suppression_file=str(tmp_path / "optout"), **SETTLED)
    async with Client(build_server(settings)) as client:
        first = _ok(await client.call_tool("search_then_enrich", {"filters": six, "limit": 6, "enrich": False}))
        again = _ok(await client.call_tool("search_then_enrich", {"filters": six, "limit": 6, "enrich": False}))
    for result in (first, again):
        assert sorted(_urls(result)) == sorted(u for u in urls if u != urls[2])
        assert _withheld(result) == ["1 result withheld: on this server's opt-out list"]
        assert _left_out_notes(result) == []
    assert again["receipt"]["charged"] == "0.00" and len(upstream.bodies("search")) == 1


@CURRENT
@pytest.mark.anyio
async def test_someone_who_opts_out_after_a_page_was_cached_leaves_it_and_is_never_named_in_exclusions(
    upstream: Upstream, sandbox: SandboxServer, tmp_path: Path
) -> None:
    six, _ = _six_people(sandbox)
    optout = tmp_path / "optout"
    optout.write_text("", encoding="utf-8")
    settings = settings_for(upstream.url, upstream.key, suppression_file=str(optout), **SETTLED)
    async with Client(build_server(settings)) as client:
        had = _urls(_ok(await client.call_tool("search_then_enrich", {"filters": six, "limit": 3})))
        _optout(optout, had[0])
        cached = _ok(await client.call_tool("search_then_enrich", {"filters": six, "limit": 3}))
        wider = _ok(await client.call_tool("search_then_enrich", {"filters": six, "limit": 6, "enrich": False}))
    # The cached page, free, without them (the housekeeper has not erased it yet).
    assert _urls(cached) == had[1:] and cached["receipt"]["charged"] == "0.00"
    assert _withheld(cached) == ["1 result withheld: on this server's opt-out list"]
    bodies = upstream.bodies("search")
    assert len(bodies) == 2 and sorted(bodies[1]["post_processing"]["exclude_profiles"]) == sorted(had[1:])
    assert had[0] not in _urls(wider) and _left_out_notes(wider)[0].startswith("2 people")
    assert _withheld(wider) == ["1 result withheld: on this server's opt-out list"]


@CURRENT
@pytest.mark.anyio
async def test_a_search_abandoned_before_it_was_sent_is_audited_as_cancelled_and_costs_nothing(
    upstream: Upstream, tmp_path: Path
) -> None:
    log = tmp_path / "audit.jsonl"
    # One search slot every four seconds: the second search waits for it, and is abandoned while it waits.
    settings = settings_for(
        upstream.url, upstream.key, audit_log=str(log), search_rpm=1, rate_window_seconds=4, **SETTLED
    )
    async with Client(build_server(settings), mode="legacy") as client:
        _ok(await client.call_tool("search_then_enrich", {"filters": GERMANY, "limit": 2, "enrich": False}))
        with anyio.move_on_after(0.3) as waiting:
            await client.call_tool("search_then_enrich", {"filters": NOBODY, "limit": 2, "enrich": False})
        assert waiting.cancelled_caught
    records = [r for r in _records(log) if r["endpoint"] == "search"]
    assert [(r["outcome"], r["charged"], r["unverified"], r.get("results")) for r in records] == [
        ("ok", "0.06", "0.00", 2),
        ("cancelled", "0.00", "0.00", None),
    ]
    assert len(upstream.bodies("search")) == 1


@CURRENT
@pytest.mark.anyio
async def test_each_search_requests_audit_record_carries_its_own_bill_not_the_calls_running_total(
    upstream: Upstream, tmp_path: Path
) -> None:
    log = tmp_path / "audit.jsonl"
    gateway = SearchGateway(report="0.05")  # an upstream that bills even a search matching no one
    settings = settings_for(upstream.url, upstream.key, audit_log=str(log), **SETTLED)
    async with Client(build_server(settings, transport=gateway)) as client:
        result = _ok(await client.call_tool("search_then_enrich", {"filters": NOBODY, "limit": 2, "enrich": False}))
    assert result["receipt"]["charged"] == "0.10" and gateway.rewritten == 2  # the search and its explain re-ask
    assert [r["charged"] for r in _records(log) if r["endpoint"] == "search"] == ["0.05", "0.05"]
