"""The benchmarks still run: `bench/run --smoke` end to end, and the verdict logic of its table.

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
from bench.report import KEYS, TARGETS, evaluate, table

ROOT = Path(__file__).resolve().parent.parent
SMOKE_TIMEOUT = 600  # generous: the first run also installs the reference server into bench/.venv-ref


def test_each_target_passes_and_fails_on_the_right_side() -> None:
    for target in TARGETS:
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


@pytest.mark.slow
def test_smoke_run_writes_every_figure(tmp_path: Path) -> None:
    output = tmp_path / "figures.json"
    started = time.monotonic()
    done = subprocess.run(
        [str(ROOT / "bench" / "run"), "--smoke", "--json", str(output)],
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-4000:]
    figures = cast(dict[str, Any], json.loads(output.read_text()))
    assert figures["mode"] == "smoke"
    assert figures["tracing_otlp_exports"] > 0  # tracing was really on in its "on" server
    for key in KEYS:
        assert isinstance(figures.get(key), int | float) and math.isfinite(figures[key]), (key, figures.get(key))
    numeric = {k: float(v) for k, v in figures.items() if k != "mode"}
    met = sum(1 for v in evaluate(numeric) if v.passed)
    assert figures["targets_total"] == len(KEYS) and figures["targets_met"] == met
    for verdict in evaluate(numeric):  # the printed table agrees with the JSON
        assert verdict.target.key in done.stdout
    print(f"smoke run: {elapsed:.1f} s, {met}/{len(KEYS)} targets met")
