"""The `person-enrich-mcp sandbox` subcommand: its arguments and its run loop."""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import time
from decimal import Decimal

from person_enrich_mcp.sandbox.config import ConfigError, FaultRule, SandboxConfig, parse_credits
from person_enrich_mcp.sandbox.endpoints import CONTACT_PATH, LIVE_PATH
from person_enrich_mcp.sandbox.plans import Plan

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


def _non_negative_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value!r}")
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


_RATE_FLAGS = (
    ("enrich", "enrich"),
    ("contact", "contact-enrich"),
    ("live", "live-enrich"),
    ("search", "search"),
    ("autocomplete", "autocomplete"),
    ("account", "account-endpoint (shared by the three)"),
)


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

    data.add_argument(
        "--hostile-people",
        type=_non_negative_int,
        default=defaults.hostile_people,
        metavar="N",
        help="give the first N searchable people hostile free text (default: %(default)s)",
    )

    api = parser.add_argument_group("upstream behaviour")
    api.add_argument(
        "--revision",
        choices=("current", "overview"),
        default=defaults.revision,
        help="the API contract to emulate: today's, or the older overview's (default: %(default)s)",
    )
    api.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="KEY",
        help="accept only this key (repeatable); without it any non-empty key works and is billed separately",
    )
    for endpoint, what in _RATE_FLAGS:
        api.add_argument(
            f"--{endpoint}-rpm",
            type=_positive_int,
            default=defaults.rpm_for(endpoint),
            help=f"{what} requests per window, per key (default: %(default)s)",
        )
    api.add_argument(
        "--rate-window", type=_seconds, default=defaults.rate_window, help="sliding window in seconds (default: 60)"
    )
    api.add_argument("--no-rate-limit", action="store_true", help="never answer 429 (benchmarks)")
    api.add_argument("--send-retry-after", action="store_true", help="add Retry-After to 429 answers")
    api.add_argument(
        "--no-credits-header", action="store_true", help="never send x-credits-used (the upstream docs omit it)"
    )
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

    api.add_argument(
        "--live-latency-ms",
        type=_non_negative_int,
        default=defaults.live_latency_ms,
        metavar="MS",
        help="delay every live-enrich answer by this much (default: %(default)s)",
    )
    _add_plan_arguments(parser)

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


def _add_plan_arguments(parser: argparse.ArgumentParser) -> None:
    plan = parser.add_argument_group("every key's default plan")
    plan.add_argument("--contact-not-enabled", action="store_true", help="contact enrich answers 403 (plan-gated)")
    plan.add_argument("--live-not-enabled", action="store_true", help="live enrich answers 403 (plan-gated)")
    plan.add_argument("--preview", action="store_true", help="the plan includes preview (enrich and search)")
    plan.add_argument(
        "--token-limit-rpm",
        type=_positive_int,
        default=None,
        metavar="N",
        help="a key-wide limit across all endpoints, per window (default: none)",
    )


def default_plan_from_args(args: argparse.Namespace) -> Plan:
    """The default plan the plan flags describe."""
    plan = Plan(preview=args.preview, token_limit_rpm=args.token_limit_rpm)
    if args.contact_not_enabled:
        plan = plan.with_status(CONTACT_PATH, "not_enabled")
    if args.live_not_enabled:
        plan = plan.with_status(LIVE_PATH, "not_enabled")
    return plan


def config_from_args(args: argparse.Namespace) -> SandboxConfig:
    """Build a SandboxConfig from parsed sandbox arguments; raises ConfigError on inconsistent values."""
    return SandboxConfig(
        seed=args.seed,
        people=args.people,
        companies=args.companies,
        api_keys=tuple(args.api_key),
        revision=args.revision,
        enrich_rpm=args.enrich_rpm,
        contact_rpm=args.contact_rpm,
        live_rpm=args.live_rpm,
        search_rpm=args.search_rpm,
        autocomplete_rpm=args.autocomplete_rpm,
        account_rpm=args.account_rpm,
        rate_window=args.rate_window,
        rate_limits_enabled=not args.no_rate_limit,
        send_retry_after=args.send_retry_after,
        credits_header=not args.no_credits_header,
        balance=args.balance,
        gated_fields=tuple(args.gated_field),
        default_plan=default_plan_from_args(args),
        default_fields=args.default_fields,
        include_default_families=not args.no_default_families,
        no_match_status=args.no_match_status,
        live_latency_ms=args.live_latency_ms,
        hostile_people=args.hostile_people,
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
