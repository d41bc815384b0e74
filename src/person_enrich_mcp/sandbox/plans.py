"""Per-key plans: which endpoints a key may call, at what price and rate, and which fields it may not see.

Upstream, permissions and prices are per account and published through `GET /account/endpoints`. In the
sandbox every key is its own account, so each key has a plan (the config's `default_plan` until a test or
user sets another through `/_sandbox/plan`).
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Literal, cast

from person_enrich_mcp.sandbox.endpoints import PLAN_PATHS
from person_enrich_mcp.sandbox.values import ConfigError, boolean, parse_credits, positive_int, require_credits

Status = Literal["enabled", "not_enabled"]
STATUSES: tuple[Status, ...] = ("enabled", "not_enabled")
DEFAULT_PREVIEW_CREDITS = Decimal("0.01")

_ENDPOINT_KEYS = ("status", "rpm", "base_credits", "premium_fields")
_PLAN_KEYS = ("endpoints", "disabled_fields", "token_limit_rpm", "preview", "preview_credits")


@dataclass(frozen=True, slots=True)
class EndpointPlan:
    """One endpoint's terms in a plan; None means "the documented price" or "the config's rate limit"."""

    status: Status = "enabled"
    rpm: int | None = None
    base_credits: Decimal | None = None
    premium_fields: Mapping[str, Decimal] | None = None

    @property
    def enabled(self) -> bool:
        """Whether the key may call the endpoint."""
        return self.status == "enabled"

    @property
    def overrides_prices(self) -> bool:
        """Whether the plan sets its own prices (the documented cap then no longer applies)."""
        return self.base_credits is not None or self.premium_fields is not None

    def updated(self, path: str, changes: Mapping[str, object], vocabulary: Collection[str]) -> EndpointPlan:
        """A copy with `changes` applied (only the keys given change)."""
        _refuse_unknown(changes, _ENDPOINT_KEYS, f"plan endpoint {path}")
        values: dict[str, Any] = {}
        if "status" in changes:
            status = changes["status"]
            if status not in STATUSES:
                raise ConfigError(f"status of {path} must be 'enabled' or 'not_enabled'; got {status!r}")
            values["status"] = status
        if "rpm" in changes:
            values["rpm"] = positive_int(changes["rpm"], f"rpm of {path}", optional=True)
        if "base_credits" in changes:
            values["base_credits"] = parse_credits(changes["base_credits"], f"base_credits of {path}")
        if "premium_fields" in changes:
            values["premium_fields"] = _premium_fields(path, changes["premium_fields"], vocabulary)
        return replace(self, **values)

    def to_json(self) -> dict[str, Any]:
        """The endpoint's terms as JSON (amounts as decimal strings)."""
        premium = None if self.premium_fields is None else {k: str(v) for k, v in self.premium_fields.items()}
        return {
            "status": self.status,
            "rpm": self.rpm,
            "base_credits": None if self.base_credits is None else str(self.base_credits),
            "premium_fields": premium,
        }


def _default_endpoints() -> dict[str, EndpointPlan]:
    return {path: EndpointPlan() for path in PLAN_PATHS}


