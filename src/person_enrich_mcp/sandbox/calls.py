"""What an endpoint's processing receives (`Call`) and returns (`Outcome`), and the upstream error envelope."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from person_enrich_mcp.sandbox.config import SandboxConfig
from person_enrich_mcp.sandbox.endpoints import PROFILE_PATHS, Revision
from person_enrich_mcp.sandbox.plans import EndpointPlan, Plan


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


def invalid(message: str, metadata: dict[str, Any] | list[Any] | None = None) -> ApiError:
    """A 400 `invalid_request`."""
    return ApiError(400, "invalid_request", message, metadata)


def fields_denied(revision: Revision, denied: Sequence[str]) -> ApiError:
    """The 403 for plan-disabled fields, in each revision's form.

    Today's service sends `metadata` as a list of entries (as observed by a third-party client); the overview
    revision's sandbox sent one object, and keeps doing so.
    """
    names = list(denied)
    if revision == "overview":
        message = f"Your plan does not include these fields: {', '.join(names)}"
        return ApiError(403, "permission_error", message, {"denied_fields": names})
    return ApiError(403, "permission_error", f"Access denied to fields: {', '.join(names)}", [{"denied_fields": names}])


def endpoint_not_enabled(path: str) -> ApiError:
    """The 403 for an endpoint the key's plan does not include."""
    return ApiError(
        403,
        "permission_error",
        f"Your plan does not include {path}. Contact your account manager to enable it.",
    )


def not_found() -> ApiError:
    """The 404 of an enrich batch in which nothing matched (with `no_match_status` 404)."""
    return ApiError(404, "not_found", "No data found")


@dataclass(frozen=True, slots=True)
class Call:
    """One authorised API request: who sent it, to which path, with what, under which plan and settings."""

    key: str  # the key's fingerprint, never the key
    path: str
    body: Any
    query: Mapping[str, str]
    plan: Plan
    config: SandboxConfig

    @property
    def terms(self) -> EndpointPlan:
        """The key's plan terms for this path."""
        return self.plan.endpoint(self.path)

    def disabled_fields(self) -> tuple[str, ...]:
        """Fields withheld on this call's path."""
        return disabled_fields_for(self.plan, self.config, self.path)


def disabled_fields_for(plan: Plan, config: SandboxConfig, path: str) -> tuple[str, ...]:
    """Fields withheld on a path: the plan's, plus the global `gated_fields` on the profile endpoints."""
    disabled = plan.disabled(path)
    if path in PROFILE_PATHS:
        return disabled + tuple(g for g in config.gated_fields if g not in disabled)
    return disabled


@dataclass
class Outcome:
    """What processing produced: the status and JSON payload to send, the credits it costs, and any delay."""

    status: int
    payload: Any
    cost: Decimal = Decimal(0)
    delay_seconds: float = 0.0
