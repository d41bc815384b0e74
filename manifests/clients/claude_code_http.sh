# Over HTTP: a server on this machine, with the token from `person-enrich-mcp token create NAME` in your shell.
claude mcp add --transport http --scope user person-enrich-local http://127.0.0.1:8000/mcp --header "Authorization: Bearer $PERSON_ENRICH_MCP_TOKEN"
# Your team's deployment behind TLS: put its host in place of mcp.example.com.
claude mcp add --transport http --scope user person-enrich-team https://mcp.example.com/mcp --header "Authorization: Bearer $PERSON_ENRICH_MCP_TOKEN"
