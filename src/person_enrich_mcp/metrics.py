"""Process metrics in the Prometheus text format (served at `/metrics` over HTTP).

A few counters and one histogram do not justify a dependency: this is the exposition format's small
subset we need, with labels escaped as the format requires. Each replica exposes its own numbers;
Prometheus sums them.

Per-principal families carry a `principal` label: a pseudonym (the same on every replica) unless the operator
opts in to names. The pseudonym keeps names out of a scrape, not from someone who can guess them.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Family:
    """One metric family: name, type and help text."""

    name: str
    kind: str
    help: str


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("person_enrich_tool_calls_total", "counter", "Tool calls that finished, by tool and outcome."),
        Family("person_enrich_credits_reserved_total", "counter", "Credits reserved before upstream calls."),
        Family("person_enrich_credits_charged_total", "counter", "Credits the upstream billed, as settled."),
        Family("person_enrich_credits_unverified_total", "counter", "Credits held for calls of unknown outcome."),
        Family("person_enrich_budget_refusals_total", "counter", "Calls refused before spending, by reason."),
        Family("person_enrich_cache_hits_total", "counter", "Look-ups answered from the profile cache."),
        Family("person_enrich_upstream_requests_total", "counter", "Upstream HTTP requests by endpoint and status."),
        Family("person_enrich_upstream_latency_seconds", "histogram", "Upstream request latency by endpoint."),
        Family("person_enrich_rate_limit_waits_total", "counter", "Waits for a client-side rate-limit slot."),
        Family("person_enrich_rate_limit_wait_seconds_total", "counter", "Seconds spent waiting for rate-limit slots."),
        Family(
            "person_enrich_principal_credits_charged_total", "counter", "Credits the upstream billed, by principal."
        ),
        Family("person_enrich_principal_refusals_total", "counter", "Calls refused by a budget, by principal."),
        Family(
            "person_enrich_principal_upstream_requests_total",
            "counter",
            "Upstream requests (paid or free), by principal and endpoint.",
        ),
        Family(
            "person_enrich_principal_rate_limit_waits_total",
            "counter",
            "Waits for a rate-limit slot, by principal, endpoint and limit: own (the principal's share) or shared.",
        ),
        Family(
            "person_enrich_principal_rate_limit_wait_seconds_total",
            "counter",
            "Seconds spent waiting for rate-limit slots, by principal and endpoint.",
        ),
        Family("person_enrich_sessions_refused_total", "counter", "Legacy sessions refused by the per-principal cap."),
    )
}
PSEUDONYM_PREFIX = "p-"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _render_labels(labels: Labels, extra: tuple[tuple[str, str], ...] = ()) -> str:
    pairs = (*labels, *extra)
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"


def _number(value: float) -> str:
    return repr(float(value)) if value != int(value) else str(int(value))


class Metrics:
    """Counters and histograms keyed by family and labels; safe to use from any thread."""

    def __init__(self, *, principal_names: bool = False) -> None:
        self._principal_names = principal_names
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, Labels], float] = {}
        self._histograms: dict[tuple[str, Labels], list[float]] = {}  # bucket counts..., sum, count

    def principal(self, name: str) -> str:
        """The `principal` label for a principal: its name when the operator opted in, else a stable pseudonym."""
        if self._principal_names:
            return name
        return PSEUDONYM_PREFIX + hashlib.sha256(f"person-enrich-mcp principal {name}".encode()).hexdigest()[:12]

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        """Add to a counter."""
        if name not in FAMILIES:
            raise KeyError(f"unknown metric {name}")
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self._counters[key] = self._counters.get(key, 0.0) + amount

    def observe(self, name: str, value: float, **labels: str) -> None:
        """Record one observation in a histogram."""
        if name not in FAMILIES:
            raise KeyError(f"unknown metric {name}")
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            state = self._histograms.get(key)
            if state is None:
                state = self._histograms[key] = [0.0] * (len(LATENCY_BUCKETS) + 2)
            for index, bound in enumerate(LATENCY_BUCKETS):
                if value <= bound:
                    state[index] += 1
            state[-2] += value
            state[-1] += 1

    def value(self, name: str, **labels: str) -> float:
        """A counter's current value (0 if never incremented); for tests and benchmarks."""
        with self._lock:
            return self._counters.get((name, tuple(sorted(labels.items()))), 0.0)

    def render(self) -> str:
        """Everything in the Prometheus text exposition format (version 0.0.4)."""
        with self._lock:
            counters = dict(self._counters)
            histograms = {k: list(v) for k, v in self._histograms.items()}
        lines: list[str] = []
        for family in FAMILIES.values():
            lines.append(f"# HELP {family.name} {family.help}")
            lines.append(f"# TYPE {family.name} {family.kind}")
            if family.kind == "counter":
                for (name, labels), value in sorted(counters.items()):
                    if name == family.name:
                        lines.append(f"{name}{_render_labels(labels)} {_number(value)}")
                continue
            for (name, labels), state in sorted(histograms.items()):
                if name != family.name:
                    continue
                for index, bound in enumerate(LATENCY_BUCKETS):
                    lines.append(
                        f"{name}_bucket{_render_labels(labels, (('le', str(bound)),))} {_number(state[index])}"
                    )
                lines.append(f"{name}_bucket{_render_labels(labels, (('le', '+Inf'),))} {_number(state[-1])}")
                lines.append(f"{name}_sum{_render_labels(labels)} {_number(state[-2])}")
                lines.append(f"{name}_count{_render_labels(labels)} {_number(state[-1])}")
        return "\n".join(lines) + "\n"
