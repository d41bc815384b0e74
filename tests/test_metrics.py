"""Metrics as Prometheus reads them: `/metrics` parses with prometheus-client's parser, carries every family the
server declares and the process metrics, sums over worker processes in multi-process mode, and counts throttling
per principal."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import cast

import anyio
import httpx2
import pytest
from mcp import Client
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import parser as openmetrics

from person_enrich_mcp.api.limiter import RateLimiter, act_for
from person_enrich_mcp.errors import ConfigurationError, LocalRateLimitError, ShareRateLimitError
from person_enrich_mcp.http_app import build_http_app
from person_enrich_mcp.metrics import FAMILIES, PROCESS_FAMILIES, Metrics, exported_families
from person_enrich_mcp.server import build_server
from tests.conftest import Upstream, sample_identifiers, settings_for
from tests.http_helpers import HttpServer, Scrape, mcp_over_http, scrape, write_tokens

CURRENT = pytest.mark.parametrize("revision", ["current"], indirect=True)


def family_name(name: str, kind: str) -> str:
    """The family name a parser reports: a counter's without its `_total` suffix."""
    return name.removesuffix("_total") if kind == "counter" else name


@pytest.fixture
def server(upstream: Upstream, tmp_path: Path) -> Iterator[tuple[HttpServer, dict[str, str]]]:
    tokens = write_tokens(tmp_path / "tokens", "alice")
    running = HttpServer(
        {
            "CRUSTDATA_API_KEY": upstream.key,
            "PERSON_ENRICH_API_BASE_URL": upstream.url,
            "PERSON_ENRICH_TOKENS_FILE": str(tmp_path / "tokens"),
        }
    )
    yield running, tokens
    running.stop()


@CURRENT
def test_metrics_parse_with_the_prometheus_parser_with_every_family_and_the_process_metrics(
    server: tuple[HttpServer, dict[str, str]], upstream: Upstream
) -> None:
    running, tokens = server

    async def call() -> None:
        async with mcp_over_http(running.url, tokens["alice"]) as client:
            urls = sample_identifiers(upstream.url, "url", 2, offset=300)
            await client.call_tool("enrich_person_by_url", {"professional_network_profile_urls": urls})

    anyio.run(call)
    metrics = scrape(running.base)
    for family in FAMILIES.values():
        parsed = metrics.families.get(family_name(family.name, family.kind))
        assert parsed is not None and parsed.type == family.kind, family.name
        assert parsed.documentation == family.help
    assert metrics.value("person_enrich_credits_charged_total") == float(upstream.billed()) == 2
    assert metrics.value("person_enrich_upstream_latency_seconds_count", endpoint="enrich") == 1
    # The process metrics, from prometheus-client's standard collectors.
    assert (metrics.value("process_resident_memory_bytes") or 0) > 10 * 2**20
    assert (metrics.value("process_cpu_seconds_total") or 0) > 0
    assert (metrics.value("process_open_fds") or 0) > 0
    assert (metrics.value("process_start_time_seconds") or 0) > 1.7e9
    [(python, _)] = metrics.samples("python_info")
    assert python["major"] == "3"
    exported = {f.name for f in metrics.families.values()} | {s.name for f in metrics.families.values() for s in
                                                                f.samples}  # fmt: skip
    assert set(PROCESS_FAMILIES) <= exported


@CURRENT
def test_a_scraper_asking_for_openmetrics_gets_openmetrics(server: tuple[HttpServer, dict[str, str]]) -> None:
    running, _ = server
    answer = httpx2.get(
        f"{running.base}/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"}
    )  # fmt: skip
    assert answer.headers["content-type"].startswith("application/openmetrics-text")
    parse = cast(Callable[[str], Iterable[Metric]], openmetrics.text_string_to_metric_families)  # pyright: ignore[reportUnknownMemberType]
    families = {f.name for f in parse(answer.text)}
    assert "person_enrich_tool_calls" in families and "process_resident_memory_bytes" in families


