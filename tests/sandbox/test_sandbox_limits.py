"""Rate limits on an injected clock (no sleeping), and credit balances."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx2
import pytest

from person_enrich_mcp.sandbox import SandboxServer
from person_enrich_mcp.sandbox.endpoints import REVISIONS, Revision
from tests.sandbox.sandbox_helpers import (
    Configure,
    FakeClock,
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


SEARCH = {"filters": {"field": "basic_profile.location.continent", "type": "=", "value": "Europe"}, "limit": 1}


def _rate(response: httpx2.Response) -> tuple[str, str, str]:
    h = response.headers
    return h["x-ratelimit-limit"], h["x-ratelimit-remaining"], h["x-ratelimit-reset"]


def _search(http: httpx2.Client, key: str) -> httpx2.Response:
    return http.post("/person/search", json=SEARCH, headers=headers_for(key))


def test_headers_count_down_then_429_until_the_window_slides(configure: Configure, small_clock: FakeClock) -> None:
    clock = small_clock
    server = configure(search_rpm=3, rate_window=60.0)
    with http_client(server.url) as http:
        first = _search(http, "rl-key")
        clock.advance(10)
        second = _search(http, "rl-key")
        clock.advance(10.5)
        third = _search(http, "rl-key")
        refused = _search(http, "rl-key")
        assert [_rate(r) for r in (first, second, third)] == [("3", "2", "60"), ("3", "1", "50"), ("3", "0", "40")]
        assert refused.status_code == 429
        assert _rate(refused) == ("3", "0", "40")
        error = refused.json()["error"]
        assert error["type"] == "rate_limit_exceeded"
        assert "retry in 40 s" in error["message"]
        assert error["metadata"]["retry_after_seconds"] == 40
        assert refused.headers["x-credits-used"] == "0"
        assert "retry-after" not in refused.headers

        clock.advance(39.4)  # 59.9 s after the first request: still inside the window
        assert _search(http, "rl-key").status_code == 429
        clock.advance(0.1)  # the first request leaves the window
        freed = _search(http, "rl-key")
        assert freed.status_code == 200
        assert _rate(freed) == ("3", "0", "10")
        assert _search(http, "rl-key").status_code == 429
    entry = ledger_entry(server.url, "rl-key")
    assert entry["requests"] == {"search": {"200": 4, "429": 3}}
    assert entry["credits_billed"] == "0.12"


def test_refused_requests_do_not_extend_the_window(configure: Configure, small_clock: FakeClock) -> None:
    clock = small_clock
    server = configure(enrich_rpm=1)
    with http_client(server.url, "refused-key") as http:
        body = {"professional_network_profile_urls": sample(http, "url", 1)}
        assert http.post("/person/enrich", json=body).status_code == 200
        for _ in range(5):
            clock.advance(11)
            assert http.post("/person/enrich", json=body).status_code == 429
        clock.advance(5)  # 60 s after the only accepted request
        assert http.post("/person/enrich", json=body).status_code == 200


def test_limits_are_per_key_and_per_endpoint(configure: Configure) -> None:
    server = configure(enrich_rpm=1, search_rpm=1)
    with http_client(server.url) as http:
        urls = sample(http, "url", 1)
        enrich = {"professional_network_profile_urls": urls}
        assert http.post("/person/enrich", json=enrich, headers=headers_for("k-a")).status_code == 200
        assert http.post("/person/enrich", json=enrich, headers=headers_for("k-a")).status_code == 429
        # Same key, other endpoint; other key, same endpoint: both still have capacity.
        search = _search(http, "k-a")
        assert search.status_code == 200
        assert _rate(search) == ("1", "0", "60")
        assert http.post("/person/enrich", json=enrich, headers=headers_for("k-b")).status_code == 200


def test_invalid_requests_still_count_against_the_limit(configure: Configure) -> None:
    server = configure(search_rpm=2)
    with http_client(server.url, "bad-then-good") as http:
        assert http.post("/person/search", json={"filters": {"op": "and", "conditions": []}}).status_code == 400
        assert http.post("/person/search", json=SEARCH).status_code == 200
        assert http.post("/person/search", json=SEARCH).status_code == 429


def test_retry_after_is_sent_when_configured(configure: Configure, small_clock: FakeClock) -> None:
    clock = small_clock
    server = configure(search_rpm=1, send_retry_after=True)
    with http_client(server.url) as http:
        _search(http, "ra-key")
        clock.advance(15.2)
        refused = _search(http, "ra-key")
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "45"
    assert refused.headers["x-ratelimit-reset"] == "45"


def test_rate_limits_can_be_disabled_and_changed_at_run_time(configure: Configure) -> None:
    server = configure(search_rpm=1)
    with http_client(server.url) as http:
        assert _search(http, "toggle").status_code == 200
        assert _search(http, "toggle").status_code == 429
        assert http.post("/_sandbox/config", json={"rate_limits_enabled": False}).status_code == 200
        unlimited = [_search(http, "toggle") for _ in range(5)]
        assert all(r.status_code == 200 for r in unlimited)
        assert _rate(unlimited[-1]) == ("1", "1", "0")
        config = http.post("/_sandbox/config", json={"rate_limits_enabled": True, "search_rpm": 3})
        assert config.json()["search_rpm"] == 3
        # One request is in the window; the new limit leaves room for two more.
        assert [_search(http, "toggle").status_code for _ in range(3)] == [200, 200, 429]


def test_rate_limits_can_be_disabled_at_start(make_server: ServerFactory) -> None:
    server = make_server(search_rpm=1, rate_limits_enabled=False)
    with http_client(server.url) as http:
        assert [_search(http, "never-limited").status_code for _ in range(4)] == [200] * 4


def _enrich(http: httpx2.Client, urls: list[str], key: str, **extra: Any) -> httpx2.Response:
    body = {"professional_network_profile_urls": urls, **extra}
    return http.post("/person/enrich", json=body, headers=headers_for(key))


def test_insufficient_balance_is_a_402_and_bills_nothing(make_server: ServerFactory) -> None:
    server = make_server(balance=Decimal("3"))
    with http_client(server.url) as http:
        urls = sample(http, "url", 2)
        assert _enrich(http, urls, "poor").headers["x-credits-used"] == "2"
        refused = _enrich(http, urls, "poor")
        assert refused.status_code == 402
        assert refused.json() == {
            "error": {
                "type": "insufficient_credits",
                "message": "Insufficient credits: this request needs 2, 1 remaining.",
                "metadata": {"required": "2", "remaining": "1"},
            }
        }
        assert refused.headers["x-credits-used"] == "0"
        # A request that costs nothing (no match) still goes through; one that fits the balance too.
        assert _enrich(http, ["https://www.linkedin.com/in/nobody-poor"], "poor").status_code == 200
        assert _enrich(http, urls[:1], "poor").status_code == 200
        assert _enrich(http, urls[:1], "poor").status_code == 402
    entry = ledger_entry(server.url, "poor")
    assert entry["credits_billed"] == "3.00"
    assert entry["balance"] == "0.00"
    assert entry["requests"]["enrich"] == {"200": 3, "402": 2}


def test_balance_endpoint_sets_one_keys_balance(small: SandboxServer) -> None:
    server = small
    with http_client(server.url) as http:
        set_ten = http.post("/_sandbox/balance", json={"credits": "0.05"}, headers=headers_for("bal"))
        assert set_ten.status_code == 200
        assert set_ten.json()["balance"] == "0.05"
        assert ledger_entry(server.url, "other-key")["balance"] is None
        two = http.post("/person/search", json={**SEARCH, "limit": 2}, headers=headers_for("bal"))
        assert two.status_code == 402
        assert "needs 0.06, 0.05 remaining" in two.json()["error"]["message"]
        one = http.post("/person/search", json=SEARCH, headers=headers_for("bal"))
        assert one.status_code == 200
        assert ledger_entry(server.url, "bal")["balance"] == "0.02"
        unlimited = http.post("/_sandbox/balance", json={"credits": None}, headers=headers_for("bal"))
        assert unlimited.json()["balance"] is None
        assert http.post("/person/search", json={**SEARCH, "limit": 2}, headers=headers_for("bal")).status_code == 200


def test_balance_endpoint_validates_its_input(small: SandboxServer) -> None:
    server = small
    with http_client(server.url) as http:
        assert http.post("/_sandbox/balance", json={"credits": "5"}).status_code == 401
        for bad in ({"credits": 1.5}, {"credits": "-1"}, {"credits": "lots"}, {"amount": "5"}, {}):
            response = http.post("/_sandbox/balance", json=bad, headers=headers_for("val"))
            assert response.status_code == 400, bad
            assert response.json()["error"]["type"] == "invalid_request"
        assert (
            http.post("/_sandbox/balance", json={"credits": 12}, headers=headers_for("val")).json()["balance"]
            == "12.00"
        )
