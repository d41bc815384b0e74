"""The server as users run it: the console script over stdio (a real subprocess), the CLI, and the demo."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from typing import Any, cast

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import get_default_environment

from person_enrich_mcp.cli import build_parser, main
from person_enrich_mcp.settings import OPTIONS
from tests.conftest import Upstream, sample_identifiers, text_of

CANARY = "canary-key-4f1c2d9e8b7a"


def _params(*args: str, env: dict[str, str] | None = None) -> StdioServerParameters:
    environment = get_default_environment() | (env or {})
    return StdioServerParameters(command=sys.executable, args=["-m", "person_enrich_mcp", *args], env=environment)


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_stdio_server_against_the_sandbox_over_http(upstream: Upstream, mode: Any) -> None:
    env = {"CRUSTDATA_API_KEY": upstream.key, "PERSON_ENRICH_API_BASE_URL": upstream.url}
    urls = sample_identifiers(upstream.url, "url", 2)
    with anyio.fail_after(60):
        async with Client(_params(env=env), mode=mode) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            result = await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": urls})
            books = cast(dict[str, Any], (await client.call_tool("get_budget", {})).structured_content)
    assert names == {
        "enrich_person_by_url",
        "enrich_person_by_email",
        "search_then_enrich",
        "suggest_filter_values",
        "get_budget",
    }
    assert result.is_error is False and len(cast(dict[str, Any], result.structured_content)["people"]) == 2
    assert Decimal(books["spent"]) == upstream.billed() == 2


@pytest.mark.anyio
async def test_sandbox_mode_marks_every_result_as_sandbox_data() -> None:
    with anyio.fail_after(60):
        async with Client(_params("--sandbox")) as client:
            result = await client.call_tool(
                "search_then_enrich",
                {"filters": {"field": "basic_profile.location.country", "type": "=", "value": "Germany"}, "limit": 2},
            )
    structured = cast(dict[str, Any], result.structured_content)
    assert result.is_error is False and structured["sandbox"] is True
    assert text_of(result).startswith('{"sandbox":true,')  # the first thing a model reads of the result


def test_a_missing_key_is_a_one_sentence_startup_error_naming_the_variable_and_the_sandbox() -> None:
    env = {k: v for k, v in get_default_environment().items() if k != "CRUSTDATA_API_KEY"}
    done = subprocess.run(
        [sys.executable, "-m", "person_enrich_mcp"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2 and done.stdout == ""
    message = done.stderr.strip()
    assert "CRUSTDATA_API_KEY" in message and "--sandbox" in message and message.count("\n") == 0


def test_every_setting_has_a_flag_and_the_flags_reach_the_settings(tmp_path: Any) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(CANARY + "\n")
    parser = build_parser()
    flags = {o.flag for o in OPTIONS}
    known = {a for action in parser._actions for a in action.option_strings}  # pyright: ignore[reportPrivateUsage]
    assert flags <= known
    args = parser.parse_args(["--api-key-file", str(key_file), "--session-budget", "7.5", "--confirm-above", "2"])
    from person_enrich_mcp.cli import _flags  # pyright: ignore[reportPrivateUsage]
    from person_enrich_mcp.settings import load_settings

    settings = load_settings(_flags(args), environ={})
    assert settings.require_api_key().get_secret_value() == CANARY
    assert str(settings.session_budget) == "7.5" and str(settings.confirm_above) == "2"
    assert CANARY not in repr(settings) and CANARY not in str(settings.model_dump())


def test_bad_settings_name_the_variable(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--session-budget", "lots"])
    assert code == 2
    assert "--session-budget" in capsys.readouterr().err


@pytest.mark.slow
def test_the_demo_runs_end_to_end_and_shows_every_step() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "person_enrich_mcp", "demo"], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    for expected in (
        "2 from cache",
        "Refused before spending anything",
        "the server asks the user",
        "receipt",
        "'VP' is 'Vice President'",  # a mistake caught for free
        '"match_type":"search"',  # the search-only preview
        "the headline task",
    ):
        assert expected in out, expected
    # The headline task (five people with work emails, 10.15 at most) runs without a prompt at the defaults.
    headline = out.split("the headline task")[1].split("──")[0]
    assert "the server asks the user" not in headline and "estimate of 10.15 credits" in headline
    assert "Traceback" not in done.stderr
