"""The sandbox: an offline, deterministic emulator of the upstream Person API over HTTP.

All of its data is synthetic. It shares no code with the MCP server, so the two can disagree.
"""

from person_enrich_mcp.sandbox.app import create_app
from person_enrich_mcp.sandbox.config import FaultRule, SandboxConfig
from person_enrich_mcp.sandbox.dataset import generate_dataset
from person_enrich_mcp.sandbox.server import SandboxServer

__all__ = ["FaultRule", "SandboxConfig", "SandboxServer", "create_app", "generate_dataset"]
