"""The sandbox's Starlette app: the Person API routes of both revisions and the `/_sandbox/*` admin endpoints.

Every API request runs the same pipeline, in the upstream's order: version header -> auth -> rate limit ->
fault injection -> plan gating -> body validation -> balance -> process -> bill.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import socket
import struct
from collections.abc import Callable
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

from person_enrich_mcp.sandbox.account import (
    process_account_credits,
    process_account_endpoints,
    process_user_credits,
)
from person_enrich_mcp.sandbox.autocomplete import process_autocomplete
from person_enrich_mcp.sandbox.billing import credits_str, fingerprint
from person_enrich_mcp.sandbox.calls import (
    ApiError,
    Call,
    Outcome,
    endpoint_not_enabled,
    fields_denied,
    invalid,
    not_found,
)
from person_enrich_mcp.sandbox.config import ConfigError, FaultRule, SandboxConfig, parse_credits
from person_enrich_mcp.sandbox.contact import process_contact_enrich
from person_enrich_mcp.sandbox.endpoints import (
    ACCOUNT_CREDITS_PATH,
    ACCOUNT_ENDPOINTS_PATH,
    AUTOCOMPLETE_PATH,
    CONTACT_PATH,
    CURRENT_ONLY_PATHS,
    ENRICH_PATH,
    LIVE_PATH,
    PATH_NAMES,
    PLAN_PATHS,
    SEARCH_PATH,
    USER_CREDITS_PATH,
    Revision,
)
from person_enrich_mcp.sandbox.enrich import process_current_enrich, process_live_enrich, process_overview_enrich
from person_enrich_mcp.sandbox.plans import Plan
from person_enrich_mcp.sandbox.ratelimit import RateDecision
from person_enrich_mcp.sandbox.search import process_search
from person_enrich_mcp.sandbox.state import IDENTIFIER_KINDS, SandboxState, build_state, check_gated

__all__ = ["API_VERSION", "SandboxState", "create_app"]

logger = logging.getLogger(__name__)

API_VERSION = "2025-11-01"
# The key-wide window a plan's `token_limit_rpm` is counted in, beside each endpoint's own.
TOKEN_SCOPE = "*"
_FAULT_5XX = {
    500: ("internal_error", "Internal server error"),
    502: ("bad_gateway", "Bad gateway"),
    503: ("service_unavailable", "Service temporarily unavailable"),
    504: ("gateway_timeout", "Gateway timeout"),
}

Process = Callable[[Call], Outcome]


def create_app(config: SandboxConfig | None = None) -> Starlette:
    """The sandbox as a Starlette app; its state is at `app.state.sandbox`."""
    state = build_state(config if config is not None else SandboxConfig())
    handlers = _Handlers(state)
    routes = [
        Route(ENRICH_PATH, handlers.enrich, methods=["POST"]),
        Route(CONTACT_PATH, handlers.contact, methods=["POST"]),
        Route(LIVE_PATH, handlers.live, methods=["POST"]),
        Route(SEARCH_PATH, handlers.search, methods=["POST"]),
        Route(AUTOCOMPLETE_PATH, handlers.autocomplete, methods=["POST"]),
        Route(ACCOUNT_ENDPOINTS_PATH, handlers.account_endpoints, methods=["GET"]),
        Route(USER_CREDITS_PATH, handlers.user_credits, methods=["GET"]),
        Route(ACCOUNT_CREDITS_PATH, handlers.account_credits, methods=["GET"]),
        Route("/_sandbox/health", handlers.health, methods=["GET"]),
        Route("/_sandbox/ledger", handlers.ledger, methods=["GET", "DELETE"]),
        Route("/_sandbox/balance", handlers.balance, methods=["POST"]),
        Route("/_sandbox/plan", handlers.plan, methods=["GET", "POST", "DELETE"]),
        Route("/_sandbox/faults", handlers.faults, methods=["GET", "POST", "DELETE"]),
        Route("/_sandbox/identifiers", handlers.identifiers, methods=["GET"]),
        Route("/_sandbox/config", handlers.config, methods=["GET", "POST"]),
        Route("/_sandbox/reset", handlers.reset, methods=["POST"]),
    ]
    middleware = [
        Middleware(RequestIdMiddleware),
        Middleware(CreditsHeaderMiddleware, state),
        Middleware(InFlightMiddleware, state),
    ]
    app = Starlette(routes=routes, middleware=middleware)
    app.state.sandbox = state
    return app


class InFlightMiddleware:
    """Counts API requests from arrival until their response is fully sent (or the connection drops)."""

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count API (not `/_sandbox/*`) requests while they run."""
        if scope["type"] != "http" or str(scope.get("path", "")).startswith("/_sandbox/"):
            await self.app(scope, receive, send)
            return
        self.state.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.state.in_flight -= 1


