"""PersonAPI over httpx2.MockTransport (status mapping, retries, headers, body, key secrecy) and the RateLimiter."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import cast

import httpx2
import pytest
from pydantic import SecretStr

from person_enrich_mcp.api import (
    ENRICH,
    SEARCH,
    EnrichEntry,
    PersonAPI,
    RateLimiter,
    RateLimitInfo,
    RetryPolicy,
    map_status,
)
from person_enrich_mcp.api.limiter import WINDOW_GUARD
from person_enrich_mcp.errors import (
    APIConnectionError,
    APIError,
    APIOutcomeUnknownError,
    APIResponseError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    InsufficientCreditsError,
    LocalRateLimitError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    model_message,
)
from person_enrich_mcp.state import MemoryStore

pytestmark = pytest.mark.anyio

CANARY = "sk-test-CANARY-4d1f0c9b7e2a-must-never-appear"
BASE_URL = "https://api.person.test/"
USER_AGENT = "person-enrich-mcp/0.1.0 (+tests)"
URLS = ["https://www.linkedin.com/in/jane-doe", "https://www.linkedin.com/in/john-roe"]
NO_RETRIES = RetryPolicy(max_retries=0, max_rate_limited_retries=0)

Step = Callable[[httpx2.Request], httpx2.Response]

GUARDED_WINDOW = 60.0 * (1 + WINDOW_GUARD)


# --- fakes ---------------------------------------------------------------------------------------------------------


class FakeTime:
    """One fake monotonic clock shared by the store, the limiter and the client."""

    def __init__(self) -> None:
        self.now = 10_000.0

    def clock(self) -> float:
        return self.now


@dataclass
class Sleeper:
    """A fake `sleep` that records each wait and moves the fake clock instead of waiting."""

    time: FakeTime
    waits: list[float] = field(default_factory=list[float])

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.time.now += seconds


@dataclass
class Harness:
    api: PersonAPI
    requests: list[httpx2.Request]
    api_sleeps: Sleeper
    limiter_sleeps: Sleeper
    limiter: RateLimiter
    time: FakeTime

    def body(self, index: int = -1) -> dict[str, object]:
        return cast(dict[str, object], json.loads(self.requests[index].content))


def reply(status: int = 200, body: object = None, headers: dict[str, str] | None = None) -> Step:
    def step(request: httpx2.Request) -> httpx2.Response:
        if isinstance(body, bytes):
            return httpx2.Response(status, content=body, headers=headers)
        return httpx2.Response(status, json=body, headers=headers)

    return step


def fail(error: type[httpx2.TransportError], message: str = "boom") -> Step:
    def step(request: httpx2.Request) -> httpx2.Response:
        raise error(message, request=request)

    return step


def entries(*identifiers: str, matched: bool = True) -> list[dict[str, object]]:
    return [
        {
            "matched_on": i,
            "match_type": "professional_network_profile_url",
            "matches": [{"confidence_score": 1.0, "person_data": {"basic_profile": {"name": i[-8:]}}}]
            if matched
            else [],
        }
        for i in identifiers
    ]


OK = reply(200, entries(*URLS), {"x-credits-used": "2"})


@asynccontextmanager
async def harness(
    steps: Sequence[Step],
    *,
    retry: RetryPolicy | None = None,
    limits: dict[str, int] | None = None,
    limiter_max_wait: float = 600.0,
    base_url: str = BASE_URL,
) -> AsyncGenerator[Harness]:
    """A PersonAPI whose transport plays `steps` in order (the last one repeats)."""
    time = FakeTime()
    api_sleeps = Sleeper(time)
    limiter_sleeps = Sleeper(time)
    requests: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        requests.append(request)
        return steps[min(len(requests), len(steps)) - 1](request)

    limiter = RateLimiter(
        MemoryStore(clock=time.clock),
        limits=limits or {ENRICH: 1000, SEARCH: 1000},
        window_seconds=60.0,
        max_wait=limiter_max_wait,
        bucket_prefix="test",
        clock=time.clock,
        sleep=limiter_sleeps,
    )
    api = PersonAPI(
        base_url=base_url,
        api_key=SecretStr(CANARY),
        limiter=limiter,
        retry=retry or RetryPolicy(),
        timeout=httpx2.Timeout(5.0),
        user_agent=USER_AGENT,
        transport=httpx2.MockTransport(handler),
        sleep=api_sleeps,
    )
    try:
        yield Harness(api, requests, api_sleeps, limiter_sleeps, limiter, time)
    finally:
        await api.aclose()


async def enrich(h: Harness, identifiers: list[str] | None = None) -> list[EnrichEntry]:
    result = await h.api.enrich(
        match_type="professional_network_profile_url", identifiers=identifiers or URLS, fields=["basic_profile"]
    )
    return result.data


def _all_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)


# --- success ---------------------------------------------------------------------------------------------------------


async def test_enrich_parses_entries_credits_request_id_and_rate_limit_headers() -> None:
    headers = {
        "x-credits-used": "2.5",
        "x-request-id": "req-1",
        "x-ratelimit-limit": "15",
        "x-ratelimit-remaining": "14",
        "x-ratelimit-reset": "60",
    }
    async with harness([reply(200, entries(*URLS), headers)]) as h:
        result = await h.api.enrich(
            match_type="professional_network_profile_url", identifiers=URLS, fields=["basic_profile"]
        )

    assert [e.matched_on for e in result.data] == URLS
    assert result.data[0].matches[0].person_data == {"basic_profile": {"name": "jane-doe"}}
    assert result.credits_used == Decimal("2.5")
    assert result.request_id == "req-1"
    assert result.rate_limit == RateLimitInfo(limit=15, remaining=14, reset_seconds=60.0)
    assert len(h.requests) == 1


async def test_a_no_match_is_an_entry_with_empty_matches() -> None:
    async with harness([reply(200, entries(*URLS, matched=False))]) as h:
        data = await enrich(h)

    assert [(e.matched_on, e.matches) for e in data] == [(URLS[0], []), (URLS[1], [])]


async def test_without_a_credits_header_the_credits_are_unknown() -> None:
    async with harness([reply(200, entries(*URLS))]) as h:
        result = await h.api.enrich(match_type="professional_network_profile_url", identifiers=URLS, fields=[])

    assert result.credits_used is None
    assert result.rate_limit is None


@pytest.mark.parametrize("value", ["abc", "-1", "NaN", "Infinity", ""])
async def test_an_unreadable_credits_header_is_treated_as_absent(value: str) -> None:
    async with harness([reply(200, entries(*URLS), {"x-credits-used": value})]) as h:
        result = await h.api.enrich(match_type="professional_network_profile_url", identifiers=URLS, fields=[])

    assert result.credits_used is None


async def test_a_404_on_enrich_reads_as_no_match_for_every_identifier() -> None:
    body = {"error": {"type": "not_found", "message": "No data found"}}
    async with harness([reply(404, body, {"x-request-id": "req-404"})]) as h:
        result = await h.api.enrich(match_type="business_email", identifiers=["a@acme.com", "b@acme.com"], fields=[])

    assert [(e.matched_on, e.match_type, e.matches) for e in result.data] == [
        ("a@acme.com", "business_email", []),
        ("b@acme.com", "business_email", []),
    ]
    assert result.credits_used == Decimal(0)
    assert result.request_id == "req-404"
    assert len(h.requests) == 1


async def test_a_404_on_search_is_an_error() -> None:
    async with harness([reply(404, {"error": {"type": "not_found", "message": "nothing"}})]) as h:
        with pytest.raises(NotFoundError):
            await h.api.search(filters={}, sorts=[], limit=10, cursor=None, fields=[])


async def test_search_parses_one_page() -> None:
    page = {"profiles": [{"basic_profile": {"name": "Jane"}}], "next_cursor": "c2", "total_count": 41}
    async with harness([reply(200, page, {"x-credits-used": "0.03"})]) as h:
        result = await h.api.search(filters={"op": "and", "conditions": []}, sorts=[], limit=1, cursor=None, fields=[])

    assert result.data.profiles == [{"basic_profile": {"name": "Jane"}}]
    assert result.data.next_cursor == "c2"
    assert result.data.total_count == 41
    assert result.credits_used == Decimal("0.03")


# --- status -> exception ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusCase:
    status: int
    body: object
    expected: type[APIStatusError]
    error_type: str | None
    message_part: str
    denied: tuple[str, ...] = ()


STATUS_CASES = {
    "400 nested envelope": StatusCase(
        400,
        {"error": {"type": "invalid_request", "message": "Unsupported field 'current_title'", "metadata": []}},
        BadRequestError,
        "invalid_request",
        "Unsupported field 'current_title'",
    ),
    "400 without a body": StatusCase(400, b"", BadRequestError, None, "HTTP 400"),
    "401 flat body": StatusCase(401, {"message": "Invalid API key in request"}, AuthenticationError, None, "rejected"),
    "402": StatusCase(
        402,
        {"error": {"type": "insufficient_credits", "message": "No credits left", "metadata": {}}},
        InsufficientCreditsError,
        "insufficient_credits",
        "No credits left",
    ),
    "403 insufficient credits message": StatusCase(
        403,
        {"error": {"type": "permission_error", "message": "Permission denied or Insufficient Credits"}},
        InsufficientCreditsError,
        "permission_error",
        "Insufficient Credits",
    ),
    "403 insufficient credits type": StatusCase(
        403,
        {"error": {"type": "insufficient_credits", "message": "Forbidden"}},
        InsufficientCreditsError,
        "insufficient_credits",
        "Forbidden",
    ),
    "403 denied fields": StatusCase(
        403,
        {
            "error": {
                "type": "permission_error",
                "message": "Your plan does not include these fields",
                "metadata": {"denied_fields": ["skills", "honors"]},
            }
        },
        PermissionDeniedError,
        "permission_error",
        "does not include",
        ("skills", "honors"),
    ),
    "403 gated endpoint": StatusCase(
        403,
        {"error": {"type": "permission_error", "message": "Live enrich is not on your plan"}},
        PermissionDeniedError,
        "permission_error",
        "not on your plan",
    ),
    "429": StatusCase(
        429, {"error": {"type": "rate_limited", "message": "Too many requests"}}, RateLimitError, "rate_limited", "Too"
    ),
    "500 nested": StatusCase(
        500, {"error": {"type": "internal_error", "message": "Internal"}}, ServerError, "internal_error", "Internal"
    ),
    "502 html": StatusCase(502, b"<html>Bad Gateway</html>", ServerError, None, "HTTP 502"),
    "503 empty": StatusCase(503, b"", ServerError, None, "HTTP 503"),
    "418 other 4xx": StatusCase(418, {"message": "teapot"}, BadRequestError, None, "teapot"),
}


@pytest.mark.parametrize("case", list(STATUS_CASES.values()), ids=list(STATUS_CASES))
async def test_an_error_status_maps_to_its_exception(case: StatusCase) -> None:
    async with harness([reply(case.status, case.body, {"x-request-id": "req-9"})], retry=NO_RETRIES) as h:
        with pytest.raises(APIStatusError) as caught:
            await enrich(h)

    error = caught.value
    assert type(error) is case.expected
    assert error.status_code == case.status
    assert error.error_type == case.error_type
    assert error.request_id == "req-9"
    assert case.message_part in str(error)
    if isinstance(error, PermissionDeniedError):
        assert error.denied_fields == case.denied
    assert len(h.requests) == 1


@pytest.mark.parametrize("status", [400, 401, 402, 403])
async def test_client_errors_are_never_retried(status: int) -> None:
    async with harness([reply(status, {"error": {"message": "no"}}), OK]) as h:
        with pytest.raises(APIStatusError):
            await enrich(h)

    assert len(h.requests) == 1
    assert h.api_sleeps.waits == []


def test_map_status_reads_a_long_upstream_message_only_up_to_a_bound() -> None:
    error = map_status(400, json.dumps({"error": {"message": "x" * 10_000}}).encode(), None)

    assert isinstance(error, BadRequestError)
    assert len(str(error)) <= 1500


def test_map_status_ignores_a_non_list_denied_fields() -> None:
    body = {"error": {"type": "permission_error", "message": "no", "metadata": {"denied_fields": "skills"}}}

    error = map_status(403, json.dumps(body).encode(), None)

    assert isinstance(error, PermissionDeniedError)
    assert error.denied_fields == ()


def test_map_status_survives_a_body_that_is_not_an_object() -> None:
    error = map_status(500, b'["not", "an", "object"]', "r")

    assert isinstance(error, ServerError)
    assert str(error) == "HTTP 500"


# --- retries ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("failures", [0, 1, 2])
@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_is_retried_with_backoff_then_succeeds(status: int, failures: int) -> None:
    policy = RetryPolicy(max_retries=2, base_delay=0.5, max_delay=8.0)
    async with harness([reply(status, b"")] * failures + [OK], retry=policy) as h:
        data = await enrich(h)

    assert len(data) == 2
    assert len(h.requests) == failures + 1
    assert len(h.api_sleeps.waits) == failures
    for attempt, wait in enumerate(h.api_sleeps.waits, start=1):
        delay = 0.5 * 2 ** (attempt - 1)
        assert delay <= wait <= delay * 1.25


@pytest.mark.parametrize("max_retries", [0, 1, 3])
async def test_5xx_is_tried_at_most_max_retries_plus_one_times(max_retries: int) -> None:
    async with harness([reply(503, b"")], retry=RetryPolicy(max_retries=max_retries)) as h:
        with pytest.raises(ServerError) as caught:
            await enrich(h)

    assert caught.value.status_code == 503
    assert len(h.requests) == max_retries + 1


async def test_backoff_is_capped_at_max_delay() -> None:
    policy = RetryPolicy(max_retries=6, base_delay=1.0, max_delay=4.0)
    async with harness([reply(500, b"")], retry=policy) as h:
        with pytest.raises(ServerError):
            await enrich(h)

    assert len(h.api_sleeps.waits) == 6
    assert all(1.0 <= w <= 5.0 for w in h.api_sleeps.waits)
    assert all(4.0 <= w <= 5.0 for w in h.api_sleeps.waits[2:])


async def test_429_then_success_waits_the_rate_limit_reset() -> None:
    limited = reply(429, {"error": {"message": "slow down"}}, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "12"})
    async with harness([limited, OK]) as h:
        data = await enrich(h)

    assert len(data) == 2
    assert len(h.requests) == 2
    assert len(h.api_sleeps.waits) == 1
    assert 12.0 <= h.api_sleeps.waits[0] <= 12.25
    assert h.limiter_sleeps.waits == []


async def test_429_then_success_honours_retry_after() -> None:
    async with harness([reply(429, b"", {"retry-after": "7"}), OK]) as h:
        await enrich(h)

    assert len(h.requests) == 2
    assert len(h.api_sleeps.waits) == 1
    assert 7.0 <= h.api_sleeps.waits[0] <= 7.25


async def test_retry_after_sets_the_retry_wait_and_the_reset_still_holds_the_endpoint() -> None:
    headers = {"retry-after": "7", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "30"}
    async with harness([reply(429, b"", headers), OK]) as h:
        started = h.time.now
        await enrich(h)

    assert 7.0 <= h.api_sleeps.waits[0] <= 7.25
    assert h.time.now - started >= 30.0
    assert len(h.requests) == 2


async def test_429_without_any_hint_waits_about_a_second() -> None:
    async with harness([reply(429, b""), OK]) as h:
        await enrich(h)

    assert len(h.api_sleeps.waits) == 1
    assert 1.0 <= h.api_sleeps.waits[0] <= 1.25


async def test_429_beyond_max_wait_raises_with_retry_after_and_does_not_wait() -> None:
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "120"}
    async with harness([reply(429, {"error": {"message": "slow"}}, headers), OK], retry=RetryPolicy(max_wait=60)) as h:
        with pytest.raises(RateLimitError) as caught:
            await enrich(h)

    assert caught.value.retry_after is not None
    assert 120.0 <= caught.value.retry_after <= 120.25
    assert len(h.requests) == 1
    assert h.api_sleeps.waits == []


async def test_429_waits_add_up_against_max_wait() -> None:
    headers = {"x-ratelimit-reset": "25"}
    async with harness([reply(429, b"", headers)], retry=RetryPolicy(max_wait=60, max_rate_limited_retries=10)) as h:
        with pytest.raises(RateLimitError):
            await enrich(h)

    assert len(h.requests) == 3
    assert len(h.api_sleeps.waits) == 2
    assert sum(h.api_sleeps.waits) <= 60


async def test_429_is_retried_at_most_max_rate_limited_retries_times() -> None:
    async with harness(
        [reply(429, b"", {"x-ratelimit-reset": "1"})], retry=RetryPolicy(max_rate_limited_retries=3)
    ) as h:
        with pytest.raises(RateLimitError):
            await enrich(h)

    assert len(h.requests) == 4


async def test_after_an_upstream_429_the_next_call_is_held_locally_not_sent() -> None:
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "120"}
    async with harness([reply(429, b"", headers), OK], retry=RetryPolicy(max_wait=60), limiter_max_wait=30) as h:
        with pytest.raises(RateLimitError):
            await enrich(h)
        with pytest.raises(LocalRateLimitError) as caught:
            await enrich(h)

    assert len(h.requests) == 1
    assert caught.value.retry_after == pytest.approx(120.0)


@pytest.mark.parametrize("error", [httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout])
async def test_a_request_that_never_left_is_retried(error: type[httpx2.TransportError]) -> None:
    async with harness([fail(error, "connection refused"), OK]) as h:
        data = await enrich(h)

    assert len(data) == 2
    assert len(h.requests) == 2
    assert len(h.api_sleeps.waits) == 1


async def test_connect_errors_give_up_after_max_retries_plus_one_attempts() -> None:
    async with harness([fail(httpx2.ConnectError)], retry=RetryPolicy(max_retries=2)) as h:
        with pytest.raises(APIConnectionError) as caught:
            await enrich(h)

    assert len(h.requests) == 3
    assert "ConnectError" in str(caught.value)


@pytest.mark.parametrize(
    "error", [httpx2.ReadTimeout, httpx2.RemoteProtocolError, httpx2.ReadError, httpx2.WriteTimeout]
)
async def test_a_request_that_may_have_been_processed_is_never_retried(error: type[httpx2.TransportError]) -> None:
    async with harness([fail(error, "server disconnected"), OK]) as h:
        with pytest.raises(APIOutcomeUnknownError) as caught:
            await enrich(h)

    assert len(h.requests) == 1
    assert h.api_sleeps.waits == []
    assert error.__name__ in str(caught.value)


async def test_malformed_json_on_200_is_not_retried_and_carries_the_credits_used() -> None:
    async with harness([reply(200, b"{not json", {"x-credits-used": "3", "x-request-id": "req-7"}), OK]) as h:
        with pytest.raises(APIResponseError) as caught:
            await enrich(h)

    assert caught.value.credits_used == Decimal(3)
    assert caught.value.request_id == "req-7"
    assert len(h.requests) == 1


@pytest.mark.parametrize("body", [{"results": []}, [{"matched_on": 1}], "text", [{"matches": []}]])
async def test_json_of_the_wrong_shape_on_enrich_carries_the_credits_used(body: object) -> None:
    async with harness([reply(200, body, {"x-credits-used": "1.5"})]) as h:
        with pytest.raises(APIResponseError) as caught:
            await enrich(h)

    assert caught.value.credits_used == Decimal("1.5")
    assert len(h.requests) == 1


async def test_json_of_the_wrong_shape_on_search_carries_the_credits_used() -> None:
    wrong: list[object] = [{"profiles": []}]
    async with harness([reply(200, wrong, {"x-credits-used": "0.3"})]) as h:
        with pytest.raises(APIResponseError) as caught:
            await h.api.search(filters={}, sorts=[], limit=10, cursor=None, fields=[])

    assert caught.value.credits_used == Decimal("0.3")


class _CutOff(httpx2.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'[{"matched_on":'
        raise httpx2.ReadError("connection reset by peer")


async def test_an_answer_cut_off_mid_body_is_not_retried_and_carries_the_credits_used() -> None:
    def cut(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"x-credits-used": "4"}, stream=_CutOff())

    async with harness([cut, OK]) as h:
        with pytest.raises(APIResponseError) as caught:
            await enrich(h)

    assert caught.value.credits_used == Decimal(4)
    assert len(h.requests) == 1


@pytest.mark.parametrize("header", ["x-ratelimit-limit", "x-ratelimit-remaining"])
@pytest.mark.parametrize("value", ["inf", "1e400"])
async def test_a_non_finite_rate_limit_header_does_not_lose_a_billed_answer(header: str, value: str) -> None:
    async with harness([reply(200, entries(*URLS), {header: value, "x-credits-used": "2"})]) as h:
        result = await h.api.enrich(match_type="professional_network_profile_url", identifiers=URLS, fields=[])

    assert result.credits_used == Decimal(2)
    assert len(result.data) == 2


async def test_a_non_finite_reset_header_does_not_hold_the_endpoint_forever() -> None:
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "inf"}
    async with harness([reply(200, entries(*URLS), headers)]) as h:
        await enrich(h)
        h.time.now += 24 * 3600

        data = await enrich(h)

    assert len(data) == 2


# --- the request ------------------------------------------------------------------------------------------------------


async def test_every_request_carries_the_documented_headers() -> None:
    def routed(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/search"):
            return httpx2.Response(200, json={"profiles": []})
        return OK(request)

    async with harness([routed]) as h:
        await enrich(h)
        await h.api.search(filters={}, sorts=[], limit=1, cursor=None, fields=[])

    for request in h.requests:
        assert request.method == "POST"
        assert request.headers["authorization"] == f"Bearer {CANARY}"
        assert request.headers["x-api-version"] == "2025-11-01"
        assert request.headers["content-type"] == "application/json"
        assert request.headers["user-agent"] == USER_AGENT
    assert [r.url.path for r in h.requests] == ["/person/enrich", "/person/search"]


async def test_retries_carry_the_same_headers_and_body() -> None:
    async with harness([reply(503, b""), fail(httpx2.ConnectError), OK]) as h:
        await enrich(h)

    assert len(h.requests) == 3
    assert len({r.content for r in h.requests}) == 1
    assert all(r.headers["authorization"] == f"Bearer {CANARY}" for r in h.requests)


async def test_a_base_url_with_a_path_prefix_keeps_it() -> None:
    async with harness([OK], base_url="https://gateway.test/crust/v2/") as h:
        await enrich(h)

    assert str(h.requests[0].url) == "https://gateway.test/crust/v2/person/enrich"


async def test_enrich_body_sends_only_the_identifiers_and_explicit_fields_by_default() -> None:
    async with harness([OK]) as h:
        await h.api.enrich(
            match_type="professional_network_profile_url", identifiers=URLS, fields=["basic_profile", "contact"]
        )

    assert h.body() == {"professional_network_profile_urls": URLS, "fields": ["basic_profile", "contact"]}


async def test_an_empty_fields_list_is_still_sent_explicitly() -> None:
    async with harness([OK]) as h:
        await h.api.enrich(match_type="professional_network_profile_url", identifiers=URLS, fields=[])

    assert h.body()["fields"] == []


async def test_email_lookups_send_business_emails_and_the_threshold_when_given() -> None:
    async with harness([OK]) as h:
        await h.api.enrich(
            match_type="business_email",
            identifiers=["jane@acme.com"],
            fields=["basic_profile"],
            min_similarity_score=0.8,
        )
        await h.api.enrich(
            match_type="business_email",
            identifiers=["jane@acme.com"],
            fields=["basic_profile"],
            min_similarity_score=0.0,
        )
        await h.api.enrich(match_type="business_email", identifiers=["jane@acme.com"], fields=["basic_profile"])

    assert h.body(0) == {"business_emails": ["jane@acme.com"], "fields": ["basic_profile"], "min_similarity_score": 0.8}
    assert h.body(1)["min_similarity_score"] == 0.0
    assert "min_similarity_score" not in h.body(2)


@pytest.mark.parametrize(
    ("force_fetch", "enrich_realtime", "expected"),
    [
        (False, False, {}),
        (True, False, {"force_fetch": True}),
        (False, True, {"enrich_realtime": True}),
        (True, True, {"force_fetch": True, "enrich_realtime": True}),
    ],
)
async def test_live_flags_are_sent_only_when_true(
    force_fetch: bool, enrich_realtime: bool, expected: dict[str, object]
) -> None:
    async with harness([OK]) as h:
        await h.api.enrich(
            match_type="professional_network_profile_url",
            identifiers=URLS[:1],
            fields=["basic_profile"],
            force_fetch=force_fetch,
            enrich_realtime=enrich_realtime,
        )

    assert h.body() == {"professional_network_profile_urls": URLS[:1], "fields": ["basic_profile"], **expected}


async def test_search_body_sends_sorts_and_cursor_only_when_given() -> None:
    page = reply(200, {"profiles": []})
    filters: dict[str, object] = {"column": "basic_profile.name", "type": "=", "value": "Jane"}
    async with harness([page]) as h:
        await h.api.search(filters=filters, sorts=[], limit=5, cursor=None, fields=["basic_profile.name"])
        await h.api.search(
            filters=filters, sorts=[{"column": "x", "order": "asc"}], limit=5, cursor="abc", fields=["basic_profile"]
        )

    assert h.body(0) == {"filters": filters, "limit": 5, "fields": ["basic_profile.name"]}
    assert h.body(1) == {
        "filters": filters,
        "limit": 5,
        "fields": ["basic_profile"],
        "sorts": [{"column": "x", "order": "asc"}],
        "cursor": "abc",
    }


# --- the key stays secret ---------------------------------------------------------------------------------------------


async def test_the_key_is_not_in_the_client_repr() -> None:
    async with harness([OK]) as h:
        assert CANARY not in repr(h.api)
        assert CANARY not in str(h.api)
        assert "api.person.test" in repr(h.api)


FAILURES: dict[str, list[Step]] = {
    "401 echoing the key": [reply(401, {"message": f"Invalid API key {CANARY}"})],
    "400": [reply(400, {"error": {"type": "invalid_request", "message": "bad field"}})],
    "402": [reply(402, {"error": {"type": "insufficient_credits", "message": "none left"}})],
    "403 fields": [reply(403, {"error": {"message": "denied", "metadata": {"denied_fields": ["skills"]}}})],
    "429": [reply(429, b"", {"x-ratelimit-reset": "999"})],
    "503": [reply(503, b"")],
    "connect error": [fail(httpx2.ConnectError, "refused")],
    "read timeout": [fail(httpx2.ReadTimeout, "timed out")],
    "dropped connection": [fail(httpx2.RemoteProtocolError, "Server disconnected")],
    "malformed json": [reply(200, b"<html>", {"x-credits-used": "1"})],
}


@pytest.mark.parametrize("steps", list(FAILURES.values()), ids=list(FAILURES))
async def test_no_raised_exception_contains_the_key(steps: list[Step]) -> None:
    async with harness(steps, retry=RetryPolicy(max_retries=1, max_wait=5)) as h:
        with pytest.raises(APIError) as caught:
            await enrich(h)

    assert CANARY not in _all_text(caught.value)
    assert CANARY not in model_message(caught.value)


async def test_the_key_never_reaches_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        async with harness([reply(503, b""), fail(httpx2.ConnectError), OK]) as h:
            await enrich(h)

    assert caplog.records
    assert all(CANARY not in record.getMessage() for record in caplog.records)


# --- the rate limiter -------------------------------------------------------------------------------------------------


def _limiter(
    time: FakeTime,
    sleeper: Sleeper,
    *,
    limit: int = 2,
    max_wait: float = 120.0,
    store: MemoryStore | None = None,
    prefix: str = "t",
) -> RateLimiter:
    return RateLimiter(
        store or MemoryStore(clock=time.clock),
        limits={ENRICH: limit, SEARCH: limit},
        window_seconds=60.0,
        max_wait=max_wait,
        bucket_prefix=prefix,
        clock=time.clock,
        sleep=sleeper,
    )


async def test_the_limiter_lets_requests_through_while_the_window_has_room() -> None:
    time = FakeTime()
    sleeper = Sleeper(time)
    limiter = _limiter(time, sleeper, limit=3)

    waited = [await limiter.acquire(ENRICH) for _ in range(3)]

    assert waited == [0.0, 0.0, 0.0]
    assert sleeper.waits == []


async def test_the_limiter_waits_when_the_window_is_full() -> None:
    time = FakeTime()
    sleeper = Sleeper(time)
    limiter = _limiter(time, sleeper, limit=2)
    await limiter.acquire(ENRICH)
    time.now += 20
    await limiter.acquire(ENRICH)

    waited = await limiter.acquire(ENRICH)

    # The window is the upstream's plus a small guard band, so boundary jitter never becomes a 429.
    assert GUARDED_WINDOW - 20 <= waited <= GUARDED_WINDOW - 20 + 0.25
    assert sleeper.waits == [waited]


async def test_the_limiter_refuses_beyond_max_wait_without_sleeping() -> None:
    time = FakeTime()
    sleeper = Sleeper(time)
    limiter = _limiter(time, sleeper, limit=1, max_wait=10)
    await limiter.acquire(ENRICH)

    with pytest.raises(LocalRateLimitError) as caught:
        await limiter.acquire(ENRICH)

    assert caught.value.retry_after == pytest.approx(GUARDED_WINDOW)
    assert sleeper.waits == []
    assert "enrich" in str(caught.value)


async def test_observe_with_nothing_remaining_holds_the_endpoint_until_the_reset() -> None:
    time = FakeTime()
    sleeper = Sleeper(time)
    limiter = _limiter(time, sleeper, limit=100)

    limiter.observe(ENRICH, remaining=0, reset_seconds=30)
    waited = await limiter.acquire(ENRICH)

    assert 30.0 <= waited <= 30.25
    assert await limiter.acquire(SEARCH) == 0.0


async def test_an_upstream_hold_beyond_max_wait_is_refused() -> None:
    time = FakeTime()
    sleeper = Sleeper(time)
    limiter = _limiter(time, sleeper, limit=100, max_wait=10)

    limiter.observe(SEARCH, remaining=0, reset_seconds=45)

    with pytest.raises(LocalRateLimitError) as caught:
        await limiter.acquire(SEARCH)
    assert caught.value.retry_after == pytest.approx(45.0)


async def test_a_later_shorter_reset_does_not_shorten_the_hold() -> None:
    time = FakeTime()
    sleeper = Sleeper(time)
    limiter = _limiter(time, sleeper, limit=100)

    limiter.observe(ENRICH, remaining=0, reset_seconds=30)
    limiter.observe(ENRICH, remaining=0, reset_seconds=5)

    assert await limiter.acquire(ENRICH) >= 30.0


@pytest.mark.parametrize(("remaining", "reset"), [(1, 30.0), (None, 30.0), (0, None), (0, 0.0), (5, None)])
async def test_observe_without_an_exhausted_window_does_not_hold(remaining: int | None, reset: float | None) -> None:
    time = FakeTime()
    sleeper = Sleeper(time)
    limiter = _limiter(time, sleeper, limit=100)

    limiter.observe(ENRICH, remaining=remaining, reset_seconds=reset)

    assert await limiter.acquire(ENRICH) == 0.0
    assert sleeper.waits == []


async def test_limiters_sharing_a_store_and_prefix_share_the_limit() -> None:
    time = FakeTime()
    sleeper = Sleeper(time)
    store = MemoryStore(clock=time.clock)
    first = _limiter(time, sleeper, limit=1, max_wait=5, store=store)
    second = _limiter(time, sleeper, limit=1, max_wait=5, store=store)
    other_prefix = _limiter(time, sleeper, limit=1, max_wait=5, store=store, prefix="other")

    await first.acquire(ENRICH)

    with pytest.raises(LocalRateLimitError):
        await second.acquire(ENRICH)
    assert await other_prefix.acquire(ENRICH) == 0.0


async def test_the_client_waits_for_its_own_limiter_before_sending() -> None:
    async with harness([OK], limits={ENRICH: 1, SEARCH: 1}) as h:
        await enrich(h)
        await enrich(h)

    assert len(h.requests) == 2
    assert len(h.limiter_sleeps.waits) == 1
    assert GUARDED_WINDOW <= h.limiter_sleeps.waits[0] <= GUARDED_WINDOW + 0.25


async def test_the_client_refuses_without_sending_when_its_limiter_would_wait_too_long() -> None:
    async with harness([OK], limits={ENRICH: 1, SEARCH: 1}, limiter_max_wait=10) as h:
        await enrich(h)
        with pytest.raises(LocalRateLimitError):
            await enrich(h)

    assert len(h.requests) == 1
