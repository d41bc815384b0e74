"""Hostile and malformed input: every tool fuzzed from its own published schema, then well beyond it.

Schema fuzzing builds hypothesis strategies from each tool's `inputSchema` (as `list_tools()` publishes it),
seeded with realistic values so calls get past validation and reach the upstream. Each call must come back
without a protocol error, as a success or an `isError` whose message is specific and bounded, never as a
request the upstream rejects for its shape. Then hand-written hostile arguments (wrong types, huge arrays and
strings, unicode tricks, credentials, other hosts, other schemes, display names, deep and wide filters) must
each end in a clear answer, with nothing invalid sent upstream. Last, the bounds on the work of one call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, ClassVar, cast

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.types import CallToolResult

from person_enrich_mcp.api.contract import PERSON_AUTOCOMPLETE_FIELDS as AUTOCOMPLETE_FIELDS
from person_enrich_mcp.fields import ALL_PATHS
from person_enrich_mcp.sandbox import SandboxConfig, SandboxServer
from person_enrich_mcp.sandbox.filters import SORTABLE_FIELDS, SUPPORTED_FIELDS
from person_enrich_mcp.search_fields import SEARCH_OPERATORS
from person_enrich_mcp.server import build_server
from person_enrich_mcp.settings import Settings
from person_enrich_mcp.tools.filters import OPERATOR_ALIASES
from tests.conftest import settings_for, text_of
from tests.reliability_support import (  # canary_guard: autouse, imported to apply here
    GENERIC_PREFIX,
    MAX_MESSAGE_BYTES,
    NO_RATE_LIMITS,
    Sandbox,
    books,
    canary_guard,  # noqa: F401  # pyright: ignore[reportUnusedImport]
    canary_key,
    error_code,
    structured,
)

# `st.emails()` imports hypothesis's regex module on its first draw, deep in a test's stack, where Python 3.11's
# parser can fail ("AST constructor recursion depth mismatch", seen once in a full run): import it here instead.
st.from_regex("a").validate()

EXAMPLES_PER_TOOL = 100
MAX_RESULT_BYTES = 40_000
# What the upstream accepts (docs/sandbox.md): the server must never send anything else.
CANONICAL_URL = re.compile(r"https://www\.linkedin\.com/in/[a-z0-9%_.\-]+")
UPSTREAM_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
# Search filters and sorts name the upstream's own vocabulary, which the server relays rather than mirrors
# (tests/test_search_tool.py: an unsupported filter field relays the upstream message). Only such 400s may occur.
FILTER_REJECTION = re.compile(r"(?i)\b(filter|operator|sort|sortable)\b|Field '|takes (text|numbers|true|ISO)")

# Numbers the schema leaves unbounded: drawn from the whole float range, extremes included
# (test_a_max_credits_of_any_magnitude_gets_a_clear_answer covers -1e26 and beyond explicitly).
NUMBER_BOUNDS: dict[str, tuple[float, float]] = {"max_credits": (-1e300, 1e300)}

Json = None | bool | int | float | str | list["Json"] | dict[str, "Json"]


# The endpoints that take identifiers, whatever the revision (the overview's enrich took work emails too).
IDENTIFIER_ENDPOINTS = ("enrich", "contact", "live")


@pytest.fixture(scope="module")
def fuzz_sandbox(revision: str) -> Iterator[SandboxServer]:
    """Unlimited balance, no rate limits: whatever the upstream answers is about the request, not the account."""
    with SandboxServer(
        SandboxConfig(revision=cast(Any, revision), people=300, companies=30, **NO_RATE_LIMITS)
    ) as server:
        yield server


@pytest.fixture(scope="module")
def schemas(fuzz_sandbox: SandboxServer) -> dict[str, dict[str, Any]]:
    """Each tool's input schema, exactly as a client discovers it."""

    async def discover() -> dict[str, dict[str, Any]]:
        async with Client(build_server(settings_for(fuzz_sandbox.url, "discovery"))) as client:
            return {tool.name: tool.input_schema for tool in (await client.list_tools()).tools}

    return anyio.run(discover)