class CreditsHeaderMiddleware:
    """With `credits_header` off, removes `x-credits-used` from every response.

    The upstream's docs never mention the header, so a client must cope without it. Removing it here, in one
    place, guarantees that no answer (errors, faults, truncated bodies) still carries it.
    """

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Strip the header from the response start when the setting is off."""
        if scope["type"] != "http" or self.state.config.credits_header:
            await self.app(scope, receive, send)
            return

        async def send_without_credits(message: Message) -> None:
            if message["type"] == "http.response.start":
                del MutableHeaders(scope=message)["x-credits-used"]
            await send(message)

        await self.app(scope, receive, send_without_credits)


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


async def _read_body(request: Request) -> tuple[Any, bool]:
    """The parsed JSON body and whether it was valid JSON (GET requests have none, which is fine)."""
    if request.method == "GET":
        return None, True
    raw = await request.body()
    try:
        return (json.loads(raw) if raw else None), bool(raw)
    except (ValueError, UnicodeDecodeError):
        return None, False


class _Handlers:
    """Route handlers bound to one sandbox state."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    # --- the API routes -----------------------------------------------------------------------------------

    async def enrich(self, request: Request) -> Response:
        """POST /person/enrich (each revision its own contract)."""
        return await self._pipeline(request, ENRICH_PATH, self._enrich)

    def _enrich(self, call: Call) -> Outcome:
        if call.config.revision == "overview":
            return process_overview_enrich(self.state, call)
        return process_current_enrich(self.state, call)

    async def contact(self, request: Request) -> Response:
        """POST /person/contact/enrich (today's revision only)."""
        return await self._pipeline(request, CONTACT_PATH, lambda call: process_contact_enrich(self.state, call))

    async def live(self, request: Request) -> Response:
        """POST /person/professional_network/enrich/live (today's revision only)."""
        return await self._pipeline(request, LIVE_PATH, lambda call: process_live_enrich(self.state, call))

    async def search(self, request: Request) -> Response:
        """POST /person/search."""
        return await self._pipeline(request, SEARCH_PATH, lambda call: process_search(self.state, call))

    async def autocomplete(self, request: Request) -> Response:
        """POST /person/search/autocomplete (both revisions)."""
        state = self.state
        return await self._pipeline(
            request,
            AUTOCOMPLETE_PATH,
            lambda call: process_autocomplete(state.suggestions, state.search_index, call),
        )

    async def account_endpoints(self, request: Request) -> Response:
        """GET /account/endpoints (today's revision only)."""
        return await self._pipeline(
            request, ACCOUNT_ENDPOINTS_PATH, lambda call: process_account_endpoints(self.state, call)
        )

    async def user_credits(self, request: Request) -> Response:
        """GET /user/credits (today's revision only)."""
        return await self._pipeline(request, USER_CREDITS_PATH, lambda call: process_user_credits(self.state, call))

    async def account_credits(self, request: Request) -> Response:
        """GET /account/credits (today's revision only)."""
        return await self._pipeline(
            request, ACCOUNT_CREDITS_PATH, lambda call: process_account_credits(self.state, call)
        )

    # --- the API pipeline -------------------------------------------------------------------------------

    async def _pipeline(self, request: Request, path: str, process: Process) -> Response:
        config = self.state.config
        if path in CURRENT_ONLY_PATHS and config.revision == "overview":
            return self._route_absent(request, path)
        body, body_ok = await _read_body(request)
        logged = {"path": path, "query": dict(request.query_params)} if request.method == "GET" else body
        version = request.headers.get("x-api-version")
        if version != API_VERSION:
            if version is None:
                message = f"Missing required header 'x-api-version'; expected '{API_VERSION}'"
            else:
                message = f"Unsupported x-api-version {version!r}; expected '{API_VERSION}'"
            return self._error_response(invalid(message), {})
        key = _bearer(request.headers.get("authorization"))
        if key is None or (config.api_keys and key not in config.api_keys):
            return _unauthorized()
        fp = fingerprint(key)
        call = Call(fp, path, body, dict(request.query_params), self.state.plans.get(fp), config)
        return await self._authorised(call, process, body_ok, logged)

    def _route_absent(self, request: Request, path: str) -> Response:
        """The overview revision had no such route: 404 before any check, as a missing route answers."""
        key = _bearer(request.headers.get("authorization"))
        config = self.state.config
        if key is not None and (not config.api_keys or key in config.api_keys):
            # Counted all the same, so tests can see that a client probed the route.
            self.state.ledger.record(fingerprint(key), PATH_NAMES[path], 404, body=None)
        return JSONResponse({"message": "Not Found"}, 404, headers={"x-credits-used": "0"})

    async def _authorised(self, call: Call, process: Process, body_ok: bool, logged: Any) -> Response:
        state = self.state
        endpoint = PATH_NAMES[call.path]
        decision, scope = self._admit(call, endpoint)
        headers = decision.headers()
        if not decision.allowed:
            state.ledger.record(call.key, endpoint, 429, body=logged)
            return self._rate_limited(call, decision, headers, scope)

        fault = state.faults.pick(endpoint)
        if fault is not None:
            early = await self._early_fault(fault, call, logged, headers)
            if early is not None:
                return early

        fault_name = fault.kind if fault is not None else None
        try:
            if call.path in PLAN_PATHS and not call.terms.enabled:
                raise endpoint_not_enabled(call.path)
            if not body_ok:
                raise invalid("Request body must be valid JSON")
            outcome = process(call)
        except ApiError as error:
            state.ledger.record(call.key, endpoint, error.status, fault=fault_name, body=logged)
            return self._finish(error.status, error.payload(), Decimal(0), headers, fault)

        refusal = self._balance_refusal(call.key, outcome.cost)
        if refusal is not None:
            state.ledger.record(call.key, endpoint, 402, fault=fault_name, body=logged)
            return self._finish(402, refusal.payload(), Decimal(0), headers, fault)
        if outcome.delay_seconds:
            await anyio.sleep(outcome.delay_seconds)
        state.ledger.record(call.key, endpoint, outcome.status, outcome.cost, fault=fault_name, body=logged)
        return self._finish(outcome.status, outcome.payload, outcome.cost, headers, fault)

    def _limit(self, call: Call, endpoint: str) -> int:
        """The endpoint's rate limit for this key: the plan's, else the config's."""
        rpm = call.terms.rpm if call.path in PLAN_PATHS else None
        return rpm if rpm is not None else call.config.rpm_for(endpoint)

    def _admit(self, call: Call, endpoint: str) -> tuple[RateDecision, str]:
        config = call.config
        limiter = self.state.limiter
        limit = self._limit(call, endpoint)
        token_limit = call.plan.token_limit_rpm
        if token_limit is None:
            decision = limiter.check(call.key, endpoint, limit, config.rate_window, config.rate_limits_enabled)
            return decision, endpoint
        limits = [(endpoint, limit), (TOKEN_SCOPE, token_limit)]
        return limiter.check_all(call.key, limits, config.rate_window, config.rate_limits_enabled)

    def _balance_refusal(self, key: str, cost: Decimal) -> ApiError | None:
        if cost <= 0:
            return None
        remaining = self.state.ledger.remaining(key)
        if remaining is None or cost <= remaining:
            return None
        return ApiError(
            402,
            "insufficient_credits",
            f"Insufficient credits: this request needs {credits_str(cost)}, {credits_str(remaining)} remaining.",
            {"required": credits_str(cost), "remaining": credits_str(remaining)},
        )

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

    def _rate_limited(self, call: Call, decision: RateDecision, headers: dict[str, str], scope: str) -> Response:
        config = call.config
        where = "across all endpoints (the key's token limit)" if scope == TOKEN_SCOPE else f"on {call.path}"
        error = ApiError(
            429,
            "rate_limit_exceeded",
            f"Rate limit exceeded: {decision.limit} requests per {config.rate_window:g} s {where}; "
            f"retry in {decision.reset} s",
            {"limit": decision.limit, "window_seconds": config.rate_window, "retry_after_seconds": decision.reset},
        )
        if config.send_retry_after:
            headers = {**headers, "retry-after": str(decision.reset)}
        return self._error_response(error, headers)

    async def _early_fault(self, fault: FaultRule, call: Call, logged: Any, headers: dict[str, str]) -> Response | None:
        """Faults that strike before processing (nothing billed); latency delays and lets the request through."""
        ledger = self.state.ledger
        endpoint = PATH_NAMES[call.path]
        if fault.kind == "latency":
            await anyio.sleep((fault.ms or 0) / 1000)
            return None
        if fault.kind == "timeout":
            ledger.record(call.key, endpoint, "timeout", fault="timeout", body=logged)
            return HangResponse(self.state)
        if fault.kind == "reset":
            ledger.record(call.key, endpoint, "reset", fault="reset", body=logged)
            return ResetResponse(self.state)
        if fault.kind != "status":
            return None
        status = fault.status or 500
        ledger.record(call.key, endpoint, status, fault="status", body=logged)
        if status == 401:
            return _unauthorized(headers)
        if status == 429:
            peek = self.state.limiter.peek(call.key, endpoint, self._limit(call, endpoint), call.config.rate_window)
            return self._rate_limited(call, peek, peek.headers(), endpoint)
        return self._error_response(_fault_error(fault, call.config.revision), headers)

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
                raise invalid('Body must be {"credits": "<amount>"} or {"credits": null}')
            try:
                amount = parse_credits(body["credits"])
            except ConfigError as exc:
                raise invalid(str(exc)) from None
        except ApiError as error:
            return self._error_response(error, {})
        return JSONResponse(self.state.ledger.set_balance(fingerprint(key), amount))

    async def plan(self, request: Request) -> Response:
        """GET shows, POST partially updates, DELETE resets the caller's plan (by its bearer header)."""
        key = _bearer(request.headers.get("authorization"))
        if key is None:
            return _unauthorized()
        plans = self.state.plans
        fp = fingerprint(key)
        if request.method == "DELETE":
            plans.reset(fp)
        elif request.method == "POST":
            try:
                updated = await self._updated_plan(request, plans.get(fp))
            except ApiError as error:
                return self._error_response(error, {})
            plans.set(fp, updated)
        return JSONResponse({"key": fp, **plans.get(fp).to_json()})

    async def _updated_plan(self, request: Request, plan: Plan) -> Plan:
        body = await _admin_body(request)
        try:
            return plan.updated(body, self.state.plan_vocabularies())
        except ConfigError as exc:
            raise invalid(str(exc)) from None

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
                raise invalid('Body must be one rule object or {"rules": [rule, ...]}')
            try:
                rules = [FaultRule.from_dict(_as_object(r)) for r in raw_rules]
            except ConfigError as exc:
                raise invalid(str(exc)) from None
        except ApiError as error:
            return self._error_response(error, {})
        added = [injector.add(rule) for rule in rules]
        return JSONResponse({"added": added, "rules": injector.list()})

    async def identifiers(self, request: Request) -> Response:
        """GET /_sandbox/identifiers?kind=url|email|multi_email|opted_out_url|hostile_url&n=10&offset=0."""
        params = request.query_params
        kind = params.get("kind", "url")
        try:
            if kind not in IDENTIFIER_KINDS:
                raise invalid(f"kind must be one of {', '.join(IDENTIFIER_KINDS)}; got {kind!r}")
            n = _query_int(params.get("n"), "n", 10, 1, 10_000)
            offset = _query_int(params.get("offset"), "offset", 0, 0, 10_000_000)
        except ApiError as error:
            return self._error_response(error, {})
        items = await anyio.to_thread.run_sync(self.state.identifiers, kind)
        return JSONResponse(
            {"kind": kind, "offset": offset, "n": n, "total": len(items), "identifiers": items[offset : offset + n]}
        )

    async def reset(self, _request: Request) -> Response:
        """POST /_sandbox/reset: start-up config, faults and plans again, empty ledger and rate-limit windows."""
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
                    check_gated(updated.gated_fields, state.catalog)
                except ConfigError as exc:
                    raise invalid(str(exc)) from None
            except ApiError as error:
                return self._error_response(error, {})
            state.config = updated
        return JSONResponse(state.config.runtime_view())


def _fault_error(fault: FaultRule, revision: Revision) -> ApiError:
    status = fault.status or 500
    if status == 402:
        return ApiError(402, "insufficient_credits", "Insufficient credits", {"required": None, "remaining": "0"})
    if status == 403:
        if fault.reason == "fields":
            return fields_denied(revision, fault.denied_fields or ("certifications",))
        return ApiError(403, "permission_error", "Permission denied or insufficient credits")
    if status == 404:
        return not_found()
    if status in _FAULT_5XX:
        error_type, message = _FAULT_5XX[status]
        return ApiError(status, error_type, message)
    return invalid("Bad request (injected by a sandbox fault rule)")


def _as_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid("Each fault rule must be a JSON object")
    return cast("dict[str, Any]", value)


async def _admin_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise invalid("Request body must be a JSON object") from None
    if not isinstance(body, dict):
        raise invalid("Request body must be a JSON object")
    return cast("dict[str, Any]", body)


def _query_int(value: str | None, name: str, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise invalid(f"{name} must be an integer") from None
    if not low <= number <= high:
        raise invalid(f"{name} must be between {low} and {high}")
    return number


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
