"""Entry point of the desktop bundle (`server.entry_point`): runs the same CLI as the console script.

The bundle's host runs it with the bundle's own `pyproject.toml` installed (MCPB server type `uv`), so the
package is importable; this file only exists so the entry point is a plain script outside the package.
"""

from person_enrich_mcp.cli import main

raise SystemExit(main())