def generous(url: str, key: str, **overrides: Any) -> Settings:
    return settings_for(
        url,
        key,
        session_budget=1_000_000,
        confirm_above=1_000_000,
        enrich_rpm=100_000,
        search_rpm=100_000,
        **overrides,
    )


# --- strategies from a JSON schema ----------------------------------------------------------------------------------

json_values: st.SearchStrategy[Json] = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)


def _pools(url: str) -> dict[str, st.SearchStrategy[Any]]:
    """Realistic values for the strings the schema types only as `string`, so calls get past validation."""
    probe = Sandbox(url, "pools")
    urls = probe.identifiers("url", 30)
    emails = probe.identifiers("email", 30)
    url_variants = st.sampled_from(urls).flatmap(
        lambda u: st.sampled_from(
            [
                u,
                u + "/",
                u.replace("https://", "http://"),
                u.replace("https://www.", ""),
                u.replace("www.", "de."),
                u.upper().replace("/IN/", "/in/"),
                u + "?trk=public_profile",
                u + "#about",
            ]
        )
    )
    upstream_safe_emails = st.emails().filter(lambda e: UPSTREAM_EMAIL.fullmatch(e) is not None)
    values = st.one_of(
        st.sampled_from(["VP", "Director", "Engineer", "United States", "Berlin", "2020-01-01"]),
        st.integers(0, 10_000),
        st.booleans(),
        st.lists(st.sampled_from(["Sales", "Engineering", "Berlin"]), min_size=1, max_size=3),
    )
    return {
        "professional_network_profile_urls[]": url_variants,
        "business_emails[]": st.one_of(st.sampled_from(emails), upstream_safe_emails),
        "fields[]": st.sampled_from(ALL_PATHS),
        "Filter.field": st.sampled_from(SUPPORTED_FIELDS),
        "Filter.type": st.sampled_from([*SEARCH_OPERATORS, *OPERATOR_ALIASES, "IN", " = "]),
        "Filter.op": st.sampled_from(["and", "or", "AND", "||"]),
        "Filter.value": values,
        "Sort.field": st.sampled_from(SORTABLE_FIELDS),
        "Sort.order": st.sampled_from(["asc", "desc", "DESC"]),
        "field": st.sampled_from([*AUTOCOMPLETE_FIELDS, *SUPPORTED_FIELDS]),
        "query": st.sampled_from(["", "vp", "united", "engineer", "berlin"]),
    }


