"""`PersonAPI`: the only code that talks HTTP to the upstream.

One `httpx2.AsyncClient` with explicit timeouts and no redirects; the key is attached per request by an
auth object whose repr is masked, so it never shows up in client or request reprs. Retries are bounded and
only for failures that were not billed: a 429 (after waiting the reset), a 5xx, or a request that never
reached the upstream. A request that may have been processed (timeout or dropped connection after sending)
is never retried, because a retry could be charged twice.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, cast

import anyio
import anyio.lowlevel
import httpx2
from pydantic import SecretStr, TypeAdapter, ValidationError

from person_enrich_mcp.api.limiter import RateLimiter
from person_enrich_mcp.api.models import APIResult, EnrichEntry, MatchType, RateLimitInfo, SearchPage
from person_enrich_mcp.errors import (
    APIConnectionError,
    APIOutcomeUnknownError,
    APIResponseError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    InsufficientCreditsError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)
from person_enrich_mcp.metrics import Metrics

logger = logging.getLogger(__name__)

API_VERSION = "2025-11-01"
ENRICH = "enrich"
SEARCH = "search"
_PATHS = {ENRICH: "/person/enrich", SEARCH: "/person/search"}
_MAX_MESSAGE = 1500
_ENTRIES = TypeAdapter(list[EnrichEntry])


class _BearerAuth(httpx2.Auth):
    """Adds the key to each request; keeps it out of `client.headers` and out of reprs."""

    def __init__(self, key: SecretStr) -> None:
        self._key = key

    def auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
        request.headers["authorization"] = f"Bearer {self._key.get_secret_value()}"
        yield request

    def __repr__(self) -> str:
        return "_BearerAuth('**********')"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: bounded retries with exponential backoff and jitter, and a bounded 429 wait."""

    max_retries: int = 2
    max_rate_limited_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_wait: float = 60.0


class _NotSent(Exception):
    """The request never reached the upstream, so retrying cannot charge twice."""


def _header_decimal(headers: Mapping[str, str], name: str) -> Decimal | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() and value >= 0 else None


def _header_float(headers: Mapping[str, str], name: str) -> float | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _rate_limit_info(headers: Mapping[str, str]) -> RateLimitInfo | None:
    limit = _header_float(headers, "x-ratelimit-limit")
    remaining = _header_float(headers, "x-ratelimit-remaining")
    reset = _header_float(headers, "x-ratelimit-reset")
    if limit is None and remaining is None and reset is None:
        return None
    return RateLimitInfo(
        limit=int(limit) if limit is not None else None,
        remaining=int(remaining) if remaining is not None else None,
        reset_seconds=reset,
    )


def _error_details(content: bytes) -> tuple[str | None, str, dict[str, Any]]:
    """(type, message, metadata) from either envelope: nested `{"error": {...}}` or flat `{"message"}`."""
    try:
        body: Any = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None, "", {}
    if not isinstance(body, dict):
        return None, "", {}
    body = cast(dict[str, Any], body)
    error: Any = body.get("error")
    if isinstance(error, dict):
        error = cast(dict[str, Any], error)
        metadata: Any = error.get("metadata")
        return (
            str(error.get("type")) if error.get("type") is not None else None,
            str(error.get("message") or "")[:_MAX_MESSAGE],
            cast(dict[str, Any], metadata) if isinstance(metadata, dict) else {},
        )
    return None, str(body.get("message") or "")[:_MAX_MESSAGE], {}


def map_status(status: int, content: bytes, request_id: str | None) -> APIStatusError:
    """The exception for an error status, from the status and the body's envelope."""
    error_type, message, metadata = _error_details(content)
    text = message or f"HTTP {status}"
    common: dict[str, Any] = {"status_code": status, "error_type": error_type, "request_id": request_id}
    if status == 401:
        return AuthenticationError("API key rejected", **common)
    if status == 402 or (status == 403 and ("credit" in text.lower() or error_type == "insufficient_credits")):
        return InsufficientCreditsError(text, **common)
    if status == 403:
        denied: Any = metadata.get("denied_fields")
        fields = tuple(str(f) for f in cast(list[Any], denied)) if isinstance(denied, list) else ()
        return PermissionDeniedError(text, denied_fields=fields, **common)
    if status == 404:
        return NotFoundError(text, **common)
    if status == 429:
        return RateLimitError(text, **common)
    if 400 <= status < 500:
        return BadRequestError(text, **common)
    if 300 <= status < 400:  # redirects are not followed: the base URL points somewhere else
        return BadRequestError(f"unexpected redirect (HTTP {status}); check PERSON_ENRICH_API_BASE_URL", **common)
    return ServerError(text, **common)


