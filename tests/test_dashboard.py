"""The Grafana dashboard (`manifests/grafana/person-enrich-mcp.json`) can only chart what the server exports: every
query names a metric family `/metrics` carries, with labels that family has."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from person_enrich_mcp.metrics import FAMILIES, exported_families

DASHBOARD = Path(__file__).resolve().parent.parent / "manifests" / "grafana" / "person-enrich-mcp.json"
# A metric name in a query: our families and the process metrics.
METRIC = re.compile(r"\b((?:person_enrich|process|python)_[a-z_]+)\b")
# A selector's label matchers: `name{label="v", other!~"..."}`.
SELECTOR = re.compile(r"\b((?:person_enrich|process|python)_[a-z_]+)\{([^}]*)\}")
MATCHER = re.compile(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
# `sum by (a, b)`: the labels a query groups by.
GROUPING = re.compile(r"\bby\s*\(([^)]*)\)")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
# Labels Prometheus adds at scrape time, and those of the process metrics in multi-process mode.
TARGET_LABELS = {"instance", "job", "pid"}


def _panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in items:
        yield item
        yield from _panels(cast(list[dict[str, Any]], item.get("panels", [])))


def _dashboard() -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(DASHBOARD.read_text(encoding="utf-8")))


def _queries() -> list[tuple[str, str]]:
    """(panel title, query) for every query of every panel."""
    return [
        (panel["title"], target["expr"])
        for panel in _panels(_dashboard()["panels"])
        for target in cast(list[dict[str, Any]], panel.get("targets", []))
    ]


def family_of(name: str) -> str:
    """The family a sample name belongs to (a histogram's `_bucket`, `_sum`, `_count` are its own)."""
    if name in exported_families():
        return name
    for suffix in HISTOGRAM_SUFFIXES:
        base = name.removesuffix(suffix)
        if base != name and base in FAMILIES and FAMILIES[base].kind == "histogram":
            return base
    return name


def test_the_dashboard_is_a_grafana_dashboard_with_a_prometheus_datasource_variable() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] and dashboard["title"] and isinstance(dashboard["schemaVersion"], int)
    [variable] = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"
    charts = [p for p in _panels(dashboard["panels"]) if p["type"] != "row"]
    assert charts and all(p.get("targets") for p in charts)
    assert all(p["datasource"]["uid"] == "${" + variable["name"] + "}" for p in charts)


def test_the_dashboard_charts_spend_refusals_latency_and_upstream_errors() -> None:
    named = {family_of(m) for _, query in _queries() for m in METRIC.findall(query)}
    for family in (
        "person_enrich_credits_charged_total",  # spend
        "person_enrich_principal_credits_charged_total",
        "person_enrich_budget_refusals_total",  # refusals
        "person_enrich_principal_throttled_total",
        "person_enrich_tool_call_duration_seconds",  # latency
        "person_enrich_upstream_latency_seconds",
        "person_enrich_upstream_requests_total",  # upstream errors
    ):
        assert family in named, family


@pytest.mark.parametrize(("panel", "query"), _queries())
def test_every_query_names_a_metric_the_server_exports_with_labels_it_has(panel: str, query: str) -> None:
    names = METRIC.findall(query)
    assert names, f"{panel}: no metric in {query}"
    for name in names:
        assert family_of(name) in exported_families(), f"{panel}: {name} is not exported"
    families = [FAMILIES[f] for f in map(family_of, names) if f in FAMILIES]
    allowed = set(TARGET_LABELS) | {label for family in families for label in family.labels}
    if any(family.kind == "histogram" for family in families):
        allowed.add("le")
    for name, matchers in SELECTOR.findall(query):
        family = FAMILIES.get(family_of(name))
        own = set(family.labels) if family is not None else set(TARGET_LABELS)
        assert set(MATCHER.findall(matchers)) <= own | TARGET_LABELS, f"{panel}: {name}{{{matchers}}}"
    for grouping in GROUPING.findall(query):
        labels = {label.strip() for label in grouping.split(",") if label.strip()}
        assert labels <= allowed, f"{panel}: grouped by {labels - allowed}"
