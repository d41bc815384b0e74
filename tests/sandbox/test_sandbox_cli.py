"""The `sandbox` subcommand: argument parsing, config building, and one real subprocess run."""

from __future__ import annotations

import argparse
import logging
import re
import select
import signal
import subprocess
import sys
import time
from decimal import Decimal

import httpx2
import pytest

from person_enrich_mcp.cli import build_parser
from person_enrich_mcp.sandbox import FaultRule, SandboxConfig
from person_enrich_mcp.sandbox.cli import add_arguments, config_from_args, run
from person_enrich_mcp.sandbox.plans import Plan
from tests.sandbox.sandbox_helpers import TLS


def _parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["sandbox", *argv])


def test_defaults_build_the_default_config() -> None:
    args = _parse()
    assert (args.host, args.port, args.access_log) == ("127.0.0.1", 8787, False)
    assert config_from_args(args) == SandboxConfig()


def test_every_flag_reaches_the_config() -> None:
    args = _parse(
        "--host", "0.0.0.0", "--port", "0", "--seed", "3", "--people", "900", "--companies", "50",
        "--api-key", "k1", "--api-key", "k2", "--enrich-rpm", "20", "--search-rpm", "40", "--rate-window", "30",
        "--no-rate-limit", "--send-retry-after", "--balance", "12.5", "--gated-field", "certifications",
        "--gated-field", "honors", "--default-fields", "all", "--no-default-families", "--no-match-status", "404",
        "--fault", "kind=status,status=503,rate=0.2,endpoint=enrich", "--fault", "kind=timeout,count=1",
        "--fault-seed", "9", "--access-log", "--revision", "overview", "--contact-rpm", "5", "--live-rpm", "4",
        "--autocomplete-rpm", "45", "--account-rpm", "60", "--no-credits-header", "--hostile-people", "2",
        "--live-latency-ms", "150", "--contact-not-enabled", "--live-not-enabled", "--preview",
        "--token-limit-rpm", "100", "--fault", "kind=reset,endpoint=account",
    )  # fmt: skip
    assert (args.host, args.port) == ("0.0.0.0", 0)
    assert config_from_args(args) == SandboxConfig(
        seed=3,
        people=900,
        companies=50,
        api_keys=("k1", "k2"),
        enrich_rpm=20,
        search_rpm=40,
        rate_window=30.0,
        rate_limits_enabled=False,
        send_retry_after=True,
        balance=Decimal("12.5"),
        gated_fields=("certifications", "honors"),
        default_fields="all",
        include_default_families=False,
        no_match_status=404,
        faults=(
            FaultRule("status", rate=0.2, endpoint="enrich", status=503),
            FaultRule("timeout", count=1),
            FaultRule("reset", endpoint="account"),
        ),
        fault_seed=9,
        access_log=True,
        revision="overview",
        contact_rpm=5,
        live_rpm=4,
        autocomplete_rpm=45,
        account_rpm=60,
        credits_header=False,
        hostile_people=2,
        live_latency_ms=150,
        default_plan=Plan(preview=True, token_limit_rpm=100)
        .with_status("/person/contact/enrich", "not_enabled")
        .with_status("/person/professional_network/enrich/live", "not_enabled"),
    )


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--fault", "kind=status,status=418"], "fault status must be one of"),
        (["--fault", "kind"], "expected key=value"),
        (["--balance", "lots"], "--balance must be a decimal number"),
        (["--balance", "-3"], "non-negative"),
        (["--no-match-status", "500"], "invalid choice"),
        (["--default-fields", "some"], "invalid choice"),
        (["--enrich-rpm", "0"], "positive integer"),
        (["--rate-window", "0"], "positive number of seconds"),
        (["--port", "70000"], "between 0 and 65535"),
        (["--revision", "2024"], "invalid choice"),
        (["--hostile-people", "-1"], "non-negative integer"),
        (["--contact-rpm", "0"], "positive integer"),
        (["--token-limit-rpm", "0"], "positive integer"),
        (["--fault", "kind=reset,endpoint=identify"], "fault endpoint must be one of"),
    ],
)
def test_invalid_flags_are_argparse_errors(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        _parse(*argv)
    assert exited.value.code == 2
    assert needle in capsys.readouterr().err


def test_add_arguments_works_on_any_parser() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--gated-field", "skills", "--people", "10"])
    assert config_from_args(args).gated_fields == ("skills",)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--gated-field", "no.such.field"], "no.such.field"),
        (["--hostile-people", "51"], "hostile_people must be between 0 and people (50)"),
    ],
)
def test_run_refuses_an_inconsistent_config_without_serving(
    argv: list[str], needle: str, caplog: pytest.LogCaptureFixture
) -> None:
    args = _parse("--people", "50", "--companies", "5", *argv)
    with caplog.at_level(logging.ERROR, logger="person_enrich_mcp.sandbox"):
        assert run(args) == 2
    assert needle in caplog.text


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="select() on pipes is POSIX-only")
def test_the_subcommand_serves_until_terminated() -> None:
    # Port 0: the command binds before it logs, so the start-up line names the real port.
    command = [sys.executable, "-m", "person_enrich_mcp", "sandbox", "--port", "0", "--people", "300"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    try:
        deadline = time.monotonic() + 30
        banner = ""
        # Wait (on the pipe, bounded) for the start-up line.
        while "serving on" not in banner:
            remaining = deadline - time.monotonic()
            assert remaining > 0, "no start-up line"
            ready, _, _ = select.select([process.stderr], [], [], remaining)
            assert ready, "no start-up line"
            line = process.stderr.readline()
            assert line, f"process exited early with {process.poll()}"
            banner += line
        found = re.search(r"http://127\.0\.0\.1:(\d+)", banner)
        assert found is not None, banner
        port = int(found.group(1))
        assert port != 0
        assert "300 people" in banner and "synthetic" in banner
        health = None
        with httpx2.Client(timeout=2, verify=TLS) as http:
            while health is None:
                assert time.monotonic() < deadline, "health never answered"
                try:
                    health = http.get(f"http://127.0.0.1:{port}/_sandbox/health")
                except httpx2.ConnectError:
                    continue
        assert health.json() == {"ok": True, "people": 300, "companies": 300, "seed": 7, "in_flight": 0}
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl+C: a clean shutdown and exit status 0
        try:
            process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
    assert process.returncode == 0