def from_schema(
    schema: dict[str, Any],
    defs: dict[str, Any],
    pools: dict[str, st.SearchStrategy[Any]],
    where: str = "",
    depth: int = 0,
) -> st.SearchStrategy[Any]:
    """A strategy for values valid against `schema`; `pools` mixes realistic values into named strings."""
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return from_schema(cast(dict[str, Any], defs[name]), defs, pools, name, depth + 1)
    pool = pools.get(where)
    if "enum" in schema:
        return st.sampled_from(cast(list[Any], schema["enum"]))
    kind = schema.get("type")
    if kind is None:  # any JSON at all
        return st.one_of(pool, json_values) if pool is not None else json_values
    if isinstance(kind, list):  # a union of types: each arm, plus the realistic values
        arms = [from_schema({**schema, "type": k}, defs, {}, where, depth) for k in cast(list[str], kind)]
        return st.one_of(pool, *arms) if pool is not None else st.one_of(*arms)
    if kind == "object":
        properties = cast(dict[str, dict[str, Any]], schema.get("properties", {}))
        required = set(cast(list[str], schema.get("required", [])))
        prefix = f"{where}." if where else ""
        strategies: dict[str, st.SearchStrategy[Any]] = {}
        for name, sub in properties.items():
            recursive = sub.get("type") == "array" and "$ref" in cast(dict[str, Any], sub.get("items", {}))
            if recursive and depth >= 3:
                continue  # bound the depth of recursive definitions (filters)
            strategies[name] = from_schema(sub, defs, pools, prefix + name if where else name, depth)
        return st.fixed_dictionaries(
            {k: v for k, v in strategies.items() if k in required},
            optional={k: v for k, v in strategies.items() if k not in required},
        )
    if kind == "array":
        item_schema = cast(dict[str, Any], schema.get("items", {}))
        items = from_schema(item_schema, defs, pools, f"{where}[]", depth) if item_schema else json_values
        return st.lists(items, min_size=int(schema.get("minItems", 0)), max_size=int(schema.get("maxItems", 6)))
    if kind == "string":
        text = st.text(max_size=40)
        return st.one_of(pool, pool, text) if pool is not None else text
    if kind == "integer":
        return st.integers(int(schema.get("minimum", -(2**31))), int(schema.get("maximum", 2**31)))
    if kind == "number":
        low, high = NUMBER_BOUNDS.get(where, (schema.get("minimum"), schema.get("maximum")))
        return st.floats(low, high, allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    raise AssertionError(f"schema construct not covered by the fuzzer: {schema}")


# --- what every answer must be -------------------------------------------------------------------------------------


def check_answer(tool: str, result: CallToolResult, *, max_result_bytes: int = MAX_RESULT_BYTES) -> None:
    """Success within the size cap, or an error that is specific, bounded and not a bare generic failure."""
    message = text_of(result)
    if not result.is_error:
        size = len(json.dumps(result.structured_content, separators=(",", ":"), ensure_ascii=False).encode())
        assert size <= max_result_bytes, f"{tool} result of {size} bytes, above the cap of {max_result_bytes}"
        return
    assert message.strip() and message.strip() != f"{GENERIC_PREFIX} {tool}", message
    assert len(message.encode()) < MAX_MESSAGE_BYTES, f"{len(message.encode())}-byte error message"
    if message.startswith(GENERIC_PREFIX):  # the SDK's argument validation: it must name the argument and the rule
        assert "validation error" in message and "\n" in message, message
    else:
        assert error_code(result), message


def check_upstream_saw_only_valid_requests(
    upstream: Sandbox, relayed_before: int = 0, *results: CallToolResult
) -> None:
    """No look-up the upstream rejected, and only canonical identifiers sent; search 400s only on filters."""
    requests = cast(dict[str, dict[str, int]], upstream.ledger().get("requests", {}))
    for endpoint in IDENTIFIER_ENDPOINTS:
        assert "400" not in requests.get(endpoint, {}), upstream.ledger()["recent"]
        for body in upstream.bodies(endpoint):
            for url in body.get("professional_network_profile_urls", []):
                assert CANONICAL_URL.fullmatch(url), f"sent upstream: {url!r}"
            for email in body.get("business_emails", []):
                assert UPSTREAM_EMAIL.fullmatch(email) and email == email.lower(), f"sent upstream: {email!r}"
    rejected = requests.get("search", {}).get("400", 0) - relayed_before
    relayed = [r for r in results if error_code(r) == "upstream_rejected_request"]
    assert len(relayed) == rejected
    for result in relayed:
        message = text_of(result)
        assert FILTER_REJECTION.search(message) and "'fields'" not in message, message


class Fuzzer:
    """One server and one upstream key per campaign; every call is a new connection, so a new session."""

    _campaigns: ClassVar[dict[tuple[str, str], Fuzzer]] = {}

    def __init__(self, url: str, name: str) -> None:
        self.upstream = Sandbox(url, canary_key(f"fuzz-{name}"))
        self.server = build_server(generous(url, self.upstream.key))

    @classmethod
    def of(cls, url: str, name: str) -> Fuzzer:
        if (url, name) not in cls._campaigns:
            cls._campaigns[(url, name)] = cls(url, name)
        return cls._campaigns[(url, name)]

    async def call(self, tool: str, arguments: dict[str, Any]) -> CallToolResult:
        """One call, checked: a clear answer, only valid requests upstream, books equal to what it billed."""
        billed = self.upstream.billed()
        relayed_before = self.upstream.requests("search").get("400", 0)
        async with Client(self.server, mode="legacy") as client:
            with anyio.fail_after(20):
                result = await client.call_tool(tool, arguments)
                healthy = await client.call_tool("get_budget", {})
                final = await books(client)
        check_answer(tool, result)
        check_upstream_saw_only_valid_requests(self.upstream, relayed_before, result)
        assert healthy.is_error is False, "the connection stopped serving after the call"
        assert final.reserved == 0 and final.unverified == 0
        assert final.spent == self.upstream.billed() - billed, "the books of the call disagree with the ledger"
        return result


FUZZ = settings(
    max_examples=EXAMPLES_PER_TOOL,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize(
    "tool", ["enrich_person_by_url", "enrich_person_by_email", "search_then_enrich", "suggest_filter_values"]
)
@FUZZ
@given(data=st.data())
async def test_arguments_drawn_from_each_published_schema_get_a_clear_answer_and_never_an_upstream_400(
    fuzz_sandbox: SandboxServer, schemas: dict[str, dict[str, Any]], tool: str, data: st.DataObject
) -> None:
    schema = schemas[tool]
    strategy = from_schema(schema, cast(dict[str, Any], schema.get("$defs", {})), _pools_for(fuzz_sandbox.url))
    arguments = cast(dict[str, Any], data.draw(strategy, label="arguments"))
    await Fuzzer.of(fuzz_sandbox.url, tool).call(tool, arguments)


_POOLS: dict[str, dict[str, st.SearchStrategy[Any]]] = {}


def _pools_for(url: str) -> dict[str, st.SearchStrategy[Any]]:
    if url not in _POOLS:
        _POOLS[url] = _pools(url)
    return _POOLS[url]


# --- beyond the schema -------------------------------------------------------------------------------------------

URL = "https://www.linkedin.com/in/"
MEGABYTE = "x" * 1_000_000


def _nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"field": "basic_profile.name", "type": "=", "value": "x"}
    for _ in range(depth):
        node = {"op": "and", "conditions": [node]}
    return node


LEAF = {"field": "basic_profile.name", "type": "(.)", "value": "a"}
JANE = URL + "jane"


def by_url(*urls: Any, **extra: Any) -> tuple[str, dict[str, Any]]:
    return "enrich_person_by_url", {"professional_network_profile_urls": list(urls), **extra}


def by_email(*emails: Any, **extra: Any) -> tuple[str, dict[str, Any]]:
    return "enrich_person_by_email", {"business_emails": list(emails), **extra}


def search(filters: Any, **extra: Any) -> tuple[str, dict[str, Any]]:
    return "search_then_enrich", {"filters": filters, **extra}


HOSTILE: dict[str, tuple[str, dict[str, Any]]] = {
    "urls as a string": ("enrich_person_by_url", {"professional_network_profile_urls": JANE}),
    "urls as numbers": by_url(1, 2.5, True),
    "urls as objects": by_url({"url": JANE}),
    "no identifiers": ("enrich_person_by_url", {}),
    "empty identifier list": by_url(),
    "100k urls": by_url(*[JANE] * 100_000),
    "a 1 MB url": by_url(URL + MEGABYTE),
    "a 1 MB email": by_email(MEGABYTE + "@acme.example"),
    "a 1 MB field name": by_url(JANE, fields=[MEGABYTE]),
    "10k fields": by_url(JANE, fields=["basic_profile"] * 10_000),
    "fields as a string": by_url(JANE, fields="contact"),
    "score out of range": by_email("a@acme.example", min_similarity_score=7),
    "score as text": by_email("a@acme.example", min_similarity_score="high"),
    "max_credits negative": by_url(JANE, max_credits=-1),
    "max_credits 1e308": by_url(JANE, max_credits=1e308),
    "force_fetch as text": by_url(JANE, force_fetch="yes please"),
    "right-to-left override": by_url(URL + "jane\u202eeod"),
    "zero-width joiner": by_url(URL + "ja\u200dne"),
    "homoglyph host": by_url("https://www.l\u0456nkedin.com/in/jane"),
    "fullwidth solidus": by_url("https://www.linkedin.com\uff0fin\uff0fjane"),
    "NFKC netloc": by_url("https://www.linkedin.com\u2100evil.example/in/jane"),
    "credentials": by_url("https://user:pass@www.linkedin.com/in/jane"),
    "backslash credentials": by_url("https://www.linkedin.com\\@evil.example/in/jane"),
    "port": by_url("https://www.linkedin.com:8443/in/jane"),
    "query string and fragment": by_url(JANE + "?redirect=https://evil.example#x"),
    "other host": by_url("https://evil.example/in/jane"),
    "lookalike host": by_url("https://linkedin.com.evil.example/in/jane"),
    "host in the query": by_url("https://evil.example/?u=linkedin.com/in/jane"),
    "percent-encoded host": by_url("https://www.linkedin%2Ecom/in/jane"),
    "double-encoded slug": by_url(URL + "%2561bc"),
    "javascript url": by_url("javascript:alert(1)//www.linkedin.com/in/jane"),
    "file url": by_url("file:///etc/passwd"),
    "file url to the host": by_url("file://www.linkedin.com/in/jane"),
    "data url": by_url("data:text/html,<script>alert(1)</script>"),
    "null byte": by_url(JANE + "\x00.evil"),
    "display name": by_email("Jane Doe <jane@acme.example>"),
    "quoted display name": by_email('"Jane" <jane@acme.example>'),
    "mailto": by_email("mailto:jane@acme.example"),
    "header injection": by_email("jane@acme.example\r\nBcc: all@acme.example"),
    "ip literal": by_email("jane@[127.0.0.1]"),
    "unicode local part": by_email("j\u00f6rg@acme.example"),
    "a url as an email": by_email(JANE),
    "filters as a string": search("title = VP"),
    "filters as a list": search([LEAF]),
    "empty filter": search({}),
    "unknown operator": search({**LEAF, "type": "~="}),
    "a 1 MB operator": search({**LEAF, "type": MEGABYTE}),
    "an operator spelling on text": search({**LEAF, "type": "contains"}),
    "50 levels deep": search(_nested(50)),
    "5000 conditions": search({"op": "or", "conditions": [LEAF] * 5000}),
    "100k values": search({"field": "basic_profile.name", "type": "in", "value": ["a"] * 100_000}),
    "nested value": search({**LEAF, "value": {"$where": "1"}}),
    "a 1 MB filter field": search({**LEAF, "field": MEGABYTE}),
    "limit of a billion": search(LEAF, limit=10**9),
    "limit zero": search(LEAF, limit=0),
    "a 1 MB cursor": search(LEAF, cursor=MEGABYTE),
    "a forged cursor": search(LEAF, cursor="eyJ1IjoiaHR0cDovL2V2aWwuZXhhbXBsZSIsInEiOiJ4In0"),
    "1000 sorts": search(LEAF, sorts=[{"field": "basic_profile.name"}] * 1000),
    "get_budget with junk": ("get_budget", {"session": "someone-else", "limit": 10**9}),
    "suggest for a 1 MB field": ("suggest_filter_values", {"field": MEGABYTE}),
    "suggest with a 1 MB query": ("suggest_filter_values", {"field": "basic_profile.name", "query": MEGABYTE}),
    "suggest a thousand values": ("suggest_filter_values", {"field": "basic_profile.name", "limit": 1000}),
    "suggest for an unknown field": ("suggest_filter_values", {"field": "current_title\u202e"}),
    "suggest for a field the sandbox lacks": ("suggest_filter_values", {"field": "open_to_cards"}),
}
HOSTILE_CALLS = len(HOSTILE)


@pytest.mark.anyio
@pytest.mark.parametrize(("tool", "arguments"), list(HOSTILE.values()), ids=list(HOSTILE))
async def test_hostile_arguments_get_a_clear_bounded_answer_and_nothing_invalid_goes_upstream(
    fuzz_sandbox: SandboxServer, tool: str, arguments: dict[str, Any]
) -> None:
    await Fuzzer.of(fuzz_sandbox.url, "hostile").call(tool, arguments)


# --- bounds on the work one call can cause ------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("filters", "served"),
    [
        pytest.param(_nested(5), True, id="6 levels served"),
        pytest.param(_nested(6), False, id="7 levels refused"),
        pytest.param({"op": "or", "conditions": [LEAF] * 100}, True, id="100 conditions served"),
        pytest.param({"op": "or", "conditions": [LEAF] * 101}, False, id="101 conditions refused"),
        pytest.param({"field": "basic_profile.name", "type": "in", "value": ["a"] * 500}, True, id="500 values served"),
        pytest.param({"field": "basic_profile.name", "type": "in", "value": ["a"] * 501}, False, id="501 refused"),
    ],
)
async def test_filter_depth_and_size_are_bounded_exactly_at_the_published_limits(
    fuzz_sandbox: SandboxServer, filters: dict[str, Any], served: bool
) -> None:
    upstream = Sandbox(fuzz_sandbox.url, canary_key("bounds"))
    async with Client(build_server(generous(fuzz_sandbox.url, upstream.key)), mode="legacy") as client:
        result = await client.call_tool("search_then_enrich", {"filters": filters, "limit": 1})
    assert result.is_error is not served, text_of(result)
    # One search when served (no one is named "x": today's API is then asked, free, to explain why).
    searched = [body for body in upstream.bodies("search") if not body.get("explain")]
    assert len(searched) == (1 if served else 0)
    if not served:
        assert error_code(result) == "invalid_input", text_of(result)


