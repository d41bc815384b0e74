"""Keep what is derived from the live tool surface in step with it: `python -m person_enrich_mcp._manifests`.

`--write` regenerates, from `tools/list` and the package version: the tools array and version of
`manifests/manifest.json`, the version of `manifests/server.json`, the README tools table (between
`<!-- tools-table:start -->` and `<!-- tools-table:end -->`), the README configuration table (between
`<!-- config-table:start -->` and `<!-- config-table:end -->`, from `settings.OPTIONS`), and every README code
block that follows a `<!-- snippet: PATH -->` marker (from the file it names). `--check` changes nothing and
exits 1 on drift. Run it from the repository root (or pass `--root`).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import anyio
from mcp import Client
from pydantic import SecretStr

from person_enrich_mcp import __version__
from person_enrich_mcp.server import build_server
from person_enrich_mcp.settings import OPTIONS, Settings

README = "README.md"
BUNDLE_MANIFEST = "manifests/manifest.json"
REGISTRY_MANIFEST = "manifests/server.json"
TABLE_START = "<!-- tools-table:start -->"
TABLE_END = "<!-- tools-table:end -->"
CONFIG_START = "<!-- config-table:start -->"
CONFIG_END = "<!-- config-table:end -->"
# A snippet marker, then the fenced block it owns: `--write` replaces the block's body with the named file.
SNIPPET = re.compile(r"<!-- snippet: (?P<path>\S+) -->\n```(?P<lang>[\w-]*)\n(?P<body>.*?)```", re.DOTALL)
# Sentence breaks: after . ! or ? and before a capital or a digit (so "e.g. {...}" stays in one piece).
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")
# A sentence that states a price: "N credits", "credits per/a ...", or "free".
_COST = re.compile(r"\d\s*credits?\b|\bcredits? (?:per|a)\b|\bfree\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ToolEntry:
    """One tool as `tools/list` publishes it: the parts the manifests and the README repeat."""

    name: str
    description: str
    arguments: tuple[str, ...]
    required: frozenset[str]


@dataclass(frozen=True, slots=True)
class Surface:
    """What a client learns from a running server: its reported version and its tools, in order."""

    version: str
    tools: tuple[ToolEntry, ...]


async def read_surface() -> Surface:
    """Start the real server in memory and read `serverInfo` and `tools/list` through a real MCP client.

    The key is a placeholder: listing tools never calls the upstream.
    """
    settings = Settings(api_key=SecretStr("manifest-generation"))
    async with Client(build_server(settings)) as client:
        listed = (await client.list_tools()).tools
        version = client.server_info.version if client.server_info is not None else ""
    tools: list[ToolEntry] = []
    for tool in listed:
        properties = cast(dict[str, Any], tool.input_schema.get("properties", {}))
        required = cast(list[str], tool.input_schema.get("required", []))
        tools.append(ToolEntry(tool.name, tool.description or "", tuple(properties), frozenset(required)))
    return Surface(version=version, tools=tuple(tools))


def split_cost(description: str) -> tuple[str, str]:
    """Split a tool description into what the tool does and what it costs (the sentences that state a price).

    Raises:
        ValueError: when no sentence states a price; every tool must say what it costs.
    """
    sentences = _SENTENCE_BREAK.split(description.strip())
    cost = [s for s in sentences if _COST.search(s)]
    if not cost:
        raise ValueError(f"no sentence states a price in: {description!r}")
    what = [s for s in sentences if not _COST.search(s)]
    return " ".join(what), " ".join(cost)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def tools_table(tools: Sequence[ToolEntry]) -> str:
    """The README tools table: name, what it does (with its arguments), and its price, all from `tools/list`."""
    rows = ["| Tool | What it does | Credits |", "|---|---|---|"]
    for tool in tools:
        what, cost = split_cost(tool.description)
        if tool.arguments:
            names = ", ".join(f"`{a}`" + ("" if a not in tool.required else " (required)") for a in tool.arguments)
            what = f"{what} Arguments: {names}."
        rows.append(f"| `{tool.name}` | {_cell(what)} | {_cell(cost)} |")
    return "\n".join(rows)


def _default(field: str) -> str:
    if field == "api_key":
        return "required unless `--sandbox`"
    value = Settings.model_fields[field].default
    if value is None or value == ():
        return "(none)"
    if isinstance(value, bool):
        return "off" if not value else "on"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


def config_table() -> str:
    """The README configuration table, from the settings table the server reads (`settings.OPTIONS`)."""
    rows = ["| Environment variable | Flag | Default | Meaning |", "|---|---|---|---|"]
    for option in OPTIONS:
        flag = f"`{option.flag}`" if option.switch else f"`{option.flag} VALUE`"
        rows.append(f"| `{option.env}` | {flag} | {_default(option.field)} | {_cell(option.help)} |")
    return "\n".join(rows)


def _replace_between(text: str, start_marker: str, end_marker: str, body: str) -> str:
    start, end = text.find(start_marker), text.find(end_marker)
    if start < 0 or end < start:
        raise ValueError(f"{README}: the markers {start_marker} and {end_marker} are missing")
    return f"{text[: start + len(start_marker)]}\n{body}\n{text[end:]}"


def _dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def render_bundle_manifest(text: str, surface: Surface) -> str:
    """`manifest.json` with its version and its tools array (name and description) taken from the server."""
    manifest = cast(dict[str, Any], json.loads(text))
    manifest["version"] = surface.version
    manifest["tools"] = [{"name": t.name, "description": t.description} for t in surface.tools]
    return _dump_json(manifest)


def render_registry_manifest(text: str, surface: Surface) -> str:
    """`server.json` with the server's version, also on each registry package (their release is this one)."""
    server = cast(dict[str, Any], json.loads(text))
    server["version"] = surface.version
    for package in cast(list[dict[str, Any]], server.get("packages", [])):
        if package.get("registryType") in ("pypi", "mcpb"):
            package["version"] = surface.version
    return _dump_json(server)


