"""The `person-enrich-mcp sandbox` subcommand: its arguments and its run loop."""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import time
from decimal import Decimal

from person_enrich_mcp.sandbox.config import ConfigError, FaultRule, SandboxConfig, parse_credits

logger = logging.getLogger("person_enrich_mcp.sandbox")


def _fault_spec(value: str) -> FaultRule:
    try:
        return FaultRule.from_spec(value)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _credits(value: str) -> Decimal:
    try:
        amount = parse_credits(value, "--balance")
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    assert amount is not None
    return amount


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return number


def _port(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {value!r}") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number between 0 and 65535, got {value!r}")
    return number


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {value!r}") from None
    if not number > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {value!r}")
    return number


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the sandbox options to its subcommand parser."""
    defaults = SandboxConfig()
    net = parser.add_argument_group("listening")
    net.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    net.add_argument("--port", type=_port, default=8787, help="TCP port, 0 for any free one (default: %(default)s)")
    net.add_argument("--access-log", action="store_true", help="log every request to stderr")

    data = parser.add_argument_group("synthetic dataset")
    data.add_argument("--seed", type=int, default=defaults.seed, help="dataset seed (default: %(default)s)")
    data.add_argument("--people", type=_positive_int, default=defaults.people, help="people (default: %(default)s)")
    data.add_argument(
        "--companies", type=_positive_int, default=defaults.companies, help="companies (default: %(default)s)"
    )

    api = parser.add_argument_group("upstream behaviour")
    api.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="KEY",
        help="accept only this key (repeatable); without it any non-empty key works and is billed separately",
    )
    api.add_argument("--enrich-rpm", type=_positive_int, default=defaults.enrich_rpm, help="enrich requests per window")
    api.add_argument("--search-rpm", type=_positive_int, default=defaults.search_rpm, help="search requests per window")
    api.add_argument(
        "--rate-window", type=_seconds, default=defaults.rate_window, help="sliding window in seconds (default: 60)"
    )
    api.add_argument("--no-rate-limit", action="store_true", help="never answer 429 (benchmarks)")
    api.add_argument("--send-retry-after", action="store_true", help="add Retry-After to 429 answers")
    api.add_argument(
        "--balance",
        type=_credits,
        default=None,
        metavar="CREDITS",
        help="starting credits per key (default: unlimited)",
    )
    api.add_argument(
        "--gated-field",
        action="append",
        default=[],
        metavar="FIELD",
        help="a field the plan does not include: requesting it answers 403 (repeatable)",
    )
    api.add_argument(
        "--default-fields",
        choices=("default", "all"),
        default=defaults.default_fields,
        help="what enrich returns when fields is omitted: basic_profile+social_handles, or everything",
    )
    api.add_argument(
        "--no-default-families",
        action="store_true",
        help="do not add basic_profile and social_handles to explicit enrich fields",
    )
    api.add_argument(
        "--no-match-status",
        type=int,
        choices=(200, 404),
        default=defaults.no_match_status,
        help="status of an enrich batch in which nothing matched (default: %(default)s)",
    )

    faults = parser.add_argument_group("fault injection")
    faults.add_argument(
        "--fault",
        action="append",
        type=_fault_spec,
        default=[],
        metavar="SPEC",
        help="a fault rule such as kind=status,status=503,rate=0.2,endpoint=enrich (repeatable)",
    )
    faults.add_argument("--fault-seed", type=int, default=defaults.fault_seed, help="seed of the fault RNG")


def config_from_args(args: argparse.Namespace) -> SandboxConfig:
    """Build a SandboxConfig from parsed sandbox arguments; raises ConfigError on inconsistent values."""
    return SandboxConfig(
        seed=args.seed,
        people=args.people,
        companies=args.companies,
        api_keys=tuple(args.api_key),
        enrich_rpm=args.enrich_rpm,
        search_rpm=args.search_rpm,
        rate_window=args.rate_window,
        rate_limits_enabled=not args.no_rate_limit,
        send_retry_after=args.send_retry_after,
        balance=args.balance,
        gated_fields=tuple(args.gated_field),
        default_fields=args.default_fields,
        include_default_families=not args.no_default_families,
        no_match_status=args.no_match_status,
        faults=tuple(args.fault),
        fault_seed=args.fault_seed,
        access_log=args.access_log,
    )


def run(args: argparse.Namespace) -> int:
    """Serve the sandbox in the foreground until interrupted; returns the exit status."""
    # Imported here, not at the top: `person-enrich-mcp` builds this subcommand's parser on every start.
    import uvicorn

    from person_enrich_mcp.sandbox.app import create_app
    from person_enrich_mcp.sandbox.server import bind_socket, uvicorn_config

    if logger.getEffectiveLevel() > logging.INFO:
        # The start-up line is the one thing a user of this command must see, even without -v.
        logger.setLevel(logging.INFO)
    try:
        config = config_from_args(args)
        started = time.perf_counter()
        app = create_app(config)
    except ConfigError as exc:
        logger.error("sandbox: %s", exc)
        return 2
    elapsed = time.perf_counter() - started
    dataset = app.state.sandbox.dataset
    # The dataset lives, unchanged, as long as this process: keep the cyclic collector from rescanning its
    # millions of objects, which would otherwise show up as periodic pauses in latency benchmarks.
    gc.collect()
    gc.freeze()
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as exc:
        logger.error("sandbox: cannot listen on %s:%d: %s", args.host, args.port, exc)
        return 1
    port = sock.getsockname()[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    logger.info(
        "sandbox serving on http://%s:%d: %d people, %d companies (seed %d), generated in %.2f s (%.2f s with "
        "indices). All data is synthetic: no real person is described.",
        host,
        port,
        len(dataset.people),
        len(dataset.companies),
        dataset.seed,
        dataset.generation_seconds,
        elapsed,
    )
    server = uvicorn.Server(uvicorn_config(app, access_log=config.access_log))
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    return 0
