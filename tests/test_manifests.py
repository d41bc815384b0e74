"""Drift guards for everything users install from: the registry entry, the desktop bundle, the client snippets,
the Docker image and the README, each checked against the code it describes (tools/list, serverInfo, the CLI
parser, the settings table) and against the official schema or validator of its format.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import anyio
import jsonschema
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import get_default_environment

from person_enrich_mcp import __version__, _manifests
from person_enrich_mcp.cli import build_parser
from person_enrich_mcp.settings import OPTIONS, Settings
from tests.client_snippets import (
    HTTP_TOKEN_PLACEHOLDERS,
    LOCAL_URL,
    PUBLIC_URL,
    STDIO_JSON,
    STDIO_SHELL,
    TOKEN_VARIABLE,
    VSCODE_TOKEN_INPUT,
    http_entries,
    shell_commands,
    shell_lines,
    stdio_entries,
    with_token,
)
from tests.conftest import Upstream, sample_identifiers

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "manifests"
CLIENTS = MANIFESTS / "clients"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
CONSOLE_SCRIPT_NAME = "person-enrich-mcp"
CONSOLE_SCRIPT = Path(sys.executable).parent / CONSOLE_SCRIPT_NAME
REGISTRY_SCHEMA = MANIFESTS / "schemas" / "server.schema.2025-12-11.json"
REGISTRY_SCHEMA_URL = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"
# sha256 of the schema as published at REGISTRY_SCHEMA_URL; moving to a newer schema replaces both together.
REGISTRY_SCHEMA_SHA256 = "3fba09590c99f61735d234822279f4223fab9e300c0a81e81c91ab62a4114de0"
MCPB = "@anthropic-ai/mcpb@2.1.2"
SECRET = "CRUSTDATA_API_KEY"
ENV_BY_FIELD = {o.field: o.env for o in OPTIONS}
FIELD_BY_ENV = {o.env: o.field for o in OPTIONS}

# Settings a manifest may leave out, each on purpose. The registry's PyPI entry runs over stdio, so it omits
# what only the HTTP transport reads (the operator of an HTTP deployment sets those on the server):
SERVER_JSON_OMITS = frozenset(
    {
        "PERSON_ENRICH_TOKENS_FILE",
        "PERSON_ENRICH_ALLOW_UNAUTHENTICATED",
        "PERSON_ENRICH_ALLOWED_HOSTS",
        "PERSON_ENRICH_ALLOWED_ORIGINS",
        "PERSON_ENRICH_MAX_BODY_BYTES",
        "PERSON_ENRICH_PUBLIC_URL",
        "PERSON_ENRICH_PRINCIPAL_BUDGET",
        "PERSON_ENRICH_PRINCIPAL_WINDOW",
        "PERSON_ENRICH_AUTH_ISSUER",
        "PERSON_ENRICH_SESSION_WINDOW",
        "PERSON_ENRICH_MAX_SESSIONS_PER_PRINCIPAL",
        "PERSON_ENRICH_SESSION_IDLE_TIMEOUT",
        "PERSON_ENRICH_PRINCIPAL_RATE_SHARE",
        "PERSON_ENRICH_METRICS_TOKEN_FILE",
        "PERSON_ENRICH_METRICS_PRINCIPAL_NAMES",
        "PERSON_ENRICH_HEADER_TIMEOUT",
        "PERSON_ENRICH_KEEPALIVE_TIMEOUT",
        "PERSON_ENRICH_MAX_CONNECTIONS",
    }
)
# The desktop bundle asks its user only for the key, the session budget and the confirmation threshold; the
# rest is operational (upstream URL, limits, timeouts, state, HTTP) and keeps its defaults.
BUNDLE_ASKS = frozenset({SECRET, "PERSON_ENRICH_SESSION_BUDGET", "PERSON_ENRICH_CONFIRM_ABOVE"})
BUNDLE_OMITS = frozenset(o.env for o in OPTIONS) - BUNDLE_ASKS


def _json(path: Path) -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(path.read_text(encoding="utf-8")))


def _machine_env(**extra: str) -> dict[str, str]:
    """The environment for a child that reaches a package registry (it needs the machine's CA and proxy)."""
    env = dict(os.environ)  # noqa: TID251 - handing the environment to a child process, not reading settings
    env.update(extra)
    return env


def _npx() -> str:
    """An npx for the MCPB CLI (Node.js 20+ will do): the machine's, else the one `./scripts/test` installs."""
    found = shutil.which("npx") or str(ROOT / ".venv-node" / "bin" / "npx")
    if not Path(found).exists():
        pytest.fail("npx is missing: run ./scripts/test, which installs Node.js into .venv-node")
    return found


def _parses(args: list[str]) -> None:
    """The real CLI parser accepts these arguments (argparse exits on anything it does not know)."""
    build_parser().parse_args(args)


def _setting_default(env_name: str) -> Any:
    return Settings.model_fields[FIELD_BY_ENV[env_name]].default


def _same_value(published: str | float, actual: Any) -> bool:
    if isinstance(actual, bool) or not isinstance(actual, int | float | Decimal):
        return str(published) == str(actual)
    return Decimal(str(published)) == Decimal(str(actual))


@pytest.fixture(scope="module")
def surface() -> _manifests.Surface:
    return anyio.run(_manifests.read_surface)


# ── generated files: the bundle's tools, the README table and snippets ───────────────────────────────────────


def test_manifests_and_readme_are_what_the_generator_makes_from_tools_list(surface: _manifests.Surface) -> None:
    drifted = _manifests.check(ROOT, surface)
    assert drifted == [], f"{drifted} drifted: run python -m person_enrich_mcp._manifests --write"


def test_the_bundle_lists_every_tool_with_the_name_and_description_tools_list_gives(
    surface: _manifests.Surface,
) -> None:
    listed = [(t.name, t.description) for t in surface.tools]
    assert [(t["name"], t["description"]) for t in _json(MANIFESTS / "manifest.json")["tools"]] == listed
    assert _json(MANIFESTS / "manifest.json")["tools_generated"] is False


def test_a_changed_tool_description_is_reported_as_drift_and_write_repairs_it(
    surface: _manifests.Surface, tmp_path: Path
) -> None:
    for name in (_manifests.README, _manifests.BUNDLE_MANIFEST, _manifests.REGISTRY_MANIFEST):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(CLIENTS, tmp_path / "manifests" / "clients")
    first = surface.tools[0]
    changed = replace(first, description=first.description.replace("25", "30", 1))
    edited = replace(surface, tools=(changed, *surface.tools[1:]))
    assert _manifests.check(tmp_path, edited) == [_manifests.README, _manifests.BUNDLE_MANIFEST]
    assert sorted(_manifests.write(tmp_path, edited)) == sorted([_manifests.README, _manifests.BUNDLE_MANIFEST])
    assert _manifests.check(tmp_path, edited) == []
    assert "Enrich up to 30 people" in (tmp_path / _manifests.README).read_text(encoding="utf-8")


def test_the_generator_command_exits_nonzero_on_drift_and_zero_when_in_step(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "person_enrich_mcp._manifests", "--check", "--root"]
    assert subprocess.run([*command, str(ROOT)], capture_output=True, timeout=120, check=False).returncode == 0
    for name in (_manifests.README, _manifests.BUNDLE_MANIFEST, _manifests.REGISTRY_MANIFEST):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(CLIENTS, tmp_path / "manifests" / "clients")
    stale = _json(tmp_path / _manifests.REGISTRY_MANIFEST) | {"version": "0.0.1"}
    (tmp_path / _manifests.REGISTRY_MANIFEST).write_text(json.dumps(stale), encoding="utf-8")
    done = subprocess.run([*command, str(tmp_path)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1 and "manifests/server.json is out of date" in done.stderr


def test_the_readme_credits_column_is_each_tools_own_price_statement(surface: _manifests.Surface) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = {
        cells[1].strip("` "): cells[3].strip()
        for line in readme.splitlines()
        if line.startswith("| `") and len(cells := [c.strip() for c in re.split(r"(?<!\\)\|", line)]) == 5
    }
    for tool in surface.tools:
        cost = rows[tool.name].replace("\\|", "|")
        assert cost and cost in tool.description, tool.name
    assert rows["get_budget"] == "Free."


def test_every_client_snippet_is_in_the_readme_client_setup_exactly_as_the_file_reads() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("<!-- client-setup:start -->") : readme.index("<!-- client-setup:end -->")]
    included = {m["path"]: m["body"] for m in _manifests.SNIPPET.finditer(section)}
    files = {f"manifests/clients/{p.name}" for p in CLIENTS.iterdir()}
    assert set(included) == files
    for path, body in included.items():
        assert body == (ROOT / path).read_text(encoding="utf-8"), path


# ── versions ──────────────────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.anyio
async def test_pyproject_package_server_info_and_both_manifests_report_one_version(client: Client) -> None:
    version = PYPROJECT["project"]["version"]
    server_json = _json(MANIFESTS / "server.json")
    assert client.server_info is not None and client.server_info.version == version
    assert __version__ == version
    assert server_json["version"] == version
    assert [p["version"] for p in server_json["packages"]] == [version]
    assert _json(MANIFESTS / "manifest.json")["version"] == version


# ── the MCP Registry entry ────────────────────────────────────────────────────────────────────────────────────


def _registry_errors(document: dict[str, Any]) -> list[str]:
    """What the registry's JSON schema (draft 7, formats checked) finds wrong with a server.json."""
    schema = json.loads(REGISTRY_SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    errors = validator.iter_errors(document)  # pyright: ignore[reportUnknownMemberType] - a deprecated overload
    return [f"{list(e.absolute_path)}: {e.message}" for e in errors]


def test_the_vendored_registry_schema_is_the_published_one() -> None:
    assert hashlib.sha256(REGISTRY_SCHEMA.read_bytes()).hexdigest() == REGISTRY_SCHEMA_SHA256
    assert json.loads(REGISTRY_SCHEMA.read_text(encoding="utf-8"))["$id"] == REGISTRY_SCHEMA_URL


def test_server_json_validates_against_the_registry_schema_it_declares() -> None:
    server = _json(MANIFESTS / "server.json")
    assert server["$schema"] == REGISTRY_SCHEMA_URL
    assert _registry_errors(server) == []


def test_the_registry_schema_rejects_what_the_registry_rejects() -> None:
    server = _json(MANIFESTS / "server.json")
    broken = [
        server | {"name": "person-enrich-mcp"},
        server | {"description": "x" * 101},
        server | {"packages": [server["packages"][0] | {"version": "latest"}]},
        server | {"remotes": [server["remotes"][0] | {"url": "mcp.example.com/mcp"}]},
    ]
    assert all(_registry_errors(doc) for doc in broken)


def test_server_json_is_named_as_the_readme_marker_says_and_points_at_the_real_package() -> None:
    server = _json(MANIFESTS / "server.json")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"<!-- mcp-name: {server['name']} -->" in readme
    (package,) = server["packages"]
    assert (package["registryType"], package["identifier"]) == ("pypi", PYPROJECT["project"]["name"])
    assert package["transport"] == {"type": "stdio"}
    assert CONSOLE_SCRIPT_NAME in PYPROJECT["project"]["scripts"]


def test_server_json_names_every_stdio_setting_and_nothing_the_settings_do_not_read() -> None:
    published = {v["name"]: v for v in _json(MANIFESTS / "server.json")["packages"][0]["environmentVariables"]}
    settings = {o.env for o in OPTIONS}
    assert settings >= SERVER_JSON_OMITS, "the allowlist names a variable the settings no longer read"
    assert set(published) == settings - SERVER_JSON_OMITS
    assert [n for n, v in published.items() if v.get("isSecret")] == [SECRET]
    assert [n for n, v in published.items() if v.get("isRequired")] == [SECRET]
    for name, variable in published.items():
        assert variable["description"], name
        if name == SECRET:
            continue
        default = _setting_default(name)
        if default is None:  # unset means something (the account's own rate limit), not a value to publish
            assert "default" not in variable, name
        else:
            assert _same_value(variable["default"], default), name


def test_the_remote_template_asks_for_a_host_and_keeps_the_token_secret() -> None:
    (remote,) = _json(MANIFESTS / "server.json")["remotes"]
    assert remote["type"] == "streamable-http" and remote["url"].endswith("/mcp")
    assert set(re.findall(r"{(\w+)}", remote["url"])) == set(remote["variables"])
    (header,) = remote["headers"]
    assert header["name"] == "Authorization" and header["isSecret"] is True
    assert header["variables"]["token"]["isSecret"] is True


# What would install the package from PyPI, where it is not yet: `uvx person-enrich-mcp`, `pip install
# person-enrich-mcp[redis]`, `uv tool install person-enrich-mcp`, and the like. When it is released, this guard goes
# and the README says how to run it from PyPI.
_FROM_PYPI = re.compile(
    r"\b(?:uvx|pipx (?:install|run)|pip install|uv (?:tool|pip) install)(?: -\S+)*\s+['\"]?person-enrich-mcp\b"
)


# The one sentence that may name those commands: the README's, saying they do not work yet.
_NOT_YET = re.compile(r"[^.]*do not work until it is published[^.]*\.")


def test_until_the_package_is_on_pypi_nothing_we_ship_tells_users_to_install_it_from_there() -> None:
    shipped = [
        ROOT / "README.md",
        ROOT / "Dockerfile",
        *sorted((ROOT / "docs").rglob("*.md")),
        *sorted(MANIFESTS.glob("*.md")),
        *sorted(CLIENTS.iterdir()),
        *sorted((ROOT / "src").rglob("*.py")),
    ]
    texts = {str(path.relative_to(ROOT)): _NOT_YET.sub("", path.read_text(encoding="utf-8")) for path in shipped}
    assert _FROM_PYPI.search("pip install 'person-enrich-mcp[redis]'")  # it recognises what it guards against
    assert {name: m[0] for name, text in texts.items() if (m := _FROM_PYPI.search(text))} == {}
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(_NOT_YET.findall(readme)) == 1 and "ready but not published" in readme


def test_the_readme_says_what_publishing_needs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    registry = readme[readme.index("### The MCP Registry") : readme.index("<!-- client-setup:end -->")]
    for step in ("uv publish", "mcp-name", "mcp-publisher login github", "mcp-publisher publish"):
        assert step in registry, step


# ── the MCPB desktop bundle ───────────────────────────────────────────────────────────────────────────────────


def _bundle_env() -> dict[str, str]:
    return cast(dict[str, str], _json(MANIFESTS / "manifest.json")["server"]["mcp_config"]["env"])


def test_the_bundle_maps_its_user_config_into_exactly_the_settings_it_asks_for() -> None:
    manifest = _json(MANIFESTS / "manifest.json")
    config = cast(dict[str, dict[str, Any]], manifest["user_config"])
    env = _bundle_env()
    assert {o.env for o in OPTIONS} >= BUNDLE_OMITS
    assert set(env) == BUNDLE_ASKS
    references = {name: re.fullmatch(r"\$\{user_config\.(\w+)\}", value) for name, value in env.items()}
    assert all(references.values()), env
    used = {name: m[1] for name, m in references.items() if m}
    assert sorted(used.values()) == sorted(config)
    assert [key for key, option in config.items() if option.get("sensitive")] == [used[SECRET]]
    assert config[used[SECRET]]["required"] is True and config[used[SECRET]]["type"] == "string"
    for name, key in used.items():
        if name != SECRET:
            assert config[key]["type"] == "number" and config[key]["required"] is False
            assert _same_value(config[key]["default"], _setting_default(name)), name


def test_the_bundle_runs_the_console_script_with_uv_for_a_python_it_requires() -> None:
    manifest = _json(MANIFESTS / "manifest.json")
    server = manifest["server"]
    assert manifest["manifest_version"] == "0.4" and server["type"] == "uv"
    assert server["mcp_config"]["command"] == "uv"
    assert server["mcp_config"]["args"][-1] == CONSOLE_SCRIPT_NAME
    assert (MANIFESTS / "bundle" / server["entry_point"]).is_file()
    assert manifest["compatibility"]["runtimes"]["python"] == PYPROJECT["project"]["requires-python"]


@pytest.mark.slow
def test_the_bundle_manifest_passes_the_official_mcpb_validator() -> None:
    done = subprocess.run(
        [_npx(), "-y", MCPB, "validate", str(MANIFESTS / "manifest.json")],
        capture_output=True,
        text=True,
        timeout=300,
        env=_machine_env(),
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    assert "Manifest schema validation passes!" in done.stdout


@pytest.mark.slow
@pytest.mark.anyio
async def test_the_built_bundle_installs_with_uv_and_serves_with_the_users_config(
    tmp_path: Path, upstream: Upstream
) -> None:
    """What a desktop host does with the .mcpb: unpack it, run its mcp_config with the user's values."""
    uv = Path(sys.executable).parent / "uv"
    if not uv.exists():
        pytest.fail(f"{uv} is missing: run ./scripts/test, which installs the dev dependencies (uv among them)")
    out = tmp_path / "dist"
    built = subprocess.run(
        [str(ROOT / "scripts" / "build-mcpb"), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        env=_machine_env(PYTHON=sys.executable),
        check=False,
    )
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    bundle = out / f"person-enrich-mcp-{__version__}.mcpb"
    unpacked = tmp_path / "installed"
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(unpacked)
    manifest = _json(unpacked / "manifest.json")
    config = manifest["server"]["mcp_config"]
    user = {"crustdata_api_key": upstream.key, "session_budget": "7", "confirm_above": "3"}

    def substitute(value: str) -> str:
        value = value.replace("${__dirname}", str(unpacked))
        return re.sub(r"\$\{user_config\.(\w+)\}", lambda m: user[m[1]], value)

    args = [substitute(a) for a in config["args"]]
    env = _machine_env(**{k: substitute(v) for k, v in config["env"].items()})
    env["PATH"] = f"{uv.parent}{os.pathsep}{env.get('PATH', '')}"
    env["PERSON_ENRICH_API_BASE_URL"] = upstream.url  # the test's sandbox instead of the real API
    env.pop("VIRTUAL_ENV", None)
    # The first run installs the project and its dependencies from PyPI into the bundle's own environment.
    warmed = subprocess.run(
        [str(uv), *args, "--version"], capture_output=True, text=True, timeout=600, env=env, check=False
    )
    assert warmed.returncode == 0 and warmed.stdout.strip() == f"person-enrich-mcp {__version__}", warmed.stderr
    entry = subprocess.run(
        [str(uv), "run", "--directory", str(unpacked), "--no-dev", manifest["server"]["entry_point"], "--version"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert entry.stdout.strip() == f"person-enrich-mcp {__version__}", entry.stderr
    url = sample_identifiers(upstream.url, "url", 1)
    with anyio.fail_after(120):
        async with Client(StdioServerParameters(command=str(uv), args=args, env=env)) as session:
            books = (await session.call_tool("get_budget", {})).structured_content
            result = await session.call_tool("enrich_person_by_url", {"professional_network_profile_urls": url})
    assert books is not None and (books["limit"], books["confirm_above"]) == ("7.00", "3.00")
    assert result.is_error is False and upstream.billed() == 1


# ── client snippets ───────────────────────────────────────────────────────────────────────────────────────────


def test_every_client_snippet_covers_all_four_clients_with_a_keyed_and_a_sandbox_entry() -> None:
    specs = stdio_entries()
    assert set(specs) == {*STDIO_JSON, STDIO_SHELL}
    for name, entries in specs.items():
        forms = sorted((e.args, sorted(e.env)) for e in entries)
        assert forms == [([], [SECRET]), (["--sandbox"], [])], name


def test_every_client_snippet_runs_the_real_console_script_with_flags_and_variables_it_accepts() -> None:
    settings = {o.env for o in OPTIONS}
    for name, entries in stdio_entries().items():
        for entry in entries:
            assert entry.command == CONSOLE_SCRIPT_NAME and entry.command in PYPROJECT["project"]["scripts"], name
            _parses(entry.args)
            assert set(entry.env) <= settings, name


def test_secrets_in_client_snippets_come_from_a_prompt_or_the_environment_never_a_literal_key() -> None:
    vscode = _json(CLIENTS / "vscode_mcp.json")
    inputs = {i["id"]: i for i in vscode["inputs"]}
    (reference,) = re.findall(r"\$\{input:([\w-]+)\}", json.dumps(vscode["servers"]))
    assert inputs[reference]["type"] == "promptString" and inputs[reference]["password"] is True
    cursor = _json(CLIENTS / "cursor_mcp.json")["mcpServers"]["person-enrich"]["env"]
    assert cursor == {SECRET: f"${{env:{SECRET}}}"}
    code = [e.env for e in stdio_entries()[STDIO_SHELL] if e.env]
    assert code == [{SECRET: f"${SECRET}"}]
    desktop = _json(CLIENTS / "claude_desktop_config.json")["mcpServers"]["person-enrich"]["env"]
    assert desktop == {SECRET: "your-crustdata-api-key"}


@pytest.mark.anyio
async def test_the_snippet_launch_forms_start_the_installed_server(upstream: Upstream) -> None:
    forms = {tuple(e.args) for entries in stdio_entries().values() for e in entries}
    assert forms == {(), ("--sandbox",)}
    for args in sorted(forms):
        env = get_default_environment()
        if not args:  # the keyed form, pointed at the test sandbox instead of the real API
            env |= {SECRET: upstream.key, "PERSON_ENRICH_API_BASE_URL": upstream.url}
        with anyio.fail_after(60):
            async with Client(StdioServerParameters(command=str(CONSOLE_SCRIPT), args=list(args), env=env)) as c:
                assert c.server_info is not None and c.server_info.name == CONSOLE_SCRIPT_NAME
                books = (await c.call_tool("get_budget", {})).structured_content
        assert books is not None and books["spent"] == "0.00", args


# ── HTTP client snippets ──────────────────────────────────────────────────────────────────────────────────────


def test_every_http_snippet_connects_to_mcp_on_loopback_and_on_the_public_placeholder() -> None:
    entries = http_entries()
    assert set(entries) == set(HTTP_TOKEN_PLACEHOLDERS)
    for name, servers in entries.items():
        assert sorted(e.url for e in servers) == sorted([LOCAL_URL, PUBLIC_URL]), name
        assert all(urlsplit(e.url).path == "/mcp" and e.transport == "http" for e in servers), name


def test_every_http_snippet_sends_the_token_as_a_bearer_authorization_header() -> None:
    for name, servers in http_entries().items():
        for entry in servers:
            assert entry.headers == {"Authorization": f"Bearer {HTTP_TOKEN_PLACEHOLDERS[name]}"}, name
            assert with_token(entry, "t0ken") == {"Authorization": "Bearer t0ken"}


def test_http_snippet_tokens_come_from_a_prompt_or_the_environment_never_a_literal() -> None:
    vscode = _json(CLIENTS / "vscode_mcp_http.json")
    (token_input,) = vscode["inputs"]
    assert token_input == token_input | {"id": VSCODE_TOKEN_INPUT, "type": "promptString", "password": True}
    # The shell snippets must expand the variable: it sits inside double quotes, never single ones.
    for name in ("claude_code_http.sh", "inspector_http.sh"):
        for line in shell_lines(CLIENTS / name):
            assert f'--header "Authorization: Bearer ${TOKEN_VARIABLE}"' in line, name
    # A client-side variable, never one the server reads (it could be mistaken for a server setting).
    assert TOKEN_VARIABLE not in {o.env for o in OPTIONS}


def test_the_public_placeholder_is_the_registry_remote_template_with_its_example_host() -> None:
    (remote,) = _json(MANIFESTS / "server.json")["remotes"]
    assert remote["url"].replace("{host}", remote["variables"]["host"]["placeholder"]) == PUBLIC_URL
    (header,) = remote["headers"]
    assert header["name"] == "Authorization" and header["value"] == "Bearer {token}"


def test_the_http_inspector_snippet_pins_the_same_inspector_as_the_stdio_one() -> None:
    pinned = {argv[2] for name in ("inspector.sh", "inspector_http.sh") for argv in shell_commands(CLIENTS / name)}
    assert len(pinned) == 1, pinned


# ── Docker ────────────────────────────────────────────────────────────────────────────────────────────────────


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) for each instruction of the Dockerfile, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def _docker_runs() -> list[tuple[list[str], list[str]]]:
    """(-e variable names, arguments after the image) of each `docker run` in the docs."""
    runs: list[tuple[list[str], list[str]]] = []
    for argv in shell_commands(CLIENTS / "docker.sh"):
        if argv[:2] != ["docker", "run"]:
            continue
        image = argv.index(CONSOLE_SCRIPT_NAME, 2)
        env = [argv[i + 1].split("=", 1)[0] for i, a in enumerate(argv[:image]) if a == "-e"]
        runs.append((env, argv[image + 1 :]))
    return runs


def test_the_image_is_slim_runs_as_a_non_root_user_and_starts_the_console_script() -> None:
    instructions = _dockerfile()
    stages = [args for op, args in instructions if op == "FROM"]
    assert all(s.split()[0] == "python:3.11-slim" for s in stages)
    final = instructions[max(i for i, (op, _) in enumerate(instructions) if op == "FROM") :]
    users = [args for op, args in final if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    (entrypoint,) = [json.loads(args) for op, args in final if op == "ENTRYPOINT"]
    assert entrypoint == [CONSOLE_SCRIPT_NAME] and CONSOLE_SCRIPT_NAME in PYPROJECT["project"]["scripts"]
    assert not [args for op, args in final if op == "CMD"], "no default arguments: stdio is the default"
    assert all("--no-cache-dir" in args for op, args in instructions if op == "RUN" and "pip install" in args)


def test_the_docker_commands_pass_only_real_settings_and_stdio_flags() -> None:
    runs = _docker_runs()
    assert runs
    settings = {o.env for o in OPTIONS}
    for env, _ in runs:
        assert set(env) <= settings, env
    for _, args in runs:
        if "--transport" not in args:
            _parses(args)


def test_the_http_flags_in_the_dockerfile_and_docs_are_accepted_by_the_cli() -> None:
    http = [args for _, args in _docker_runs() if "--transport" in args]
    comment = (ROOT / "Dockerfile").read_text(encoding="utf-8").split(f"{CONSOLE_SCRIPT_NAME} --transport", 1)[1]
    http.append(["--transport", *shlex.split(comment.splitlines()[0])])
    assert http[0][:6] == ["--transport", "http", "--host", "0.0.0.0", "--port", "8000"]
    for args in http:
        parsed = build_parser().parse_args(args)
        assert (parsed.transport, parsed.host, parsed.port) == ("http", "0.0.0.0", 8000)


def test_the_docker_context_leaves_out_virtualenvs_git_and_caches() -> None:
    ignored = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    required = {".venv", ".venv-*", ".git", ".pytest_cache", ".ruff_cache", ".hypothesis", "**/__pycache__"}
    assert required <= ignored
    assert not {"src", "pyproject.toml", "README.md", "LICENSE"} & ignored  # what the image is built from
