"""The sandbox's Starlette app: `/person/enrich`, `/person/search` and the `/_sandbox/*` admin endpoints.

Every API request runs the same pipeline, in the upstream's order: version header -> auth -> rate limit ->
fault injection -> body validation -> balance -> process -> bill.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import gzip
import hashlib
import itertools
import json
import logging
import random
import re
import secrets
import socket
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

import anyio
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from person_enrich_mcp.sandbox.billing import Ledger, credits_str, fingerprint
from person_enrich_mcp.sandbox.catalog import (
    SEARCH_CREDITS_PER_PROFILE,
    FieldCatalog,
    build_tree,
    enrich_selection,
    enrich_unit_cost,
    gated_hits,
    project,
    strip_gated,
)
from person_enrich_mcp.sandbox.config import ConfigError, FaultRule, SandboxConfig, parse_credits
from person_enrich_mcp.sandbox.dataset import Dataset, EmailCandidate, Person, generate_dataset
from person_enrich_mcp.sandbox.faults import FaultInjector
from person_enrich_mcp.sandbox.filters import FilterError, SearchIndex, compile_filters, compile_sorts, positions
from person_enrich_mcp.sandbox.ratelimit import RateDecision, RateLimiter

logger = logging.getLogger(__name__)

API_VERSION = "2025-11-01"
MAX_IDENTIFIERS = 25
MAX_SEARCH_LIMIT = 1000
DEFAULT_SEARCH_LIMIT = 20
ENRICH_KEYS = (
    "professional_network_profile_urls",
    "business_emails",
    "fields",
    "min_similarity_score",
    "force_fetch",
    "enrich_realtime",
    "preview",
)
SEARCH_KEYS = (
    "filters",
    "sorts",
    "limit",
    "count",
    "fields",
    "cursor",
    "post_processing",
    "preview",
    "explain",
    "return_query",
)
IDENTIFIER_KINDS = ("url", "email", "multi_email", "opted_out_url")

_PROFILE_URL = re.compile(r"^https?://(?:(?:www|[a-z]{2})\.)?linkedin\.com/in/([^/?#\s]+)/?$", re.IGNORECASE)
_EMAIL = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}$")
_FAULT_5XX = {
    500: ("internal_error", "Internal server error"),
    502: ("bad_gateway", "Bad gateway"),
    503: ("service_unavailable", "Service temporarily unavailable"),
    504: ("gateway_timeout", "Gateway timeout"),
}


class ApiError(Exception):
    """An upstream-style error answer: status, envelope type, message and metadata."""

    def __init__(self, status: int, error_type: str, message: str, metadata: dict[str, Any] | list[Any] | None = None):
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.metadata: dict[str, Any] | list[Any] = metadata if metadata is not None else []

    def payload(self) -> dict[str, Any]:
        """The `{"error": {type, message, metadata}}` envelope."""
        return {"error": {"type": self.error_type, "message": self.message, "metadata": self.metadata}}


def _invalid(message: str, metadata: dict[str, Any] | list[Any] | None = None) -> ApiError:
    return ApiError(400, "invalid_request", message, metadata)


@dataclass
class Outcome:
    """What processing produced: the status and JSON payload to send, and the credits it costs."""

    status: int
    payload: Any
    cost: Decimal = Decimal(0)


@dataclass
class SandboxState:
    """Everything the running sandbox holds: config, dataset, indices, ledger, limiter, faults, connections."""

    config: SandboxConfig
    initial_config: SandboxConfig
    dataset: Dataset
    catalog: FieldCatalog
    search_index: SearchIndex
    ledger: Ledger
    limiter: RateLimiter
    faults: FaultInjector
    # Filled by the server's protocol class so faults can cut a connection; empty for in-process ASGI use.
    transports: dict[tuple[str, int], asyncio.Transport] = field(
        default_factory=dict[tuple[str, int], asyncio.Transport]
    )
    hanging: set[asyncio.Transport] = field(default_factory=set[asyncio.Transport])
    # API requests received and not yet answered: lets a test act while a call is on the wire.
    in_flight: int = 0
    _samples: dict[str, list[str]] = field(default_factory=dict[str, list[str]])

    def reset(self) -> None:
        """Back to the state at start: start-up config and fault rules, empty ledger and rate windows."""
        config = self.initial_config
        self.config = config
        self.ledger = Ledger(config.balance)
        self.limiter = RateLimiter(config.clock)
        self.faults = FaultInjector(config.faults, config.fault_seed)

    def release_hanging(self) -> None:
        """Abort every connection held open by a `timeout` fault (called on shutdown, in the server's loop)."""
        for transport in list(self.hanging):
            transport.abort()
        self.hanging.clear()

    def identifiers(self, kind: str) -> list[str]:
        """A deterministic shuffled list of valid identifiers of one kind (cached)."""
        cached = self._samples.get(kind)
        if cached is not None:
            return cached
        dataset = self.dataset
        if kind == "url":
            items = [p.profile_url for p in dataset.searchable]
        elif kind == "email":
            items = [p.business_emails[0] for p in dataset.searchable if p.business_emails]
        elif kind == "multi_email":
            items = list(dataset.multi_candidate_emails())
        else:
            items = [p.profile_url for p in dataset.people if p.opted_out]
        random.Random(f"{dataset.seed}:{kind}").shuffle(items)
        self._samples[kind] = items
        return items


@functools.lru_cache(maxsize=4)
def _prepared(seed: int, people: int, companies: int) -> tuple[Dataset, FieldCatalog, SearchIndex]:
    # Datasets are immutable once built, so apps in one process (tests, benchmarks) share one per size.
    dataset = generate_dataset(seed, people, companies)
    return dataset, FieldCatalog(dataset), SearchIndex(dataset)


def build_state(config: SandboxConfig) -> SandboxState:
    """Generate (or reuse) the dataset and build the run-time state for `config`."""
    dataset, catalog, index = _prepared(config.seed, config.people, config.companies)
    _check_gated(config.gated_fields, catalog)
    return SandboxState(
        config=config,
        initial_config=config,
        dataset=dataset,
        catalog=catalog,
        search_index=index,
        ledger=Ledger(config.balance),
        limiter=RateLimiter(config.clock),
        faults=FaultInjector(config.faults, config.fault_seed),
    )


def _check_gated(gated: Sequence[str], catalog: FieldCatalog) -> None:
    unknown = [g for g in gated if g not in catalog.enrich_paths]
    if unknown:
        raise ConfigError(f"gated field(s) not in the enrich catalog: {', '.join(unknown)}")


def create_app(config: SandboxConfig | None = None) -> Starlette:
    """The sandbox as a Starlette app; its state is at `app.state.sandbox`."""
    state = build_state(config if config is not None else SandboxConfig())
    handlers = _Handlers(state)
    routes = [
        Route("/person/enrich", handlers.enrich, methods=["POST"]),
        Route("/person/search", handlers.search, methods=["POST"]),
        Route("/_sandbox/health", handlers.health, methods=["GET"]),
        Route("/_sandbox/ledger", handlers.ledger, methods=["GET", "DELETE"]),
        Route("/_sandbox/balance", handlers.balance, methods=["POST"]),
        Route("/_sandbox/faults", handlers.faults, methods=["GET", "POST", "DELETE"]),
        Route("/_sandbox/identifiers", handlers.identifiers, methods=["GET"]),
        Route("/_sandbox/config", handlers.config, methods=["GET", "POST"]),
        Route("/_sandbox/reset", handlers.reset, methods=["POST"]),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(RequestIdMiddleware), Middleware(InFlightMiddleware, state)])
    app.state.sandbox = state
    return app


