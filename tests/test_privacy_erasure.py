"""Erasure and data at rest, through a real MCP client against the sandbox and the real `person-enrich-mcp`
command: `forget` leaves no trace of a person in a SQLite cache (every byte of its files), a Redis cache (every key
and value) or a running server's memory; with SQLite budgets and the default cache, the SQLite file never holds
person data; expired entries are removed by the server on its own."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import anyio
import pytest
from mcp import Client

from person_enrich_mcp.sandbox import SandboxServer
from person_enrich_mcp.sandbox.dataset import Person
from person_enrich_mcp.server import build_server
from person_enrich_mcp.settings import Settings
from person_enrich_mcp.state import MemoryStore
from person_enrich_mcp.state.sqlite import SQLiteStore
from tests.conftest import Upstream, settings_for, text_of
from tests.privacy_helpers import CONTACT_FIELDS, canaries, people_with_contact_data, redis_traces, sqlite_traces
from tests.state_fixtures import RedisServer
from tests.state_fixtures import redis_server as redis_server  # re-exported: the session's redis-server


async def _look_up_every_way(client: Client, person: Person, other: Person) -> None:
    """The person by URL (with emails), by work email, and in a search by name; and someone else by URL."""
    calls: list[tuple[str, dict[str, Any]]] = [
        (
            "enrich_person_by_url",
            {"professional_network_profile_urls": [person.profile_url, other.profile_url], "fields": CONTACT_FIELDS},
        ),
        ("enrich_person_by_email", {"business_emails": [person.business_emails[0]]}),
        (
            "search_then_enrich",
            {"filters": {"field": "basic_profile.name", "type": "=", "value": person.data["basic_profile"]["name"]}},
        ),
    ]
    for tool, arguments in calls:
        result = await client.call_tool(tool, arguments | {"max_credits": 30})
        assert result.is_error is False, text_of(result)


async def _cli(*args: str) -> tuple[int, str]:
    """Run the real `person-enrich-mcp` command; its exit status and everything it printed."""
    done = await anyio.run_process([sys.executable, "-m", "person_enrich_mcp", *args], check=False)
    return done.returncode, (done.stdout + done.stderr).decode()


@asynccontextmanager
async def _server(settings: Settings, cache: MemoryStore | None = None) -> AsyncGenerator[Client]:
    factory = (lambda: cache) if cache is not None else None
    async with Client(build_server(settings, cache_store_factory=factory)) as client:
        yield client


async def _memory_text(cache: MemoryStore) -> str:
    return json.dumps(await cache.cache_items(""), ensure_ascii=False).lower()


async def _traces_in(cache: MemoryStore, values: list[str]) -> list[str]:
    held = await _memory_text(cache)
    return [v for v in values if v.lower() in held]


@pytest.mark.anyio
async def test_forget_leaves_no_trace_in_a_sqlite_cache(
    upstream: Upstream, sandbox: SandboxServer, tmp_path: Path
) -> None:
    person, other = people_with_contact_data(sandbox, 0, 2)
    database = tmp_path / "cache.db"
    cache_url = f"sqlite:///{database}"
    async with _server(settings_for(upstream.url, upstream.key, cache_url=cache_url)) as client:
        await _look_up_every_way(client, person, other)
        assert sqlite_traces(database, canaries(person))  # the scan sees what the cache kept of them
        status, held = await _cli(
            "--cache-url", cache_url, "access", person.business_emails[0].upper(), person.profile_url
        )
        assert status == 0 and str(person.data["basic_profile"]["name"]) in held and '"subj"' not in held
        assert [json.loads(line)["entry"] for line in held.splitlines()[:-1]].count("page") == 1

        status, output = await _cli("--cache-url", cache_url, "forget", person.profile_url, person.business_emails[0])

        assert status == 0, output
        assert "removed " in output and " cached entries (" in output and "1 search pages)" in output
        assert sqlite_traces(database, canaries(person)) == []
        assert sqlite_traces(database, canaries(other)[1:]) == canaries(other)[1:]  # only they were forgotten
        status, held = await _cli("--cache-url", cache_url, "access", person.profile_url, person.business_emails[0])
        assert status == 0 and held.startswith("0 cached entries about these people")
        again = await client.call_tool(
            "enrich_person_by_url",
            {"professional_network_profile_urls": [person.profile_url, other.profile_url], "fields": CONTACT_FIELDS},
        )
    people = cast(dict[str, Any], again.structured_content)["people"]
    assert [p.get("cached") for p in people] == [None, True]  # looked up afresh; the other one still cached


@pytest.mark.anyio
async def test_forget_leaves_no_trace_in_a_redis_cache(
    upstream: Upstream, sandbox: SandboxServer, redis_server: RedisServer
) -> None:
    redis_server.flush()
    person, other = people_with_contact_data(sandbox, 2, 2)
    async with _server(settings_for(upstream.url, upstream.key, cache_url=redis_server.url)) as client:
        await _look_up_every_way(client, person, other)
        assert redis_traces(redis_server.url, canaries(person))  # the scan sees what the cache kept of them

        status, output = await _cli(
            "--cache-url", redis_server.url, "forget", person.business_emails[0], person.profile_url
        )

    assert status == 0, output
    assert redis_traces(redis_server.url, canaries(person)) == []
    assert redis_traces(redis_server.url, canaries(other)[1:]) == canaries(other)[1:]


@pytest.mark.anyio
async def test_forget_reaches_a_running_servers_memory_through_the_shared_state_store(
    upstream: Upstream, sandbox: SandboxServer, tmp_path: Path
) -> None:
    person, other = people_with_contact_data(sandbox, 4, 2)
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    cache = MemoryStore()
    settings = settings_for(upstream.url, upstream.key, state_url=state_url, housekeeping_seconds=0.05)
    async with _server(settings, cache) as client:
        await _look_up_every_way(client, person, other)
        assert await _traces_in(cache, canaries(person))  # what the cache kept of them (today's: all of it)

        status, output = await _cli("--state-url", state_url, "forget", person.profile_url, person.business_emails[0])
        assert status == 0, output
        assert "posted an erasure request" in output
        with anyio.fail_after(10):
            while await _traces_in(cache, canaries(person)):
                await anyio.sleep(0.02)

    assert await _traces_in(cache, canaries(other)[1:]) == canaries(other)[1:]
    assert sqlite_traces(tmp_path / "state.db", canaries(person)) == []  # the request holds hashes only


@pytest.mark.anyio
async def test_forget_with_suppress_reaches_a_server_that_shares_nothing_but_the_opt_out_file(
    upstream: Upstream, sandbox: SandboxServer, tmp_path: Path
) -> None:
    person, other = people_with_contact_data(sandbox, 6, 2)
    optout = tmp_path / "optout"
    optout.write_text("", encoding="utf-8")
    cache = MemoryStore()
    settings = settings_for(upstream.url, upstream.key, suppression_file=str(optout), housekeeping_seconds=0.05)
    async with _server(settings, cache) as client:
        await _look_up_every_way(client, person, other)

        refused, message = await _cli("forget", person.profile_url)
        assert refused == 1 and "nothing was erased" in message and "--suppress" in message
        unreadable, message = await _cli("access", person.profile_url)
        assert unreadable == 1 and "cannot be read from here" in message and "audit find" in message

        status, output = await _cli(
            "--suppression-file", str(optout), "forget", "--suppress", person.profile_url, person.business_emails[0]
        )
        assert status == 0, output
        with anyio.fail_after(10):
            while await _traces_in(cache, canaries(person)):
                await anyio.sleep(0.02)
    text = optout.read_text(encoding="utf-8").lower()
    assert all(c.lower() not in text for c in canaries(person))  # the opt-out file holds hashes only
    assert len([line for line in text.splitlines() if line.strip()]) == 2


@pytest.mark.anyio
async def test_with_sqlite_budgets_and_the_default_cache_the_sqlite_file_holds_no_person_data(
    upstream: Upstream, sandbox: SandboxServer, tmp_path: Path
) -> None:
    person, other = people_with_contact_data(sandbox, 8, 2)
    database = tmp_path / "state.db"
    async with _server(settings_for(upstream.url, upstream.key, state_url=f"sqlite:///{database}")) as client:
        await _look_up_every_way(client, person, other)
        budget = cast(dict[str, Any], (await client.call_tool("get_budget", {})).structured_content)

    assert sqlite_traces(database, [*canaries(person), *canaries(other)]) == []
    store = SQLiteStore(database)  # the money did go to disk: the receipts are there
    try:
        stored = await store.receipts(next(iter(await _receipt_accounts(database))), 10)
    finally:
        await store.aclose()
    assert len(stored) == 3 and budget["spent"] != "0.00"


async def _receipt_accounts(database: Path) -> set[str]:
    import sqlite3

    with sqlite3.connect(database) as db:
        return {str(row[0]) for row in db.execute("SELECT DISTINCT account FROM receipts")}


@pytest.mark.anyio
@pytest.mark.parametrize("revision", ["current"], indirect=True)
@pytest.mark.parametrize("where", ["memory", "sqlite"])
async def test_a_server_removes_expired_entries_without_being_called(
    upstream: Upstream, sandbox: SandboxServer, tmp_path: Path, where: str
) -> None:
    person, other = people_with_contact_data(sandbox, 10, 2)
    database = tmp_path / "cache.db"
    cache = MemoryStore() if where == "memory" else None
    overrides: dict[str, Any] = {"cache_ttl_seconds": 1.0, "housekeeping_seconds": 0.05}
    if where == "sqlite":
        overrides["cache_url"] = f"sqlite:///{database}"

    async def traces() -> list[str]:
        if cache is not None:  # everything the store holds, expired entries included until they are purged
            return canaries(person) if cache.cache_size else []
        return sqlite_traces(database, canaries(person))

    async with _server(settings_for(upstream.url, upstream.key, **overrides), cache) as client:
        result = await client.call_tool(
            "enrich_person_by_url",
            {"professional_network_profile_urls": [person.profile_url, other.profile_url], "fields": CONTACT_FIELDS},
        )
        assert result.is_error is False and await traces()
        with anyio.fail_after(15):
            while await traces():
                await anyio.sleep(0.05)