def render_readme(text: str, surface: Surface, root: Path) -> str:
    """The README with the tools and configuration tables regenerated and every marked snippet equal to its file.

    Raises:
        ValueError: when the table markers are missing or a snippet names a file that does not exist.
    """
    text = _replace_between(text, TABLE_START, TABLE_END, tools_table(surface.tools))
    text = _replace_between(text, CONFIG_START, CONFIG_END, config_table())

    def include(match: re.Match[str]) -> str:
        source = root / match["path"]
        if not source.is_file():
            raise ValueError(f"{README}: snippet {match['path']} does not exist")
        body = source.read_text(encoding="utf-8")
        body = body if body.endswith("\n") else body + "\n"
        return f"<!-- snippet: {match['path']} -->\n```{match['lang']}\n{body}```"

    return SNIPPET.sub(include, text)


def expected_files(root: Path, surface: Surface) -> dict[Path, str]:
    """Every generated file as it should read now, keyed by its path."""
    renderers: dict[str, Callable[[str], str]] = {
        README: lambda text: render_readme(text, surface, root),
        BUNDLE_MANIFEST: lambda text: render_bundle_manifest(text, surface),
        REGISTRY_MANIFEST: lambda text: render_registry_manifest(text, surface),
    }
    return {root / name: render((root / name).read_text(encoding="utf-8")) for name, render in renderers.items()}


def check(root: Path, surface: Surface | None = None) -> list[str]:
    """The generated files that differ from what the server publishes now (empty when all are in step)."""
    live = surface if surface is not None else anyio.run(read_surface)
    return [
        str(path.relative_to(root))
        for path, text in expected_files(root, live).items()
        if path.read_text(encoding="utf-8") != text
    ]


def write(root: Path, surface: Surface | None = None) -> list[str]:
    """Regenerate the derived files; returns the ones that changed."""
    live = surface if surface is not None else anyio.run(read_surface)
    changed: list[str] = []
    for path, text in expected_files(root, live).items():
        if path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(str(path.relative_to(root)))
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: `--check` (exit 1 on drift) or `--write`."""
    parser = argparse.ArgumentParser(prog="python -m person_enrich_mcp._manifests", description=__doc__)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="exit 1 if a generated file is out of date")
    mode.add_argument("--write", action="store_true", help="regenerate the files that are out of date")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root (default: cwd)")
    args = parser.parse_args(argv)
    root = cast(Path, args.root).resolve()
    if not (root / BUNDLE_MANIFEST).is_file():
        sys.stderr.write(f"{root} has no {BUNDLE_MANIFEST}: run this from the repository root or pass --root\n")
        return 2
    if args.check:
        drifted = check(root)
        for name in drifted:
            sys.stderr.write(f"{name} is out of date: run python -m person_enrich_mcp._manifests --write\n")
        return 1 if drifted else 0
    for name in write(root):
        sys.stdout.write(f"rewrote {name}\n")
    sys.stdout.write(f"manifests and README match tools/list of {__version__}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
