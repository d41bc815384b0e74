"""Books stay bounded however many session ids are forged (issue 12, finding 5), over real HTTP.

10,000 free look-ups (a miss, then served from the negative cache) each claiming a fresh random `Mcp-Session-Id`
on a 2026-07-28 request, and 10,000 legacy requests naming sessions that never existed: on SQLite the books
hold one sessionless account for the principal, its 50 newest receipts, and nothing per forged id. Printed with
`-s`: the row counts and the server's resident memory before and after.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from person_enrich_mcp.budget import RECEIPTS_KEPT
from tests.conftest import Upstream
from tests.http_helpers import (
    LEGACY_PROTOCOL,
    MCP_ACCEPT,
    HttpServer,
    modern_call,
    modern_headers,
    rpc_result,
    write_tokens,
)

FORGED = 10_000
CONCURRENCY = 16
ENRICH = "enrich_person_by_url"
NOBODY = "https://www.linkedin.com/in/nobody-by-this-name-at-all"
BOOK_TABLES = ("spend", "held", "receipts", "reservations", "touched")


def _rows(database: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        present = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in BOOK_TABLES if t in present}


def _rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) / 1024


async def _in_parallel(count: int, send: Any) -> list[Any]:
    results: list[Any] = []

    async def worker(share: int) -> None:
        results.extend([await send() for _ in range(share)])

    async with anyio.create_task_group() as group:
        for index in range(CONCURRENCY):
            group.start_soon(worker, count // CONCURRENCY + (index < count % CONCURRENCY))
    return results


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize("revision", ["current"], indirect=True)
async def test_ten_thousand_forged_session_ids_leave_the_books_bounded(upstream: Upstream, tmp_path: Path) -> None:
    token = write_tokens(tmp_path / "tokens", "alice")["alice"]
    database = tmp_path / "state.db"
    env = {
        "CRUSTDATA_API_KEY": upstream.key,
        "PERSON_ENRICH_API_BASE_URL": upstream.url,
        "PERSON_ENRICH_TOKENS_FILE": str(tmp_path / "tokens"),
        "PERSON_ENRICH_STATE_URL": f"sqlite:///{database}",
    }
    server = HttpServer(env)
    arguments = {"name": ENRICH, "arguments": {"professional_network_profile_urls": [NOBODY]}}
    try:
        async with httpx2.AsyncClient(timeout=60) as http:

            async def free_miss() -> bool:
                headers = modern_headers("tools/call", token, ENRICH, **{"mcp-session-id": uuid.uuid4().hex})
                answer = await http.post(server.url, json=modern_call("tools/call", arguments), headers=headers)
                return answer.status_code == 200 and rpc_result(answer)["result"]["isError"] is False

            async def unknown_session() -> int:
                headers = MCP_ACCEPT | {
                    "authorization": f"Bearer {token}",
                    "mcp-session-id": uuid.uuid4().hex,
                    "mcp-protocol-version": LEGACY_PROTOCOL,
                }
                body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": arguments}
                return (await http.post(server.url, json=body, headers=headers)).status_code

            with anyio.fail_after(600):
                assert await free_miss()  # the miss itself (free), now in the negative cache
                rows_before, rss_before = _rows(database), _rss_mib(server.process.pid)
                started = time.perf_counter()
                misses = await _in_parallel(FORGED, free_miss)
                legacy = await _in_parallel(FORGED, unknown_session)
                seconds = time.perf_counter() - started
        rows_after, rss_after = _rows(database), _rss_mib(server.process.pid)
    finally:
        server.stop()
    print(
        f"\n{FORGED} forged sessionless ids + {FORGED} unknown legacy ids in {seconds:.0f} s: rows {rows_before} -> "
        f"{rows_after}; server RSS {rss_before:.0f} -> {rss_after:.0f} MiB"
    )
    assert misses == [True] * FORGED
    assert set(legacy) == {404}
    assert rows_after["receipts"] <= RECEIPTS_KEPT
    assert rows_after["held"] == 0 and rows_after["reservations"] == 0
    assert rows_after["spend"] <= rows_before["spend"]  # free: nothing to book, per forged id or otherwise
    assert rows_after.get("touched", 0) <= 3  # the principal's window, its sessionless session, nothing per id
    assert upstream.billed() == 0
