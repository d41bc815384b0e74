# Runs in .venv-agents (see scripts/test), where LangChain lives: .venv cannot hold it, since
# langchain-mcp-adapters needs mcp<2. Pyright checks this file without those imports, hence:
# pyright: basic
# pyright: reportMissingImports=false
"""Load our tools into LangChain over stdio, as a user's agent would, and call them without an LLM.

Usage: python langchain_client.py SERVER_COMMAND [ARG ...]
Prints one JSON object: the versions used, each tool as LangChain and an OpenAI-style binding see it, and
the results of three calls made in one MCP session.
"""

from __future__ import annotations

import asyncio
import json
import sys
from importlib.metadata import version
from typing import Any

from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_mcp_adapters.client import MultiServerMCPClient
from langchain_mcp_adapters.tools import load_mcp_tools

GERMANY = {"field": "basic_profile.location.country", "type": "=", "value": "Germany"}


def _schema(tool: Any) -> dict[str, Any]:
    schema = tool.args_schema
    return schema if isinstance(schema, dict) else schema.model_json_schema()


async def _call(tool: Any, call_id: str, args: dict[str, Any]) -> dict[str, Any]:
    """Invoke a tool with a tool call, as an agent does, so the message keeps the structured artifact."""
    message = await tool.ainvoke({"type": "tool_call", "id": call_id, "name": tool.name, "args": args})
    return {"content": message.content, "artifact": message.artifact, "status": message.status}


async def run(command: str, args: list[str]) -> dict[str, Any]:
    client = MultiServerMCPClient({"person-enrich": {"transport": "stdio", "command": command, "args": args}})
    async with client.session("person-enrich") as session:
        tools = {tool.name: tool for tool in await load_mcp_tools(session)}
        found = await _call(tools["search_then_enrich"], "call-1", {"filters": GERMANY, "limit": 2})
        urls = [p["matched_on"] for p in found["artifact"]["structured_content"]["people"]]
        again = await _call(tools["enrich_person_by_url"], "call-2", {"professional_network_profile_urls": urls})
        budget = await _call(tools["get_budget"], "call-3", {})
    return {
        "versions": {name: version(name) for name in ("langchain-mcp-adapters", "langchain-core", "mcp")},
        "tools": [
            {"name": name, "args_schema": _schema(tool), "openai": convert_to_openai_tool(tool)}
            for name, tool in tools.items()
        ],
        "search_then_enrich": found,
        "enrich_person_by_url": again,
        "get_budget": budget,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(sys.argv[1], sys.argv[2:])), default=str))
