"""Sandbox configuration: `SandboxConfig`, `FaultRule` and the `--fault SPEC` parser."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, cast

from person_enrich_mcp.sandbox.endpoints import ENDPOINT_NAMES, REVISIONS, EndpointName, Revision
from person_enrich_mcp.sandbox.plans import Plan
from person_enrich_mcp.sandbox.values import ConfigError, parse_credits

__all__ = [
    "ENDPOINTS",
    "FAULT_KINDS",
    "FAULT_REASONS",
    "FAULT_STATUSES",
    "RUNTIME_KEYS",
    "ConfigError",
    "FaultRule",
    "SandboxConfig",
    "parse_credits",
]

FaultKind = Literal["status", "latency", "timeout", "malformed", "truncated", "reset"]
Endpoint = EndpointName
DefaultFields = Literal["default", "all"]

FAULT_KINDS: tuple[FaultKind, ...] = ("status", "latency", "timeout", "malformed", "truncated", "reset")
ENDPOINTS: tuple[Endpoint, ...] = ENDPOINT_NAMES
FAULT_STATUSES: tuple[int, ...] = (400, 401, 402, 403, 404, 429, 500, 502, 503, 504)
FAULT_REASONS: tuple[str, ...] = ("credits", "fields")
MAX_LATENCY_MS = 120_000
DEFAULT_DENIED_FIELDS: tuple[str, ...] = ("certifications",)

_RULE_KEYS = ("kind", "rate", "count", "after", "endpoint", "status", "reason", "ms", "denied_fields")


@dataclass(frozen=True, slots=True)
class FaultRule:
    """One fault-injection rule: what goes wrong, how often, and on which endpoint."""

    kind: FaultKind
    rate: float | None = None
    count: int | None = None
    endpoint: Endpoint | None = None
    status: int | None = None
    reason: Literal["credits", "fields"] | None = None
    ms: int | None = None
    denied_fields: tuple[str, ...] | None = None
    # Matching requests let through untouched before the rule starts to fire (a later batch of a call).
    after: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ConfigError(f"fault kind must be one of {', '.join(FAULT_KINDS)}; got {self.kind!r}")
        if self.rate is not None and self.count is not None:
            raise ConfigError("a fault rule takes either rate or count, not both")
        if self.rate is None and self.count is None:
            # "the next request" is the least surprising meaning of a rule that names neither.
            object.__setattr__(self, "count", 1)
        if self.rate is not None and not (0.0 <= self.rate <= 1.0 and math.isfinite(self.rate)):
            raise ConfigError(f"fault rate must be between 0 and 1; got {self.rate}")
        if self.count is not None and self.count < 1:
            raise ConfigError(f"fault count must be at least 1; got {self.count}")
        if self.after < 0:
            raise ConfigError(f"fault after must be at least 0; got {self.after}")
        if self.endpoint is not None and self.endpoint not in ENDPOINTS:
            raise ConfigError(f"fault endpoint must be one of {', '.join(ENDPOINTS)}; got {self.endpoint!r}")
        self._check_kind_specific()

    def _check_kind_specific(self) -> None:
        if self.kind == "status":
            if self.status is None:
                raise ConfigError("kind=status needs status=<code>")
            if self.status not in FAULT_STATUSES:
                allowed = ", ".join(str(s) for s in FAULT_STATUSES)
                raise ConfigError(f"fault status must be one of {allowed}; got {self.status}")
        elif self.status is not None:
            raise ConfigError(f"status only applies to kind=status, not kind={self.kind}")
        if self.reason is not None:
            if self.status != 403:
                raise ConfigError("reason only applies to kind=status,status=403")
            if self.reason not in FAULT_REASONS:
                raise ConfigError(f"fault reason must be one of {', '.join(FAULT_REASONS)}; got {self.reason!r}")
        if self.denied_fields is not None and self.reason != "fields":
            raise ConfigError("denied_fields only applies to status=403 with reason=fields")
        if self.kind == "latency":
            if self.ms is None:
                raise ConfigError("kind=latency needs ms=<milliseconds>")
            if not 0 <= self.ms <= MAX_LATENCY_MS:
                raise ConfigError(f"fault ms must be between 0 and {MAX_LATENCY_MS}; got {self.ms}")
        elif self.ms is not None:
            raise ConfigError(f"ms only applies to kind=latency, not kind={self.kind}")

    @classmethod
    def from_spec(cls, spec: str) -> FaultRule:
        """Parse a `--fault` spec such as `kind=status,status=503,rate=0.2,endpoint=enrich`."""
        data: dict[str, object] = {}
        for raw_part in spec.split(","):
            part = raw_part.strip()
            if not part:
                continue
            key, sep, value = part.partition("=")
            key = key.strip()
            if not sep or not key:
                raise ConfigError(f"invalid fault spec {spec!r}: expected key=value pairs, got {part!r}")
            if key in data:
                raise ConfigError(f"invalid fault spec {spec!r}: {key} given twice")
            value = value.strip()
            data[key] = value.split("|") if key == "denied_fields" else value
        try:
            return cls.from_dict(data, coerce_strings=True)
        except ConfigError as exc:
            raise ConfigError(f"invalid fault spec {spec!r}: {exc}") from None

    @classmethod
    def from_dict(cls, data: Mapping[str, object], *, coerce_strings: bool = False) -> FaultRule:
        """Build a rule from a JSON object (or parsed spec); raises ConfigError on anything invalid."""
        unknown = sorted(k for k in data if k not in _RULE_KEYS)
        if unknown:
            raise ConfigError(f"unknown fault rule key(s): {', '.join(unknown)}; allowed: {', '.join(_RULE_KEYS)}")
        if "kind" not in data:
            raise ConfigError(f"a fault rule needs kind=<{'|'.join(FAULT_KINDS)}>")
        kind = data["kind"]
        if kind not in FAULT_KINDS:
            raise ConfigError(f"fault kind must be one of {', '.join(FAULT_KINDS)}; got {kind!r}")
        rate = _number(data.get("rate"), "rate", coerce_strings)
        denied = data.get("denied_fields")
        denied_fields: tuple[str, ...] | None = None
        if denied is not None:
            if not isinstance(denied, list) or not denied:
                raise ConfigError("denied_fields must be a non-empty list of field names")
            items = cast("list[object]", denied)
            if not all(isinstance(d, str) and d for d in items):
                raise ConfigError("denied_fields must be a non-empty list of field names")
            denied_fields = tuple(cast("list[str]", items))
        endpoint = _optional_str(data.get("endpoint"), "endpoint")
        reason = _optional_str(data.get("reason"), "reason")
        return cls(
            kind=kind,
            rate=rate,
            count=_integer(data.get("count"), "count", coerce_strings),
            after=_integer(data.get("after"), "after", coerce_strings) or 0,
            endpoint=cast("Endpoint | None", endpoint),
            status=_integer(data.get("status"), "status", coerce_strings),
            reason=cast("Literal['credits', 'fields'] | None", reason),
            ms=_integer(data.get("ms"), "ms", coerce_strings),
            denied_fields=denied_fields,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON form of the rule (every key present, unused ones null)."""
        return {
            "kind": self.kind,
            "rate": self.rate,
            "count": self.count,
            "after": self.after,
            "endpoint": self.endpoint,
            "status": self.status,
            "reason": self.reason,
            "ms": self.ms,
            "denied_fields": list(self.denied_fields) if self.denied_fields is not None else None,
        }