class PersonAPI:
    """Async client of the Person API (`x-api-version: 2025-11-01`)."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: SecretStr,
        limiter: RateLimiter,
        retry: RetryPolicy,
        timeout: httpx2.Timeout,
        user_agent: str,
        transport: httpx2.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics if metrics is not None else Metrics()
        self._key_bytes = api_key.get_secret_value().encode()
        self._limiter = limiter
        self._retry = retry
        self._sleep = sleep
        self._random = random.Random()
        self._base_url = base_url.rstrip("/")
        # Parsed now, as the client's constructor would: a malformed base URL still fails at start-up.
        shown = httpx2.URL(self._base_url)
        if not shown.raw_path.endswith(b"/"):
            shown = shown.copy_with(raw_path=shown.raw_path + b"/")
        self._shown_url = str(shown)
        self._timeout = timeout
        self._transport = transport
        self._auth = _BearerAuth(api_key)
        self._user_agent = user_agent
        # Built on first use: creating the client loads the TLS trust store, which is most of a tenth of a second
        # that a server would otherwise spend before it can answer `initialize`.
        self._client: httpx2.AsyncClient | None = None
        self._closed = False

    @property
    def _http(self) -> httpx2.AsyncClient:
        if self._client is None:
            if self._closed:
                raise RuntimeError("Cannot send a request, as the client has been closed.")
            self._client = httpx2.AsyncClient(
                base_url=self._base_url,
                timeout=self._timeout,
                transport=self._transport,
                auth=self._auth,
                follow_redirects=False,
                headers={
                    "x-api-version": API_VERSION,
                    "content-type": "application/json",
                    "accept": "application/json",
                    "user-agent": self._user_agent,
                },
                limits=httpx2.Limits(max_connections=32, max_keepalive_connections=16),
            )
        return self._client

    def __repr__(self) -> str:
        return f"PersonAPI(base_url={self._shown_url!r})"

    async def aclose(self) -> None:
        """Close the connection pool."""
        self._closed = True
        if self._client is not None:
            await self._client.aclose()

    async def enrich(
        self,
        *,
        match_type: MatchType,
        identifiers: list[str],
        fields: list[str],
        min_similarity_score: float | None = None,
        force_fetch: bool = False,
        enrich_realtime: bool = False,
    ) -> APIResult[list[EnrichEntry]]:
        """`POST /person/enrich` for at most 25 identifiers of one kind; a 404 reads as "no match" for all."""
        key = (
            "professional_network_profile_urls"
            if match_type == "professional_network_profile_url"
            else ("business_emails")
        )
        body: dict[str, Any] = {key: identifiers, "fields": fields}
        if min_similarity_score is not None:
            body["min_similarity_score"] = min_similarity_score
        # Sent only when set: newer upstream revisions may reject the flags altogether.
        if force_fetch:
            body["force_fetch"] = True
        if enrich_realtime:
            body["enrich_realtime"] = True
        try:
            payload, credits, request_id, limits = await self._call(ENRICH, body)
        except NotFoundError as exc:
            empty = [EnrichEntry(matched_on=i, match_type=match_type, matches=[]) for i in identifiers]
            return APIResult(empty, Decimal(0), exc.request_id, None)
        try:
            entries = _ENTRIES.validate_python(payload)
        except ValidationError:
            raise APIResponseError(
                "enrich answer is not the documented array", request_id=request_id, credits_used=credits
            ) from None
        return APIResult(entries, credits, request_id, limits)

    async def search(
        self,
        *,
        filters: dict[str, Any],
        sorts: list[dict[str, Any]],
        limit: int,
        cursor: str | None,
        fields: list[str],
    ) -> APIResult[SearchPage]:
        """`POST /person/search` for one page."""
        body: dict[str, Any] = {"filters": filters, "limit": limit, "fields": fields}
        if sorts:
            body["sorts"] = sorts
        if cursor:
            body["cursor"] = cursor
        payload, credits, request_id, limits = await self._call(SEARCH, body)
        try:
            page = SearchPage.model_validate(payload)
        except ValidationError:
            raise APIResponseError(
                "search answer is not the documented object", request_id=request_id, credits_used=credits
            ) from None
        return APIResult(page, credits, request_id, limits)

    def _backoff(self, attempt: int) -> float:
        delay = min(self._retry.base_delay * (2 ** (attempt - 1)), self._retry.max_delay)
        return delay + self._random.uniform(0, delay / 4)

    async def _call(
        self, endpoint: str, body: dict[str, Any]
    ) -> tuple[Any, Decimal | None, str | None, RateLimitInfo | None]:
        failures = 0
        limited = 0
        waited_on_429 = 0.0
        while True:
            # A paid request starts only from a checkpoint: a cancelled call stops here, before the next batch,
            # even when the store and the limiter answer without yielding.
            await anyio.lowlevel.checkpoint()
            waited = await self._limiter.acquire(endpoint)
            if waited > 0:
                self._metrics.inc("person_enrich_rate_limit_waits_total", endpoint=endpoint)
                self._metrics.inc("person_enrich_rate_limit_wait_seconds_total", waited, endpoint=endpoint)
            started = time.perf_counter()
            try:
                # Shielded: once a paid request is on the wire its answer (and its charge) must be read and
                # recorded, even if the tool call is being cancelled.
                answer: tuple[int, httpx2.Headers, bytes] | None = None
                with anyio.CancelScope(shield=True):
                    answer = await self._send(endpoint, body)
            except _NotSent as exc:
                self._metrics.inc("person_enrich_upstream_requests_total", endpoint=endpoint, status="not_sent")
                failures += 1
                if failures <= self._retry.max_retries:
                    await self._sleep(self._backoff(failures))
                    continue
                raise APIConnectionError(
                    f"could not connect to the Person API ({type(exc.__cause__).__name__})"
                ) from exc
            if answer is None:  # pragma: no cover - a shielded scope cannot swallow the send
                raise APIOutcomeUnknownError(f"no answer to the {endpoint} request")
            status, headers, content = answer
            if status >= 300:
                content = content.replace(self._key_bytes, b"[redacted]")  # never relay the key, even if echoed
            self._metrics.inc("person_enrich_upstream_requests_total", endpoint=endpoint, status=str(status))
            self._metrics.observe(
                "person_enrich_upstream_latency_seconds", time.perf_counter() - started, endpoint=endpoint
            )
            request_id = headers.get("x-request-id")
            credits = _header_decimal(headers, "x-credits-used")
            limits = _rate_limit_info(headers)
            if limits is not None:
                self._limiter.observe(endpoint, remaining=limits.remaining, reset_seconds=limits.reset_seconds)
            logger.debug(
                "upstream %s -> %s in %.0f ms, credits %s",
                endpoint, status, (time.perf_counter() - started) * 1000, credits,
            )  # fmt: skip
            if 200 <= status < 300:
                try:
                    return json.loads(content), credits, request_id, limits
                except (ValueError, UnicodeDecodeError):
                    raise APIResponseError(
                        "the answer is not valid JSON", request_id=request_id, credits_used=credits
                    ) from None
            if status == 429:
                wait = _header_float(headers, "retry-after")
                if wait is None:
                    wait = limits.reset_seconds if limits and limits.reset_seconds is not None else 1.0
                wait += self._random.uniform(0, 0.25)
                if limited < self._retry.max_rate_limited_retries and waited_on_429 + wait <= self._retry.max_wait:
                    limited += 1
                    waited_on_429 += wait
                    await self._sleep(wait)
                    continue
                error = map_status(status, content, request_id)
                assert isinstance(error, RateLimitError)
                error.retry_after = wait
                raise error
            if status >= 500 and failures < self._retry.max_retries:
                failures += 1
                await self._sleep(self._backoff(failures))
                continue
            raise map_status(status, content, request_id)

    async def _send(self, endpoint: str, body: dict[str, Any]) -> tuple[int, httpx2.Headers, bytes]:
        request = self._http.build_request("POST", _PATHS[endpoint], json=body)
        try:
            response = await self._http.send(request, stream=True)
        except (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout) as exc:
            raise _NotSent() from exc
        except httpx2.TransportError as exc:
            raise APIOutcomeUnknownError(f"no answer to the {endpoint} request ({type(exc).__name__})") from None
        try:
            content = await response.aread()
        except httpx2.TransportError as exc:
            raise APIResponseError(
                f"the {endpoint} answer was cut off ({type(exc).__name__})",
                request_id=response.headers.get("x-request-id"),
                credits_used=_header_decimal(response.headers, "x-credits-used"),
            ) from None
        finally:
            await response.aclose()
        return response.status_code, response.headers, content