@pytest.mark.anyio
async def test_limits_bound_one_call_to_100_results_60_fields_and_5_sorts(fuzz_sandbox: SandboxServer) -> None:
    upstream = Sandbox(fuzz_sandbox.url, canary_key("limits"))
    everyone = {"field": "crustdata_person_id", "type": ">", "value": 0}
    sorts = [{"field": f} for f in SORTABLE_FIELDS]
    async with Client(build_server(generous(fuzz_sandbox.url, upstream.key)), mode="legacy") as client:
        over_limit = await client.call_tool("search_then_enrich", {"filters": everyone, "limit": 101})
        too_many_fields = await client.call_tool(
            "search_then_enrich", {"filters": everyone, "fields": list(ALL_PATHS[:61])}
        )
        too_many_sorts = await client.call_tool("search_then_enrich", {"filters": everyone, "sorts": sorts[:6]})
        at_limit = await client.call_tool("search_then_enrich", {"filters": everyone, "limit": 100})
    assert over_limit.is_error and "limit" in text_of(over_limit)
    assert too_many_fields.is_error and "At most 60 fields" in text_of(too_many_fields)
    assert too_many_sorts.is_error and "At most 5 sort keys" in text_of(too_many_sorts)
    assert at_limit.is_error is False and len(structured(at_limit)["people"]) <= 100
    [sent] = upstream.bodies("search")
    assert sent["limit"] == 100
    assert upstream.total_requests("enrich") == 4  # 100 people in batches of 25, never more per request
    assert all(len(body["professional_network_profile_urls"]) <= 25 for body in upstream.bodies("enrich"))


