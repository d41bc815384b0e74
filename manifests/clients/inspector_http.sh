# List the tools over HTTP, with the token from `person-enrich-mcp token create NAME` in your shell (Node.js 22+).
npx -y @modelcontextprotocol/inspector@2.12.0 --cli http://127.0.0.1:8000/mcp --transport http --header "Authorization: Bearer $PERSON_ENRICH_MCP_TOKEN" --method tools/list
# The same against your team's deployment behind TLS.
npx -y @modelcontextprotocol/inspector@2.12.0 --cli https://mcp.example.com/mcp --transport http --header "Authorization: Bearer $PERSON_ENRICH_MCP_TOKEN" --method tools/list
