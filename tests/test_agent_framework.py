"""Our tools as an agent framework users run loads them: LangChain's MCP adapters, over stdio, no LLM needed.

The framework lives in `.venv-agents` (it needs mcp<2; we need mcp>=2.3), so this also proves that a client
on the other SDK generation consumes our schemas and results as they are. `./scripts/test` installs it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pytest
from mcp import Client

ROOT = Path(__file__).resolve().parents[1]
AGENTS_PYTHON = ROOT / ".venv-agents" / "bin" / "python"
SCRIPT = ROOT / "tests" / "agents" / "langchain_client.py"
CONSOLE_SCRIPT = Path(sys.executable).parent / "person-enrich-mcp"


@pytest.fixture(scope="module")
def langchain_run() -> dict[str, Any]:
    """One LangChain session against `person-enrich-mcp --sandbox`: tools loaded, six calls made."""
    if not AGENTS_PYTHON.exists():
        pytest.fail(f"{AGENTS_PYTHON} is missing: run ./scripts/test, which installs LangChain's MCP adapters there")
    done = subprocess.run(
        [str(AGENTS_PYTHON), str(SCRIPT), str(CONSOLE_SCRIPT), "--sandbox"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return cast(dict[str, Any], json.loads(done.stdout))


@pytest.mark.slow
def test_langchain_runs_on_the_other_sdk_generation(langchain_run: dict[str, Any]) -> None:
    versions = langchain_run["versions"]
    pinned = (ROOT / "tests" / "agents" / "requirements.txt").read_text(encoding="utf-8")
    assert f"langchain-mcp-adapters=={versions['langchain-mcp-adapters']}" in pinned
    assert versions["mcp"].startswith("1."), versions


@pytest.mark.slow
@pytest.mark.anyio
async def test_langchain_loads_every_tool_with_our_input_schemas(langchain_run: dict[str, Any], client: Client) -> None:
    ours = {t.name: t for t in (await client.list_tools()).tools}
    loaded = {t["name"]: t for t in langchain_run["tools"]}
    assert set(loaded) == set(ours)
    for name, tool in loaded.items():
        properties = set(ours[name].input_schema.get("properties", {}))
        assert set(tool["args_schema"].get("properties", {})) == properties, name
        function = tool["openai"]["function"]
        assert function["name"] == name and function["description"] == ours[name].description
        assert set(function["parameters"].get("properties", {})) == properties, name


@pytest.mark.slow
def test_langchain_calls_a_paid_tool_in_sandbox_mode_and_gets_our_result_with_a_receipt(
    langchain_run: dict[str, Any],
) -> None:
    found = langchain_run["search_then_enrich"]
    structured = found["artifact"]["structured_content"]
    assert found["status"] == "success"
    assert structured["sandbox"] is True and len(structured["people"]) == 2
    receipt = structured["receipt"]
    assert receipt["charged"] == receipt["estimated"] and Decimal(receipt["charged"]) > 0
    # The content LangChain shows the model is the whole result, not a summary of it.
    assert json.loads(found["content"][0]["text"]) == structured


@pytest.mark.slow
def test_a_langchain_tool_message_carries_the_work_emails_the_look_up_paid_for(langchain_run: dict[str, Any]) -> None:
    paid = langchain_run["work_emails"]
    structured = paid["artifact"]["structured_content"]
    assert paid["status"] == "success" and Decimal(structured["receipt"]["charged"]) > 0
    emails = [
        entry["email"]
        for person in structured["people"]
        for entry in person["person_data"].get("contact", {}).get("business_emails", [])
    ]
    assert emails, structured
    # `content` is what the model reads (the artifact never reaches it): every paid-for email is in it.
    content = "".join(block["text"] for block in paid["content"] if block["type"] == "text")
    assert all(email in content for email in emails)


@pytest.mark.slow
def test_a_langchain_tool_message_shows_a_refusal_with_its_next_step(langchain_run: dict[str, Any]) -> None:
    refused = langchain_run["refused"]
    assert refused["status"] == "error" and refused["artifact"] is None
    content = refused["content"] if isinstance(refused["content"], str) else json.dumps(refused["content"])
    assert "Not run: this call could cost up to 20.60 credits" in content and "max_credits=20.60" in content


@pytest.mark.slow
def test_langchain_calls_share_one_session_so_the_repeat_is_free_and_the_books_add_up(
    langchain_run: dict[str, Any],
) -> None:
    first = langchain_run["search_then_enrich"]["artifact"]["structured_content"]["receipt"]
    repeat = langchain_run["enrich_person_by_url"]["artifact"]["structured_content"]
    assert repeat["receipt"]["charged"] == "0.00" and repeat["receipt"]["cache_hits"] == 2
    rows = langchain_run["candidates"]["artifact"]["structured_content"]["receipt"]["charged"]
    emails = langchain_run["work_emails"]["artifact"]["structured_content"]["receipt"]["charged"]
    books = langchain_run["get_budget"]["artifact"]["structured_content"]
    assert Decimal(books["spent"]) == Decimal(first["charged"]) + Decimal(rows) + Decimal(emails)
    assert [(r["tool"], r["charged"]) for r in books["receipts"]] == [
        ("search_then_enrich", first["charged"]),
        ("enrich_person_by_url", "0.00"),
        ("search_then_enrich", rows),
        ("enrich_person_by_url", emails),
    ]