class InFlightMiddleware:
    """Counts API requests from arrival until their response is fully sent (or the connection drops)."""

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count `/person/*` requests while they run."""
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith("/person/"):
            await self.app(scope, receive, send)
            return
        self.state.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.state.in_flight -= 1


class RequestIdMiddleware:
    """Gives every response an `x-request-id` header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Add the header to the response start message."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = f"req_{secrets.token_hex(12)}"

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("x-request-id", request_id)
            await send(message)

        await self.app(scope, receive, send_with_id)


def _json_body(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def _unauthorized(headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"message": "Invalid API key in request"}, 401, headers={"x-credits-used": "0", **(headers or {})}
    )


class _Handlers:
    """Route handlers bound to one sandbox state."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    # --- the API pipeline -------------------------------------------------------------------------------

    async def enrich(self, request: Request) -> Response:
        """POST /person/enrich."""
        return await self._pipeline(request, "enrich", self._process_enrich)

    async def search(self, request: Request) -> Response:
        """POST /person/search."""
        return await self._pipeline(request, "search", self._process_search)

    async def _pipeline(self, request: Request, endpoint: str, process: Callable[[Any], Outcome]) -> Response:
        state = self.state
        config = state.config
        raw = await request.body()
        body: Any = None
        body_ok = True
        try:
            body = json.loads(raw) if raw else None
            body_ok = bool(raw)
        except (ValueError, UnicodeDecodeError):
            body_ok = False

        version = request.headers.get("x-api-version")
        if version != API_VERSION:
            if version is None:
                message = f"Missing required header 'x-api-version'; expected '{API_VERSION}'"
            else:
                message = f"Unsupported x-api-version {version!r}; expected '{API_VERSION}'"
            return self._error_response(_invalid(message), {})
        key = _bearer(request.headers.get("authorization"))
        if key is None or (config.api_keys and key not in config.api_keys):
            return _unauthorized()

        return await self._authorised(endpoint, process, key, body, body_ok)

    async def _authorised(
        self,
        endpoint: str,
        process: Callable[[Any], Outcome],
        key: str,
        body: Any,
        body_ok: bool,
    ) -> Response:
        state = self.state
        config = state.config
        fp = fingerprint(key)
        limit = config.enrich_rpm if endpoint == "enrich" else config.search_rpm
        decision = state.limiter.check(fp, endpoint, limit, config.rate_window, config.rate_limits_enabled)
        headers = decision.headers()
        if not decision.allowed:
            state.ledger.record(fp, endpoint, 429, body=body)
            return self._rate_limited(endpoint, decision, headers)

        fault = state.faults.pick(endpoint)
        if fault is not None:
            early = await self._early_fault(fault, fp, endpoint, body, headers)
            if early is not None:
                return early

        fault_name = fault.kind if fault is not None else None
        try:
            if not body_ok:
                raise _invalid("Request body must be valid JSON")
            outcome = process(body)
        except ApiError as error:
            state.ledger.record(fp, endpoint, error.status, fault=fault_name, body=body)
            return self._finish(error.status, error.payload(), Decimal(0), headers, fault)

        if outcome.cost > 0:
            remaining = state.ledger.remaining(fp)
            if remaining is not None and outcome.cost > remaining:
                error = ApiError(
                    402,
                    "insufficient_credits",
                    f"Insufficient credits: this request needs {credits_str(outcome.cost)}, "
                    f"{credits_str(remaining)} remaining.",
                    {"required": credits_str(outcome.cost), "remaining": credits_str(remaining)},
                )
                state.ledger.record(fp, endpoint, 402, fault=fault_name, body=body)
                return self._finish(402, error.payload(), Decimal(0), headers, fault)
        state.ledger.record(fp, endpoint, outcome.status, outcome.cost, fault=fault_name, body=body)
        return self._finish(outcome.status, outcome.payload, outcome.cost, headers, fault)

    def _finish(
        self, status: int, payload: Any, cost: Decimal, headers: dict[str, str], fault: FaultRule | None
    ) -> Response:
        all_headers = {**headers, "x-credits-used": credits_str(cost)}
        if fault is not None and fault.kind == "malformed":
            # The work was done and billed; only the answer is lost.
            return Response(b'{"profiles": [<html>502 upstream</html>', status, all_headers, "application/json")
        if fault is not None and fault.kind == "truncated":
            return TruncatedResponse(self.state, _json_body(payload), status, all_headers)
        return Response(_json_body(payload), status, all_headers, "application/json")

    def _error_response(self, error: ApiError, headers: dict[str, str]) -> Response:
        return Response(
            _json_body(error.payload()), error.status, {**headers, "x-credits-used": "0"}, "application/json"
        )

    def _rate_limited(self, endpoint: str, decision: RateDecision, headers: dict[str, str]) -> Response:
        config = self.state.config
        error = ApiError(
            429,
            "rate_limit_exceeded",
            f"Rate limit exceeded: {decision.limit} requests per {config.rate_window:g} s on /person/{endpoint}; "
            f"retry in {decision.reset} s",
            {"limit": decision.limit, "window_seconds": config.rate_window, "retry_after_seconds": decision.reset},
        )
        if config.send_retry_after:
            headers = {**headers, "retry-after": str(decision.reset)}
        return self._error_response(error, headers)

    async def _early_fault(
        self,
        fault: FaultRule,
        fp: str,
        endpoint: str,
        body: Any,
        headers: dict[str, str],
    ) -> Response | None:
        """Faults that strike before processing (nothing billed); latency delays and lets the request through."""
        ledger = self.state.ledger
        if fault.kind == "latency":
            await anyio.sleep((fault.ms or 0) / 1000)
            return None
        if fault.kind == "timeout":
            ledger.record(fp, endpoint, "timeout", fault="timeout", body=body)
            return HangResponse(self.state)
        if fault.kind == "reset":
            ledger.record(fp, endpoint, "reset", fault="reset", body=body)
            return ResetResponse(self.state)
        if fault.kind != "status":
            return None
        status = fault.status or 500
        ledger.record(fp, endpoint, status, fault="status", body=body)
        if status == 401:
            return _unauthorized(headers)
        if status == 429:
            config = self.state.config
            limit = config.enrich_rpm if endpoint == "enrich" else config.search_rpm
            peek = self.state.limiter.peek(fp, endpoint, limit, config.rate_window)
            return self._rate_limited(endpoint, peek, peek.headers())
        return self._error_response(_fault_error(fault), headers)

    # --- enrich -------------------------------------------------------------------------------------------

    def _process_enrich(self, body: Any) -> Outcome:
        state = self.state
        config = state.config
        request = _object_body(body, ENRICH_KEYS)
        urls = "professional_network_profile_urls" in request
        emails = "business_emails" in request
        if urls and emails:
            raise _invalid("Provide exactly one of 'professional_network_profile_urls' or 'business_emails', not both")
        if not urls and not emails:
            raise _invalid("Missing identifier: provide 'professional_network_profile_urls' or 'business_emails'")
        key = "professional_network_profile_urls" if urls else "business_emails"
        identifiers = _string_list(request[key], key, max_items=MAX_IDENTIFIERS)
        if urls:
            slugs = [_profile_slug(u) for u in identifiers]
        else:
            slugs = []
            for email in identifiers:
                if not _EMAIL.match(email.strip()):
                    raise _invalid(f"Invalid business email: {email!r}")
        fields = self._enrich_fields(request.get("fields"))
        min_score = request.get("min_similarity_score")
        if min_score is not None and (
            isinstance(min_score, bool) or not isinstance(min_score, int | float) or not 0 <= min_score <= 1
        ):
            raise _invalid(f"'min_similarity_score' must be a number between 0 and 1, or null; got {min_score!r}")
        flags = {name: _optional_bool(request, name) for name in ("force_fetch", "enrich_realtime", "preview")}
        if flags["preview"]:
            raise _invalid("Preview feature is not available for your account")
        if fields is not None:
            denied = gated_hits(fields, config.gated_fields)
            if denied:
                raise ApiError(
                    403,
                    "permission_error",
                    f"Your plan does not include these fields: {', '.join(denied)}",
                    {"denied_fields": denied},
                )

        tree = enrich_selection(
            fields, default_fields=config.default_fields, include_default_families=config.include_default_families
        )
        gated = config.gated_fields

        def shape(person: Person) -> dict[str, Any]:
            data: dict[str, Any] = person.data if tree is None else project(person.data, tree)
            return strip_gated(data, gated) if gated else data

        entries: list[dict[str, Any]] = []
        matched = 0
        for i, identifier in enumerate(identifiers):
            if urls:
                person = state.dataset.lookup_slug(slugs[i])
                candidates = [EmailCandidate(person, 1.0)] if person is not None and not person.opted_out else []
            else:
                candidates = state.dataset.email_candidates(identifier)
            if min_score is not None:
                candidates = [c for c in candidates if c.score >= min_score]
            if candidates:
                matched += 1
            entries.append(
                {
                    "matched_on": identifier,
                    "match_type": "professional_network_profile_url" if urls else "business_email",
                    "matches": [{"confidence_score": c.score, "person_data": shape(c.person)} for c in candidates],
                }
            )
        if not matched and config.no_match_status == 404:
            return Outcome(404, ApiError(404, "not_found", "No data found").payload())
        realtime = bool(flags["force_fetch"] or flags["enrich_realtime"])
        unit = enrich_unit_cost(fields, default_fields=config.default_fields, realtime=realtime)
        return Outcome(200, entries, unit * matched)

    def _enrich_fields(self, value: Any) -> list[str] | None:
        if value is None:
            return None
        fields = _string_list(value, "fields", max_items=None)
        catalog = self.state.catalog
        unknown = [f for f in fields if f not in catalog.enrich_paths]
        if unknown:
            raise _invalid(
                f"Unsupported field(s) in 'fields': {', '.join(repr(u) for u in unknown)}. "
                "See metadata.available_fields for the valid ones.",
                {"available_fields": catalog.enrich_sorted},
            )
        return fields

    # --- search -------------------------------------------------------------------------------------------

    def _process_search(self, body: Any) -> Outcome:
        state = self.state
        request = _object_body(body, SEARCH_KEYS)
        if request.get("post_processing") is not None:
            raise _invalid("'post_processing' is not supported by the sandbox")
        if _optional_bool(request, "preview"):
            raise _invalid("error: PersonDB preview feature is not available for your account.")
        if _optional_bool(request, "explain"):
            raise _invalid("'explain' is not supported by the sandbox")
        _optional_bool(request, "return_query")  # accepted and ignored, as upstream does
        if "filters" not in request or request["filters"] is None:
            raise _invalid("Missing required parameter 'filters'")
        try:
            compiled = compile_filters(request["filters"])
            sorts = compile_sorts(request.get("sorts"))
        except FilterError as error:
            raise _invalid(error.message, error.metadata) from None
        limit = _search_limit(request)
        fields = request.get("fields")
        tree = None
        if fields is not None:
            names = _string_list(fields, "fields", max_items=None)
            catalog = state.catalog
            unknown = [f for f in names if f not in catalog.search_paths]
            if unknown:
                raise _invalid(
                    f"Unsupported field(s) in 'fields': {', '.join(repr(u) for u in unknown)}. "
                    "See metadata.available_fields for the fields search can return.",
                    {"available_fields": catalog.search_sorted},
                )
            tree = build_tree(names)
        query_fp = _query_fingerprint(request["filters"], request.get("sorts"), fields, limit)
        offset = _decode_cursor(request.get("cursor"), query_fp)

        index = state.search_index
        mask = index.evaluate(compiled)
        total = mask.bit_count()
        if sorts:
            order = index.order(sorts)
            if mask == index.all:
                selected = order[offset : offset + limit]
            else:
                members = set(positions(mask))
                matching = (i for i in order if i in members)
                selected = list(itertools.islice(matching, offset, offset + limit))
        else:
            selected = positions(mask)[offset : offset + limit]
        people = index.people
        profiles = [people[i].search if tree is None else project(people[i].search, tree) for i in selected]
        end = offset + len(profiles)
        next_cursor = _encode_cursor(end, query_fp) if profiles and end < total else None
        payload = {"profiles": profiles, "next_cursor": next_cursor, "total_count": total}
        return Outcome(200, payload, SEARCH_CREDITS_PER_PROFILE * len(profiles))

    # --- admin endpoints ----------------------------------------------------------------------------------

    async def health(self, _request: Request) -> Response:
        """GET /_sandbox/health."""
        dataset = self.state.dataset
        return JSONResponse(
            {
                "ok": True,
                "people": len(dataset.people),
                "companies": len(dataset.companies),
                "seed": dataset.seed,
                "in_flight": self.state.in_flight,
            }
        )

    async def ledger(self, request: Request) -> Response:
        """GET (or DELETE) /_sandbox/ledger, for every key or, with a bearer header, for that key only."""
        key = _bearer(request.headers.get("authorization"))
        ledger = self.state.ledger
        if request.method == "DELETE":
            ledger.clear(None if key is None else fingerprint(key))
            return JSONResponse({"cleared": True})
        if key is not None:
            return JSONResponse(ledger.entry(fingerprint(key)))
        return JSONResponse(ledger.snapshot())

    async def balance(self, request: Request) -> Response:
        """POST /_sandbox/balance: set the caller's balance (`{"credits": "10"}`, null for unlimited)."""
        key = _bearer(request.headers.get("authorization"))
        if key is None:
            return _unauthorized()
        try:
            body = await _admin_body(request)
            if set(body) != {"credits"}:
                raise _invalid('Body must be {"credits": "<amount>"} or {"credits": null}')
            try:
                amount = parse_credits(body["credits"])
            except ConfigError as exc:
                raise _invalid(str(exc)) from None
        except ApiError as error:
            return self._error_response(error, {})
        return JSONResponse(self.state.ledger.set_balance(fingerprint(key), amount))

    async def faults(self, request: Request) -> Response:
        """GET lists, POST adds (one rule or {"rules": [...]}), DELETE clears the fault rules."""
        injector = self.state.faults
        if request.method == "GET":
            return JSONResponse({"rules": injector.list()})
        if request.method == "DELETE":
            return JSONResponse({"cleared": injector.clear()})
        try:
            body = await _admin_body(request)
            raw_rules: list[Any] = cast("list[Any]", body["rules"]) if "rules" in body else [body]
            if "rules" in body and (len(body) != 1 or not isinstance(body["rules"], list)):
                raise _invalid('Body must be one rule object or {"rules": [rule, ...]}')
            try:
                rules = [FaultRule.from_dict(_as_object(r)) for r in raw_rules]
            except ConfigError as exc:
                raise _invalid(str(exc)) from None
        except ApiError as error:
            return self._error_response(error, {})
        added = [injector.add(rule) for rule in rules]
        return JSONResponse({"added": added, "rules": injector.list()})

    async def identifiers(self, request: Request) -> Response:
        """GET /_sandbox/identifiers?kind=url|email|multi_email|opted_out_url&n=10&offset=0."""
        params = request.query_params
        kind = params.get("kind", "url")
        try:
            if kind not in IDENTIFIER_KINDS:
                raise _invalid(f"kind must be one of {', '.join(IDENTIFIER_KINDS)}; got {kind!r}")
            n = _query_int(params.get("n"), "n", 10, 1, 10_000)
            offset = _query_int(params.get("offset"), "offset", 0, 0, 10_000_000)
        except ApiError as error:
            return self._error_response(error, {})
        items = await anyio.to_thread.run_sync(self.state.identifiers, kind)
        return JSONResponse(
            {"kind": kind, "offset": offset, "n": n, "total": len(items), "identifiers": items[offset : offset + n]}
        )

    async def reset(self, _request: Request) -> Response:
        """POST /_sandbox/reset: start-up config and faults again, empty ledger and rate-limit windows."""
        self.state.reset()
        return JSONResponse({"reset": True, "config": self.state.config.runtime_view()})

    async def config(self, request: Request) -> Response:
        """GET shows, POST partially updates the run-time settings."""
        state = self.state
        if request.method == "POST":
            try:
                body = await _admin_body(request)
                try:
                    updated = state.config.updated(body)
                    _check_gated(updated.gated_fields, state.catalog)
                except ConfigError as exc:
                    raise _invalid(str(exc)) from None
            except ApiError as error:
                return self._error_response(error, {})
            state.config = updated
        return JSONResponse(state.config.runtime_view())


