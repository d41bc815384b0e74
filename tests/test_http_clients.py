"""The README's HTTP client snippets connect to a real server with a real token.

One `person-enrich-mcp --sandbox --transport http` behind a tokens file. Every snippet's loopback entry is
connected to it with the header exactly as the snippet writes it, the token placeholder filled in the way that
client fills it in; the Inspector snippet runs as written, in a shell holding the token in its variable.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from person_enrich_mcp.server import TOOL_SPECS
from tests.client_snippets import (
    CLIENTS,
    LOCAL_URL,
    ROOT,
    TOKEN_VARIABLE,
    HttpEntry,
    http_entries,
    shell_lines,
    with_token,
)
from tests.http_helpers import HttpServer, write_tokens

NODE_BIN = ROOT / ".venv-node" / "bin"
# Every tool the server publishes, in its order (a new tool must show through every client too).
TOOLS = [spec.fn.__name__ for spec in TOOL_SPECS]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HttpServer, str]]:
    """The sandbox served over HTTP to holders of one token; yields the server and that token."""
    tokens_file = tmp_path_factory.mktemp("http-clients") / "tokens"
    token = write_tokens(tokens_file, "snippet-user")["snippet-user"]
    running = HttpServer({"PERSON_ENRICH_TOKENS_FILE": str(tokens_file)}, "--sandbox")
    yield running, token
    running.stop()


def _local(url: str, running: HttpServer) -> str:
    """The snippet's loopback URL on the port this test's server got (8000 may be taken by anything)."""
    assert LOCAL_URL in url, url
    return url.replace("127.0.0.1:8000", f"127.0.0.1:{running.port}")


async def _tool_names(entry: HttpEntry, running: HttpServer, token: str) -> list[str]:
    http = httpx2.AsyncClient(headers=with_token(entry, token), timeout=httpx2.Timeout(60, connect=5))
    async with http, Client(streamable_http_client(_local(entry.url, running), http_client=http)) as client:
        return [tool.name for tool in (await client.list_tools()).tools]


@pytest.mark.anyio
async def test_every_http_snippet_lists_the_tools_with_its_own_header_and_a_real_token(
    server: tuple[HttpServer, str],
) -> None:
    running, token = server
    for name, entries in http_entries().items():
        (entry,) = [e for e in entries if e.url == LOCAL_URL]
        with anyio.fail_after(60):
            assert await _tool_names(entry, running, token) == TOOLS, name


def _run_inspector(line: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run an Inspector snippet line in bash, with Node.js 22+ and a `sh` (npm spawns one) as the only programs."""
    if not (NODE_BIN / "npx").exists():
        pytest.fail(f"{NODE_BIN / 'npx'} is missing: run ./scripts/test, which installs Node.js 22+ into .venv-node")
    sh_only = tmp_path / "sh"
    sh_only.mkdir(exist_ok=True)
    if not (sh_only / "sh").exists():
        (sh_only / "sh").symlink_to("/bin/sh")
    full = dict(os.environ)  # noqa: TID251 - npm needs the machine's CA bundle and proxy settings
    full.pop(TOKEN_VARIABLE, None)
    full |= {"PATH": f"{NODE_BIN}{os.pathsep}{sh_only}", "MCP_CATALOG_PATH": str(tmp_path / "catalog.json"), **env}
    return subprocess.run(
        ["/bin/bash", "-c", line], cwd=tmp_path, env=full, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.slow
def test_the_inspector_http_snippet_as_written_lists_the_tools_with_the_token_from_the_shell(
    server: tuple[HttpServer, str], tmp_path: Path
) -> None:
    running, token = server
    (line,) = [line for line in shell_lines(CLIENTS / "inspector_http.sh") if LOCAL_URL in line]
    done = _run_inspector(_local(line, running), tmp_path, **{TOKEN_VARIABLE: token})
    assert done.returncode == 0, done.stderr[-3000:]
    tools = cast(list[dict[str, Any]], json.loads(done.stdout)["tools"])
    assert [t["name"] for t in tools] == TOOLS
    # The header is what lets it in: the same line with the variable unset is refused (the Inspector's exit code 3
    # is "the server requires authentication").
    refused = _run_inspector(_local(line, running), tmp_path)
    assert refused.returncode == 3 and '"tools"' not in refused.stdout, refused.stderr[-3000:]