@pytest.mark.anyio
@pytest.mark.parametrize("cap", [2_000, 8_000, MAX_RESULT_BYTES])
async def test_results_of_the_largest_look_up_stay_under_the_size_cap(fuzz_sandbox: SandboxServer, cap: int) -> None:
    upstream = Sandbox(fuzz_sandbox.url, canary_key("size"))
    urls = upstream.identifiers("url", 25, offset=100)
    arguments = {"professional_network_profile_urls": urls, "fields": ["experience", "education", "skills", "contact"]}
    async with Client(build_server(generous(fuzz_sandbox.url, upstream.key, max_result_bytes=cap))) as client:
        result = await client.call_tool("enrich_person_by_url", arguments)
    assert result.is_error is False, text_of(result)
    check_answer("enrich_person_by_url", result, max_result_bytes=cap)
    assert "trimmed" in structured(result)["truncated"]


@pytest.mark.anyio
async def test_a_result_stays_under_the_size_cap_even_when_it_echoes_many_long_rejected_identifiers(
    fuzz_sandbox: SandboxServer,
) -> None:
    upstream = Sandbox(fuzz_sandbox.url, canary_key("echo"))
    rejected = ["\x01" * 400 + str(i) for i in range(24)]  # each one a control-character string, \u0001-escaped in JSON
    arguments = {"professional_network_profile_urls": upstream.identifiers("url", 1) + rejected}
    async with Client(build_server(generous(fuzz_sandbox.url, upstream.key))) as client:
        result = await client.call_tool("enrich_person_by_url", arguments)
    assert result.is_error is False and len(structured(result)["problems"]) == 24
    check_answer("enrich_person_by_url", result)


