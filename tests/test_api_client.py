"""PersonAPI over httpx2.MockTransport (one method per endpoint: status mapping, retries, billed answers, headers,
bodies, key secrecy) and the RateLimiter (per-endpoint buckets, the key-wide ceiling, upstream hints)."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

import httpx2
import pytest
from pydantic import SecretStr

from person_enrich_mcp.api import (
    ACCOUNT,
    AUTOCOMPLETE,
    CONTACT,
    ENRICH,
    LIVE,
    SEARCH,
    EnrichEntry,
    PersonAPI,
    RateLimiter,
    RateLimitInfo,
    RetryPolicy,
    SearchRequest,
    map_status,
)
from person_enrich_mcp.api.limiter import WINDOW_GUARD, act_for
from person_enrich_mcp.errors import (
    APIConnectionError,
    APIError,
    APIOutcomeUnknownError,
    APIResponseError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    EndpointMissingError,
    InsufficientCreditsError,
    LocalRateLimitError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    model_message,
)
from person_enrich_mcp.metrics import Metrics
from person_enrich_mcp.state import MemoryStore

pytestmark = pytest.mark.anyio

CANARY = "sk-test-CANARY-4d1f0c9b7e2a-must-never-appear"
BASE_URL = "https://api.person.test/"
USER_AGENT = "person-enrich-mcp/0.1.0 (+tests)"
URLS = ["https://www.linkedin.com/in/jane-doe", "https://www.linkedin.com/in/john-roe"]
NO_RETRIES = RetryPolicy(max_retries=0, max_rate_limited_retries=0)

Step = Callable[[httpx2.Request], httpx2.Response]

GUARDED_WINDOW = 60.0 * (1 + WINDOW_GUARD)
ALL_ENDPOINTS = (ENRICH, CONTACT, LIVE, SEARCH, AUTOCOMPLETE, ACCOUNT)


# --- fakes ------------------------------------------------------------------------------------------------------------


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
    metrics: Metrics | None = None,
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
        limits=limits or dict.fromkeys(ALL_ENDPOINTS, 1000),
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
        metrics=metrics,
    )
    try:
        yield Harness(api, requests, api_sleeps, limiter_sleeps, limiter, time)
    finally:
        await api.aclose()


async def enrich(h: Harness, identifiers: list[str] | None = None) -> list[EnrichEntry]:
    result = await h.api.enrich_profiles(identifiers or URLS, ["basic_profile"])
    return result.data


NAME_FILTER: dict[str, object] = {"field": "basic_profile.name", "type": "=", "value": "Jane"}
PROFILE_URL = "social_handles.professional_network_identifier.profile_url"


def page_request(*, limit: int = 10) -> SearchRequest:
    """One page of a search for a name, asking only for profile URLs."""
    return SearchRequest(filters=NAME_FILTER, limit=limit, fields=[PROFILE_URL])


def _all_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)


# --- success ----------------------------------------------------------------------------------------------------------


async def test_enrich_parses_entries_credits_request_id_and_rate_limit_headers() -> None:
    headers = {
        "x-credits-used": "2.5",
        "x-request-id": "req-1",
        "x-ratelimit-limit": "15",
        "x-ratelimit-remaining": "14",
        "x-ratelimit-reset": "60",
    }
    async with harness([reply(200, entries(*URLS), headers)]) as h:
        result = await h.api.enrich_profiles(URLS, ["basic_profile"])

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
        result = await h.api.enrich_profiles(URLS, ["basic_profile"])

    assert result.credits_used is None
    assert result.rate_limit is None


@pytest.mark.parametrize("value", ["abc", "-1", "NaN", "Infinity", ""])
async def test_an_unreadable_credits_header_is_treated_as_absent(value: str) -> None:
    async with harness([reply(200, entries(*URLS), {"x-credits-used": value})]) as h:
        result = await h.api.enrich_profiles(URLS, ["basic_profile"])

    assert result.credits_used is None


async def test_a_404_on_enrich_reads_as_no_match_for_every_identifier() -> None:
    body = {"error": {"type": "not_found", "message": "No data found"}}
    async with harness([reply(404, body, {"x-request-id": "req-404"})]) as h:
        result = await h.api.enrich_overview("business_email", ["a@acme.com", "b@acme.com"], [])

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
            await h.api.search(page_request())


async def test_search_parses_one_page() -> None:
    page = {"profiles": [{"basic_profile": {"name": "Jane"}}], "next_cursor": "c2", "total_count": 41}
    async with harness([reply(200, page, {"x-credits-used": "0.03"})]) as h:
        result = await h.api.search(page_request(limit=1))

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


DENIED_METADATA = {
    "object": {"denied_fields": ["skills", "honors"]},
    "list of entries": [{"denied_fields": ["skills"]}, {"denied_fields": ["honors", "skills"]}],
}


@pytest.mark.parametrize("metadata", list(DENIED_METADATA.values()), ids=list(DENIED_METADATA))
async def test_a_403_names_its_denied_fields_in_either_metadata_shape(metadata: object) -> None:
    body = {"error": {"type": "permission_error", "message": "Access denied to fields", "metadata": metadata}}
    async with harness([reply(403, body)]) as h:
        with pytest.raises(PermissionDeniedError) as caught:
            await enrich(h)

    assert caught.value.denied_fields == ("skills", "honors")
    assert len(h.requests) == 1


def test_map_status_skips_list_entries_that_are_not_objects() -> None:
    metadata: list[object] = ["skills", {"denied_fields": ["honors"]}, None, {"other": 1}]
    body = {"error": {"type": "permission_error", "message": "no", "metadata": metadata}}

    error = map_status(403, json.dumps(body).encode(), None)

    assert isinstance(error, PermissionDeniedError)
    assert error.denied_fields == ("honors",)


# --- billed error answers ---------------------------------------------------------------------------------------------


BILLED_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    402: InsufficientCreditsError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitError,
    500: ServerError,
    503: ServerError,
}


@pytest.mark.parametrize(("status", "expected"), list(BILLED_ERRORS.items()), ids=[str(s) for s in BILLED_ERRORS])
async def test_the_credits_an_error_answer_reports_are_carried_on_the_exception(
    status: int, expected: type[APIStatusError]
) -> None:
    headers = {"x-credits-used": "0.75", "x-request-id": "req-e"}
    async with harness([reply(status, {"error": {"message": "nope"}}, headers)], retry=NO_RETRIES) as h:
        with pytest.raises(APIStatusError) as caught:
            await h.api.search(page_request())

    assert type(caught.value) is expected
    assert caught.value.credits_used == Decimal("0.75")
    assert caught.value.request_id == "req-e"


@pytest.mark.parametrize("status", [400, 403, 429, 503])
async def test_an_error_answer_without_a_credits_header_carries_unknown_credits(status: int) -> None:
    async with harness([reply(status, b"")], retry=NO_RETRIES) as h:
        with pytest.raises(APIStatusError) as caught:
            await h.api.search(page_request())

    assert caught.value.credits_used is None


async def test_a_404_on_enrich_carries_the_credits_it_reported_into_the_no_match_result() -> None:
    async with harness([reply(404, {"error": {"message": "No data"}}, {"x-credits-used": "0.5"})]) as h:
        result = await h.api.enrich_profiles(URLS, ["basic_profile"])

    assert result.credits_used == Decimal("0.5")
    assert all(e.matches == [] for e in result.data)


@pytest.mark.parametrize("status", [429, 500, 502, 503])
async def test_a_retryable_status_that_reported_credits_is_not_retried(status: int) -> None:
    headers = {"x-credits-used": "2", "x-ratelimit-reset": "1"}
    async with harness([reply(status, {"error": {"message": "try later"}}, headers), OK]) as h:
        with pytest.raises(APIStatusError) as caught:
            await enrich(h)

    assert len(h.requests) == 1
    assert h.api_sleeps.waits == []
    assert caught.value.status_code == status
    assert caught.value.credits_used == Decimal(2)


@pytest.mark.parametrize("credits", ["0", "0.0", None])
@pytest.mark.parametrize("status", [429, 500, 503])
async def test_a_retryable_status_that_reported_no_credits_is_retried(status: int, credits: str | None) -> None:
    headers = {"x-ratelimit-reset": "1"} | ({"x-credits-used": credits} if credits is not None else {})
    async with harness([reply(status, b"", headers), OK]) as h:
        data = await enrich(h)

    assert len(data) == 2
    assert len(h.requests) == 2
    assert len(h.api_sleeps.waits) == 1


async def test_a_billed_answer_after_an_unbilled_retry_stops_the_retries() -> None:
    async with harness([reply(503, b""), reply(503, b"", {"x-credits-used": "1"}), OK]) as h:
        with pytest.raises(ServerError) as caught:
            await enrich(h)

    assert len(h.requests) == 2
    assert caught.value.credits_used == Decimal(1)


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
            await h.api.search(page_request())

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
        result = await h.api.enrich_profiles(URLS, ["basic_profile"])

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
        await h.api.search(page_request(limit=1))

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


async def test_enrich_profiles_sends_only_the_profile_urls_and_the_groups() -> None:
    async with harness([OK]) as h:
        await h.api.enrich_profiles(URLS, ["basic_profile", "experience"])

    assert h.requests[0].url.path == "/person/enrich"
    assert h.body() == {"professional_network_profile_urls": URLS, "fields": ["basic_profile", "experience"]}


async def test_enrich_profiles_refuses_a_group_outside_the_vocabulary_without_sending() -> None:
    async with harness([OK]) as h:
        with pytest.raises(ValueError, match=r"contact\.business_emails"):
            await h.api.enrich_profiles(URLS, ["basic_profile", "contact.business_emails"])

    assert h.requests == []


async def test_an_empty_fields_list_is_still_sent_explicitly() -> None:
    async with harness([OK]) as h:
        await h.api.enrich_overview("professional_network_profile_url", URLS, [])

    assert h.body() == {"professional_network_profile_urls": URLS, "fields": []}


async def test_overview_email_lookups_send_business_emails_and_the_threshold_when_given() -> None:
    async with harness([OK]) as h:
        await h.api.enrich_overview("business_email", ["jane@acme.com"], ["basic_profile"], min_similarity_score=0.8)
        await h.api.enrich_overview("business_email", ["jane@acme.com"], ["basic_profile"], min_similarity_score=0.0)
        await h.api.enrich_overview("business_email", ["jane@acme.com"], ["basic_profile"])

    assert h.body(0) == {"business_emails": ["jane@acme.com"], "fields": ["basic_profile"], "min_similarity_score": 0.8}
    assert h.body(1)["min_similarity_score"] == 0.0
    assert "min_similarity_score" not in h.body(2)
    assert {r.url.path for r in h.requests} == {"/person/enrich"}


async def test_overview_lookups_send_contact_paths_as_they_are() -> None:
    async with harness([OK]) as h:
        await h.api.enrich_overview(
            "business_email", ["jane@acme.com"], ["basic_profile.name", "contact.phone_numbers"]
        )

    assert h.body() == {"business_emails": ["jane@acme.com"], "fields": ["basic_profile.name", "contact.phone_numbers"]}


@pytest.mark.parametrize(
    ("force_fetch", "enrich_realtime", "expected"),
    [
        (False, False, {}),
        (True, False, {"force_fetch": True}),
        (False, True, {"enrich_realtime": True}),
        (True, True, {"force_fetch": True, "enrich_realtime": True}),
    ],
)
async def test_overview_refresh_flags_are_sent_only_when_true(
    force_fetch: bool, enrich_realtime: bool, expected: dict[str, object]
) -> None:
    async with harness([OK]) as h:
        await h.api.enrich_overview(
            "professional_network_profile_url",
            URLS[:1],
            ["basic_profile"],
            force_fetch=force_fetch,
            enrich_realtime=enrich_realtime,
        )

    assert h.body() == {"professional_network_profile_urls": URLS[:1], "fields": ["basic_profile"], **expected}


async def test_search_body_sends_sorts_and_cursor_only_when_given() -> None:
    page = reply(200, {"profiles": []})
    async with harness([page]) as h:
        await h.api.search(SearchRequest(filters=NAME_FILTER, limit=5, fields=["basic_profile.name"]))
        await h.api.search(
            SearchRequest(
                filters=NAME_FILTER,
                limit=5,
                fields=["basic_profile"],
                sorts=[{"field": "basic_profile.name", "order": "asc"}],
                cursor="abc",
            )
        )

    assert h.body(0) == {"filters": NAME_FILTER, "limit": 5, "fields": ["basic_profile.name"]}
    assert h.body(1) == {
        "filters": NAME_FILTER,
        "limit": 5,
        "fields": ["basic_profile"],
        "sorts": [{"field": "basic_profile.name", "order": "asc"}],
        "cursor": "abc",
    }
    assert {r.url.path for r in h.requests} == {"/person/search"}


async def test_search_body_sends_exclusions_explain_and_preview_only_when_set() -> None:
    page = reply(200, {"profiles": []})
    async with harness([page]) as h:
        await h.api.search(
            SearchRequest(
                filters=NAME_FILTER, limit=5, fields=[PROFILE_URL], exclude_profiles=URLS, explain=True, preview=True
            )
        )

    assert h.body() == {
        "filters": NAME_FILTER,
        "limit": 5,
        "fields": [PROFILE_URL],
        "post_processing": {"exclude_profiles": URLS},
        "explain": True,
        "preview": True,
    }


async def test_search_carries_the_explain_remarks() -> None:
    remarks = {"no_match": "basic_profile.name = Jane"}
    async with harness([reply(200, {"profiles": [], "next_cursor": None, "total_count": 0, "remarks": remarks})]) as h:
        result = await h.api.search(page_request())

    assert result.data.remarks == remarks
    assert result.data.profiles == []


async def test_autocomplete_sends_field_query_and_limit_and_parses_suggestions() -> None:
    answer = {"suggestions": [{"value": "CEO", "document_count": 1046463}, {"value": "Chief Executive"}]}
    async with harness([reply(200, answer)]) as h:
        result = await h.api.autocomplete("basic_profile.headline", "ce", 5)

    assert h.requests[0].url.path == "/person/search/autocomplete"
    assert h.body() == {"field": "basic_profile.headline", "query": "ce", "limit": 5}
    assert [(s.value, s.document_count) for s in result.data.suggestions] == [
        ("CEO", 1046463),
        ("Chief Executive", None),
    ]


# --- contact enrich and live enrich -----------------------------------------------------------------------------------


def contact_entries(*emails: str) -> list[dict[str, object]]:
    return [
        {
            "matched_on": e,
            "match_type": "business_email",
            "matches": [{"confidence_score": 0.9, "person_data": {"contact": {"phone_numbers": ["+1 555"]}}}],
        }
        for e in emails
    ]


async def test_enrich_contacts_sends_only_the_tiers_given() -> None:
    async with harness([reply(200, contact_entries("jane@acme.com"), {"x-credits-used": "2"})]) as h:
        result = await h.api.enrich_contacts("business_email", ["jane@acme.com"], ["contact.phone_numbers"])

    assert h.requests[0].url.path == "/person/contact/enrich"
    assert h.body() == {"business_emails": ["jane@acme.com"], "fields": ["contact.phone_numbers"]}
    assert result.data[0].matches[0].person_data == {"contact": {"phone_numbers": ["+1 555"]}}
    assert result.credits_used == Decimal(2)


async def test_enrich_contacts_by_profile_url_with_verification_sends_the_verified_flag() -> None:
    async with harness([OK]) as h:
        await h.api.enrich_contacts(
            "professional_network_profile_url",
            URLS,
            ["contact.business_emails", "contact.personal_emails"],
            verified=True,
        )

    assert h.body() == {
        "professional_network_profile_urls": URLS,
        "fields": ["contact.business_emails", "contact.personal_emails"],
        "verified": True,
    }


async def test_enrich_contacts_refuses_empty_tiers_and_sends_nothing() -> None:
    async with harness([OK]) as h:
        with pytest.raises(ValueError, match="explicit tiers"):
            await h.api.enrich_contacts("business_email", ["jane@acme.com"], [])

    assert h.requests == []


async def test_enrich_contacts_refuses_a_tier_outside_the_vocabulary_and_sends_nothing() -> None:
    async with harness([OK]) as h:
        with pytest.raises(ValueError, match="basic_profile"):
            await h.api.enrich_contacts("business_email", ["jane@acme.com"], ["contact.phone_numbers", "basic_profile"])

    assert h.requests == []


async def test_a_404_on_contact_enrich_reads_as_no_match_for_every_identifier() -> None:
    async with harness([reply(404, {"error": {"message": "No data found"}})]) as h:
        result = await h.api.enrich_contacts("business_email", ["a@acme.com"], ["contact.business_emails"])

    assert [(e.matched_on, e.match_type, e.matches) for e in result.data] == [("a@acme.com", "business_email", [])]
    assert len(h.requests) == 1


async def test_a_bare_404_on_contact_enrich_is_checked_for_free_and_a_missing_route_is_an_error() -> None:
    async with harness([reply(404, {"message": "Not Found"})]) as h:
        with pytest.raises(EndpointMissingError, match="/person/contact/enrich"):
            await h.api.enrich_contacts("business_email", ["a@acme.com"], ["contact.business_emails"])

    assert [r.url.path for r in h.requests] == ["/person/contact/enrich", "/person/contact/enrich"]
    assert json.loads(h.requests[1].content) == {}  # the free check: an empty body


async def test_a_bare_404_on_live_enrich_where_the_route_exists_reads_as_no_match() -> None:
    async with harness([reply(404, {"message": "Not Found"}), reply(400, {"error": {"message": "missing"}})]) as h:
        result = await h.api.enrich_live(URLS[:1], ["basic_profile"])

    assert [e.matches for e in result.data] == [[]]
    assert len(h.requests) == 2


async def test_a_bare_404_on_profile_enrich_is_no_match_without_a_check() -> None:
    async with harness([reply(404, {"message": "Not Found"})]) as h:
        result = await h.api.enrich_profiles(URLS[:1], ["basic_profile"])

    assert [e.matches for e in result.data] == [[]]
    assert len(h.requests) == 1


async def test_enrich_live_posts_profile_urls_and_groups_to_the_live_endpoint() -> None:
    async with harness([reply(200, entries(*URLS), {"x-credits-used": "14"})]) as h:
        result = await h.api.enrich_live(URLS, ["basic_profile", "experience"])

    assert h.requests[0].method == "POST"
    assert h.requests[0].url.path == "/person/professional_network/enrich/live"
    assert h.body() == {"professional_network_profile_urls": URLS, "fields": ["basic_profile", "experience"]}
    assert [e.matched_on for e in result.data] == URLS
    assert result.credits_used == Decimal(14)


async def test_enrich_live_refuses_a_group_outside_the_vocabulary_without_sending() -> None:
    async with harness([OK]) as h:
        with pytest.raises(ValueError, match="contact"):
            await h.api.enrich_live(URLS, ["contact"])

    assert h.requests == []


# --- account endpoints ------------------------------------------------------------------------------------------------


LISTING: dict[str, object] = {
    "api_version": "2025-11-01",
    "token_limit_rpm": 120,
    "endpoints": [
        {
            "path": "/person/enrich",
            "category": "Person",
            "status": "enabled",
            "effective_rate_limit_rpm": 30,
            "base_credits": 1,
            "premium_fields": [{"field": "dev_platform_profiles", "credits": 1.5}],
            "fields": {"enabled": ["basic_profile.name", "experience"], "disabled": ["social_posts"]},
        },
        {"path": "/person/contact/enrich", "category": "Person", "status": "not_enabled"},
        {"path": "/person/professional_network/enrich/live", "status": "disabled", "effective_rate_limit_rpm": None},
    ],
}


async def test_account_endpoints_sends_a_get_filtered_by_category() -> None:
    async with harness([reply(200, LISTING, {"x-request-id": "req-acct"})]) as h:
        result = await h.api.account_endpoints(category="Person")

    request = h.requests[0]
    assert request.method == "GET"
    assert request.url.path == "/account/endpoints"
    assert dict(request.url.params) == {"category": "Person"}
    assert request.content == b""
    assert request.headers["x-api-version"] == "2025-11-01"
    assert result.request_id == "req-acct"


async def test_account_endpoints_without_a_category_sends_no_query() -> None:
    async with harness([reply(200, {"endpoints": []})]) as h:
        result = await h.api.account_endpoints()

    assert h.requests[0].url.query == b""
    assert result.data.endpoints == []
    assert result.data.token_limit_rpm is None


async def test_account_endpoints_parses_the_listing() -> None:
    async with harness([reply(200, LISTING)]) as h:
        listing = (await h.api.account_endpoints(category="Person")).data

    enrich_entry, contact_entry, live_entry = listing.endpoints
    assert listing.api_version == "2025-11-01"
    assert listing.token_limit_rpm == 120
    assert [e.path for e in listing.endpoints] == [
        "/person/enrich",
        "/person/contact/enrich",
        "/person/professional_network/enrich/live",
    ]
    assert [e.enabled for e in listing.endpoints] == [True, False, False]
    assert enrich_entry.effective_rate_limit_rpm == 30
    assert enrich_entry.base_credits == Decimal(1)
    assert [(p.field, p.credits) for p in enrich_entry.premium_fields] == [("dev_platform_profiles", Decimal("1.5"))]
    assert enrich_entry.fields is not None
    assert enrich_entry.fields.enabled == ["basic_profile.name", "experience"]
    assert enrich_entry.fields.disabled == ["social_posts"]
    # Everything but the path is optional.
    assert (contact_entry.base_credits, contact_entry.premium_fields, contact_entry.fields) == (None, [], None)
    assert live_entry.category is None
    assert live_entry.effective_rate_limit_rpm is None


@pytest.mark.parametrize(
    ("status", "enabled"),
    [("enabled", True), ("ENABLED ", True), ("not_enabled", False), ("disabled", False), ("unknown", False)],
)
async def test_only_an_enabled_status_makes_an_endpoint_callable(status: str, enabled: bool) -> None:
    async with harness([reply(200, {"endpoints": [{"path": "/person/search", "status": status}]})]) as h:
        listing = (await h.api.account_endpoints(category="Person")).data

    assert listing.endpoints[0].enabled is enabled


@pytest.mark.parametrize("body", [[], {"endpoints": "none"}, {"endpoints": [{"status": "enabled"}]}])
async def test_an_account_listing_of_the_wrong_shape_is_a_response_error(body: object) -> None:
    async with harness([reply(200, body, {"x-request-id": "req-bad"})]) as h:
        with pytest.raises(APIResponseError) as caught:
            await h.api.account_endpoints(category="Person")

    assert caught.value.request_id == "req-bad"


async def test_user_credits_parses_a_fractional_balance_exactly() -> None:
    async with harness([reply(200, {"credits": 12.5})]) as h:
        result = await h.api.user_credits()

    assert result.data.credits == Decimal("12.5")
    assert isinstance(result.data.credits, Decimal)
    assert h.requests[0].method == "GET"
    assert h.requests[0].url.path == "/user/credits"


async def test_user_credits_keeps_a_decimal_fraction_without_float_drift() -> None:
    async with harness([reply(200, b'{"credits": 9406.03}')]) as h:
        result = await h.api.user_credits()

    assert result.data.credits == Decimal("9406.03")


@pytest.mark.parametrize("body", [{}, {"credits": "lots"}, {"account": {"credits": 5}}])
async def test_user_credits_of_the_wrong_shape_is_a_response_error(body: object) -> None:
    async with harness([reply(200, body)]) as h:
        with pytest.raises(APIResponseError):
            await h.api.user_credits()


async def test_contact_route_exists_when_an_empty_request_is_a_400() -> None:
    async with harness([reply(400, {"error": {"type": "invalid_request", "message": "fields required"}})]) as h:
        exists = await h.api.contact_route_exists()

    assert exists is True
    assert h.requests[0].method == "POST"
    assert h.requests[0].url.path == "/person/contact/enrich"
    assert h.body() == {}
    assert len(h.requests) == 1


async def test_contact_route_does_not_exist_when_an_empty_request_is_a_404() -> None:
    async with harness([reply(404, {"message": "Not Found"})]) as h:
        exists = await h.api.contact_route_exists()

    assert exists is False
    assert len(h.requests) == 1


async def test_contact_route_exists_when_the_plan_lacks_it_and_the_answer_is_a_403() -> None:
    denied = {"error": {"type": "permission_error", "message": "Your plan does not include /person/contact/enrich"}}
    async with harness([reply(403, denied)]) as h:
        exists = await h.api.contact_route_exists()

    assert exists is True
    assert len(h.requests) == 1


async def test_a_redirect_answer_to_the_contact_route_probe_decides_nothing() -> None:
    async with harness([reply(308, b"", {"location": "https://elsewhere.test/"})]) as h:
        exists = await h.api.contact_route_exists()

    assert exists is None
    assert len(h.requests) == 1  # not followed


async def test_a_rejected_key_is_raised_by_the_contact_route_probe_not_read_as_unknown() -> None:
    async with harness([reply(401, {"message": "Invalid API key in request"})]) as h:
        with pytest.raises(AuthenticationError):
            await h.api.contact_route_exists()


async def test_contact_route_is_unknown_after_5xx_retries_run_out() -> None:
    async with harness([reply(500, b"")], retry=RetryPolicy(max_retries=2)) as h:
        exists = await h.api.contact_route_exists()

    assert exists is None
    assert len(h.requests) == 3


async def test_contact_route_is_unknown_when_the_upstream_is_unreachable() -> None:
    async with harness([fail(httpx2.ConnectError, "refused")], retry=RetryPolicy(max_retries=1)) as h:
        exists = await h.api.contact_route_exists()

    assert exists is None
    assert len(h.requests) == 2


async def test_account_reads_carry_the_documented_headers() -> None:
    def routed(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/user/credits":
            return httpx2.Response(200, json={"credits": 1})
        return httpx2.Response(200, json={"endpoints": []})

    async with harness([routed]) as h:
        await h.api.account_endpoints(category="Person")
        await h.api.user_credits()

    assert [(r.method, r.url.path) for r in h.requests] == [("GET", "/account/endpoints"), ("GET", "/user/credits")]
    for request in h.requests:
        assert request.headers["authorization"] == f"Bearer {CANARY}"
        assert request.headers["x-api-version"] == "2025-11-01"
        assert request.headers["user-agent"] == USER_AGENT


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


# --- the key-wide ceiling and per-endpoint buckets --------------------------------------------------------------------


class RecordingSlots(MemoryStore):
    """A MemoryStore that records every bucket a slot was asked of, and whether it was granted."""

    def __init__(self, time: FakeTime) -> None:
        super().__init__(clock=time.clock)
        self.taken: list[tuple[str, bool]] = []

    async def take_slot(self, bucket: str, limit: int, window_seconds: float) -> float:
        pause = await super().take_slot(bucket, limit, window_seconds)
        self.taken.append((bucket, pause <= 0))
        return pause


def test_update_replaces_the_named_limits_and_limit_reports_them() -> None:
    time = FakeTime()
    limiter = _limiter(time, Sleeper(time), limit=2)

    limiter.update({ENRICH: 7, CONTACT: 3}, total=50)

    assert limiter.limit(ENRICH) == 7
    assert limiter.limit(CONTACT) == 3
    assert limiter.limit(SEARCH) == 2
    assert limiter.total == 50


def test_update_without_a_total_removes_the_ceiling() -> None:
    time = FakeTime()
    limiter = _limiter(time, Sleeper(time))
    limiter.update({}, total=10)

    limiter.update({ENRICH: 5})

    assert limiter.total is None
    assert limiter.limit(ENRICH) == 5


async def test_without_a_total_no_request_takes_a_key_wide_slot() -> None:
    time = FakeTime()
    slots = RecordingSlots(time)
    limiter = _limiter(time, Sleeper(time), limit=5, store=slots)

    await limiter.acquire(ENRICH)
    await limiter.acquire(SEARCH)

    assert slots.taken == [("t:enrich", True), ("t:search", True)]


async def test_with_a_total_every_request_also_takes_a_key_wide_slot() -> None:
    time = FakeTime()
    slots = RecordingSlots(time)
    limiter = _limiter(time, Sleeper(time), limit=5, store=slots)
    limiter.update({}, total=10)

    await limiter.acquire(ENRICH)
    await limiter.acquire(SEARCH)

    assert slots.taken == [("t:enrich", True), ("t:*", True), ("t:search", True), ("t:*", True)]


async def test_the_total_paces_requests_across_endpoints() -> None:
    time = FakeTime()
    sleeper = Sleeper(time)
    limiter = _limiter(time, sleeper, limit=10)
    limiter.update({}, total=2)

    first = [await limiter.acquire(ENRICH), await limiter.acquire(SEARCH)]
    third = await limiter.acquire(ENRICH)

    assert first == [0.0, 0.0]
    assert GUARDED_WINDOW <= third <= GUARDED_WINDOW + 0.25
    assert sleeper.waits == [third]


async def test_waiting_for_the_total_never_takes_a_second_endpoint_slot() -> None:
    time = FakeTime()
    slots = RecordingSlots(time)
    sleeper = Sleeper(time)
    limiter = _limiter(time, sleeper, limit=10, store=slots)
    limiter.update({}, total=1)
    await limiter.acquire(ENRICH)
    slots.taken.clear()

    waited = await limiter.acquire(SEARCH)

    assert waited > 0
    assert slots.taken == [("t:search", True), ("t:*", False), ("t:*", True)]


async def test_a_full_total_beyond_max_wait_is_refused() -> None:
    time = FakeTime()
    sleeper = Sleeper(time)
    limiter = _limiter(time, sleeper, limit=10, max_wait=5)
    limiter.update({}, total=1)
    await limiter.acquire(ENRICH)

    with pytest.raises(LocalRateLimitError) as caught:
        await limiter.acquire(SEARCH)

    assert caught.value.retry_after == pytest.approx(GUARDED_WINDOW)
    assert sleeper.waits == []


def _answer_for(request: httpx2.Request) -> httpx2.Response:
    """A fitting 200 for whichever endpoint was called."""
    path = request.url.path
    if path == "/person/search":
        return httpx2.Response(200, json={"profiles": []})
    if path == "/person/search/autocomplete":
        return httpx2.Response(200, json={"suggestions": []})
    if path == "/account/endpoints":
        return httpx2.Response(200, json={"endpoints": []})
    if path == "/user/credits":
        return httpx2.Response(200, json={"credits": 3})
    return httpx2.Response(200, json=entries(*URLS))


async def _call_endpoint(api: PersonAPI, endpoint: str) -> None:
    if endpoint == ENRICH:
        await api.enrich_profiles(URLS, ["basic_profile"])
    elif endpoint == CONTACT:
        await api.enrich_contacts("professional_network_profile_url", URLS, ["contact.business_emails"])
    elif endpoint == LIVE:
        await api.enrich_live(URLS, ["basic_profile"])
    elif endpoint == SEARCH:
        await api.search(page_request())
    elif endpoint == AUTOCOMPLETE:
        await api.autocomplete("basic_profile.headline", "ce", 5)
    else:
        await api.account_endpoints(category="Person")


async def test_each_endpoint_is_paced_in_its_own_bucket() -> None:
    async with harness([_answer_for], limits=dict.fromkeys(ALL_ENDPOINTS, 1), limiter_max_wait=10) as h:
        for endpoint in ALL_ENDPOINTS:
            await _call_endpoint(h.api, endpoint)

        assert len(h.requests) == len(ALL_ENDPOINTS)
        assert h.limiter_sleeps.waits == []
        for endpoint in ALL_ENDPOINTS:
            with pytest.raises(LocalRateLimitError, match=f"rate limit for {endpoint}:"):
                await _call_endpoint(h.api, endpoint)

    assert len(h.requests) == len(ALL_ENDPOINTS)


@pytest.mark.parametrize(
    ("first", "second"),
    [("overview enrich", ENRICH), ("user credits", ACCOUNT), ("contact probe", CONTACT)],
)
async def test_methods_of_one_endpoint_share_its_bucket(first: str, second: str) -> None:
    async with harness([_answer_for], limits=dict.fromkeys(ALL_ENDPOINTS, 1), limiter_max_wait=10) as h:
        if first == "overview enrich":
            await h.api.enrich_overview("business_email", ["jane@acme.com"], ["basic_profile"])
        elif first == "user credits":
            await h.api.user_credits()
        else:
            assert await h.api.contact_route_exists() is True
        with pytest.raises(LocalRateLimitError, match=f"rate limit for {second}:"):
            await _call_endpoint(h.api, second)

    assert len(h.requests) == 1


async def test_the_client_takes_a_key_wide_slot_for_every_endpoint() -> None:
    async with harness([_answer_for], limits=dict.fromkeys(ALL_ENDPOINTS, 100), limiter_max_wait=10) as h:
        h.limiter.update({}, total=2)
        await _call_endpoint(h.api, ENRICH)
        await _call_endpoint(h.api, SEARCH)
        with pytest.raises(LocalRateLimitError):
            await _call_endpoint(h.api, AUTOCOMPLETE)

    assert [r.url.path for r in h.requests] == ["/person/enrich", "/person/search"]


# --- every endpoint's result carries what the answer said it billed, its request id and the rate-limit headers -------

BILLED_HEADERS = {
    "x-credits-used": "0.09",
    "x-request-id": "req-9",
    "x-ratelimit-limit": "60",
    "x-ratelimit-remaining": "59",
    "x-ratelimit-reset": "30",
}
SEARCH_ANSWER: dict[str, object] = {"profiles": [], "next_cursor": None, "total_count": 0}
SUGGESTIONS_ANSWER = {"suggestions": [{"value": "CEO"}]}


@pytest.mark.parametrize(
    ("call", "answer", "method", "path"),
    [
        ("search", SEARCH_ANSWER, "POST", "/person/search"),
        ("autocomplete", SUGGESTIONS_ANSWER, "POST", "/person/search/autocomplete"),
        ("account_endpoints", {"endpoints": []}, "GET", "/account/endpoints"),
        ("user_credits", {"credits": 3}, "GET", "/user/credits"),
    ],
)
async def test_every_endpoint_result_carries_its_credits_request_id_and_rate_limit(
    call: str, answer: object, method: str, path: str
) -> None:
    async with harness([reply(200, answer, BILLED_HEADERS)]) as h:
        if call == "search":
            result: Any = await h.api.search(page_request())
        elif call == "autocomplete":
            result = await h.api.autocomplete("basic_profile.headline", "ce", 5)
        elif call == "account_endpoints":
            result = await h.api.account_endpoints()
        else:
            result = await h.api.user_credits()

    assert (h.requests[0].method, h.requests[0].url.path) == (method, path)
    assert result.credits_used == Decimal("0.09")
    assert result.request_id == "req-9"
    assert result.rate_limit == RateLimitInfo(limit=60, remaining=59, reset_seconds=30.0)


@pytest.mark.parametrize(("call", "answer"), [("search", {"profiles": "none"}), ("autocomplete", {"suggestions": 1})])
async def test_an_unreadable_search_or_autocomplete_answer_keeps_its_request_id_and_what_it_billed(
    call: str, answer: object
) -> None:
    async with harness([reply(200, answer, BILLED_HEADERS)]) as h:
        with pytest.raises(APIResponseError) as caught:
            if call == "search":
                await h.api.search(page_request())
            else:
                await h.api.autocomplete("basic_profile.headline", "ce", 5)

    assert caught.value.request_id == "req-9"
    assert f"{call} answer is not the documented object" in str(caught.value)
    if call == "search":
        assert caught.value.credits_used == Decimal("0.09")


async def test_live_enrich_answers_are_matched_to_the_profile_urls_sent() -> None:
    answer: list[dict[str, object]] = [
        {"matched_on": URLS[0], "match_type": "professional_network_profile_url", "matches": []}
    ]
    async with harness([reply(200, answer)]) as h:
        result = await h.api.enrich_live(URLS[:1], ["basic_profile"])

    assert [(e.matched_on, e.matches) for e in result.data] == [(URLS[0], [])]


@pytest.mark.parametrize(
    ("status", "accepted"), [(400, True), (404, True), (403, True), (401, False), (500, None), (200, True)]
)
async def test_whether_the_key_is_accepted_is_asked_with_a_free_empty_enrich(
    status: int, accepted: bool | None
) -> None:
    body: object = entries() if status == 200 else {"error": {"message": "x"}}
    async with harness([reply(status, body)], retry=RetryPolicy(max_retries=0)) as h:
        assert await h.api.key_accepted() is accepted

    assert (h.requests[0].method, h.requests[0].url.path) == ("POST", "/person/enrich")
    assert json.loads(h.requests[0].content) == {}


@pytest.mark.parametrize("body", [b"Not Found", b"\xff\xfe", b""])
async def test_a_404_whose_body_is_not_json_is_a_bare_route_404_checked_for_free(body: bytes) -> None:
    async with harness([reply(404, body)]) as h:
        with pytest.raises(EndpointMissingError, match="/person/contact/enrich"):
            await h.api.enrich_contacts("business_email", ["a@acme.com"], ["contact.business_emails"])

    assert [r.url.path for r in h.requests] == ["/person/contact/enrich", "/person/contact/enrich"]


@pytest.mark.parametrize(
    ("length", "shortened"), [(1500, False), (1501, True), (4000, True)], ids=["at-the-cap", "one-over", "long"]
)
async def test_an_upstream_message_is_cut_between_words_at_1500_characters(length: int, shortened: bool) -> None:
    words = ("alpha, beta gamma " * 300)[:length]
    async with harness([reply(400, {"error": {"message": words}})], retry=RetryPolicy(max_retries=0)) as h:
        with pytest.raises(BadRequestError) as caught:
            await enrich(h)

    message = str(caught.value)
    if not shortened:
        assert words in message
        return
    assert " …" in message
    kept = message[message.index("alpha") : message.index(" …")]
    assert words.startswith(kept)
    assert len(kept) <= 1498
    assert len(kept) >= 1480  # cut at the last word boundary before the cap, not earlier
    assert not kept.endswith((",", " "))


# --- error statuses read exactly --------------------------------------------------------------------------------------


def test_a_404_in_the_apis_envelope_is_its_no_data_answer_whatever_its_type_is_missing() -> None:
    untyped = map_status(404, b'{"error": {"message": "no data"}}', "req-1")
    typed = map_status(404, b'{"error": {"type": "gone", "message": "no data"}}', "req-2")

    assert isinstance(untyped, NotFoundError) and isinstance(typed, NotFoundError)
    assert (untyped.error_type, typed.error_type) == ("not_found", "gone")
    assert "no data" in str(untyped)


@pytest.mark.parametrize(("status", "redirect"), [(299, False), (300, True), (308, True), (399, True), (400, False)])
def test_only_a_3xx_status_reads_as_an_unexpected_redirect(status: int, redirect: bool) -> None:
    error = map_status(status, b'{"message": "moved"}', None)

    assert ("unexpected redirect" in str(error)) is redirect
    if redirect:
        assert isinstance(error, BadRequestError)
        assert f"HTTP {status}" in str(error) and "PERSON_ENRICH_API_BASE_URL" in str(error)


async def test_a_bare_404_on_contact_enrich_keeps_its_status_and_request_id() -> None:
    async with harness([reply(404, {"message": "Not Found"}, {"x-request-id": "req-404"})]) as h:
        with pytest.raises(EndpointMissingError) as caught:
            await h.api.enrich_contacts("business_email", ["a@acme.com"], ["contact.business_emails"])

    assert caught.value.status_code == 404
    assert caught.value.request_id == "req-404"


async def test_a_no_match_404_answers_each_identifier_with_its_match_type() -> None:
    async with harness([reply(404, {"message": "Not Found"})]) as h:
        result = await h.api.enrich_profiles(URLS[:1], ["basic_profile"])

    assert [(e.matched_on, e.match_type, e.matches) for e in result.data] == [
        (URLS[0], "professional_network_profile_url", [])
    ]


async def test_an_enrich_answer_that_is_not_an_array_keeps_its_request_id_and_bill() -> None:
    async with harness([reply(200, {"oops": 1}, BILLED_HEADERS)]) as h:
        with pytest.raises(APIResponseError) as caught:
            await h.api.enrich_profiles(URLS[:1], ["basic_profile"])

    assert "the enrich answer is not the documented array" in str(caught.value)
    assert caught.value.request_id == "req-9"
    assert caught.value.credits_used == Decimal("0.09")


# --- what the client counts -------------------------------------------------------------------------------------------


async def test_every_request_is_counted_by_endpoint_and_status_and_by_principal_and_limiter_waits_by_endpoint() -> None:
    metrics = Metrics(principal_names=True)
    steps = [fail(httpx2.ConnectError), reply(503, b""), OK, OK]
    async with harness(steps, limits={ENRICH: 1, SEARCH: 1}, metrics=metrics) as h:
        act_for("alice")
        try:
            await enrich(h)  # not sent, then 503, then 200: one call, three attempts
            await enrich(h)  # the window of one is full: the limiter waits
        finally:
            act_for(None)

    count = metrics.value
    assert count("person_enrich_upstream_requests_total", endpoint=ENRICH, status="not_sent") == 1
    assert count("person_enrich_upstream_requests_total", endpoint=ENRICH, status="503") == 1
    assert count("person_enrich_upstream_requests_total", endpoint=ENRICH, status="200") == 2
    assert count("person_enrich_principal_upstream_requests_total", principal="alice", endpoint=ENRICH) == 3
    waits = h.limiter_sleeps.waits
    assert count("person_enrich_rate_limit_waits_total", endpoint=ENRICH) == len(waits) >= 2
    assert count("person_enrich_rate_limit_wait_seconds_total", endpoint=ENRICH) == pytest.approx(sum(waits))
    assert "person_enrich_upstream_latency_seconds" in metrics.render()
    assert f'endpoint="{ENRICH}"' in metrics.render()


async def test_a_request_made_for_nobody_is_not_counted_for_a_principal() -> None:
    metrics = Metrics(principal_names=True)
    async with harness([OK], metrics=metrics) as h:
        await enrich(h)

    assert "person_enrich_principal_upstream_requests_total{" not in metrics.render()
    assert metrics.value("person_enrich_rate_limit_waits_total", endpoint=ENRICH) == 0


# --- the rest of the client's edges -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("x" * 2000, "x" * 1498 + " …"),  # no word boundary: cut at the cap
        ("word " * 400, ("word " * 300)[:1494].rstrip() + " …"),  # spaces only: cut at the last one
        ("name, [item " * 200, None),  # never ends on a separator or an opening bracket
        (" " + "y" * 2000, " " + "y" * 1497 + " …"),  # the only space is the first character: no cut there
        ("x " + "y" * 2000, "x …"),
    ],
)
def test_a_long_upstream_message_is_cut_at_the_last_word_boundary_before_the_cap(
    message: str, expected: str | None
) -> None:
    text = str(map_status(400, json.dumps({"error": {"message": message}}).encode(), None))

    if expected is not None:
        assert text == expected
    else:
        assert text.endswith("name …") and len(text) <= 1500


async def test_a_3xx_answer_is_an_error_with_the_key_redacted_never_an_answer() -> None:
    async with harness([reply(300, {"message": f"moved, key {CANARY}"})], retry=RetryPolicy(max_retries=0)) as h:
        with pytest.raises(BadRequestError) as caught:
            await enrich(h)

    assert "unexpected redirect (HTTP 300)" in str(caught.value)
    assert CANARY not in _all_text(caught.value)


async def test_a_sub_second_limiter_wait_is_counted() -> None:
    metrics = Metrics()
    async with harness([OK], metrics=metrics) as h:
        h.limiter.observe(ENRICH, remaining=0, reset_seconds=0.5)
        await enrich(h)

    assert metrics.value("person_enrich_rate_limit_waits_total", endpoint=ENRICH) == 1
    assert 0.5 <= metrics.value("person_enrich_rate_limit_wait_seconds_total", endpoint=ENRICH) <= 0.75


async def test_a_429_asking_to_wait_exactly_the_remaining_budget_is_waited_and_retried() -> None:
    steps = [reply(429, {"error": {"message": "slow down"}}, {"retry-after": "5"}), OK]
    async with harness(steps, retry=RetryPolicy(max_wait=5.25)) as h:  # 5 s plus at most 0.25 s of jitter
        data = await enrich(h)

    assert len(data) == 2
    assert len(h.api_sleeps.waits) == 1 and 5.0 <= h.api_sleeps.waits[0] <= 5.25


async def test_an_error_answer_keeps_what_it_billed() -> None:
    async with harness(
        [reply(500, {"message": "oops"}, {"x-credits-used": "1.5"})], retry=RetryPolicy(max_retries=0)
    ) as h:
        with pytest.raises(APIStatusError) as caught:
            await enrich(h)

    assert caught.value.credits_used == Decimal("1.5")


async def test_an_answer_that_is_not_json_says_so_and_keeps_its_request_id() -> None:
    async with harness([reply(200, b"<html>", {"x-request-id": "req-html"})]) as h:
        with pytest.raises(APIResponseError) as caught:
            await enrich(h)

    assert "the answer is not valid JSON" in str(caught.value)
    assert caught.value.request_id == "req-html"


async def test_profile_text_from_the_upstream_is_cleaned_of_bidi_and_control_characters() -> None:
    answer = [
        {
            "matched_on": URLS[0],
            "match_type": "professional_network_profile_url",
            "matches": [{"confidence_score": 1.0, "person_data": {"basic_profile": {"name": "Ev\\u202eil\\u0007"}}}],
        }
    ]
    async with harness([reply(200, json.dumps(answer).encode().replace(b"\\\\u", b"\\u"))]) as h:
        data = await enrich(h, URLS[:1])

    name = cast(dict[str, str], data[0].matches[0].person_data["basic_profile"])["name"]
    assert "\u202e" not in name and "\u0007" not in name
    assert name.startswith("Ev")


async def test_a_bare_404_on_live_enrich_answers_with_the_profile_url_match_type() -> None:
    async with harness([reply(404, {"message": "Not Found"}), reply(400, {"error": {"message": "missing"}})]) as h:
        result = await h.api.enrich_live(URLS[:1], ["basic_profile"])

    assert [(e.matched_on, e.match_type) for e in result.data] == [(URLS[0], "professional_network_profile_url")]


async def test_a_closed_client_sends_nothing_more() -> None:
    async with harness([OK]) as h:
        await h.api.aclose()
        with pytest.raises(RuntimeError, match="closed"):
            await enrich(h)

    assert h.requests == []


@pytest.mark.parametrize(
    ("base_url", "shown"),
    [
        ("https://api.example.test/v1", "https://api.example.test/v1/"),
        ("https://api.example.test/v1/", "https://api.example.test/v1/"),
    ],
)
def test_the_base_url_is_kept_without_and_shown_with_a_trailing_slash(base_url: str, shown: str) -> None:
    time = FakeTime()
    api = PersonAPI(
        base_url=base_url,
        api_key=SecretStr(CANARY),
        limiter=_limiter(time, Sleeper(time)),
        retry=RetryPolicy(),
        timeout=httpx2.Timeout(5.0),
        user_agent=USER_AGENT,
    )

    assert api.base_url == base_url.rstrip("/")
    assert repr(api) == f"PersonAPI(base_url={shown!r})"
