"""Traces: one tool call is one span tree from the MCP request to the upstream's bill, with no person data in it.

In-process tests install an SDK tracer provider with an in-memory exporter (global for the session, gated so only
the capturing test records) and build the server with tracing asked for, as the OTEL_* variables would. The
subprocess test runs the real command with the real OTLP exporter against a local receiver.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import anyio
import httpx2
import pytest
from mcp import Client

from person_enrich_mcp.server import build_server
from person_enrich_mcp.settings import load_settings, standard_settings
from person_enrich_mcp.tracing import NO_TRACING, clean
from tests.conftest import CANARY_MARKER, Upstream, sample_identifiers, settings_for, text_of
from tests.http_helpers import HttpServer, modern_call, modern_headers, rpc_result, write_tokens
from tests.otel_helpers import OtlpReceiver, SeenSpan, ancestors, by_name, captured_spans

ENGINEERS = {
    "op": "and",
    "conditions": [
        {"field": "basic_profile.location.country", "type": "=", "value": "United States"},
        {"field": "experience.employment_details.current.function_category", "type": "=", "value": "Engineering"},
    ],
}
FIELDS = ["basic_profile.name", "basic_profile.headline", "contact.business_emails"]
TRACED = {"otel_traces_exporters": ("otlp",)}


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in cast(dict[str, Any], value).values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in cast(list[Any], value):
            yield from _strings(item)


def person_canaries(result: dict[str, Any]) -> set[str]:
    """Every string the people of a result carry (names, headlines, emails, profile URLs and their slugs)."""
    found: set[str] = set()
    for person in result["people"]:
        found.add(person["matched_on"])
        found.add(person["matched_on"].rstrip("/").rsplit("/", 1)[-1])
        found.update(s for s in _strings(person["person_data"]) if len(s) >= 4)
    return found


def leaks(spans: list[SeenSpan], canaries: set[str]) -> list[tuple[str, str]]:
    """(span, canary) for every canary found in any text of any span."""
    return [(s.name, c) for s in spans for text in s.texts() for c in canaries if c.lower() in text.lower()]


@pytest.mark.anyio
@pytest.mark.parametrize("revision", ["current"], indirect=True)
async def test_one_search_then_enrich_call_is_one_span_tree_with_credits_on_the_upstream_spans_and_no_person_data(
    upstream: Upstream,
) -> None:
    with captured_spans() as spans:
        async with Client(build_server(settings_for(upstream.url, upstream.key, **TRACED))) as client:
            result = await client.call_tool("search_then_enrich", {"filters": ENGINEERS, "limit": 3, "fields": FIELDS})
    assert result.is_error is False, text_of(result)
    found = cast(dict[str, Any], result.structured_content)

    [root] = by_name(spans, "tools/call search_then_enrich")
    assert root.kind == "SERVER" and root.attributes["gen_ai.operation.name"] == "execute_tool"
    assert root.attributes["gen_ai.tool.name"] == "search_then_enrich"
    tree = [s for s in spans if s.trace_id == root.trace_id and root in ancestors(s, spans)]
    # Everything the server did for the call hangs under its server span, in one trace.
    ours = [s for s in spans if s.name.startswith(("person_enrich.", "GET /", "POST /"))]
    assert ours and all(s in tree for s in ours)

    [search] = by_name(tree, "POST /person/search")
    [enrich] = by_name(tree, "POST /person/enrich")
    [contact] = by_name(tree, "POST /person/contact/enrich")
    for request, endpoint in ((search, "search"), (enrich, "enrich"), (contact, "contact")):
        assert request.kind == "CLIENT" and request.attributes["person_enrich.endpoint"] == endpoint
        assert request.attributes["http.response.status_code"] == 200
        assert request.attributes["person_enrich.rate_limit_wait_seconds"] >= 0
    assert enrich.attributes["person_enrich.identifiers"] == 3 and contact.attributes["person_enrich.identifiers"] == 3
    # The credits on the upstream spans are the upstream's bill, request by request.
    billed = {e: sum(Decimal(str(r["credits"])) for r in upstream.paid_requests() if r["endpoint"] == e) for e in
              ("search", "enrich", "contact")}  # fmt: skip
    assert {
        "search": Decimal(str(search.attributes["person_enrich.credits"])),
        "enrich": Decimal(str(enrich.attributes["person_enrich.credits"])),
        "contact": Decimal(str(contact.attributes["person_enrich.credits"])),
    } == billed
    # The enrich steps run inside the fetch, the fetch and the search inside the call.
    [fetch] = by_name(tree, "person_enrich.fetch")
    assert fetch in ancestors(enrich, spans) and fetch in ancestors(contact, spans)
    assert fetch not in ancestors(search, spans)
    [reserve] = by_name(tree, "person_enrich.reserve")
    [settle] = by_name(tree, "person_enrich.settle")
    assert reserve.attributes["person_enrich.granted"] is True
    assert Decimal(str(settle.attributes["person_enrich.charged"])) == Decimal(found["receipt"]["charged"])
    assert Decimal(found["receipt"]["charged"]) == upstream.billed() == sum(billed.values())
    assert by_name(tree, "person_enrich.quote") and by_name(tree, "person_enrich.plan")
    [plan] = [p for p in by_name(tree, "person_enrich.plan") if p.attributes["person_enrich.identifiers"] == 3]
    assert plan.attributes["person_enrich.cache_hits"] == 0 and plan.attributes["person_enrich.to_fetch"] == 3

    canaries = person_canaries(found)
    assert any("@" in c for c in canaries) and len(canaries) >= 9  # names, headlines, emails and URLs were returned
    assert leaks(spans, canaries | {CANARY_MARKER, upstream.key}) == []


@pytest.mark.anyio
@pytest.mark.parametrize("revision", ["current"], indirect=True)
async def test_a_repeat_served_from_the_cache_shows_its_hits_and_sends_nothing(upstream: Upstream) -> None:
    urls = sample_identifiers(upstream.url, "url", 2)
    async with Client(build_server(settings_for(upstream.url, upstream.key, **TRACED))) as client:
        await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": urls})
        with captured_spans() as spans:
            again = await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": urls})
    assert again.is_error is False, text_of(again)
    plans = by_name(spans, "person_enrich.plan")  # the confirmation step's and the call's
    assert plans and all(p.attributes["person_enrich.cache_hits"] == 2 for p in plans)
    assert all(p.attributes["person_enrich.to_fetch"] == 0 for p in plans)
    assert not [s for s in spans if s.name.startswith("POST /")]


@pytest.mark.anyio
@pytest.mark.parametrize("revision", ["current"], indirect=True)
async def test_a_refused_reservation_is_a_failed_span_naming_the_limit(upstream: Upstream) -> None:
    urls = sample_identifiers(upstream.url, "url", 3)
    settings = settings_for(upstream.url, upstream.key, session_budget=Decimal(1), **TRACED)
    with captured_spans() as spans:
        async with Client(build_server(settings)) as client:
            refused = await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": urls})
    assert refused.is_error is True
    [reserve] = by_name(spans, "person_enrich.reserve")
    assert reserve.attributes["person_enrich.granted"] is False
    assert reserve.attributes["person_enrich.reason"] == "session"
    assert reserve.attributes["error.type"] == "budget_exceeded" and reserve.status.startswith("ERROR")
    [root] = by_name(spans, "tools/call enrich_person_by_url")
    assert root.attributes["error.type"] == "tool_error"
    upstream.assert_nothing_billable_sent()


@pytest.mark.anyio
@pytest.mark.parametrize("revision", ["current"], indirect=True)
async def test_a_trace_context_the_client_sends_in_meta_is_continued(upstream: Upstream) -> None:
    url = sample_identifiers(upstream.url, "url", 1)
    trace_id, parent = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"  # no span of this process
    async with Client(build_server(settings_for(upstream.url, upstream.key, **TRACED))) as client:
        with captured_spans() as spans:
            await client.call_tool(
                "enrich_person_by_url",
                {"professional_network_profile_urls": url},
                meta={"traceparent": f"00-{trace_id}-{parent}-01"},
            )
            without = await client.call_tool("get_budget", {})
    assert without.is_error is False
    [root] = by_name(spans, "tools/call enrich_person_by_url")
    assert root.trace_id == trace_id and root.parent_id == parent
    assert all(s.trace_id == trace_id for s in spans if s.name.startswith(("person_enrich.", "POST /")))
    [budget] = by_name(spans, "tools/call get_budget")  # a call without one starts its own trace
    assert budget.parent_id is None and budget.trace_id != trace_id


@pytest.mark.anyio
async def test_without_otel_variables_the_server_records_no_span_at_all(upstream: Upstream) -> None:
    server = build_server(settings_for(upstream.url, upstream.key))
    assert not [m for m in server.middleware if type(m).__name__ == "OpenTelemetryMiddleware"]
    url = sample_identifiers(upstream.url, "url", 1)
    with captured_spans() as spans:
        async with Client(server) as client:
            result = await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": url})
    assert result.is_error is False, text_of(result)
    # Only the client's own span: nothing from the server, neither the SDK's request span nor ours.
    assert {s.name for s in spans} <= {"MCP send initialize", "MCP send tools/call enrich_person_by_url"}


def test_the_standard_variables_decide_whether_and_where_spans_go() -> None:
    assert standard_settings({})["otel_traces_exporters"] == ()
    assert standard_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})["otel_traces_exporters"] == ("otlp",)
    assert standard_settings({"OTEL_TRACES_EXPORTER": "console,otlp"})["otel_traces_exporters"] == ("console", "otlp")
    assert (
        standard_settings({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})[
            "otel_traces_exporters"
        ]
        == ()
    )
    off = {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}
    assert standard_settings(off)["otel_traces_exporters"] == ()
    grpc = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    assert load_settings({}, grpc).otel_protocol == "grpc" and load_settings({}, grpc).tracing is True
    assert load_settings({}, {}).tracing is False


def test_span_attributes_hold_text_only_under_the_known_keys() -> None:
    kept = clean({"endpoint": "enrich", "credits": Decimal("1.03"), "identifiers": 3, "url.path": "/person/enrich"})
    assert kept == {
        "person_enrich.endpoint": "enrich",
        "person_enrich.credits": 1.03,
        "person_enrich.identifiers": 3,
        "url.path": "/person/enrich",
    }
    assert clean({"name": "Maya Sato", "email": "maya@example.com", "none": None}) == {}
    with NO_TRACING.span("anything", person="Maya Sato") as span:  # off: nothing is even looked at
        span.set(email="maya@example.com")


# --- the real command, the real exporter --------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    running = OtlpReceiver()
    yield running
    running.close()


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize("revision", ["current"], indirect=True)
async def test_over_http_a_trace_context_in_meta_is_continued_and_exported_over_otlp_with_json_logs(
    upstream: Upstream, receiver: OtlpReceiver, tmp_path: Path
) -> None:
    tokens = write_tokens(tmp_path / "tokens", "alice")
    env = {
        "CRUSTDATA_API_KEY": upstream.key,
        "PERSON_ENRICH_API_BASE_URL": upstream.url,
        "PERSON_ENRICH_TOKENS_FILE": str(tmp_path / "tokens"),
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "50",  # ms: the batch processor exports soon after a span ends
    }
    server = HttpServer(env, "--log-format", "json", "-vv", log=tmp_path / "server.log")
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    urls = sample_identifiers(upstream.url, "url", 2)
    try:
        arguments = {
            "professional_network_profile_urls": urls,
            "fields": ["basic_profile.name", "contact.business_emails"],
        }
        call = modern_call("tools/call", {"name": "enrich_person_by_url", "arguments": arguments})
        call["params"]["_meta"]["traceparent"] = f"00-{trace_id}-{parent}-01"
        with anyio.fail_after(60):
            async with httpx2.AsyncClient(timeout=60) as http:
                answer = await http.post(
                    server.url, json=call, headers=modern_headers("tools/call", tokens["alice"], "enrich_person_by_url")
                )
        result = rpc_result(answer)["result"]
        spans = receiver.wait_for(lambda seen: any(s.name == "person_enrich.settle" for s in seen))
        spans = receiver.wait_for(lambda seen: any(s.name.startswith("tools/call") for s in seen))
    finally:
        server.stop()
    assert result.get("isError") is not True, result

    [root] = by_name(spans, "tools/call enrich_person_by_url")
    assert root.trace_id == trace_id and root.parent_id == parent  # the client's context, continued
    served = [s for s in spans if s.trace_id == trace_id]
    assert {"person_enrich.plan", "person_enrich.reserve", "POST /person/enrich", "POST /person/contact/enrich",
            "person_enrich.settle"} <= {s.name for s in served}  # fmt: skip
    [enrich] = by_name(served, "POST /person/enrich")
    assert enrich.attributes["person_enrich.credits"] == 2.0 and enrich.attributes["person_enrich.identifiers"] == 2
    assert receiver.resources[0]["service.name"] == "person-enrich-mcp"
    canaries = person_canaries(cast(dict[str, Any], result["structuredContent"]))
    assert leaks(spans, canaries | {CANARY_MARKER, upstream.key}) == []

    # JSON logs: every line one object with the four fields; lines written inside a span carry its ids.
    lines = [json.loads(line) for line in server.output().splitlines()]
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    [debug] = [line for line in lines if line["message"].startswith("upstream enrich -> 200")]
    assert debug["trace_id"] == trace_id and debug["span_id"] == enrich.span_id
    logged = server.output().lower()
    assert [c for c in canaries if c.lower() in logged] == []
