# Real API: the key is read from your shell when you run this line, and stored in Claude Code's config.
claude mcp add --transport stdio --scope user --env CRUSTDATA_API_KEY="$CRUSTDATA_API_KEY" person-enrich -- person-enrich-mcp
# Sandbox: synthetic data, no key, nothing billed.
claude mcp add --transport stdio --scope user person-enrich-sandbox -- person-enrich-mcp --sandbox
