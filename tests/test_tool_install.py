"""The README's install for clients: `uv tool install .` from a checkout puts the bare command on the PATH.

The install runs exactly as `manifests/clients/install.sh` says, with a clean temporary HOME and uv's tool
directories in it (`UV_TOOL_DIR`, `UV_TOOL_BIN_DIR`), against the package index the machine is set up for. Then
every stdio client snippet starts the bare `person-enrich-mcp` on a PATH that holds only that bin directory (plus,
for the Inspector, the Node.js 22+ of `.venv-node` and a `sh` for npm): nothing resolves to the development
virtualenv.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import anyio
import pytest
from mcp import Client, StdioServerParameters

from person_enrich_mcp import __version__
from person_enrich_mcp.server import TOOL_SPECS
from tests.client_snippets import CLIENTS, CONSOLE_SCRIPT_NAME, ROOT, shell_lines, stdio_entries
from tests.conftest import Upstream

UV = Path(sys.executable).parent / "uv"
NODE_BIN = ROOT / ".venv-node" / "bin"
# Every tool the server publishes, in its order (a new tool must show through every client too).
TOOLS = [spec.fn.__name__ for spec in TOOL_SPECS]
SECRET = "CRUSTDATA_API_KEY"


def machine_env(**extra: str) -> dict[str, str]:
    """The machine's environment (its CA bundle and proxy settings, which package clients need) plus `extra`."""
    env = dict(os.environ)  # noqa: TID251 - handing the environment to a child process, not reading settings
    env.update(extra)
    return env


def only(directory: Path, *programs: str) -> Path:
    """A directory holding just these programs of the machine (links), for a PATH that offers nothing else."""
    directory.mkdir(parents=True, exist_ok=True)
    for program in programs:
        found = Path("/usr/bin", program)
        (directory / program).symlink_to(found if found.exists() else Path("/bin", program))
    return directory


@dataclass(frozen=True)
class ToolInstall:
    """Where `uv tool install .` put things, and the clean HOME it ran with."""

    home: Path
    tools: Path
    bin: Path
    sh: Path

    def env(self, *path: Path, **extra: str) -> dict[str, str]:
        """The machine's environment with this HOME and a PATH of exactly `path`."""
        env = machine_env(HOME=str(self.home), PATH=os.pathsep.join(map(str, path)), **extra)
        for name in ("VIRTUAL_ENV", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_BIN_HOME"):
            env.pop(name, None)
        return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToolInstall]:
    """The README's install command, run as written from this checkout into temporary tool directories."""
    if not UV.exists():
        pytest.fail(f"{UV} is missing: run ./scripts/test, which installs the dev dependencies (uv among them)")
    root = tmp_path_factory.mktemp("uv-tool")
    install = ToolInstall(root / "home", root / "tools", root / "bin", only(root / "sh", "sh"))
    install.home.mkdir()
    uv_only = root / "uv"
    uv_only.mkdir()
    (uv_only / "uv").symlink_to(UV)
    # uv finds a Python on the machine's PATH; the snippet's bare `uv` is the one of the dev dependencies.
    machine_path = machine_env().get("PATH", "")
    env = install.env(uv_only, *map(Path, machine_path.split(os.pathsep)))
    env |= {"UV_TOOL_DIR": str(install.tools), "UV_TOOL_BIN_DIR": str(install.bin)}
    lines = shell_lines(CLIENTS / "install.sh")
    assert lines == ["uv tool install ."], lines
    for line in lines:
        done = subprocess.run(
            ["/bin/bash", "-c", line], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
        )
        assert done.returncode == 0, done.stderr[-3000:]
    yield install


@pytest.mark.slow
def test_uv_tool_install_from_a_checkout_puts_the_bare_command_in_its_bin_dir(installed: ToolInstall) -> None:
    script = installed.bin / CONSOLE_SCRIPT_NAME
    assert script.exists()
    # It runs the Python of its own environment under UV_TOOL_DIR, not the development virtualenv's.
    launcher = script.read_text(encoding="utf-8", errors="replace").splitlines()[:3]
    assert any(str(installed.tools) in line for line in launcher), launcher
    done = subprocess.run(
        ["/bin/bash", "-c", f"{CONSOLE_SCRIPT_NAME} --version"],
        env=installed.env(installed.bin),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stdout.strip() == f"{CONSOLE_SCRIPT_NAME} {__version__}", done.stderr


@pytest.mark.slow
def test_the_inspector_snippet_as_written_drives_the_installed_bare_command(
    installed: ToolInstall, tmp_path: Path
) -> None:
    if not (NODE_BIN / "npx").exists():
        pytest.fail(f"{NODE_BIN / 'npx'} is missing: run ./scripts/test, which installs Node.js 22+ into .venv-node")
    env = installed.env(installed.bin, NODE_BIN, installed.sh, MCP_CATALOG_PATH=str(tmp_path / "catalog.json"))
    outputs: dict[str, dict[str, Any]] = {}
    for line in shell_lines(CLIENTS / "inspector.sh"):
        done = subprocess.run(
            ["/bin/bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert done.returncode == 0, done.stderr[-3000:]
        method = line.split("--method ", 1)[1].split()[0]
        outputs[method] = cast(dict[str, Any], json.loads(done.stdout))
    assert [t["name"] for t in outputs["tools/list"]["tools"]] == TOOLS
    called = outputs["tools/call"]
    assert called["isError"] is False and called["structuredContent"]["sandbox"] is True


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize("revision", ["current"], indirect=True)
async def test_every_stdio_client_snippet_starts_the_installed_bare_command(
    installed: ToolInstall, upstream: Upstream
) -> None:
    entries = [entry for by_file in stdio_entries().values() for entry in by_file]
    assert len(entries) == 8  # four clients, a keyed and a sandbox entry each
    for entry in entries:
        assert entry.command == CONSOLE_SCRIPT_NAME, entry
        # The client fills in the key from its prompt, variable or file; here it is the test sandbox's key.
        env = dict.fromkeys(entry.env, upstream.key)
        if SECRET in env:
            env["PERSON_ENRICH_API_BASE_URL"] = upstream.url
        env |= {"PATH": str(installed.bin), "HOME": str(installed.home)}
        with anyio.fail_after(60):
            async with Client(StdioServerParameters(command=entry.command, args=entry.args, env=env)) as client:
                assert client.server_info is not None and client.server_info.name == CONSOLE_SCRIPT_NAME
                books = (await client.call_tool("get_budget", {})).structured_content
        assert books is not None and books["spent"] == "0.00", entry
