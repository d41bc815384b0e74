# List the tools and report schema portability problems, with the official MCP Inspector (needs Node.js 22+).
npx -y @modelcontextprotocol/inspector@2.12.0 --cli --method tools/list --strict -- person-enrich-mcp --sandbox
# Call a paid tool in sandbox mode: synthetic people, nothing billed.
npx -y @modelcontextprotocol/inspector@2.12.0 --cli --method tools/call --tool-name search_then_enrich --tool-arg 'filters={"field":"basic_profile.location.country","type":"=","value":"Germany"}' limit=2 -- person-enrich-mcp --sandbox
