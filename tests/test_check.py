"""`person-enrich-mcp check`: what a key can do, found out for free, against the sandbox of each revision.

`run_check` is called directly for the detail of the report, and the command runs as a subprocess for what a
person or a script sees: the exit status, the JSON document, the human report, and never the key.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

import anyio
import pytest
from mcp.client.stdio import get_default_environment

from person_enrich_mcp.api.contract import PATHS
from person_enrich_mcp.check import CheckReport, run_check
from person_enrich_mcp.sandbox import SandboxServer
from tests.conftest import CANARY_MARKER, Upstream, canary_key, settings_for
from tests.http_helpers import free_port

CURRENT = pytest.mark.parametrize("revision", ["current"], indirect=True)
OVERVIEW = pytest.mark.parametrize("revision", ["overview"], indirect=True)
BOTH = pytest.mark.parametrize("revision", ["current", "overview"], indirect=True)

JSON_KEYS = {"ok", "problems", "limitations", "dialect", "endpoints"}
# The endpoints that are billed: the check must never call them in a way that can be (a free 404 probe aside).
PAID = ("enrich", "contact", "live", "search")


@dataclass(frozen=True)
class Run:
    """One run of the `check` command."""

    status: int
    stdout: str
    stderr: str

    def report(self) -> dict[str, Any]:
        return cast(dict[str, Any], json.loads(self.stdout))

    def shown(self) -> str:
        """For failure messages: the report and the end of the (-vv) log."""
        return f"{self.stdout}\n--- stderr (end) ---\n{self.stderr[-1500:]}"


def run_cli(*args: str, env: dict[str, str] | None = None) -> Run:
    """`python -m person_enrich_mcp <args>` with a clean environment plus `env`, bounded in time."""
    completed = subprocess.run(
        [sys.executable, "-m", "person_enrich_mcp", *args],
        env=get_default_environment() | (env or {}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Run(completed.returncode, completed.stdout, completed.stderr)


def check_cli(url: str, key: str, *args: str) -> Run:
    """`check` against `url` with `key` in the environment; the key must appear nowhere in what it prints."""
    run = run_cli("-vv", "check", *args, env={"CRUSTDATA_API_KEY": key, "PERSON_ENRICH_API_BASE_URL": url})
    assert key not in run.stdout + run.stderr and CANARY_MARKER not in run.stdout + run.stderr
    return run


async def check(url: str, key: str) -> CheckReport:
    with anyio.fail_after(60):
        return await run_check(settings_for(url, key))


def set_plan(upstream: Upstream, plan: dict[str, Any]) -> None:
    response = upstream.post("/_sandbox/plan", plan)
    assert response.status_code == 200, response.text


def spent_nothing(upstream: Upstream) -> None:
    """Nothing billed, and no paid endpoint asked anything it could bill: only free probes (a 404 for an absent
    route, a 400 for an empty body)."""
    assert upstream.billed() == 0
    requests = cast(dict[str, dict[str, int]], upstream.ledger().get("requests", {}))
    for endpoint in PAID:
        assert set(requests.get(endpoint, {})) <= {"404", "400"}, requests


# --- run_check ------------------------------------------------------------------------------------------------------


@CURRENT
@pytest.mark.anyio
async def test_check_of_todays_upstream_reports_the_accounts_endpoints_limits_prices_and_balance(
    sandbox: SandboxServer, upstream: Upstream
) -> None:
    set_plan(upstream, {"endpoints": {PATHS["enrich"]: {"rpm": 9, "base_credits": "2"}}})
    assert upstream.post("/_sandbox/balance", {"credits": "123.45"}).status_code == 200
    config = sandbox.state.config

    report = await check(upstream.url, upstream.key)

    assert report.ok and report.problems == [] and report.limitations == []
    assert (report.key_accepted, report.dialect, report.dialect_source) == (True, "current", "listing")
    assert report.account_listing is True
    assert {name: (e.path, e.enabled, e.rate_limit_rpm) for name, e in report.endpoints.items()} == {
        "enrich": (PATHS["enrich"], True, 9),  # the plan's own limit
        "contact": (PATHS["contact"], True, config.contact_rpm),
        "live": (PATHS["live"], True, config.live_rpm),
        "search": (PATHS["search"], True, config.search_rpm),
    }
    assert report.prices["profile"] == "2.00/matched profile" and report.prices["source"] == "account"
    assert report.prices["live"] == "7.00/profile" and "business_emails 1.00" in report.prices["contact"]
    assert report.balance == "123.45"
    rendered = report.render()
    assert "API revision: current (decided by listing)" in rendered and "balance: 123.45 credits" in rendered
    spent_nothing(upstream)
    assert set(upstream.ledger()["requests"]) == {"account"}


@OVERVIEW
@pytest.mark.anyio
async def test_check_of_an_overview_upstream_finds_the_dialect_by_the_free_probe_and_says_the_listing_is_not_served(
    upstream: Upstream,
) -> None:
    report = await check(upstream.url, upstream.key)

    assert report.ok and report.problems == []
    assert (report.dialect, report.dialect_source) == ("overview", "probe")
    assert report.balance is None and report.account_listing is False
    assert set(report.endpoints) == {"enrich", "search"}
    assert all(e.enabled is None for e in report.endpoints.values())  # not listed: documented limits apply
    assert report.prices["source"] == "documented"
    assert "listing not served" in report.render()
    spent_nothing(upstream)
    assert upstream.requests("contact") == {"404": 1}  # the one empty probe of the dialect
    assert upstream.requests("enrich") == {"400": 1}  # the one empty enrich that shows the key is accepted


@CURRENT
@pytest.mark.anyio
async def test_check_of_a_key_without_contact_enrich_is_ok_with_a_limitation_naming_the_endpoint(
    upstream: Upstream,
) -> None:
    set_plan(upstream, {"endpoints": {PATHS["contact"]: {"status": "not_enabled"}}})

    report = await check(upstream.url, upstream.key)

    assert report.ok and report.problems == []
    [limitation] = report.limitations
    assert PATHS["contact"] in limitation and "account manager" in limitation
    assert report.endpoints["contact"].enabled is False
    spent_nothing(upstream)


@CURRENT
@pytest.mark.anyio
async def test_check_of_a_key_whose_plan_withholds_a_field_names_it_as_a_limitation(upstream: Upstream) -> None:
    set_plan(upstream, {"disabled_fields": {PATHS["enrich"]: ["certifications"]}})

    report = await check(upstream.url, upstream.key)

    assert report.ok
    assert report.endpoints["enrich"].disabled_fields == ["certifications"]
    assert any(PATHS["enrich"] in text and "certifications" in text for text in report.limitations), report.limitations


@BOTH
@pytest.mark.anyio
async def test_check_of_a_rejected_key_is_a_problem_saying_it_was_rejected(
    make_sandbox: Callable[..., SandboxServer],
) -> None:
    sandbox = make_sandbox(api_keys=("the-only-good-key",))
    key = canary_key("rejected")

    report = await check(sandbox.url, key)

    assert not report.ok and report.key_accepted is False, report.to_json()
    [problem] = report.problems
    assert "rejected" in problem and "CRUSTDATA_API_KEY" in problem
    assert sandbox.state.ledger.snapshot()["total_credits"] == "0.00"


@pytest.mark.anyio
async def test_check_of_an_unreachable_upstream_is_one_sentence_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    report = await check(url, canary_key("unreachable"))

    assert not report.ok
    [problem] = report.problems
    assert url in problem and problem.count(". ") == 0 and problem.endswith(".")


# --- the command ----------------------------------------------------------------------------------------------------


@BOTH
def test_check_command_prints_a_json_report_exits_0_spends_nothing_and_never_shows_the_key(
    revision: str, upstream: Upstream
) -> None:
    run = check_cli(upstream.url, upstream.key, "--json")

    assert run.status == 0, run.shown()
    report = run.report()
    assert set(report) >= JSON_KEYS
    assert report["ok"] is True and report["problems"] == [] and report["dialect"] == revision
    assert report["endpoints"]["enrich"]["path"] == PATHS["enrich"]
    assert all(isinstance(e["rate_limit_rpm"], int) for e in report["endpoints"].values())
    if revision == "current":
        assert report["dialect_source"] == "listing" and Decimal(report["balance"]) > 0
        assert set(report["endpoints"]) == {"enrich", "contact", "live", "search"}
    else:
        assert report["dialect_source"] == "probe" and report["balance"] is None
    spent_nothing(upstream)


@CURRENT
def test_check_command_without_json_prints_the_report_for_a_person(upstream: Upstream) -> None:
    run = check_cli(upstream.url, upstream.key)

    assert run.status == 0, run.shown()
    assert "API revision: current (decided by listing)" in run.stdout
    assert PATHS["contact"] in run.stdout and "ok: nothing was spent" in run.stdout
    spent_nothing(upstream)


@CURRENT
def test_check_command_of_a_key_without_contact_enrich_exits_0_with_a_limitation(upstream: Upstream) -> None:
    set_plan(upstream, {"endpoints": {PATHS["contact"]: {"status": "not_enabled"}}})

    run = check_cli(upstream.url, upstream.key, "--json")

    assert run.status == 0, run.shown()
    report = run.report()
    assert report["ok"] is True and report["problems"] == []
    assert any(PATHS["contact"] in text and "account manager" in text for text in report["limitations"])
    spent_nothing(upstream)


@CURRENT
def test_check_command_of_a_key_without_profile_enrich_exits_1_with_a_problem_sentence(upstream: Upstream) -> None:
    set_plan(upstream, {"endpoints": {PATHS["enrich"]: {"status": "not_enabled"}}})

    run = check_cli(upstream.url, upstream.key, "--json")

    assert run.status == 1, run.shown()
    report = run.report()
    assert report["ok"] is False
    [problem] = report["problems"]
    assert PATHS["enrich"] in problem and "not enabled" in problem and problem.endswith(".")
    spent_nothing(upstream)


@BOTH
def test_check_command_of_a_rejected_key_exits_1_saying_it_was_rejected(
    make_sandbox: Callable[..., SandboxServer],
) -> None:
    sandbox = make_sandbox(api_keys=("the-only-good-key",))
    key = canary_key("rejected")

    run = check_cli(sandbox.url, key, "--json")

    assert run.status == 1, run.shown()
    report = run.report()
    assert report["ok"] is False and any("rejected" in text for text in report["problems"]), report


def test_check_command_of_an_unreachable_upstream_exits_1_with_one_sentence_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    run = check_cli(url, canary_key("unreachable"))

    assert run.status == 1, run.shown()
    [problem] = [line for line in run.stdout.splitlines() if line.startswith("PROBLEM: ")]
    assert url in problem
    assert "not ok: nothing was spent" in run.stdout


def test_check_command_against_the_embedded_sandbox_is_ok() -> None:
    run = run_cli("--sandbox", "check", "--json")

    assert run.status == 0, run.shown()
    report = run.report()
    assert report["ok"] is True and report["dialect"] == "current" and report["dialect_source"] == "listing"
    assert set(report) >= JSON_KEYS and report["key_accepted"] is True
