"""The pass-through reference: what most peer servers are, a thin MCP wrapper that forwards and returns raw JSON.

`python -m bench.passthrough` serves over stdio, on the same SDK (`mcp` 2.x `MCPServer`), the same three enrich
tool names as person-enrich-mcp, and nothing else: no identifier checks, no budget, no cache, no trimming, no
rate limiter, no receipts. Each call posts the model's arguments to the upstream as they are (its `fields`, if
any, passed through; without them the upstream's default) and returns the upstream's answer body as text,
unparsed. It is the yardstick of `bench/overhead.py`: a user who does not run ours runs something like this.

Like ours, it answers with one copy a model reads: the text only (`structured_output=False`; a `str` result would
otherwise also be wrapped as `structuredContent`, doubling the bytes), and it reuses one HTTP client for every
call (a wrapper that built a client per call would pay a TLS context each time, which would flatter ours).

Environment: `CRUSTDATA_API_KEY`, `PERSON_ENRICH_API_BASE_URL` (the sandbox). Bench-only; not part of the package.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any, cast

import httpx2
from mcp.server import MCPServer
from mcp.server.mcpserver import Context

API_VERSION = "2025-11-01"
BATCH = 25


@asynccontextmanager
async def _lifespan(_: MCPServer[httpx2.AsyncClient]) -> AsyncGenerator[httpx2.AsyncClient]:
    headers = {
        "authorization": f"Bearer {os.getenv('CRUSTDATA_API_KEY', '')}",
        "x-api-version": API_VERSION,
        "content-type": "application/json",
    }
    base = os.getenv("PERSON_ENRICH_API_BASE_URL", "https://api.crustdata.com")
    async with httpx2.AsyncClient(base_url=base, headers=headers, timeout=httpx2.Timeout(60, connect=10)) as http:
        yield http


server = MCPServer[httpx2.AsyncClient]("passthrough-reference", lifespan=_lifespan)


Ctx = Context[httpx2.AsyncClient, Any]


async def _post(ctx: Ctx, path: str, body: dict[str, Any]) -> str:
    response = await ctx.request_context.lifespan_context.post(path, content=json.dumps(body))
    return response.text  # the upstream's body as it is, errors included


@server.tool(structured_output=False)
async def enrich_person_by_url(
    professional_network_profile_urls: list[str], ctx: Ctx, fields: list[str] | None = None
) -> str:
    """Enrich people by profile URL (forwards to /person/enrich, returns its JSON)."""
    body: dict[str, Any] = {"professional_network_profile_urls": professional_network_profile_urls}
    if fields:
        body["fields"] = fields
    return await _post(ctx, "/person/enrich", body)


@server.tool(structured_output=False)
async def enrich_person_by_email(business_emails: list[str], ctx: Ctx, fields: list[str] | None = None) -> str:
    """Look people up by work email (forwards to /person/contact/enrich, returns its JSON)."""
    body: dict[str, Any] = {"business_emails": business_emails}
    if fields:
        body["fields"] = fields
    return await _post(ctx, "/person/contact/enrich", body)


@server.tool(structured_output=False)
async def search_then_enrich(
    filters: dict[str, Any],
    ctx: Ctx,
    sorts: list[dict[str, Any]] | None = None,
    limit: int = 5,
    cursor: str | None = None,
    fields: list[str] | None = None,
) -> str:
    """Search people, then enrich the profiles found (returns the search JSON and each enrich JSON)."""
    body: dict[str, Any] = {"filters": filters, "limit": limit}
    if sorts:
        body["sorts"] = sorts
    if cursor:
        body["cursor"] = cursor
    found = await _post(ctx, "/person/search", body)
    try:
        people = cast(list[dict[str, Any]], json.loads(found).get("profiles") or [])
    except (ValueError, AttributeError):
        return found
    urls: list[str] = []
    for person in people:
        handles = cast(dict[str, Any], person.get("social_handles") or {})
        handle = cast(dict[str, Any], handles.get("professional_network_identifier") or {})
        if url := handle.get("profile_url"):
            urls.append(str(url))
    parts = [found]
    for start in range(0, len(urls), BATCH):
        enrich: dict[str, Any] = {"professional_network_profile_urls": urls[start : start + BATCH]}
        if fields:
            enrich["fields"] = fields
        parts.append(await _post(ctx, "/person/enrich", enrich))
    return "[" + ",".join(parts) + "]"


if __name__ == "__main__":
    server.run("stdio")
