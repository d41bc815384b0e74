"""The client snippets in `manifests/clients/`, read the way each client reads them.

Stdio snippets start the console script; HTTP snippets name a URL and an `Authorization: Bearer` header whose
token is a placeholder the client fills in (a shell variable, a VS Code input, a Cursor environment variable).
The README includes every file verbatim, so what the tests parse here is what users copy.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = ROOT / "manifests" / "clients"
CONSOLE_SCRIPT_NAME = "person-enrich-mcp"

# Stdio snippets in JSON, by file: the key their servers are under.
STDIO_JSON = {
    "claude_desktop_config.json": "mcpServers",
    "cursor_mcp.json": "mcpServers",
    "vscode_mcp.json": "servers",
}
STDIO_SHELL = "claude_code.sh"

# HTTP: the two places every HTTP snippet connects to, and the client-side variable that holds the token.
LOCAL_URL = "http://127.0.0.1:8000/mcp"
PUBLIC_URL = "https://mcp.example.com/mcp"
TOKEN_VARIABLE = "PERSON_ENRICH_MCP_TOKEN"
VSCODE_TOKEN_INPUT = "person-enrich-token"
# Each HTTP snippet's token placeholder, as the client substitutes it.
HTTP_TOKEN_PLACEHOLDERS = {
    "claude_code_http.sh": f"${TOKEN_VARIABLE}",  # expanded by the shell that runs `claude mcp add`
    "inspector_http.sh": f"${TOKEN_VARIABLE}",  # expanded by the shell that runs npx
    "vscode_mcp_http.json": f"${{input:{VSCODE_TOKEN_INPUT}}}",  # VS Code prompts once, stores it encrypted
    "cursor_mcp_http.json": f"${{env:{TOKEN_VARIABLE}}}",  # from the environment Cursor was started with
}
HTTP_JSON = {"vscode_mcp_http.json": "servers", "cursor_mcp_http.json": "mcpServers"}


def read_json(path: Path) -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(path.read_text(encoding="utf-8")))


def shell_lines(path: Path) -> list[str]:
    """The command lines of a shell snippet, as written (comments and blank lines left out)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]


def shell_commands(path: Path) -> list[list[str]]:
    """Each command line of a shell snippet split into words the way the shell does (variables left as written)."""
    return [shlex.split(line) for line in shell_lines(path)]


@dataclass(frozen=True)
class StdioEntry:
    """One server a stdio snippet configures: the command a client starts, with its arguments and environment."""

    snippet: str
    command: str
    args: list[str]
    env: dict[str, str]


def stdio_entries() -> dict[str, list[StdioEntry]]:
    """Every server entry of every stdio client snippet, by file."""
    entries: dict[str, list[StdioEntry]] = {}
    for name, key in STDIO_JSON.items():
        servers = cast(dict[str, dict[str, Any]], read_json(CLIENTS / name)[key])
        entries[name] = [
            StdioEntry(name, s["command"], list(s.get("args", [])), dict(s.get("env", {}))) for s in servers.values()
        ]
    entries[STDIO_SHELL] = []
    for argv in shell_commands(CLIENTS / STDIO_SHELL):
        assert argv[:3] == ["claude", "mcp", "add"] and "--" in argv, argv
        options, command = argv[3 : argv.index("--")], argv[argv.index("--") + 1 :]
        assert options[options.index("--transport") + 1] == "stdio"
        env = dict(options[i + 1].split("=", 1) for i, o in enumerate(options) if o in ("--env", "-e"))
        entries[STDIO_SHELL].append(StdioEntry(STDIO_SHELL, command[0], command[1:], env))
    return entries


@dataclass(frozen=True)
class HttpEntry:
    """One server an HTTP snippet configures: its URL, transport and headers (values as written)."""

    snippet: str
    url: str
    transport: str
    headers: dict[str, str] = field(default_factory=dict[str, str])


# Options of the Claude Code and Inspector command lines that take no value; `--header` takes one or more.
_FLAGS = {"-y", "--cli", "--strict"}


def _parse_command_line(argv: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """Split a `claude mcp add ...` or `npx ... --cli ...` command into positionals and option values."""
    positionals: list[str] = []
    options: dict[str, list[str]] = {}
    i = 0
    while i < len(argv):
        word = argv[i]
        if word in _FLAGS:
            options.setdefault(word, [])
            i += 1
        elif word == "--header":  # variadic, like both CLIs declare it: values up to the next option
            i += 1
            while i < len(argv) and not argv[i].startswith("-"):
                options.setdefault(word, []).append(argv[i])
                i += 1
        elif word.startswith("-"):
            options.setdefault(word, []).append(argv[i + 1])
            i += 2
        else:
            positionals.append(word)
            i += 1
    return positionals, options


def _header_pairs(values: list[str]) -> dict[str, str]:
    pairs = [value.split(":", 1) for value in values]
    assert all(len(pair) == 2 for pair in pairs), values
    return {name.strip(): value.strip() for name, value in pairs}


def http_entries() -> dict[str, list[HttpEntry]]:
    """Every server entry of every HTTP client snippet, by file."""
    entries: dict[str, list[HttpEntry]] = {}
    for name, key in HTTP_JSON.items():
        servers = cast(dict[str, dict[str, Any]], read_json(CLIENTS / name)[key])
        entries[name] = [
            HttpEntry(name, s["url"], s.get("type", "http"), dict(s.get("headers", {}))) for s in servers.values()
        ]
    entries["claude_code_http.sh"] = []
    for argv in shell_commands(CLIENTS / "claude_code_http.sh"):
        assert argv[:3] == ["claude", "mcp", "add"], argv
        positionals, options = _parse_command_line(argv[3:])
        (server_name, url) = positionals  # claude mcp add [options] <name> <url>
        assert server_name
        (transport,) = options["--transport"]
        entries["claude_code_http.sh"].append(
            HttpEntry("claude_code_http.sh", url, transport, _header_pairs(options["--header"]))
        )
    entries["inspector_http.sh"] = []
    for argv in shell_commands(CLIENTS / "inspector_http.sh"):
        assert argv[:2] == ["npx", "-y"] and argv[2].startswith("@modelcontextprotocol/inspector@"), argv
        positionals, options = _parse_command_line(argv[3:])
        assert "--cli" in options, argv
        (url,) = positionals
        (transport,) = options["--transport"]
        entries["inspector_http.sh"].append(
            HttpEntry("inspector_http.sh", url, transport, _header_pairs(options["--header"]))
        )
    return entries


def with_token(entry: HttpEntry, token: str) -> dict[str, str]:
    """The entry's headers as its client sends them once the token placeholder is filled in."""
    placeholder = HTTP_TOKEN_PLACEHOLDERS[entry.snippet]
    return {name: value.replace(placeholder, token) for name, value in entry.headers.items()}
