"""The benchmarks still run: `bench/run --smoke` and `bench/run --http --smoke` end to end, and the verdict logic
of their tables.

The smoke run checks that every benchmark produces every figure, not what the figures are (sizes are tiny and
the machine is shared); `bench/run` without `--smoke` is for measuring (see docs/benchmarks.md).
"""

from __future__ import annotations

import json
import math
import subprocess
import time
from pathlib import Path
from typing import Any, cast

import pytest
from bench.report import HTTP_KEYS, HTTP_TARGETS, KEYS, TARGETS, evaluate, table

ROOT = Path(__file__).resolve().parent.parent
SMOKE_TIMEOUT = 600  # generous: the first run also installs the reference server into bench/.venv-ref


def test_each_target_passes_and_fails_on_the_right_side() -> None:
    for target in TARGETS + HTTP_TARGETS:
        good = target.threshold
        if target.op == "<":
            good = target.threshold - 0.001
        bad = {"<=": target.threshold + 0.01, "<": target.threshold, ">=": target.threshold - 0.01}.get(
            target.op, target.threshold + 1
        )
        assert target.met(good), (target.key, good)
        assert not target.met(bad), (target.key, bad)
        assert not target.met(math.nan), target.key


def test_the_table_shows_every_verdict_and_marks_what_did_not_run() -> None:
    figures = {"context_default_ratio": 0.05, "context_selection_ratio": 1.5, "extra_figure": 3.0}
    verdicts = {v.target.key: v.passed for v in evaluate(figures)}
    assert verdicts["context_default_ratio"] is True
    assert verdicts["context_selection_ratio"] is False
    assert verdicts["tools_list_bytes"] is None
    text = table(figures)
    assert "PASS" in text and "FAIL" in text and "not run" in text and "extra_figure" in text


def test_the_http_table_judges_the_http_figures_only() -> None:
    figures = {"http_scaling_efficiency_3": 0.95, "store_round_trips_per_call": 20.0, "context_default_ratio": 0.05}
    verdicts = {v.target.key: v.passed for v in evaluate(figures, http=True)}
    assert set(verdicts) == set(HTTP_KEYS)
    assert verdicts["http_scaling_efficiency_3"] is True and verdicts["store_round_trips_per_call"] is False
    assert "context_default_ratio" in table(figures, http=True).split("other figures")[1]


def _smoke(tmp_path: Path, *flags: str) -> tuple[dict[str, Any], str]:
    output = tmp_path / "figures.json"
    done = subprocess.run(
        [str(ROOT / "bench" / "run"), "--smoke", *flags, "--json", str(output)],
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return cast(dict[str, Any], json.loads(output.read_text())), done.stdout


def _check_figures(figures: dict[str, Any], stdout: str, keys: tuple[str, ...], *, http: bool) -> int:
    for key in keys:
        assert isinstance(figures.get(key), int | float) and math.isfinite(figures[key]), (key, figures.get(key))
    numeric = {k: float(v) for k, v in figures.items() if k != "mode"}
    met = sum(1 for v in evaluate(numeric, http=http) if v.passed)
    assert figures["targets_total"] == len(keys) and figures["targets_met"] == met
    for verdict in evaluate(numeric, http=http):  # the printed table agrees with the JSON
        assert verdict.target.key in stdout
    return met


@pytest.mark.slow
def test_smoke_run_writes_every_figure(tmp_path: Path) -> None:
    started = time.monotonic()
    figures, stdout = _smoke(tmp_path)
    assert figures["mode"] == "smoke"
    assert figures["tracing_otlp_exports"] > 0  # tracing was really on in its "on" server
    met = _check_figures(figures, stdout, KEYS, http=False)
    for key in ("server_cpu_ms_per_call_25", "passthrough_cpu_ms_per_call_25", "load_avg_overhead"):
        assert figures[key] >= 0, key
    print(f"smoke run: {time.monotonic() - started:.1f} s, {met}/{len(KEYS)} targets met")


@pytest.mark.slow
def test_http_smoke_run_writes_every_figure(tmp_path: Path) -> None:
    started = time.monotonic()
    figures, stdout = _smoke(tmp_path, "--http")
    assert figures["mode"] == "http-smoke"
    met = _check_figures(figures, stdout, HTTP_KEYS, http=True)
    # Every call of the benchmark succeeded, and each cost the store something: a miss more than a hit.
    assert figures["store_round_trips_per_call"] > figures["store_round_trips_per_call_hit"] > 0
    print(f"http smoke run: {time.monotonic() - started:.1f} s, {met}/{len(HTTP_KEYS)} targets met")