def _optional_str(value: object, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a string; got {value!r}")
    return value


def _integer(value: object, name: str, coerce_strings: bool) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and coerce_strings:
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{name} must be an integer; got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer; got {value!r}")
    return value


def _number(value: object, name: str, coerce_strings: bool) -> float | None:
    if value is None:
        return None
    if isinstance(value, str) and coerce_strings:
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{name} must be a number; got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be a number; got {value!r}")
    return float(value)


RPM_SETTINGS: tuple[str, ...] = (
    "enrich_rpm",
    "contact_rpm",
    "live_rpm",
    "search_rpm",
    "autocomplete_rpm",
    "account_rpm",
)


@dataclass(slots=True)
class SandboxConfig:
    """Everything the sandbox can be told at start; a subset can change at run time via `/_sandbox/config`."""

    seed: int = 7
    people: int = 5000
    companies: int = 300
    api_keys: tuple[str, ...] = ()
    revision: Revision = "current"
    enrich_rpm: int = 15
    contact_rpm: int = 15
    live_rpm: int = 10
    search_rpm: int = 30
    autocomplete_rpm: int = 300
    account_rpm: int = 300
    rate_window: float = 60.0
    rate_limits_enabled: bool = True
    send_retry_after: bool = False
    credits_header: bool = True
    balance: Decimal | None = None
    gated_fields: tuple[str, ...] = ()
    default_plan: Plan = field(default_factory=Plan)
    default_fields: DefaultFields = "default"
    include_default_families: bool = True
    no_match_status: int = 200
    live_latency_ms: int = 0
    hostile_people: int = 0
    faults: tuple[FaultRule, ...] = ()
    fault_seed: int = 0
    access_log: bool = False
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.api_keys = tuple(self.api_keys)
        self.gated_fields = tuple(self.gated_fields)
        self.faults = tuple(self.faults)
        self._check_sizes()
        if any(not k for k in self.api_keys):
            raise ConfigError("api keys must be non-empty strings")
        if self.revision not in REVISIONS:
            raise ConfigError(f"revision must be 'current' or 'overview'; got {self.revision!r}")
        for name in RPM_SETTINGS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer; got {value!r}")
        if not (self.rate_window > 0 and math.isfinite(self.rate_window)):
            raise ConfigError(f"rate_window must be a positive number of seconds; got {self.rate_window!r}")
        if self.balance is not None and (not self.balance.is_finite() or self.balance < 0):
            raise ConfigError(f"balance must be a non-negative amount; got {self.balance}")
        if self.default_fields not in ("default", "all"):
            raise ConfigError(f"default_fields must be 'default' or 'all'; got {self.default_fields!r}")
        if self.no_match_status not in (200, 404):
            raise ConfigError(f"no_match_status must be 200 or 404; got {self.no_match_status!r}")
        if not 0 <= self.live_latency_ms <= MAX_LATENCY_MS:
            raise ConfigError(f"live_latency_ms must be between 0 and {MAX_LATENCY_MS}; got {self.live_latency_ms}")

    def _check_sizes(self) -> None:
        if self.people < 1:
            raise ConfigError(f"people must be at least 1; got {self.people}")
        if self.companies < 1:
            raise ConfigError(f"companies must be at least 1; got {self.companies}")
        if not 0 <= self.hostile_people <= self.people:
            raise ConfigError(f"hostile_people must be between 0 and people ({self.people}); got {self.hostile_people}")

    def rpm_for(self, endpoint: str) -> int:
        """The configured default rate limit of one endpoint (by ledger name)."""
        limit: int = getattr(self, f"{endpoint}_rpm")
        return limit

    def updated(self, changes: Mapping[str, object]) -> SandboxConfig:
        """A copy with the run-time settable keys in `changes` applied; raises ConfigError on bad input."""
        allowed = RUNTIME_KEYS
        unknown = sorted(k for k in changes if k not in allowed)
        if unknown:
            raise ConfigError(
                f"unknown or read-only config key(s): {', '.join(unknown)}; settable: {', '.join(allowed)}"
            )
        values: dict[str, Any] = {}
        for key, value in changes.items():
            values[key] = _coerce_runtime(key, value)
        return dataclasses.replace(self, **values)

    def runtime_view(self) -> dict[str, Any]:
        """The run-time settable keys and their current values, as JSON."""
        view: dict[str, Any] = {key: getattr(self, key) for key in RUNTIME_KEYS}
        view["gated_fields"] = list(self.gated_fields)
        return view


RUNTIME_KEYS: tuple[str, ...] = (
    "revision",
    *RPM_SETTINGS,
    "rate_window",
    "rate_limits_enabled",
    "send_retry_after",
    "credits_header",
    "gated_fields",
    "no_match_status",
    "default_fields",
    "include_default_families",
    "live_latency_ms",
)
_INTEGER_KEYS = frozenset({*RPM_SETTINGS, "no_match_status", "live_latency_ms"})
_BOOLEAN_KEYS = frozenset({"rate_limits_enabled", "send_retry_after", "include_default_families", "credits_header"})


def _coerce_runtime(key: str, value: object) -> object:
    if key in _INTEGER_KEYS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer; got {value!r}")
        return value
    if key == "rate_window":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"rate_window must be a number of seconds; got {value!r}")
        return float(value)
    if key in _BOOLEAN_KEYS:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false; got {value!r}")
        return value
    if key == "gated_fields":
        if not isinstance(value, list):
            raise ConfigError("gated_fields must be a list of field names")
        items = cast("list[object]", value)
        if not all(isinstance(v, str) and v for v in items):
            raise ConfigError("gated_fields must be a list of field names")
        return tuple(cast("list[str]", items))
    # revision and default_fields: validated by __post_init__ through dataclasses.replace.
    if not isinstance(value, str):
        raise ConfigError(f"{key} must be a string; got {value!r}")
    return value
