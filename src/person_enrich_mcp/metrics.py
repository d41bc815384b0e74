"""The server's Prometheus metrics (served at `/metrics` over HTTP), through `prometheus-client`.

Every family is declared once in `FAMILIES` with its labels; the code counts through `Metrics.inc` and
`Metrics.observe`, and `/metrics` renders them with the process metrics (`process_*`, `python_*`) in the format
the scraper asks for (Prometheus text, or OpenMetrics). Each replica exposes its own numbers; Prometheus sums them.

Per-principal families carry a `principal` label: a pseudonym (the same on every replica) unless the operator
opts in to names. The pseudonym keeps names out of a scrape, not from someone who can guess them.

Several worker processes behind one port: set `PROMETHEUS_MULTIPROC_DIR` (prometheus-client's own variable) to an
empty directory before the workers start. Every worker then writes its counters to files there, any worker's
`/metrics` answers with the sum over all of them, and the process metrics come per worker, labelled `pid`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

# A `_created` series per counter doubles the exposition and no dashboard reads it.
disable_created_metrics()

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# A tool call can wait for rate-limit slots and run several upstream requests: its buckets reach further.
TOOL_CALL_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
PSEUDONYM_PREFIX = "p-"


@dataclass(frozen=True, slots=True)
class Family:
    """One metric family: name, type, help text and label names."""

    name: str
    kind: str
    help: str
    labels: tuple[str, ...] = ()


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            "person_enrich_tool_calls_total",
            "counter",
            "Tool calls that finished, by tool and outcome.",
            ("tool", "outcome"),
        ),
        Family(
            "person_enrich_tool_call_duration_seconds", "histogram", "Time to answer a tool call, by tool.", ("tool",)
        ),
        Family("person_enrich_credits_reserved_total", "counter", "Credits reserved before upstream calls."),
        Family("person_enrich_credits_charged_total", "counter", "Credits the upstream billed, as settled."),
        Family("person_enrich_credits_unverified_total", "counter", "Credits held for calls of unknown outcome."),
        Family(
            "person_enrich_budget_refusals_total", "counter", "Calls refused before spending, by reason.", ("reason",)
        ),
        Family("person_enrich_cache_hits_total", "counter", "Look-ups answered from the profile cache."),
        Family(
            "person_enrich_upstream_requests_total",
            "counter",
            "Upstream HTTP requests by endpoint and status.",
            ("endpoint", "status"),
        ),
        Family(
            "person_enrich_upstream_latency_seconds",
            "histogram",
            "Upstream request latency by endpoint.",
            ("endpoint",),
        ),
        Family(
            "person_enrich_upstream_credits_total",
            "counter",
            "Credits the upstream reported in x-credits-used, by endpoint.",
            ("endpoint",),
        ),
        Family(
            "person_enrich_rate_limit_waits_total", "counter", "Waits for a client-side rate-limit slot.", ("endpoint",)
        ),
        Family(
            "person_enrich_rate_limit_wait_seconds_total",
            "counter",
            "Seconds spent waiting for rate-limit slots.",
            ("endpoint",),
        ),
        Family(
            "person_enrich_principal_credits_charged_total",
            "counter",
            "Credits the upstream billed, by principal.",
            ("principal",),
        ),
        Family(
            "person_enrich_principal_refusals_total",
            "counter",
            "Calls refused by a budget, by principal.",
            ("principal",),
        ),
        Family(
            "person_enrich_principal_upstream_requests_total",
            "counter",
            "Upstream requests (paid or free), by principal and endpoint.",
            ("principal", "endpoint"),
        ),
        Family(
            "person_enrich_principal_rate_limit_waits_total",
            "counter",
            "Waits for a rate-limit slot, by principal, endpoint and limit: own (the principal's share) or shared.",
            ("principal", "endpoint", "limit"),
        ),
        Family(
            "person_enrich_principal_rate_limit_wait_seconds_total",
            "counter",
            "Seconds spent waiting for rate-limit slots, by principal and endpoint.",
            ("principal", "endpoint"),
        ),
        Family(
            "person_enrich_principal_throttled_total",
            "counter",
            "Upstream requests refused by the client-side rate limit (no slot within the longest wait), by principal, "
            "endpoint and limit: own (the principal's share) or shared.",
            ("principal", "endpoint", "limit"),
        ),
        Family(
            "person_enrich_sessions_refused_total",
            "counter",
            "Legacy sessions refused by the per-principal cap.",
            ("principal",),
        ),
    )
}

# Process metrics the server exports next to its own (prometheus-client's standard collectors).
PROCESS_FAMILIES = (
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
    "python_info",
    "python_gc_collections_total",
)


def exported_families() -> frozenset[str]:
    """Every metric family name `/metrics` can carry (ours and the process metrics), as a query names it."""
    return frozenset(FAMILIES) | frozenset(PROCESS_FAMILIES)


class _WorkerProcesses(Collector):
    """The process metrics of every live worker writing to a multi-process directory, labelled `pid`.

    Workers share one machine, so the answering worker reads each one's /proc entry; a worker that has exited
    has none and drops out.
    """

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def _pids(self) -> list[int]:
        pids: set[int] = {os.getpid()}
        for path in self._directory.glob("*.db"):
            tail = path.stem.rsplit("_", 1)[-1]
            if tail.isdigit() and Path(f"/proc/{tail}").exists():
                pids.add(int(tail))
        return sorted(pids)

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for pid in self._pids():
            for family in ProcessCollector(pid=lambda pid=pid: pid, registry=None).collect():
                into = merged.setdefault(family.name, Metric(family.name, family.documentation, family.type))
                into.samples.extend(
                    Sample(s.name, {**s.labels, "pid": str(pid)}, s.value, s.timestamp, s.exemplar)
                    for s in family.samples
                )
        yield from merged.values()


class _Own(Collector):
    """The server's own families, as one collector of the exposed registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Metric]:
        return self._registry.collect()


