"""1. Context saved: what the model receives from a tool call, against the raw upstream answer and the minimum.

For the same people and the same request, three byte counts (and approximate token counts, `approx_tokens`):

- ours: the tool result as the model receives it, from a real MCP client over stdio: its text content, which is
  `structuredContent` as compact JSON (one copy: a client shows the model one or the other);
- raw: the body of the upstream's answer to the very request the server sent (read back from the sandbox
  ledger and replayed with httpx2);
- minimal: the upstream-shaped answer reduced to exactly the requested values plus what identifies each
  person (`matched_on`, `match_type`, `confidence_score`), compact, without nulls or empties. It is built
  here from the sandbox's full profiles by `minimal_person`, which shares no code with the server's projection.

Plus the size of the whole `tools/list` answer: the JSON-RPC line the server writes on stdout.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any, cast

import anyio
import httpx2
from mcp import Client
from mcp.client.stdio import get_default_environment
from mcp.types import CallToolResult

from bench.common import (
    SERVER_COMMAND,
    Figures,
    Sizes,
    approx_tokens,
    compact_json,
    ledger,
    new_key,
    sample_identifiers,
    server_env,
    stdio_params,
    upstream_headers,
)
from person_enrich_mcp.sandbox import SandboxServer

BATCH = 25
# What a model gets without `fields`, as the README documents it (name, headline, title, employer, location, URL).
DEFAULT_FIELDS = (
    "basic_profile.name",
    "basic_profile.headline",
    "basic_profile.current_title",
    "basic_profile.location.full_location",
    "experience.employment_details.current.name",
    "social_handles.professional_network_identifier.profile_url",
)
# A typical selection: the basic profile, the current employer and the business e-mail.
SELECTION_FIELDS = ("basic_profile", "experience.employment_details.current.name", "contact.business_emails.email")
FULL_FIELDS = (
    "crustdata_person_id",
    "updated_at",
    "basic_profile",
    "professional_network",
    "social_handles",
    "experience",
    "education",
    "skills",
    "contact",
    "dev_platform_profiles",
    "certifications",
    "honors",
)
CASES: dict[str, tuple[str, ...] | None] = {"default": None, "selection": SELECTION_FIELDS, "full": FULL_FIELDS}


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _pick(value: Any, paths: list[list[str]]) -> Any:
    """The parts of `value` that `paths` (lists of keys; [] = all of it) name, lists descended, empties dropped."""
    if any(not path for path in paths):
        return _prune(value)
    if isinstance(value, list):
        picked = [_pick(item, paths) for item in cast(list[Any], value)]
        return [item for item in picked if not _empty(item)]
    if not isinstance(value, dict):
        return None
    source = cast(dict[str, Any], value)
    out: dict[str, Any] = {}
    for key in dict.fromkeys(path[0] for path in paths):
        if key in source:
            kept = _pick(source[key], [path[1:] for path in paths if path[0] == key])
            if not _empty(kept):
                out[key] = kept
    return out


def _prune(value: Any) -> Any:
    if isinstance(value, dict):
        pruned = {k: _prune(v) for k, v in cast(dict[str, Any], value).items()}
        return {k: v for k, v in pruned.items() if not _empty(v)}
    if isinstance(value, list):
        items = [_prune(v) for v in cast(list[Any], value)]
        return [v for v in items if not _empty(v)]
    return value


def minimal_person(url: str, person_data: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """One person of the minimal answer: the identifying keys and exactly the requested values."""
    picked = _pick(person_data, [f.split(".") for f in fields])
    return {
        "matched_on": url,
        "match_type": "professional_network_profile_url",
        "confidence_score": 1.0,
        "person_data": picked if isinstance(picked, dict) else {},
    }


def model_view(result: CallToolResult) -> str:
    """What the model receives: one copy of the result. The text content is the structured content as compact JSON
    (a client shows the model one or the other); were it anything else, both would count."""
    text = "".join(block.text for block in result.content if block.type == "text")
    structured = compact_json(result.structured_content) if result.structured_content is not None else ""
    return text if text == structured or not structured else structured + text


def tools_list_bytes(api_url: str) -> tuple[int, int]:
    """Bytes of the JSON-RPC answer to `tools/list` as the stdio server writes it (newline excluded), and of its
    `result` alone (compact JSON)."""
    env = get_default_environment() | server_env(api_url, new_key("tools-list"))
    messages: list[dict[str, Any]] = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "1"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}},
    ]
    process = subprocess.Popen([SERVER_COMMAND], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert process.stdin is not None and process.stdout is not None
    try:
        for message in messages:
            process.stdin.write(json.dumps(message).encode() + b"\n")
            process.stdin.flush()
            if "id" not in message:
                continue
            while True:  # skip notifications and log messages until the answer to this request
                line = process.stdout.readline().rstrip(b"\n")
                if not line:
                    raise RuntimeError("the server closed stdout before answering")
                answer: Any = json.loads(line)
                if isinstance(answer, dict) and cast(dict[str, Any], answer).get("id") == message["id"]:
                    break
            if "result" not in answer:
                raise RuntimeError(f"{message['method']} failed: {line[:300]!r}")
            if message["id"] == 2:
                return len(line), len(compact_json(answer["result"]).encode())
        raise RuntimeError("no tools/list answer")
    finally:
        process.stdin.close()
        process.wait(30)


async def run(sandbox: SandboxServer, sizes: Sizes) -> Figures:
    api = sandbox.url
    key = new_key("context")
    urls = sample_identifiers(api, "url", sizes.context_people)
    batches = [urls[i : i + BATCH] for i in range(0, len(urls), BATCH)]
    ours: dict[str, list[str]] = {case: [] for case in CASES}
    env = server_env(api, key, PERSON_ENRICH_CACHE_TTL="0")  # every case fetches exactly its own selection
    listing: list[tuple[int, int]] = []

    async def list_tools() -> None:  # its own server process, meanwhile
        listing.append(await anyio.to_thread.run_sync(tools_list_bytes, api))

    async with anyio.create_task_group() as group, Client(stdio_params(env), mode="legacy", cache=None) as client:
        group.start_soon(list_tools)
        for case, fields in CASES.items():
            for batch in batches:
                arguments: dict[str, Any] = {"professional_network_profile_urls": batch}
                if fields is not None:
                    arguments["fields"] = list(fields)
                result = await client.call_tool("enrich_person_by_url", arguments)
                if result.is_error:
                    raise RuntimeError(f"context {case}: {model_view(result)[:300]}")
                ours[case].append(model_view(result))

    # The raw side: replay each body the server sent upstream (in order: default, selection, full).
    recent = cast(list[dict[str, Any]], ledger(api, key)["recent"])
    bodies = [cast(dict[str, Any], r["body"]) for r in recent if r["endpoint"] == "enrich"]
    if len(bodies) != len(CASES) * len(batches):
        raise RuntimeError(f"expected {len(CASES) * len(batches)} upstream requests, the ledger has {len(bodies)}")
    raw: dict[str, list[str]] = {case: [] for case in CASES}
    async with httpx2.AsyncClient(base_url=api, headers=upstream_headers(new_key("context-raw"))) as http:
        for index, body in enumerate(bodies):
            response = await http.post("/person/enrich", json=body)
            response.raise_for_status()
            raw[list(CASES)[index // len(batches)]].append(response.text)

    # The minimal side, from the sandbox's own full profiles.
    dataset = sandbox.state.dataset
    minimal: dict[str, list[str]] = {case: [] for case in CASES}
    for case, fields in CASES.items():
        for batch in batches:
            people: list[dict[str, Any]] = []
            for url in batch:
                person = dataset.lookup_slug(url.rstrip("/").rsplit("/", 1)[1])
                if person is not None and not person.opted_out:
                    people.append(minimal_person(url, person.data, fields or DEFAULT_FIELDS))
            minimal[case].append(compact_json(people))

    def size(texts: list[str]) -> int:
        return sum(len(t.encode()) for t in texts)

    def tokens(texts: list[str]) -> int:
        return sum(approx_tokens(t) for t in texts)

    figures: Figures = {}
    for case in CASES:
        figures[f"context_{case}_bytes"] = size(ours[case])
        figures[f"context_{case}_tokens"] = tokens(ours[case])
        figures[f"context_{case}_raw_bytes"] = size(raw[case])
        figures[f"context_{case}_raw_tokens"] = tokens(raw[case])
        figures[f"context_{case}_minimal_bytes"] = size(minimal[case])
        figures[f"context_{case}_minimal_tokens"] = tokens(minimal[case])
        figures[f"context_{case}_vs_raw_same_request"] = size(ours[case]) / size(raw[case])
        figures[f"context_{case}_vs_minimal"] = size(ours[case]) / size(minimal[case])
    figures["context_people"] = len(urls)
    figures["context_default_ratio"] = size(ours["default"]) / size(raw["full"])
    figures["context_default_token_ratio"] = tokens(ours["default"]) / tokens(raw["full"])
    figures["context_selection_ratio"] = size(ours["selection"]) / size(minimal["selection"])
    figures["context_selection_token_ratio"] = tokens(ours["selection"]) / tokens(minimal["selection"])
    figures["tools_list_bytes"], figures["tools_list_result_bytes"] = listing[0]
    return figures
