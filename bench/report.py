"""The targets of the issue, the pass/fail verdict of each, and the printed table."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Op = Literal["<=", "<", ">=", "=="]


@dataclass(frozen=True, slots=True)
class Target:
    """One headline figure and the value it must reach."""

    key: str
    label: str
    op: Op
    threshold: float

    def met(self, value: float) -> bool:
        """True when `value` reaches the target (a NaN never does)."""
        if math.isnan(value):
            return False
        if self.op == "<=":
            return value <= self.threshold + 1e-9
        if self.op == "<":
            return value < self.threshold
        if self.op == ">=":
            return value >= self.threshold - 1e-9
        return abs(value - self.threshold) <= 1e-9

    @property
    def text(self) -> str:
        return f"{self.op} {self.threshold:g}"


TARGETS: tuple[Target, ...] = (
    Target("context_default_ratio", "context: default result / raw full-profile answer (bytes)", "<=", 0.10),
    Target("context_selection_ratio", "context: selection / minimal JSON of its values (bytes)", "<=", 1.10),
    Target("tools_list_bytes", "context: tools/list answer (bytes)", "<", 4800),
    Target("latency_ratio_vs_passthrough_1", "latency: ours / pass-through, median, 1 identifier", "<=", 1.0),
    Target("latency_ratio_vs_passthrough_25", "latency: ours / pass-through, median, 25 identifiers", "<=", 1.0),
    Target("latency_ratio_vs_passthrough_p95_1", "latency: ours / pass-through, p95, 1 identifier", "<=", 1.0),
    Target("latency_ratio_vs_passthrough_p95_25", "latency: ours / pass-through, p95, 25 identifiers", "<=", 1.0),
    Target("result_bytes_ratio_vs_passthrough", "context: ours / pass-through, same information (bytes)", "<=", 0.10),
    Target("throughput_ratio", "throughput: admitted / sliding-window bound (worst scenario)", ">=", 0.95),
    Target("upstream_429s", "throughput: upstream 429s (all scenarios)", "==", 0),
    Target("credits_ratio", "credits: charged / minimum possible", "<=", 1.00),
    Target("cold_start_ratio_vs_reference", "cold start: ours / mcp-server-fetch (median)", "<=", 1.00),
    Target("rss_growth_ratio", "footprint: RSS after all calls / after warm-up", "<=", 1.10),
)
# `bench/run --http` (docs/benchmarks.md says why each threshold is where it is).
HTTP_TARGETS: tuple[Target, ...] = (
    Target("http_calls_per_second_hit", "http: calls/s, one replica, cache hits", ">=", 100),
    Target("http_calls_per_second_miss", "http: calls/s, one replica, cache misses", ">=", 50),
    Target("http_p50_ms_50_sessions", "http: p50 ms, 50 sessions at half the hit capacity", "<=", 25),
    Target("http_p99_ms_200_sessions", "http: p99 ms, 200 sessions at half the hit capacity", "<=", 150),
    Target("http_rss_kb_per_session", "http: RSS per idle legacy session (KiB, 1,000 open)", "<=", 64),
    Target("store_round_trips_per_call", "http: state-store round trips per call (miss, 1 URL)", "<=", 8),
    Target("http_scaling_efficiency_3", "http: calls/s of 3 replicas / 3 x one (upstream-bound)", ">=", 0.9),
)
KEYS: tuple[str, ...] = tuple(t.key for t in TARGETS)
HTTP_KEYS: tuple[str, ...] = tuple(t.key for t in HTTP_TARGETS)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A target and how the run did against it (`value` is None when the benchmark did not run)."""

    target: Target
    value: float | None

    @property
    def passed(self) -> bool | None:
        return None if self.value is None else self.target.met(self.value)


def evaluate(figures: dict[str, float], *, http: bool = False) -> list[Verdict]:
    """Every target of the run (`--http` or not) with this run's value and verdict."""
    return [Verdict(t, figures.get(t.key)) for t in (HTTP_TARGETS if http else TARGETS)]


def _number(value: float) -> str:
    if float(value).is_integer() and abs(value) >= 100:
        return f"{int(value):,}"
    return f"{value:.3f}" if abs(value) < 10 else f"{value:,.1f}"


def table(figures: dict[str, float], *, http: bool = False) -> str:
    """The headline figures with targets and verdicts, then every other figure."""
    verdicts = evaluate(figures, http=http)
    rows = [("figure", "key", "value", "target", "result")]
    for v in verdicts:
        result = "not run" if v.passed is None else "PASS" if v.passed else "FAIL"
        rows.append((v.target.label, v.target.key, "-" if v.value is None else _number(v.value), v.target.text, result))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    extras = sorted(k for k in figures if k not in (HTTP_KEYS if http else KEYS))
    if extras:
        width = max(len(k) for k in extras)
        lines.append("")
        lines.append("other figures")
        lines.extend(f"  {k.ljust(width)}  {_number(figures[k])}" for k in extras)
    return "\n".join(lines)
