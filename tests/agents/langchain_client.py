# Runs in .venv-agents (see scripts/test), where LangChain lives: .venv cannot hold it, since
# langchain-mcp-adapters needs mcp<2. Pyright checks this file without those imports, hence:
# pyright: basic
# pyright: reportMissingImports=false
"""Load our tools into LangChain over stdio, as a user's agent would, and call them without an LLM.

Usage: python langchain_client.py SERVER_COMMAND [ARG ...]
Prints one JSON object: the versions used, each tool as LangChain and an OpenAI-style binding see it, and
the results of the calls made in one MCP session (searches, look-ups, a paid work-email look-up, a refusal).
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
# People whose current role has a verified work email (elsewhere than the first search, so none of them is left out
# of the page as already seen): a paid look-up of their work emails finds one.
WITH_WORK_EMAIL = {
    "op": "and",
    "conditions": [
        {"field": "basic_profile.location.country", "type": "=", "value": "France"},
        {"field": "experience.employment_details.current.business_email_verified", "type": "=", "value": True},
    ],
}
WORK_EMAIL_FIELDS = ["basic_profile.name", "contact.business_emails"]


def _schema(tool: Any) -> dict[str, Any]:
    schema = tool.args_schema
    return schema if isinstance(schema, dict) else schema.model_json_schema()


async def _call(tool: Any, call_id: str, args: dict[str, Any]) -> dict[str, Any]:
    """Invoke a tool with a tool call, as an agent does, so the message keeps the structured artifact.

    `content` is what LangChain puts in front of the model; `artifact` it keeps aside, out of the model's view.
    """
    message = await tool.ainvoke({"type": "tool_call", "id": call_id, "name": tool.name, "args": args})
    return {"content": message.content, "artifact": message.artifact, "status": message.status}


async def run(command: str, args: list[str]) -> dict[str, Any]:
    client = MultiServerMCPClient({"person-enrich": {"transport": "stdio", "command": command, "args": args}})
    async with client.session("person-enrich") as session:
        tools = {tool.name: tool for tool in await load_mcp_tools(session)}
        found = await _call(tools["search_then_enrich"], "call-1", {"filters": GERMANY, "limit": 2})
        urls = [p["matched_on"] for p in found["artifact"]["structured_content"]["people"]]
        again = await _call(tools["enrich_person_by_url"], "call-2", {"professional_network_profile_urls": urls})
        # A paid look-up of work emails: the emails it paid for must be in the message content the model reads.
        candidates = await _call(
            tools["search_then_enrich"], "call-3", {"filters": WITH_WORK_EMAIL, "limit": 2, "enrich": False}
        )
        with_email = [p["matched_on"] for p in candidates["artifact"]["structured_content"]["people"]]
        emails = await _call(
            tools["enrich_person_by_url"],
            "call-4",
            {"professional_network_profile_urls": with_email, "fields": WORK_EMAIL_FIELDS},
        )
        # A refusal (above the confirmation threshold, and LangChain cannot show a prompt) reaches the model too.
        refused = await _call(tools["search_then_enrich"], "call-5", {"filters": GERMANY, "limit": 20})
        budget = await _call(tools["get_budget"], "call-6", {})
    return {
        "versions": {name: version(name) for name in ("langchain-mcp-adapters", "langchain-core", "mcp")},
        "tools": [
            {"name": name, "args_schema": _schema(tool), "openai": convert_to_openai_tool(tool)}
            for name, tool in tools.items()
        ],
        "search_then_enrich": found,
        "enrich_person_by_url": again,
        "candidates": candidates,
        "work_emails": emails,
        "refused": refused,
        "get_budget": budget,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(sys.argv[1], sys.argv[2:])), default=str))
