"""`PersonAPI`: the only code that talks HTTP to the upstream.

One `httpx2.AsyncClient` with explicit timeouts and no redirects; the key is attached per request by an
auth object whose repr is masked, so it never shows up in client or request reprs. Retries are bounded and
only for failures that were not billed: a 429 (after waiting the reset), a 5xx, or a request that never
reached the upstream. A request that may have been processed (timeout or dropped connection after sending)
is never retried, because a retry could be charged twice, and neither is any answer that reported credits in
`x-credits-used`, whatever its status.

Each upstream endpoint's request and response shapes live in their own module (`enrich`, `contact`, `live`,
`search`, `account`); this class only sends them.
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

from person_enrich_mcp.api import account, contact, enrich, live, search
from person_enrich_mcp.api.contract import (
    ACCOUNT,
    ACCOUNT_ENDPOINTS_PATH,
    AUTOCOMPLETE,
    CONTACT,
    ENRICH,
    LIVE,
    PATHS,
    SEARCH,
    USER_CREDITS_PATH,
)
from person_enrich_mcp.api.limiter import RateLimiter, requester
from person_enrich_mcp.api.models import (
    AccountListing,
    APIResult,
    EnrichEntry,
    MatchType,
    RateLimitInfo,
    SearchPage,
    Suggestions,
    UserCredits,
)
from person_enrich_mcp.errors import (
    APIConnectionError,
    APIOutcomeUnknownError,
    APIResponseError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    EndpointMissingError,
    InsufficientCreditsError,
    NotFoundError,
    PermissionDeniedError,
    PersonEnrichError,
    RateLimitError,
    ServerError,
)
from person_enrich_mcp.metrics import Metrics
from person_enrich_mcp.tracing import NO_TRACING, Span, Tracer
from person_enrich_mcp.untrusted import clean_data, clean_text, needs_cleaning

logger = logging.getLogger(__name__)

API_VERSION = "2025-11-01"
_MAX_MESSAGE = 1500
_ENTRIES = TypeAdapter(list[EnrichEntry])
# What a failed or refused call costs when the answer does not say (`x-credits-used` absent): nothing.
_UNBILLED = Decimal(0)


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


@dataclass(slots=True)
class _Tries:
    """How often one request has been tried, and why."""

    attempt: int = 0
    failures: int = 0  # not sent, or a 5xx
    limited: int = 0  # 429s
    waited_on_429: float = 0.0


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


def _denied_fields(metadata: Any) -> tuple[str, ...]:
    """Fields a 403 names: `metadata.denied_fields`, or (as seen on the live service) a list of such entries."""
    entries: list[Any] = cast(list[Any], metadata) if isinstance(metadata, list) else [metadata]
    denied: list[str] = []
    for entry in entries:
        names: Any = cast(dict[str, Any], entry).get("denied_fields") if isinstance(entry, dict) else None
        if isinstance(names, list):
            denied.extend(str(name) for name in cast(list[Any], names))
    return tuple(dict.fromkeys(denied))


def _shorten(message: str) -> str:
    """An upstream message of at most `_MAX_MESSAGE` characters, cut between words (never inside a name)."""
    if len(message) <= _MAX_MESSAGE:
        return message
    head = message[: _MAX_MESSAGE - 2]
    cut = max(head.rfind(", "), head.rfind(" "))
    return (head[:cut] if cut > 0 else head).rstrip(" ,[") + " …"


def _error_details(content: bytes) -> tuple[str | None, str, Any]:
    """(type, message, metadata) from either envelope: nested `{"error": {...}}` or flat `{"message"}`."""
    try:
        body: Any = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None, "", None
    if not isinstance(body, dict):
        return None, "", None
    body = cast(dict[str, Any], body)
    error: Any = body.get("error")
    if isinstance(error, dict):
        error = cast(dict[str, Any], error)
        return (
            str(error.get("type")) if error.get("type") is not None else None,
            _shorten(clean_text(str(error.get("message") or ""))),
            error.get("metadata"),
        )
    return None, _shorten(clean_text(str(body.get("message") or ""))), None


def _nested(content: bytes) -> bool:
    """True when an error body uses the API's `{"error": {...}}` envelope (a bare route 404 does not)."""
    try:
        body: Any = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(body, dict) and isinstance(cast(dict[str, Any], body).get("error"), dict)


