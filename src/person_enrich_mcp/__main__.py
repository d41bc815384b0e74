"""`python -m person_enrich_mcp` runs the command-line interface."""

from person_enrich_mcp.cli import main

raise SystemExit(main())