@dataclass(frozen=True, slots=True)
class Plan:
    """A key's plan: per-endpoint terms, disabled fields, a key-wide rate limit and the preview feature."""

    endpoints: Mapping[str, EndpointPlan] = field(default_factory=_default_endpoints)
    disabled_fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict[str, tuple[str, ...]])
    token_limit_rpm: int | None = None
    preview: bool = False
    preview_credits: Decimal = DEFAULT_PREVIEW_CREDITS

    def endpoint(self, path: str) -> EndpointPlan:
        """The terms for one endpoint path."""
        return self.endpoints.get(path, EndpointPlan())

    def disabled(self, path: str) -> tuple[str, ...]:
        """The fields this plan withholds on one endpoint path."""
        return self.disabled_fields.get(path, ())

    def with_status(self, path: str, status: Status) -> Plan:
        """A copy in which one endpoint is enabled or not (the CLI's `--contact-not-enabled` and friends)."""
        endpoints = {**self.endpoints, path: replace(self.endpoint(path), status=status)}
        return replace(self, endpoints=endpoints)

    def updated(self, changes: Mapping[str, object], vocabularies: Mapping[str, Collection[str]]) -> Plan:
        """A copy with a partial update applied; `vocabularies` names the fields each path knows."""
        _refuse_unknown(changes, _PLAN_KEYS, "plan")
        values: dict[str, Any] = {}
        if "endpoints" in changes:
            values["endpoints"] = self._updated_endpoints(changes["endpoints"], vocabularies)
        if "disabled_fields" in changes:
            values["disabled_fields"] = self._updated_disabled(changes["disabled_fields"], vocabularies)
        if "token_limit_rpm" in changes:
            values["token_limit_rpm"] = positive_int(changes["token_limit_rpm"], "token_limit_rpm", optional=True)
        if "preview" in changes:
            values["preview"] = boolean(changes["preview"], "preview")
        if "preview_credits" in changes:
            values["preview_credits"] = require_credits(changes["preview_credits"], "preview_credits")
        return replace(self, **values)

    def _updated_endpoints(self, value: object, vocabularies: Mapping[str, Collection[str]]) -> dict[str, EndpointPlan]:
        endpoints = dict(self.endpoints)
        for path, changes in _object(value, "endpoints").items():
            _check_path(path)
            endpoints[path] = self.endpoint(path).updated(
                path, _object(changes, f"endpoints[{path!r}]"), vocabularies.get(path, ())
            )
        return endpoints

    def _updated_disabled(
        self, value: object, vocabularies: Mapping[str, Collection[str]]
    ) -> dict[str, tuple[str, ...]]:
        disabled = dict(self.disabled_fields)
        for path, fields in _object(value, "disabled_fields").items():
            _check_path(path)
            names = _field_names(fields, f"disabled_fields[{path!r}]")
            _check_vocabulary(path, names, vocabularies.get(path, ()))
            if names:
                disabled[path] = names
            else:
                disabled.pop(path, None)
        return disabled

    def to_json(self) -> dict[str, Any]:
        """The whole plan as JSON, every endpoint listed."""
        return {
            "endpoints": {path: self.endpoint(path).to_json() for path in PLAN_PATHS},
            "disabled_fields": {path: list(fields) for path, fields in self.disabled_fields.items()},
            "token_limit_rpm": self.token_limit_rpm,
            "preview": self.preview,
            "preview_credits": str(self.preview_credits),
        }


class PlanBook:
    """Every key's plan, by key fingerprint; keys nobody configured get the default plan."""

    def __init__(self, default: Plan) -> None:
        self.default = default
        self._plans: dict[str, Plan] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Plan:
        """The key's plan (the default one unless set)."""
        with self._lock:
            return self._plans.get(key, self.default)

    def set(self, key: str, plan: Plan) -> None:
        """Give one key its own plan."""
        with self._lock:
            self._plans[key] = plan

    def reset(self, key: str) -> None:
        """Put one key back on the default plan."""
        with self._lock:
            self._plans.pop(key, None)


def _refuse_unknown(changes: Mapping[str, object], allowed: tuple[str, ...], where: str) -> None:
    unknown = sorted(k for k in changes if k not in allowed)
    if unknown:
        raise ConfigError(f"unknown {where} key(s): {', '.join(unknown)}; allowed: {', '.join(allowed)}")


def _object(value: object, name: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be a JSON object")
    return cast("dict[str, object]", value)


def _check_path(path: str) -> None:
    if path not in PLAN_PATHS:
        raise ConfigError(f"unknown endpoint path {path!r}; a plan covers {', '.join(PLAN_PATHS)}")


def _field_names(value: object, name: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"{name} must be a list of field names")
    items = cast("list[object]", value)
    if not all(isinstance(item, str) and item for item in items):
        raise ConfigError(f"{name} must be a list of non-empty field names")
    return tuple(cast("list[str]", items))


def _check_vocabulary(path: str, names: Collection[str], vocabulary: Collection[str]) -> None:
    unknown = [name for name in names if name not in vocabulary]
    if unknown:
        raise ConfigError(f"field(s) not returned by {path}: {', '.join(unknown)}")


def _premium_fields(path: str, value: object, vocabulary: Collection[str]) -> dict[str, Decimal] | None:
    if value is None:
        return None
    prices = _object(value, f"premium_fields of {path}")
    _check_vocabulary(path, list(prices), vocabulary)
    return {name: require_credits(price, f"premium_fields[{name!r}] of {path}") for name, price in prices.items()}
