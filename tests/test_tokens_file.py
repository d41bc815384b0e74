"""The tokens file fails closed, over real HTTP with two principals (issue 12, finding 3).

Revocation takes effect on the next request whatever else is wrong with the file: a malformed line is skipped
(one warning naming its line number, never its content), a missing file accepts no token, and a rewrite that
keeps the old modification time is noticed (the content is compared, not the mtime). Each change is logged once,
never once per request.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from person_enrich_mcp.auth import create_token
from tests.conftest import Upstream
from tests.http_helpers import HttpServer, modern_call, modern_headers, write_tokens

pytestmark = pytest.mark.parametrize("revision", ["current"], indirect=True)
REQUESTS_AFTER_A_CHANGE = 20


@pytest.fixture
def tokens_file(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    path = tmp_path / "tokens"
    return path, write_tokens(path, "alice", "bob")


@pytest.fixture
def server(upstream: Upstream, tokens_file: tuple[Path, dict[str, str]]) -> Iterator[HttpServer]:
    env = {
        "CRUSTDATA_API_KEY": upstream.key,
        "PERSON_ENRICH_API_BASE_URL": upstream.url,
        "PERSON_ENRICH_TOKENS_FILE": str(tokens_file[0]),
    }
    running = HttpServer(env)
    yield running
    running.stop()


def _status(server: HttpServer, token: str) -> int:
    """The status of an authenticated 2026-07-28 `tools/list` (200 when the token is accepted)."""
    return httpx2.post(
        server.url, json=modern_call("tools/list"), headers=modern_headers("tools/list", token)
    ).status_code


def _line(tokens_file: Path, principal: str) -> str:
    return next(line for line in tokens_file.read_text().splitlines() if line.startswith(f"{principal} "))


def _warnings(server: HttpServer) -> list[str]:
    return [line for line in server.output().splitlines() if "WARNING" in line and "tokens file" in line]


def test_a_malformed_line_is_skipped_and_the_rest_apply_so_revocation_still_works(
    server: HttpServer, tokens_file: tuple[Path, dict[str, str]]
) -> None:
    path, tokens = tokens_file
    assert (_status(server, tokens["alice"]), _status(server, tokens["bob"])) == (200, 200)
    secret_looking = "pem_this-looks-like-a-token-and-must-never-be-logged"
    path.write_text(f"carol {secret_looking}\n{_line(path, 'bob')}\n", encoding="utf-8")  # alice revoked

    statuses = [
        (_status(server, tokens["alice"]), _status(server, tokens["bob"])) for _ in range(REQUESTS_AFTER_A_CHANGE)
    ]

    assert set(statuses) == {(401, 200)}
    warnings = _warnings(server)
    assert len(warnings) == 1, warnings
    assert "line 1" in warnings[0] and "skipped" in warnings[0]
    assert secret_looking not in server.output() and "carol" not in server.output()
    assert "Traceback" not in server.output()


def test_a_deleted_tokens_file_accepts_no_token_until_it_is_back(
    server: HttpServer, tokens_file: tuple[Path, dict[str, str]]
) -> None:
    path, tokens = tokens_file
    content = path.read_text(encoding="utf-8")
    assert _status(server, tokens["alice"]) == 200
    path.unlink()

    gone = {(_status(server, tokens["alice"]), _status(server, tokens["bob"])) for _ in range(REQUESTS_AFTER_A_CHANGE)}
    path.write_text(content, encoding="utf-8")
    back = (_status(server, tokens["alice"]), _status(server, tokens["bob"]))

    assert gone == {(401, 401)}
    assert back == (200, 200)
    warnings = _warnings(server)
    assert len(warnings) == 1 and "no token is accepted" in warnings[0], warnings
    assert "Traceback" not in server.output()


def test_a_rewrite_that_keeps_the_old_modification_time_is_still_applied(
    server: HttpServer, tokens_file: tuple[Path, dict[str, str]]
) -> None:
    path, tokens = tokens_file
    assert _status(server, tokens["alice"]) == 200
    before = path.stat()
    carol, carol_line = create_token("carol")  # same length as alice's line: only the content differs
    path.write_text(path.read_text(encoding="utf-8").replace(_line(path, "alice"), carol_line), encoding="utf-8")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (path.stat().st_mtime_ns, path.stat().st_size) == (before.st_mtime_ns, before.st_size)

    assert _status(server, tokens["alice"]) == 401
    assert _status(server, carol) == 200
    assert _status(server, tokens["bob"]) == 200