def _fault_error(fault: FaultRule) -> ApiError:
    status = fault.status or 500
    if status == 402:
        return ApiError(402, "insufficient_credits", "Insufficient credits", {"required": None, "remaining": "0"})
    if status == 403:
        if fault.reason == "fields":
            denied = list(fault.denied_fields or ("certifications",))
            return ApiError(
                403,
                "permission_error",
                f"Your plan does not include these fields: {', '.join(denied)}",
                {"denied_fields": denied},
            )
        return ApiError(403, "permission_error", "Permission denied or insufficient credits")
    if status == 404:
        return ApiError(404, "not_found", "No data found")
    if status in _FAULT_5XX:
        error_type, message = _FAULT_5XX[status]
        return ApiError(status, error_type, message)
    return _invalid("Bad request (injected by a sandbox fault rule)")


def _as_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid("Each fault rule must be a JSON object")
    return cast("dict[str, Any]", value)


async def _admin_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise _invalid("Request body must be a JSON object") from None
    return _as_object(body)


def _query_int(value: str | None, name: str, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise _invalid(f"{name} must be an integer") from None
    if not low <= number <= high:
        raise _invalid(f"{name} must be between {low} and {high}")
    return number


def _object_body(body: Any, allowed: Sequence[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _invalid("Request body must be a JSON object")
    request = cast("dict[str, Any]", body)
    unknown = [k for k in request if k not in allowed]
    if unknown:
        raise _invalid(
            f"Unknown parameter(s): {', '.join(repr(u) for u in unknown)}. Allowed parameters: {', '.join(allowed)}"
        )
    return request


def _string_list(value: Any, name: str, max_items: int | None) -> list[str]:
    if not isinstance(value, list):
        raise _invalid(f"'{name}' must be an array of strings")
    items = cast("list[Any]", value)
    if not items:
        raise _invalid(f"'{name}' must contain at least 1 item")
    if max_items is not None and len(items) > max_items:
        raise _invalid(f"'{name}' accepts at most {max_items} items; got {len(items)}")
    for i, item in enumerate(items):
        if not isinstance(item, str) or not item.strip():
            raise _invalid(f"'{name}'[{i}] must be a non-empty string; got {item!r}")
    return cast("list[str]", items)


def _optional_bool(request: dict[str, Any], name: str) -> bool:
    value = request.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _invalid(f"'{name}' must be true or false; got {value!r}")
    return value


def _profile_slug(url: str) -> str:
    match = _PROFILE_URL.match(url.strip())
    if match is None:
        raise _invalid(
            f"Invalid professional network profile URL: {url!r}. Expected https://www.linkedin.com/in/<slug>"
        )
    return match.group(1).lower()


def _search_limit(request: dict[str, Any]) -> int:
    limit = request.get("limit")
    count = request.get("count")
    if limit is not None and count is not None and limit != count:
        raise _invalid("'count' is an alias of 'limit': send one of them")
    value = limit if limit is not None else count
    if value is None:
        return DEFAULT_SEARCH_LIMIT
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SEARCH_LIMIT:
        raise _invalid(f"'limit' must be an integer between 1 and {MAX_SEARCH_LIMIT}; got {value!r}")
    return value


def _query_fingerprint(filters: Any, sorts: Any, fields: Any, limit: int) -> str:
    canonical = json.dumps([filters, sorts, fields, limit], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _encode_cursor(offset: int, query_fp: str) -> str:
    raw = json.dumps({"v": 1, "o": offset, "q": query_fp}, separators=(",", ":")).encode()
    # gzip then base64, so cursors look like upstream's "H4sI..." tokens; mtime=0 keeps them deterministic.
    return base64.urlsafe_b64encode(gzip.compress(raw, mtime=0)).decode().rstrip("=")


def _decode_cursor(cursor: Any, query_fp: str) -> int:
    if cursor is None:
        return 0
    if not isinstance(cursor, str) or not cursor:
        raise _invalid("'cursor' must be a string returned as next_cursor, or null")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(gzip.decompress(base64.urlsafe_b64decode(padded)))
    except (ValueError, binascii.Error, OSError, EOFError, zlib.error):
        raise _invalid("Invalid cursor: pass the next_cursor of the previous page unchanged") from None
    if not isinstance(data, dict):
        raise _invalid("Invalid cursor: pass the next_cursor of the previous page unchanged")
    decoded = cast("dict[str, Any]", data)
    offset = decoded.get("o")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0 or decoded.get("q") is None:
        raise _invalid("Invalid cursor: pass the next_cursor of the previous page unchanged")
    if decoded["q"] != query_fp:
        raise _invalid(
            "This cursor belongs to a different query: keep filters, sorts, fields and limit identical between pages"
        )
    return offset


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


class _FaultResponse(Response):
    """Base for responses that misbehave at the connection level."""

    def __init__(self, state: SandboxState, content: bytes = b"", status_code: int = 200, headers: Any = None):
        super().__init__(content, status_code, headers, "application/json")
        self.sandbox = state

    def transport(self, scope: Scope) -> asyncio.Transport | None:
        """The connection's transport when running under SandboxServer, else None."""
        client: tuple[str, int] | None = scope.get("client")
        return self.sandbox.transports.get((client[0], client[1])) if client else None


class HangResponse(_FaultResponse):
    """Never answers: holds the request until the client gives up or the server stops."""

    async def __call__(self, scope: Scope, receive: Receive, _send: Send) -> None:
        """Wait for the disconnect (SandboxServer.stop aborts held connections)."""
        transport = self.transport(scope)
        if transport is not None:
            self.sandbox.hanging.add(transport)
        try:
            await _wait_disconnect(receive)
        finally:
            if transport is not None:
                self.sandbox.hanging.discard(transport)


class ResetResponse(_FaultResponse):
    """Closes the connection abruptly (TCP RST) before sending anything."""

    async def __call__(self, scope: Scope, receive: Receive, _send: Send) -> None:
        """Abort the transport with SO_LINGER 0, so the peer sees a reset."""
        transport = self.transport(scope)
        if transport is None:
            raise ConnectionResetError("sandbox fault: connection reset")
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        await _wait_disconnect(receive)


class TruncatedResponse(_FaultResponse):
    """Declares the full content-length, sends half the body, then closes the connection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the start and half the body, then close."""
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body[: len(self.body) // 2], "more_body": True})
        transport = self.transport(scope)
        if transport is None:
            raise ConnectionAbortedError("sandbox fault: truncated response")
        transport.close()
        await _wait_disconnect(receive)