@pytest.mark.anyio
@pytest.mark.parametrize("tool", ["enrich_person_by_url", "search_then_enrich"])
async def test_a_max_credits_of_any_magnitude_gets_a_clear_answer(fuzz_sandbox: SandboxServer, tool: str) -> None:
    upstream = Sandbox(fuzz_sandbox.url, canary_key("ceiling"))
    arguments = by_url(JANE)[1] if tool == "enrich_person_by_url" else search(LEAF)[1]
    async with Client(build_server(generous(fuzz_sandbox.url, upstream.key)), mode="legacy") as client:
        result = await client.call_tool(tool, {**arguments, "max_credits": -1e26})
    upstream.assert_nothing_billable_sent()
    assert result.is_error and error_code(result) == "max_credits_exceeded", text_of(result)


@pytest.mark.anyio
async def test_a_megabyte_filter_value_is_refused_before_it_is_sent(fuzz_sandbox: SandboxServer) -> None:
    upstream = Sandbox(fuzz_sandbox.url, canary_key("huge-value"))
    async with Client(build_server(generous(fuzz_sandbox.url, upstream.key)), mode="legacy") as client:
        result = await client.call_tool("search_then_enrich", {"filters": {**LEAF, "value": MEGABYTE}})
    assert upstream.total_requests("search") == 0, "a 1 MB filter value was sent upstream"
    assert result.is_error and error_code(result) == "invalid_input"