def map_status(
    status: int, content: bytes, request_id: str | None, credits_used: Decimal | None = None
) -> APIStatusError:
    """The exception for an error status, from the status and the body's envelope (and the answer's bill)."""
    error_type, message, metadata = _error_details(content)
    text = message or f"HTTP {status}"
    common: dict[str, Any] = {
        "status_code": status,
        "error_type": error_type,
        "request_id": request_id,
        "credits_used": credits_used,
    }
    if status == 401:
        return AuthenticationError("API key rejected", **common)
    if status == 402 or (status == 403 and ("credit" in text.lower() or error_type == "insufficient_credits")):
        return InsufficientCreditsError(text, **common)
    if status == 403:
        return PermissionDeniedError(text, denied_fields=_denied_fields(metadata), **common)
    if status == 404:
        if error_type is None and _nested(content):
            common["error_type"] = "not_found"  # the API's own "no data" envelope, whatever its type says
        return NotFoundError(text, **common)
    if status == 429:
        return RateLimitError(text, **common)
    if 400 <= status < 500:
        return BadRequestError(text, **common)
    if 300 <= status < 400:  # redirects are not followed: the base URL points somewhere else
        return BadRequestError(f"unexpected redirect (HTTP {status}); check PERSON_ENRICH_API_BASE_URL", **common)
    return ServerError(text, **common)


