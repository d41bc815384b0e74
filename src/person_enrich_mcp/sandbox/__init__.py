"""The sandbox: an offline, deterministic emulator of the upstream Person API over HTTP.

All of its data is synthetic. It shares no code with the MCP server, so the two can disagree.

Its parts are imported on first use, so `person-enrich-mcp` serving MCP (which only needs the `sandbox`
subcommand's arguments) does not pay for the emulator's web stack and dataset generator at start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from person_enrich_mcp.sandbox.app import create_app
    from person_enrich_mcp.sandbox.config import FaultRule, SandboxConfig
    from person_enrich_mcp.sandbox.dataset import generate_dataset
    from person_enrich_mcp.sandbox.server import SandboxServer

__all__ = ["FaultRule", "SandboxConfig", "SandboxServer", "create_app", "generate_dataset"]

_HOMES = {
    "create_app": "app",
    "FaultRule": "config",
    "SandboxConfig": "config",
    "generate_dataset": "dataset",
    "SandboxServer": "server",
}
_SUBMODULES = frozenset(
    {
        "account",
        "app",
        "autocomplete",
        "billing",
        "calls",
        "catalog",
        "cli",
        "config",
        "contact",
        "dataset",
        "endpoints",
        "enrich",
        "faults",
        "filters",
        "hostile",
        "plans",
        "pricing",
        "ratelimit",
        "search",
        "server",
        "state",
        "validation",
        "values",
        "vocabulary",
    }
)


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