@CURRENT
@pytest.mark.anyio
async def test_a_tool_name_the_server_does_not_have_is_timed_as_unknown(upstream: Upstream) -> None:
    metrics = Metrics()
    async with Client(build_server(settings_for(upstream.url, upstream.key), metrics=metrics)) as client:
        await client.call_tool("get_budget", {})
        await client.call_tool("delete_everyone_named_bob", {})
    parsed = Scrape.parse(metrics.render())
    assert parsed.value("person_enrich_tool_call_duration_seconds_count", tool="get_budget") == 1
    assert parsed.value("person_enrich_tool_call_duration_seconds_count", tool="unknown") == 1
    assert not [labels for labels, _ in parsed.samples("person_enrich_tool_call_duration_seconds_count") if
                labels["tool"] == "delete_everyone_named_bob"]  # fmt: skip


class _NoSlots:
    """A slot source that never has a free slot within a minute."""

    async def take_slot(self, bucket: str, limit: int, window_seconds: float) -> float:
        return 60.0


@pytest.mark.anyio
async def test_a_request_refused_a_rate_limit_slot_counts_as_throttled_for_its_principal() -> None:
    metrics = Metrics()
    for share, error, limit in ((0.5, ShareRateLimitError, "own"), (1.0, LocalRateLimitError, "shared")):
        limiter = RateLimiter(
            _NoSlots(), limits={"enrich": 10}, window_seconds=60, max_wait=1, bucket_prefix="t", principal_share=share,
            metrics=metrics,
        )  # fmt: skip
        act_for("carol")
        with pytest.raises(error):
            await limiter.acquire("enrich")
        pseudonym = metrics.principal("carol")
        assert metrics.value("person_enrich_principal_throttled_total", principal=pseudonym, endpoint="enrich",
                             limit=limit) == 1  # fmt: skip
    act_for(None)


# --- several worker processes -------------------------------------------------------------------------------------

WORKER = """
import sys
from person_enrich_mcp.metrics import Metrics
metrics = Metrics()
metrics.inc("person_enrich_tool_calls_total", tool="get_budget", outcome="ok")
metrics.inc("person_enrich_credits_charged_total", 1.5)
metrics.observe("person_enrich_upstream_latency_seconds", 0.2, endpoint="enrich")
print("counted", flush=True)
sys.stdin.readline()  # stay alive (a running worker) until told to go
"""


def test_in_multi_process_mode_any_worker_answers_with_the_sum_over_all_workers(tmp_path: Path) -> None:
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(shared), "PATH": "/usr/bin:/bin"}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None and worker.stdout.readline().strip() == "counted"
        merged = Scrape.parse(Metrics(multiprocess_dir=str(shared)).render())
        live = {labels["pid"] for labels, _ in merged.samples("process_resident_memory_bytes")}
    finally:
        for worker in workers:
            worker.communicate("\n", timeout=30)
    assert merged.value("person_enrich_tool_calls_total", tool="get_budget", outcome="ok") == 2
    assert Decimal(str(merged.value("person_enrich_credits_charged_total"))) == Decimal(3)
    assert merged.value("person_enrich_upstream_latency_seconds_count", endpoint="enrich") == 2
    assert {str(w.pid) for w in workers} <= live  # each live worker's own process metrics, by pid
    after = Scrape.parse(Metrics(multiprocess_dir=str(shared)).render())
    assert after.value("person_enrich_tool_calls_total", tool="get_budget", outcome="ok") == 2  # counts outlive them
    assert not {str(w.pid) for w in workers} & {labels["pid"] for labels, _ in after.samples("process_open_fds")}


def test_every_family_a_dashboard_may_name_is_declared_once() -> None:
    assert set(FAMILIES) <= exported_families()
    assert len(exported_families()) == len(FAMILIES) + len(PROCESS_FAMILIES)


@CURRENT
def test_a_multi_process_directory_that_does_not_exist_stops_the_http_server_with_one_sentence(
    upstream: Upstream, tmp_path: Path
) -> None:
    settings = settings_for(
        upstream.url, upstream.key, allow_unauthenticated=True, metrics_multiprocess_dir=str(tmp_path / "missing")
    )
    with pytest.raises(ConfigurationError, match=r"PROMETHEUS_MULTIPROC_DIR=.* is not a directory"):
        build_http_app(settings)
