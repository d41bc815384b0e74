"""person-enrich-mcp: an MCP server for the Crustdata Person API, with an offline sandbox."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("person-enrich-mcp")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