@pytest.mark.anyio
async def test_an_address_accepted_locally_never_fails_the_upstream_batch(
    fuzz_sandbox: SandboxServer, revision: str
) -> None:
    upstream = Sandbox(fuzz_sandbox.url, canary_key("email"))
    valid = upstream.identifiers("email", 2)
    arguments = {"business_emails": [*valid, "o'brien@northwind-labs.example"]}
    async with Client(build_server(generous(fuzz_sandbox.url, upstream.key)), mode="legacy") as client:
        result = await client.call_tool("enrich_person_by_email", arguments)
    assert all("400" not in upstream.requests(endpoint) for endpoint in IDENTIFIER_ENDPOINTS), text_of(result)
    assert upstream.bodies("contact" if revision == "current" else "enrich"), "the addresses never went upstream"
    assert result.is_error is False and structured(result)["people"]


def test_the_fuzzer_understands_every_construct_of_every_published_schema(
    schemas: dict[str, dict[str, Any]], fuzz_sandbox: SandboxServer
) -> None:
    for schema in schemas.values():
        strategy = from_schema(schema, cast(dict[str, Any], schema.get("$defs", {})), _pools_for(fuzz_sandbox.url))
        assert isinstance(strategy, st.SearchStrategy)
    assert schemas["get_budget"].get("properties") == {}  # no arguments: only the hostile junk case applies
    assert set(schemas) == {
        "enrich_person_by_url",
        "enrich_person_by_email",
        "search_then_enrich",
        "suggest_filter_values",
        "get_budget",
    }
    assert HOSTILE_CALLS == 64