class PersonAPI:
    """Async client of the Person API (`x-api-version: 2025-11-01`): one method per upstream endpoint."""

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
        tracer: Tracer = NO_TRACING,
    ) -> None:
        self._metrics = metrics if metrics is not None else Metrics()
        self._tracer = tracer
        self._server_address = httpx2.URL(base_url).host
        self._key_bytes = api_key.get_secret_value().encode()
        self.limiter = limiter
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

    @property
    def base_url(self) -> str:
        """The upstream's base URL as configured (no credentials can be in it: they would fail validation)."""
        return self._base_url

    async def aclose(self) -> None:
        """Close the connection pool."""
        self._closed = True
        if self._client is not None:
            await self._client.aclose()

    # --- enrichment endpoints ----------------------------------------------------------------------------------

    async def enrich_profiles(self, urls: list[str], groups: list[str]) -> APIResult[list[EnrichEntry]]:
        """`POST /person/enrich` (today's contract): profile section groups for at most 25 profile URLs."""
        return await self._entries(ENRICH, enrich.profile_body(urls, groups), "professional_network_profile_url", urls)

    async def enrich_live(self, urls: list[str], groups: list[str]) -> APIResult[list[EnrichEntry]]:
        """`POST /person/professional_network/enrich/live`: fresh profiles fetched from the web at request time."""
        return await self._entries(LIVE, live.live_body(urls, groups), "professional_network_profile_url", urls)

    async def enrich_contacts(
        self, match_type: MatchType, identifiers: list[str], tiers: list[str], *, verified: bool = False
    ) -> APIResult[list[EnrichEntry]]:
        """`POST /person/contact/enrich`: only the contact tiers asked for (never the all-tiers default)."""
        body = contact.contact_body(match_type, identifiers, tiers, verified=verified)
        return await self._entries(CONTACT, body, match_type, identifiers)

    async def enrich_overview(
        self,
        match_type: MatchType,
        identifiers: list[str],
        fields: list[str],
        *,
        min_similarity_score: float | None = None,
        force_fetch: bool = False,
        enrich_realtime: bool = False,
    ) -> APIResult[list[EnrichEntry]]:
        """`POST /person/enrich` as the overview describes it: either identifier kind, any field path, the flags."""
        body = enrich.overview_body(
            match_type,
            identifiers,
            fields,
            min_similarity_score=min_similarity_score,
            force_fetch=force_fetch,
            enrich_realtime=enrich_realtime,
        )
        return await self._entries(ENRICH, body, match_type, identifiers)

    async def _entries(
        self, endpoint: str, body: dict[str, Any], match_type: str, identifiers: list[str]
    ) -> APIResult[list[EnrichEntry]]:
        """Send one identifier batch; a 404 reads as "no match" for every identifier (the spec's variant).

        Raises:
            EndpointMissingError: when the 404 is for a route this upstream does not have (checked for free).
        """
        try:
            payload, credits, request_id, limits = await self._call(
                endpoint, "POST", PATHS[endpoint], body=body, identifiers=len(identifiers)
            )
        except NotFoundError as exc:
            # A route that does not exist answers a flat 404 too: on the endpoints today's revision added, ask
            # with an empty body (a 400 where the route exists, never billed) before reading it as "no match".
            if endpoint in (CONTACT, LIVE) and exc.error_type is None and await self._route_exists(endpoint) is False:
                raise EndpointMissingError(
                    f"{PATHS[endpoint]} answered 404 Not Found", status_code=404, request_id=exc.request_id
                ) from None
            empty = [EnrichEntry(matched_on=i, match_type=match_type, matches=[]) for i in identifiers]
            return APIResult(
                empty, exc.credits_used if exc.credits_used is not None else _UNBILLED, exc.request_id, None
            )
        try:
            entries = _ENTRIES.validate_python(payload)
        except ValidationError:
            raise APIResponseError(
                f"the {endpoint} answer is not the documented array", request_id=request_id, credits_used=credits
            ) from None
        return APIResult(entries, credits, request_id, limits)

    # --- search ------------------------------------------------------------------------------------------------

    async def search(self, request: search.SearchRequest) -> APIResult[SearchPage]:
        """`POST /person/search` for one page."""
        payload, credits, request_id, limits = await self._call(SEARCH, "POST", PATHS[SEARCH], body=request.body())
        try:
            page = SearchPage.model_validate(payload)
        except ValidationError:
            raise APIResponseError(
                "search answer is not the documented object", request_id=request_id, credits_used=credits
            ) from None
        return APIResult(page, credits, request_id, limits)

    async def autocomplete(self, field: str, query: str, limit: int) -> APIResult[Suggestions]:
        """`POST /person/search/autocomplete`: exact indexed values for a filter field. Free."""
        body = search.autocomplete_body(field, query, limit)
        payload, credits, request_id, limits = await self._call(AUTOCOMPLETE, "POST", PATHS[AUTOCOMPLETE], body=body)
        try:
            suggestions = Suggestions.model_validate(payload)
        except ValidationError:
            raise APIResponseError("autocomplete answer is not the documented object", request_id=request_id) from None
        return APIResult(suggestions, credits, request_id, limits)

    # --- account endpoints (free) ------------------------------------------------------------------------------

    async def account_endpoints(self, *, category: str | None = None) -> APIResult[AccountListing]:
        """`GET /account/endpoints`, filtered to one product category (the whole listing is about 76 KB)."""
        params = {"category": category} if category else None
        payload, credits, request_id, limits = await self._call(ACCOUNT, "GET", ACCOUNT_ENDPOINTS_PATH, params=params)
        return APIResult(account.parse_listing(payload, request_id), credits, request_id, limits)

    async def user_credits(self) -> APIResult[UserCredits]:
        """`GET /user/credits`: the account's balance."""
        payload, credits, request_id, limits = await self._call(ACCOUNT, "GET", USER_CREDITS_PATH)
        return APIResult(account.parse_credits(payload, request_id), credits, request_id, limits)

    async def contact_route_exists(self) -> bool | None:
        """Whether `/person/contact/enrich` exists (see `_route_exists`).

        Raises:
            AuthenticationError: when the key is rejected.
        """
        return await self._route_exists(CONTACT)

    async def key_accepted(self) -> bool | None:
        """Whether the upstream accepts the key, asked for free: an empty enrich is a 400 after authentication."""
        try:
            await self._call(ENRICH, "POST", PATHS[ENRICH], body={})
        except AuthenticationError:
            return False
        except BadRequestError as exc:
            return True if exc.status_code == 400 else None
        except (NotFoundError, PermissionDeniedError):
            return True
        except PersonEnrichError:
            return None
        return True

    async def _route_exists(self, endpoint: str) -> bool | None:
        """Whether an endpoint exists, asked for free: an empty body is a 400 there (a 403 without the plan), a 404
        where it does not exist. None when the answer tells neither.

        Raises:
            AuthenticationError: when the key is rejected.
        """
        try:
            await self._call(endpoint, "POST", PATHS[endpoint], body={})
        except NotFoundError:
            return False
        except BadRequestError as exc:
            # A 400 is the endpoint refusing the empty body; a redirect tells nothing about it.
            return True if exc.status_code == 400 else None
        except PermissionDeniedError:
            return True  # not on this plan, but the endpoint exists
        except AuthenticationError:
            raise
        except PersonEnrichError:
            return None
        return True

    # --- transport ---------------------------------------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        delay = min(self._retry.base_delay * (2 ** (attempt - 1)), self._retry.max_delay)
        return delay + self._random.uniform(0, delay / 4)

    async def _call(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        identifiers: int | None = None,
    ) -> tuple[Any, Decimal | None, str | None, RateLimitInfo | None]:
        tries = _Tries()
        while True:
            tries.attempt += 1
            # One span per request sent (or refused a rate-limit slot), its wait for the slot included.
            with self._tracer.span(
                f"{method} {path}", kind="client", endpoint=endpoint, identifiers=identifiers, attempt=tries.attempt,
                **{"http.request.method": method, "url.path": path, "server.address": self._server_address},
            ) as span:  # fmt: skip
                outcome = await self._attempt(endpoint, method, path, body, params, tries, span)
            if isinstance(outcome, tuple):
                return outcome
            await self._sleep(outcome)  # not billed, and worth another try after this pause

    async def _attempt(
        self,
        endpoint: str,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        params: dict[str, str] | None,
        tries: _Tries,
        span: Span,
    ) -> tuple[Any, Decimal | None, str | None, RateLimitInfo | None] | float:
        """One request: its answer, or the seconds to pause before trying again.

        Raises:
            PersonEnrichError: for an answer or failure that is not to be retried (see the module docstring).
        """
        # A paid request starts only from a checkpoint: a cancelled call stops here, before the next batch,
        # even when the store and the limiter answer without yielding.
        await anyio.lowlevel.checkpoint()
        waited = await self.limiter.acquire(endpoint)
        span.set(rate_limit_wait_seconds=waited)
        if waited > 0:
            self._metrics.inc("person_enrich_rate_limit_waits_total", endpoint=endpoint)
            self._metrics.inc("person_enrich_rate_limit_wait_seconds_total", waited, endpoint=endpoint)
        started = time.perf_counter()
        try:
            # Shielded: once a paid request is on the wire its answer (and its charge) must be read and
            # recorded, even if the tool call is being cancelled.
            answer: tuple[int, httpx2.Headers, bytes] | None = None
            with anyio.CancelScope(shield=True):
                answer = await self._send(endpoint, method, path, body, params)
        except _NotSent as exc:
            self._metrics.inc("person_enrich_upstream_requests_total", endpoint=endpoint, status="not_sent")
            span.set(**{"error.type": "not_sent"})
            tries.failures += 1
            if tries.failures <= self._retry.max_retries:
                return self._backoff(tries.failures)
            raise APIConnectionError(f"could not connect to the Person API ({type(exc.__cause__).__name__})") from exc
        if answer is None:  # pragma: no cover - a shielded scope cannot swallow the send
            raise APIOutcomeUnknownError(f"no answer to the {endpoint} request")
        status, headers, content = answer
        if status >= 300:
            content = content.replace(self._key_bytes, b"[redacted]")  # never relay the key, even if echoed
        elapsed = time.perf_counter() - started
        self._metrics.inc("person_enrich_upstream_requests_total", endpoint=endpoint, status=str(status))
        if (who := requester()) is not None:
            self._metrics.inc(
                "person_enrich_principal_upstream_requests_total", principal=self._metrics.principal(who),
                endpoint=endpoint,
            )  # fmt: skip
        self._metrics.observe("person_enrich_upstream_latency_seconds", elapsed, endpoint=endpoint)
        request_id = headers.get("x-request-id")
        credits = _header_decimal(headers, "x-credits-used")
        if credits is not None:
            self._metrics.inc("person_enrich_upstream_credits_total", float(credits), endpoint=endpoint)
        limits = _rate_limit_info(headers)
        span.set(
            credits=credits, credits_reported=credits is not None, response_bytes=len(content),
            **{"http.response.status_code": status},
        )  # fmt: skip
        if limits is not None:
            self.limiter.observe(endpoint, remaining=limits.remaining, reset_seconds=limits.reset_seconds)
            span.set(rate_limit_remaining=limits.remaining)
        logger.debug("upstream %s -> %s in %.0f ms, credits %s", endpoint, status, elapsed * 1000, credits)
        if 200 <= status < 300:
            try:
                payload: Any = json.loads(content)
            except (ValueError, UnicodeDecodeError):
                raise APIResponseError(
                    "the answer is not valid JSON", request_id=request_id, credits_used=credits
                ) from None
            # Profile text is third-party: cleaned here, before anything can cache, log or return it.
            return (clean_data(payload) if needs_cleaning(content) else payload), credits, request_id, limits
        span.set(**{"error.type": str(status)})
        # An answer that reports a bill was processed, whatever its status: retrying would pay twice.
        billed = credits is not None and credits > 0
        if status == 429 and not billed:
            wait = _header_float(headers, "retry-after")
            if wait is None:
                wait = limits.reset_seconds if limits and limits.reset_seconds is not None else 1.0
            wait += self._random.uniform(0, 0.25)
            if (
                tries.limited < self._retry.max_rate_limited_retries
                and tries.waited_on_429 + wait <= self._retry.max_wait
            ):
                tries.limited += 1
                tries.waited_on_429 += wait
                span.set(retry_after_seconds=wait)
                return wait
            error = map_status(status, content, request_id, credits)
            assert isinstance(error, RateLimitError)
            error.retry_after = wait
            raise error
        if status >= 500 and not billed and tries.failures < self._retry.max_retries:
            tries.failures += 1
            pause = self._backoff(tries.failures)
            span.set(retry_after_seconds=pause)
            return pause
        raise map_status(status, content, request_id, credits)

    async def _send(
        self, endpoint: str, method: str, path: str, body: dict[str, Any] | None, params: dict[str, str] | None
    ) -> tuple[int, httpx2.Headers, bytes]:
        request = self._http.build_request(method, path, json=body, params=params)
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
