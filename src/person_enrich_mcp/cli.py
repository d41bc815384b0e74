"""Command line: serve MCP over stdio (the default), run the sandbox or the demo, and the operator's commands
(`check`, `token`, and for people's requests `suppress`, `forget`, `audit find`)."""

from __future__ import annotations

import argparse
import logging
import secrets
import sys
from collections.abc import Generator, Sequence
from contextlib import contextmanager
from typing import Any

from pydantic import SecretStr

from person_enrich_mcp import __version__
from person_enrich_mcp.errors import ConfigurationError
from person_enrich_mcp.logs import configure_logging
from person_enrich_mcp.privacy import cli as privacy_cli
from person_enrich_mcp.sandbox import cli as sandbox_cli
from person_enrich_mcp.settings import OPTIONS, Settings, early_log_format, load_settings

logger = logging.getLogger("person_enrich_mcp")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: server flags mirror the environment variables of `settings.OPTIONS`."""
    parser = argparse.ArgumentParser(
        prog="person-enrich-mcp",
        description="MCP server for the Crustdata Person API: trimmed results, a per-session credit budget, "
        "and an offline sandbox. With no command it serves MCP over stdio.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more to stderr (-v info, -vv debug)")
    parser.add_argument(
        "--sandbox",
        action="store_true",
        help="serve against an embedded offline sandbox with synthetic data (no key, no credits spent)",
    )
    parser.add_argument(
        "--transport", choices=("stdio", "http"), default="stdio", help="stdio (default) or streamable HTTP"
    )
    parser.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    for option in OPTIONS:
        dest = "api_key_file" if option.field == "api_key" else option.field
        if option.switch:
            parser.add_argument(
                option.flag, dest=dest, action="store_const", const=True, help=f"{option.help} (env {option.env}=1)"
            )
        else:
            parser.add_argument(option.flag, dest=dest, metavar="VALUE", help=f"{option.help} (env {option.env})")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    sandbox = commands.add_parser("sandbox", help="run the offline emulator of the Person API over HTTP")
    sandbox_cli.add_arguments(sandbox)
    commands.add_parser("demo", help="run a scripted MCP session against the sandbox and print what happens")
    check = commands.add_parser(
        "check",
        help="check the key, the API revision, the account's endpoints, limits, prices and balance (free)",
        description="Check what this key can do, without spending a credit: key and version header, which API "
        "revision the upstream speaks, which person endpoints and fields the account has, their rate limits and "
        "prices, and the balance. Exits 1 with one sentence per problem.",
    )
    check.add_argument("--json", action="store_true", help="print the report as JSON (for scripts)")
    token = commands.add_parser("token", help="manage HTTP bearer tokens")
    token_commands = token.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    create = token_commands.add_parser("create", help="print a new random token once, and its tokens-file line")
    create.add_argument(
        "name", metavar="NAME", help="the principal the token authenticates (budgets are per principal)"
    )
    privacy_cli.add_commands(commands)
    return parser


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    names = ["api_key_file" if o.field == "api_key" else o.field for o in OPTIONS]
    return {name: getattr(args, name) for name in names}


@contextmanager
def _upstream(settings: Settings, *, sandbox: bool) -> Generator[Settings]:
    """The settings to run with: as given, or pointed at an embedded sandbox for as long as the block runs."""
    if not sandbox:
        yield settings
        return
    from person_enrich_mcp.sandbox import SandboxServer  # only now: the emulator's stack costs start-up time

    with SandboxServer() as upstream:
        logger.info("embedded sandbox at %s (synthetic data)", upstream.url)
        yield settings.model_copy(
            update={
                "api_base_url": upstream.url,
                "api_key": SecretStr(f"sandbox-{secrets.token_hex(8)}"),
                "sandbox": True,
            }
        )


def serve(settings: Settings, *, sandbox: bool, transport: str, host: str, port: int) -> int:
    """Serve MCP over stdio or HTTP until stopped; with `sandbox`, against an embedded sandbox."""
    with _upstream(settings, sandbox=sandbox) as effective:
        return _serve(effective, transport=transport, host=host, port=port)


def check(settings: Settings, *, sandbox: bool, as_json: bool) -> int:
    """Run `check` and print its report; 0 when nothing stops the server from working, else 1."""
    import anyio

    from person_enrich_mcp.check import render_json, run_check

    with _upstream(settings, sandbox=sandbox) as effective:
        report = anyio.run(run_check, effective)
    sys.stdout.write((render_json(report) if as_json else report.render()) + "\n")
    return 0 if report.ok else 1


def _serve(settings: Settings, *, transport: str, host: str, port: int) -> int:
    if transport == "http":
        from person_enrich_mcp.http_app import run_http

        return run_http(settings, host=host, port=port)
    from person_enrich_mcp.server import build_server

    build_server(settings).run("stdio")
    return 0


def _token(args: argparse.Namespace) -> int:
    from person_enrich_mcp.auth import create_token

    token, line = create_token(args.name)
    sys.stdout.write(
        f"token (shown once; give it to {args.name}, send it as 'Authorization: Bearer <token>'):\n{token}\n\n"
        f"add this line to the tokens file (PERSON_ENRICH_TOKENS_FILE):\n{line}\n"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `person-enrich-mcp` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose, early_log_format(args.log_format))
    if args.command == "sandbox":
        return sandbox_cli.run(args)
    if args.command == "demo":
        from person_enrich_mcp.demo import run_demo

        return run_demo()
    try:
        if args.command == "token":
            return _token(args)
        settings = load_settings(_flags(args))
        if args.command in privacy_cli.COMMANDS:
            return privacy_cli.run(args, settings)  # the operator's commands need no API key
        if not args.sandbox:
            settings.require_api_key()
        if args.command == "check":
            return check(settings, sandbox=args.sandbox, as_json=args.json)
        return serve(settings, sandbox=args.sandbox, transport=args.transport, host=args.host, port=args.port)
    except ConfigurationError as exc:
        sys.stderr.write(f"person-enrich-mcp: {exc}\n")
        return 2
