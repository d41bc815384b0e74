"""The audit trail and the logs, through real MCP clients (in-process, over HTTP and over stdio as subprocesses)
against the sandbox: one record per upstream request that matches the sandbox's ledger, `audit find` answers who
looked a person up, the log holds no raw identifier, and no person data reaches the logs even at -vv."""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import get_default_environment, stdio_client

from person_enrich_mcp.privacy.subjects import parse_subject
from person_enrich_mcp.privacy.suppression import add_entries
from person_enrich_mcp.sandbox import SandboxServer
from person_enrich_mcp.sandbox.dataset import Person
from person_enrich_mcp.server import build_server
from tests.conftest import Upstream, per_revision, settings_for, text_of
from tests.http_helpers import HttpServer, mcp_over_http, write_tokens
from tests.privacy_helpers import CONTACT_FIELDS, canaries, people_with_contact_data

BILLABLE = ("enrich", "contact", "live", "search")
ENGINEERS = {"field": "experience.employment_details.current.function_category", "type": "=", "value": "Engineering"}


def _records(path: Path) -> list[dict[str, Any]]:
    return [cast(dict[str, Any], json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines()]


async def _cli(*args: str) -> tuple[int, str]:
    done = await anyio.run_process([sys.executable, "-m", "person_enrich_mcp", *args], check=False)
    return done.returncode, (done.stdout + done.stderr).decode()


def _calls(person: Person, other: Person, suppressed: Person) -> list[tuple[str, dict[str, Any]]]:
    """A session's worth of look-ups: by URL with emails (one of them suppressed), by work email, a search, and a
    repeat served from the cache."""
    return [
        (
            "enrich_person_by_url",
            {
                "professional_network_profile_urls": [person.profile_url, suppressed.profile_url],
                "fields": CONTACT_FIELDS,
            },
        ),
        ("enrich_person_by_email", {"business_emails": [other.business_emails[0]]}),
        ("search_then_enrich", {"filters": ENGINEERS, "limit": 2}),
        ("enrich_person_by_url", {"professional_network_profile_urls": [person.profile_url], "fields": CONTACT_FIELDS}),
    ]


async def _run(client: Client, calls: list[tuple[str, dict[str, Any]]]) -> None:
    for tool, arguments in calls:
        result = await client.call_tool(tool, arguments | {"max_credits": 20})
        assert result.is_error is False, text_of(result)


@pytest.mark.anyio
async def test_the_audit_log_has_one_record_per_upstream_request_and_answers_audit_find(
    upstream: Upstream, sandbox: SandboxServer, tmp_path: Path, revision: str
) -> None:
    person, other, suppressed = people_with_contact_data(sandbox, 20, 3)
    log = tmp_path / "audit" / "audit.jsonl"
    optout = tmp_path / "optout"
    add_entries(optout, [(parse_subject(suppressed.profile_url).hash, "")])
    settings = settings_for(upstream.url, upstream.key, audit_log=str(log), suppression_file=str(optout))
    async with Client(build_server(settings)) as client:
        await _run(client, _calls(person, other, suppressed))

    records = _records(log)
    sent = upstream.paid_requests()
    upstream_records = [r for r in records if r["endpoint"] in BILLABLE]
    assert [r["endpoint"] for r in upstream_records] == [r["endpoint"] for r in sent]
    assert [r["identifiers"] for r in upstream_records] == [
        len(r["body"].get("professional_network_profile_urls") or r["body"].get("business_emails") or []) or
        (len(r["body"]["filters"]["value"]) if r["body"]["filters"].get("type") == "in" else 0)
        for r in sent
    ]  # fmt: skip
    assert sum(Decimal(r["charged"]) for r in records) == upstream.billed()
    assert {r["tool"] for r in records} == {"enrich_person_by_url", "enrich_person_by_email", "search_then_enrich"}
    assert all(r["outcome"] == "ok" or r["outcome"] == "suppressed" for r in records)
    assert all(r["principal"] is None and r["session"].startswith("process:") for r in records)

    # Nothing in the log can be read back as a person: no URL, slug, name or email of anyone looked up.
    text = log.read_text(encoding="utf-8").lower()
    assert [c for c in [*canaries(person), *canaries(other), *canaries(suppressed)] if c.lower() in text] == []
    assert "linkedin.com" not in text and "@" not in text

    status, found = await _cli("--audit-log", str(log), "audit", "find", person.profile_url.upper())
    assert status == 0, found
    lines = found.splitlines()
    fetched = [line for line in lines if "  enrich_person_by_url  " in line]
    endpoints = per_revision(revision, current=["enrich", "contact", "cache"], overview=["enrich", "cache"])
    assert [line.split("  ")[4] for line in fetched] == endpoints
    assert "fields=basic_profile.name,contact.business_emails,contact.personal_emails" in fetched[-1]
    assert lines[-1].startswith(f"{len(fetched)} records in 2 calls by -, from ")

    status, refused = await _cli("--audit-log", str(log), "audit", "find", "--json", suppressed.profile_url)
    (record,) = [json.loads(line) for line in refused.splitlines()]
    assert status == 0 and record["outcome"] == "suppressed" and record["charged"] == "0.00"

    status, by_email = await _cli("--audit-log", str(log), "audit", "find", "--json", other.business_emails[0])
    assert status == 0
    assert [json.loads(line)["endpoint"] for line in by_email.splitlines()] == per_revision(
        revision, current=["contact"], overview=["enrich"]
    )
    status, nobody = await _cli("--audit-log", str(log), "audit", "find", "https://www.linkedin.com/in/nobody-at-all")
    assert status == 1 and "no records about these people" in nobody


@pytest.mark.anyio
async def test_over_http_at_debug_level_records_name_the_principal_and_no_person_data_reaches_the_log(
    upstream: Upstream, sandbox: SandboxServer, tmp_path: Path
) -> None:
    person, other, suppressed = people_with_contact_data(sandbox, 24, 3)
    tokens = write_tokens(tmp_path / "tokens", "alice")
    audit = tmp_path / "audit.jsonl"
    env = {
        "CRUSTDATA_API_KEY": upstream.key,
        "PERSON_ENRICH_API_BASE_URL": upstream.url,
        "PERSON_ENRICH_TOKENS_FILE": str(tmp_path / "tokens"),
        "PERSON_ENRICH_AUDIT_LOG": str(audit),
        "PERSON_ENRICH_STATE_URL": f"sqlite:///{tmp_path / 'state.db'}",
    }
    server = HttpServer(env, "-vv")
    try:
        with anyio.fail_after(60):
            async with mcp_over_http(server.url, tokens["alice"]) as client:
                await _run(client, _calls(person, other, suppressed))
        logged = server.output()
    finally:
        server.stop()

    assert "upstream enrich -> 200" in logged  # -vv was on: the client's debug lines are there
    leaked = [c for c in [*canaries(person), *canaries(other), *canaries(suppressed)] if c.lower() in logged.lower()]
    assert leaked == []
    status, found = await _cli(
        "--audit-log", str(audit), "audit", "find", person.business_emails[0], person.profile_url
    )
    # A 2026-07-28 call has no session: its session is the principal's sessionless one, `http:<principal>`.
    assert status == 0 and "  alice  http:alice  enrich_person_by_url  " in found and "calls by alice" in found


@pytest.mark.anyio
async def test_over_stdio_at_debug_level_no_person_data_reaches_stderr(
    upstream: Upstream, sandbox: SandboxServer, tmp_path: Path
) -> None:
    person, other, suppressed = people_with_contact_data(sandbox, 28, 3)
    optout = tmp_path / "optout"
    add_entries(optout, [(parse_subject(suppressed.profile_url).hash, "")])
    env = get_default_environment() | {
        "CRUSTDATA_API_KEY": upstream.key,
        "PERSON_ENRICH_API_BASE_URL": upstream.url,
        "PERSON_ENRICH_SUPPRESSION_FILE": str(optout),
        "PERSON_ENRICH_AUDIT_LOG": "stderr",
        "PERSON_ENRICH_AUDIT_SALT_FILE": str(tmp_path / "salt"),
    }
    params = StdioServerParameters(command=sys.executable, args=["-m", "person_enrich_mcp", "-vv"], env=env)
    stderr = tmp_path / "stderr.log"
    with stderr.open("w", encoding="utf-8") as sink, anyio.fail_after(60):
        async with Client(stdio_client(params, errlog=sink)) as client:
            await _run(client, _calls(person, other, suppressed))
    logged = stderr.read_text(encoding="utf-8")

    assert "upstream enrich -> 200" in logged and '"tool":"enrich_person_by_email"' in logged
    leaked = [c for c in [*canaries(person), *canaries(other), *canaries(suppressed)] if c.lower() in logged.lower()]
    assert leaked == []
    status, found = await _cli(
        "--audit-salt-file", str(tmp_path / "salt"), "audit", "find", "--log", str(stderr), person.profile_url
    )
    assert status == 0 and "enrich_person_by_url" in found  # the audit lines among the log lines are searchable