class Metrics:
    """The server's counters and histograms; safe to use from any thread (and, in multi-process mode, any worker)."""

    def __init__(self, *, principal_names: bool = False, multiprocess_dir: str | None = None) -> None:
        self._principal_names = principal_names
        self._registry = CollectorRegistry(auto_describe=True)
        self._metrics: dict[str, Counter | Histogram] = {}
        for family in FAMILIES.values():
            if family.kind == "counter":
                self._metrics[family.name] = Counter(family.name, family.help, family.labels, registry=self._registry)
            else:
                buckets = TOOL_CALL_BUCKETS if "tool_call" in family.name else LATENCY_BUCKETS
                self._metrics[family.name] = Histogram(
                    family.name, family.help, family.labels, registry=self._registry, buckets=buckets
                )
        self._exposed = CollectorRegistry()
        if multiprocess_dir is not None:
            MultiProcessCollector(self._exposed, multiprocess_dir)
            self._exposed.register(_WorkerProcesses(Path(multiprocess_dir)))
        else:
            self._exposed.register(_Own(self._registry))
            self._exposed.register(ProcessCollector(registry=None))
            self._exposed.register(GC_COLLECTOR)
        self._exposed.register(PLATFORM_COLLECTOR)

    def principal(self, name: str) -> str:
        """The `principal` label for a principal: its name when the operator opted in, else a stable pseudonym."""
        if self._principal_names:
            return name
        return PSEUDONYM_PREFIX + hashlib.sha256(f"person-enrich-mcp principal {name}".encode()).hexdigest()[:12]

    def _family(self, name: str, **labels: str) -> Counter | Histogram:
        metric = self._metrics.get(name)
        if metric is None:
            raise KeyError(f"unknown metric {name}")
        return metric.labels(**labels) if labels else metric

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        """Add to a counter."""
        metric = self._family(name, **labels)
        assert isinstance(metric, Counter), name
        metric.inc(amount)

    def observe(self, name: str, value: float, **labels: str) -> None:
        """Record one observation in a histogram."""
        metric = self._family(name, **labels)
        assert isinstance(metric, Histogram), name
        metric.observe(value)

    def value(self, name: str, **labels: str) -> float:
        """A counter's current value in this process (0 if never incremented); for tests and benchmarks."""
        if name not in self._metrics:
            raise KeyError(f"unknown metric {name}")
        found = self._registry.get_sample_value(name, labels)
        return 0.0 if found is None else found

    def render(self) -> str:
        """Everything, the process metrics included, in the Prometheus text exposition format (version 0.0.4)."""
        body, _ = self.exposition(None)
        return body.decode()

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The scrape body and its content type, in the format an `Accept` header asks for (text by default)."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self._exposed), content_type
