"""Fault injection: spec parsing, every fault kind over real HTTP, and what each one bills."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from person_enrich_mcp.sandbox import FaultRule, SandboxServer
from person_enrich_mcp.sandbox.config import FAULT_STATUSES, ConfigError
from person_enrich_mcp.sandbox.endpoints import REVISIONS, Revision
from tests.sandbox.sandbox_helpers import (
    Configure,
    ServerFactory,
    headers_for,
    http_client,
    ledger_entry,
    sample,
)


@pytest.fixture(params=REVISIONS)
def revision(request: pytest.FixtureRequest) -> Revision:
    """Every test here runs against both revisions: the behaviour is shared."""
    return request.param


SEARCH = {"filters": {"field": "basic_profile.location.continent", "type": "=", "value": "Asia"}, "limit": 2}


def _search(http: httpx2.Client, key: str = "fault-key") -> httpx2.Response:
    return http.post("/person/search", json=SEARCH, headers=headers_for(key))


def _wait_until(predicate: Any, what: str, timeout: float = 5.0) -> None:
    # Polls over HTTP (each poll is a real round trip), bounded by a deadline; no sleeping.
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"


# --- spec parsing ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            "kind=status,status=503,rate=0.2,endpoint=enrich",
            FaultRule("status", rate=0.2, endpoint="enrich", status=503),
        ),
        ("kind=timeout,count=1", FaultRule("timeout", count=1)),
        ("kind=reset", FaultRule("reset", count=1)),
        (" kind = latency , ms = 250 , count = 3 ", FaultRule("latency", count=3, ms=250)),
        ("kind=reset,after=1,endpoint=enrich", FaultRule("reset", count=1, after=1, endpoint="enrich")),
        (
            "kind=status,status=403,reason=fields,denied_fields=skills|honors",
            FaultRule("status", status=403, reason="fields", denied_fields=("skills", "honors")),
        ),
        ("kind=truncated,endpoint=search,rate=1", FaultRule("truncated", rate=1.0, endpoint="search")),
    ],
)
def test_fault_specs_parse_into_rules(spec: str, expected: FaultRule) -> None:
    assert FaultRule.from_spec(spec) == expected


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("status=503", "needs kind="),
        ("kind=explode", "fault kind must be one of"),
        ("kind=status", "kind=status needs status="),
        ("kind=status,status=418", "fault status must be one of"),
        ("kind=status,status=abc", "status must be an integer"),
        ("kind=timeout,rate=0.5,count=2", "either rate or count"),
        ("kind=timeout,rate=1.5", "between 0 and 1"),
        ("kind=timeout,count=0", "at least 1"),
        ("kind=timeout,after=-1", "after must be at least 0"),
        ("kind=latency", "kind=latency needs ms="),
        ("kind=timeout,ms=5", "ms only applies to kind=latency"),
        ("kind=reset,endpoint=identify", "fault endpoint must be one of"),
        ("kind=status,status=500,reason=credits", "reason only applies"),
        ("kind=reset,colour=red", "unknown fault rule key"),
        ("kind=reset,kind=timeout", "given twice"),
        ("kind=reset,oops", "expected key=value"),
    ],
)
def test_invalid_fault_specs_raise_clear_errors(spec: str, needle: str) -> None:
    with pytest.raises(ConfigError) as caught:
        FaultRule.from_spec(spec)
    assert needle in str(caught.value)
    assert repr(spec) in str(caught.value)


_rules = st.one_of(
    st.builds(
        FaultRule,
        kind=st.just("status"),
        count=st.integers(1, 1000),
        after=st.integers(0, 5),
        endpoint=st.sampled_from([None, "enrich", "search"]),
        status=st.sampled_from(FAULT_STATUSES),
    ),
    st.builds(
        FaultRule,
        kind=st.sampled_from(["timeout", "malformed", "truncated", "reset"]),
        rate=st.floats(0, 1, allow_nan=False),
    ),
    st.builds(FaultRule, kind=st.just("latency"), ms=st.integers(0, 120_000)),
)


@given(_rules)
def test_rules_survive_a_round_trip_through_spec_and_json(rule: FaultRule) -> None:
    spec = ",".join(
        f"{k}={v!r}" if isinstance(v, float) else f"{k}={v}" for k, v in rule.to_dict().items() if v is not None
    )
    assert FaultRule.from_spec(spec) == rule
    assert FaultRule.from_dict(json.loads(json.dumps(rule.to_dict()))) == rule


# --- status faults ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "status", "body"),
    [
        (
            {"status": 500},
            500,
            {"error": {"type": "internal_error", "message": "Internal server error", "metadata": []}},
        ),
        ({"status": 502}, 502, {"error": {"type": "bad_gateway", "message": "Bad gateway", "metadata": []}}),
        (
            {"status": 503},
            503,
            {"error": {"type": "service_unavailable", "message": "Service temporarily unavailable", "metadata": []}},
        ),
        ({"status": 504}, 504, {"error": {"type": "gateway_timeout", "message": "Gateway timeout", "metadata": []}}),
        ({"status": 401}, 401, {"message": "Invalid API key in request"}),
        ({"status": 404}, 404, {"error": {"type": "not_found", "message": "No data found", "metadata": []}}),
        (
            {"status": 402},
            402,
            {
                "error": {
                    "type": "insufficient_credits",
                    "message": "Insufficient credits",
                    "metadata": {"required": None, "remaining": "0"},
                }
            },
        ),
        (
            {"status": 403, "reason": "credits"},
            403,
            {
                "error": {
                    "type": "permission_error",
                    "message": "Permission denied or insufficient credits",
                    "metadata": [],
                }
            },
        ),
    ],
)
def test_status_faults_answer_with_upstream_envelopes_and_bill_nothing(
    small: SandboxServer, rule: dict[str, Any], status: int, body: dict[str, Any]
) -> None:
    server = small
    with http_client(server.url) as http:
        assert http.post("/_sandbox/faults", json={"kind": "status", **rule}).status_code == 200
        failed = _search(http)
        ok = _search(http)
    assert failed.status_code == status
    assert failed.json() == body
    assert failed.headers["x-credits-used"] == "0"
    assert ok.status_code == 200
    entry = ledger_entry(server.url, "fault-key")
    assert entry["requests"] == {"search": {str(status): 1, "200": 1}}
    assert entry["faults"] == {"status": 1}
    assert entry["credits_billed"] == "0.06"
    assert entry["recent"][0]["fault"] == "status"


def test_an_injected_denied_fields_403_uses_the_revisions_envelope(small: SandboxServer, revision: Revision) -> None:
    with http_client(small.url) as http:
        rule = {"kind": "status", "status": 403, "reason": "fields", "denied_fields": ["skills", "honors"]}
        assert http.post("/_sandbox/faults", json=rule).status_code == 200
        failed = _search(http)
    assert failed.status_code == 403
    if revision == "overview":
        expected = {
            "type": "permission_error",
            "message": "Your plan does not include these fields: skills, honors",
            "metadata": {"denied_fields": ["skills", "honors"]},
        }
    else:  # today's service sends a list of entries in metadata
        expected = {
            "type": "permission_error",
            "message": "Access denied to fields: skills, honors",
            "metadata": [{"denied_fields": ["skills", "honors"]}],
        }
    assert failed.json() == {"error": expected}
    assert ledger_entry(small.url, "fault-key")["credits_billed"] == "0.00"


def test_an_injected_429_carries_the_rate_limit_headers(configure: Configure) -> None:
    server = configure(search_rpm=10, send_retry_after=True)
    with http_client(server.url) as http:
        http.post("/_sandbox/faults", json={"kind": "status", "status": 429})
        refused = _search(http)
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "rate_limit_exceeded"
    assert refused.headers["x-ratelimit-limit"] == "10"
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert int(refused.headers["x-ratelimit-reset"]) >= 1
    assert refused.headers["retry-after"] == refused.headers["x-ratelimit-reset"]


def test_count_rules_fire_for_the_next_n_matching_requests_only(small: SandboxServer) -> None:
    server = small
    with http_client(server.url) as http:
        added = http.post("/_sandbox/faults", json={"kind": "status", "status": 503, "count": 2, "endpoint": "search"})
        assert added.json()["added"][0]["remaining"] == 2
        urls = sample(http, "url", 1)
        enrich = http.post("/person/enrich", json={"professional_network_profile_urls": urls}, headers=headers_for("k"))
        statuses = [_search(http).status_code for _ in range(3)]
        [listed] = http.get("/_sandbox/faults").json()["rules"]
    assert enrich.status_code == 200  # other endpoint: untouched, count not consumed
    assert statuses == [503, 503, 200]
    assert listed["remaining"] == 0 and listed["applied"] == 2


def test_a_rule_with_after_lets_that_many_matching_requests_through_before_it_fires(small: SandboxServer) -> None:
    with http_client(small.url) as http:
        rule = {"kind": "status", "status": 503, "count": 1, "after": 2, "endpoint": "search"}
        assert http.post("/_sandbox/faults", json=rule).json()["added"][0]["after"] == 2
        urls = sample(http, "url", 1)
        enrich = http.post("/person/enrich", json={"professional_network_profile_urls": urls}, headers=headers_for("k"))
        statuses = [_search(http).status_code for _ in range(4)]
        [listed] = http.get("/_sandbox/faults").json()["rules"]
        http.delete("/_sandbox/faults")
    assert enrich.status_code == 200  # another endpoint is not counted
    assert statuses == [200, 200, 503, 200]
    assert listed["remaining"] == 0 and listed["applied"] == 1


def test_rate_rules_draw_from_a_seeded_rng(make_server: ServerFactory) -> None:
    patterns: list[list[int]] = []
    for _ in range(2):
        server = make_server(fault_seed=42, faults=(FaultRule.from_spec("kind=status,status=500,rate=0.5"),))
        with http_client(server.url) as http:
            patterns.append([_search(http).status_code for _ in range(30)])
    assert patterns[0] == patterns[1]
    assert 5 <= patterns[0].count(500) <= 25
    assert set(patterns[0]) == {200, 500}


def test_rate_zero_never_fires_and_rate_one_always_fires(make_server: ServerFactory) -> None:
    server = make_server(faults=(FaultRule("status", rate=0.0, status=500), FaultRule("status", rate=1.0, status=502)))
    with http_client(server.url) as http:
        assert [_search(http).status_code for _ in range(5)] == [502] * 5
        rules = http.get("/_sandbox/faults").json()["rules"]
    assert [(r["applied"], r["remaining"]) for r in rules] == [(0, None), (5, None)]


def test_rate_limited_requests_do_not_consume_fault_counts(configure: Configure) -> None:
    server = configure(search_rpm=1)
    with http_client(server.url) as http:
        assert _search(http).status_code == 200
        http.post("/_sandbox/faults", json={"kind": "status", "status": 503})
        assert _search(http).status_code == 429
        [rule] = http.get("/_sandbox/faults").json()["rules"]
    assert rule["remaining"] == 1


# --- connection-level faults -------------------------------------------------------------------------------


def test_latency_delays_the_answer_and_bills_normally(small: SandboxServer) -> None:
    server = small
    with http_client(server.url) as http:
        http.post("/_sandbox/faults", json={"kind": "latency", "ms": 300})
        started = time.monotonic()
        slow = _search(http)
        slow_elapsed = time.monotonic() - started
        started = time.monotonic()
        fast = _search(http)
        fast_elapsed = time.monotonic() - started
    assert slow.status_code == fast.status_code == 200
    assert slow_elapsed >= 0.3 > fast_elapsed
    entry = ledger_entry(server.url, "fault-key")
    assert entry["credits_billed"] == "0.12"
    assert entry["faults"] == {"latency": 1}


def test_malformed_answers_200_with_headers_but_no_json_and_is_billed(small: SandboxServer) -> None:
    server = small
    with http_client(server.url) as http:
        http.post("/_sandbox/faults", json={"kind": "malformed"})
        broken = _search(http)
    assert broken.status_code == 200
    assert broken.headers["x-credits-used"] == "0.06"
    assert broken.headers["content-type"] == "application/json"
    assert "x-ratelimit-remaining" in broken.headers
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.content)
    entry = ledger_entry(server.url, "fault-key")
    assert entry["credits_billed"] == "0.06"
    assert entry["faults"] == {"malformed": 1}
    assert entry["requests"] == {"search": {"200": 1}}


def test_truncated_answers_cut_the_body_and_are_billed(small: SandboxServer) -> None:
    server = small
    with http_client(server.url) as http:
        http.post("/_sandbox/faults", json={"kind": "truncated", "endpoint": "enrich"})
        urls = sample(http, "url", 3)
        body = {"professional_network_profile_urls": urls}
        with http.stream("POST", "/person/enrich", json=body, headers=headers_for("fault-key")) as response:
            assert response.status_code == 200
            assert response.headers["x-credits-used"] == "3"
            declared = int(response.headers["content-length"])
            received = bytearray()
            with pytest.raises(httpx2.RemoteProtocolError):
                for chunk in response.iter_raw():
                    received.extend(chunk)
        assert 0 < len(received) < declared
        after = http.post("/person/enrich", json=body, headers=headers_for("fault-key"))
    assert after.status_code == 200
    assert len(after.content) == declared  # the lost answer was the full one
    entry = ledger_entry(server.url, "fault-key")
    assert entry["credits_billed"] == "6.00"
    assert entry["faults"] == {"truncated": 1}


def test_reset_closes_the_connection_before_any_answer_and_bills_nothing(small: SandboxServer) -> None:
    server = small
    with http_client(server.url) as http:
        http.post("/_sandbox/faults", json={"kind": "reset"})
        with pytest.raises(httpx2.TransportError):
            _search(http)
        assert _search(http).status_code == 200
    entry = ledger_entry(server.url, "fault-key")
    assert entry["requests"] == {"search": {"reset": 1, "200": 1}}
    assert entry["faults"] == {"reset": 1}
    assert entry["credits_billed"] == "0.06"
    assert entry["recent"][0]["status"] is None


def test_timeout_holds_the_request_until_the_client_gives_up(small: SandboxServer) -> None:
    server = small
    with http_client(server.url) as http:
        http.post("/_sandbox/faults", json={"kind": "timeout", "endpoint": "search"})
        started = time.monotonic()
        with pytest.raises(httpx2.ReadTimeout):
            http.post("/person/search", json=SEARCH, headers=headers_for("fault-key"), timeout=0.4)
        assert time.monotonic() - started >= 0.4
        assert _search(http).status_code == 200
    entry = ledger_entry(server.url, "fault-key")
    assert entry["requests"] == {"search": {"timeout": 1, "200": 1}}
    assert entry["credits_billed"] == "0.06"


def test_stop_is_prompt_while_a_timeout_fault_holds_a_request(make_server: ServerFactory) -> None:
    server: SandboxServer = make_server(faults=(FaultRule("timeout"),))
    outcome: list[BaseException | int] = []

    def held_request() -> None:
        try:
            with http_client(server.url) as http:
                outcome.append(
                    http.post("/person/search", json=SEARCH, headers=headers_for("held"), timeout=8).status_code
                )
        except httpx2.TransportError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=held_request, daemon=True)
    worker.start()
    with http_client(server.url) as admin:
        _wait_until(lambda: admin.get("/_sandbox/faults").json()["rules"][0]["applied"] == 1, "the held request")
    assert len(server.state.hanging) == 1
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2.0
    worker.join(5)
    assert not worker.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], httpx2.TransportError)


# --- run-time management -----------------------------------------------------------------------------------


def test_faults_can_be_added_listed_and_cleared_at_run_time(make_server: ServerFactory) -> None:
    server = make_server(faults=(FaultRule.from_spec("kind=status,status=500,rate=0.0"),))
    with http_client(server.url) as http:
        added = http.post(
            "/_sandbox/faults",
            json={"rules": [{"kind": "reset", "count": 2}, {"kind": "latency", "ms": 5, "endpoint": "enrich"}]},
        ).json()["added"]
        assert [r["id"] for r in added] == [2, 3]
        listed = http.get("/_sandbox/faults").json()["rules"]
        assert listed == [
            {"id": 1, "kind": "status", "rate": 0.0, "count": None, "after": 0, "endpoint": None, "status": 500,
             "reason": None, "ms": None, "denied_fields": None, "remaining": None, "applied": 0},
            {"id": 2, "kind": "reset", "rate": None, "count": 2, "after": 0, "endpoint": None, "status": None,
             "reason": None, "ms": None, "denied_fields": None, "remaining": 2, "applied": 0},
            {"id": 3, "kind": "latency", "rate": None, "count": 1, "after": 0, "endpoint": "enrich", "status": None,
             "reason": None, "ms": 5, "denied_fields": None, "remaining": 1, "applied": 0},
        ]  # fmt: skip
        assert http.delete("/_sandbox/faults").json() == {"cleared": 3}
        assert http.get("/_sandbox/faults").json() == {"rules": []}
        assert _search(http).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "status"},
        {"kind": "teleport"},
        {"rules": {"kind": "reset"}},
        {"rules": [{"kind": "reset"}], "extra": 1},
        {"rules": ["reset"]},
        {"kind": "latency", "ms": "fast"},
    ],
)
def test_invalid_run_time_fault_rules_are_400s_and_add_nothing(small: SandboxServer, body: Any) -> None:
    server = small
    with http_client(server.url) as http:
        response = http.post("/_sandbox/faults", json=body)
        assert response.status_code == 400
        assert response.json()["error"]["type"] == "invalid_request"
        assert http.get("/_sandbox/faults").json() == {"rules": []}
