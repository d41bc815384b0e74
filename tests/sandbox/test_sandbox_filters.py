"""The filter engine against a naive reference: random condition trees must select exactly the same people."""

from __future__ import annotations

import functools
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from person_enrich_mcp.sandbox import generate_dataset
from person_enrich_mcp.sandbox.dataset import Dataset, Person
from person_enrich_mcp.sandbox.filters import FILTER_FIELDS, SearchIndex, compile_filters, parse_date, positions

TEXT_OPS = ("=", "!=", "in", "not_in", "(.)", "(!)", "[.]")
ORDER_OPS = ("=", "!=", "in", "not_in", "<", "=<", ">", "=>")


@functools.cache
def _world() -> tuple[Dataset, SearchIndex, dict[str, list[Any]]]:
    dataset = generate_dataset(11, people=300, companies=30)
    values: dict[str, list[Any]] = {}
    for path, spec in FILTER_FIELDS.items():
        seen: dict[Any, None] = {}
        for person in dataset.searchable:
            for value in spec.extract(person.data):
                seen[value] = None
        values[path] = sorted(seen, key=repr)
    return dataset, SearchIndex(dataset), values


def _leaf_matches(person: Person, leaf: dict[str, Any]) -> bool:
    spec = FILTER_FIELDS[leaf["field"]]
    values = spec.extract(person.data)
    op: str = leaf["type"]
    target: Any = leaf["value"]
    negative = op in ("!=", "not_in", "(!)")
    positive: str = {"!=": "=", "not_in": "in", "(!)": "(.)"}.get(op, op)

    def hit(value: Any) -> bool:
        if spec.kind == "date":
            left: Any = parse_date(value)
            if positive in ("in",):
                return any(left == parse_date(t) for t in target)
            if positive in ("(.)", "[.]"):
                left = value
            else:
                right = parse_date(target)
                return {"=": left == right, "<": left < right, "=<": left <= right, ">": left > right}.get(
                    positive, left >= right
                )
        if spec.kind == "text" or positive in ("(.)", "[.]"):
            text = str(value)
            if positive == "=":
                return text.lower() == str(target).lower()
            if positive == "in":
                return text.lower() in {str(t).lower() for t in target}
            if positive == "[.]":
                return re.search(r"(?<!\w)" + re.escape(target) + r"(?!\w)", text) is not None
            needles = [target.lower()] if op == "(!)" else [t.strip().lower() for t in target.split("|") if t.strip()]
            return any(n in text.lower() for n in needles)
        if positive == "in":
            return value in target
        return {
            "=": value == target,
            "<": value < target,
            "=<": value <= target,
            ">": value > target,
            "=>": value >= target,
        }[positive]

    matched = any(hit(v) for v in values)
    return not matched if negative else matched


def _matches(person: Person, node: dict[str, Any]) -> bool:
    if "op" in node:
        results = [_matches(person, child) for child in node["conditions"]]
        return all(results) if node["op"] == "and" else any(results)
    return _leaf_matches(person, node)


@st.composite
def _leaf(draw: st.DrawFn) -> dict[str, Any]:
    _dataset, _index, values = _world()
    path = draw(st.sampled_from(sorted(FILTER_FIELDS)))
    kind = FILTER_FIELDS[path].kind
    known = values[path]
    ops = TEXT_OPS if kind == "text" else ORDER_OPS if kind in ("number", "date") else ("=", "!=", "in", "not_in")
    op = draw(st.sampled_from(ops))

    def one() -> Any:
        if known and draw(st.booleans()):
            value = draw(st.sampled_from(known))
            if kind == "text" and op in ("=", "in", "!=", "not_in") and draw(st.booleans()):
                return value.upper()
            if kind == "text" and op in ("(.)", "(!)") and len(value) > 3:
                start = draw(st.integers(0, len(value) - 3))
                return value[start : start + draw(st.integers(2, 6))]
            return value
        if kind == "number":
            return draw(st.integers(-5, 40_000))
        if kind == "date":
            return f"{draw(st.integers(1990, 2026))}-{draw(st.integers(1, 12)):02d}-01"
        if kind == "bool":
            return draw(st.booleans())
        return draw(st.sampled_from(["Engineer", "VP", "an", "Head of", "x|y", "Berlin", "e"]))

    if op in ("in", "not_in"):
        value: Any = [one() for _ in range(draw(st.integers(1, 3)))]
    else:
        value = one()
        if op in ("(.)", "(!)", "[.]") and (not isinstance(value, str) or not value.strip()):
            value = "an"
        if op in ("(.)",) and isinstance(value, str) and not any(p.strip() for p in value.split("|")):
            value = "an"
    return {"field": path, "type": op, "value": value}


def _group(op: str, conditions: list[dict[str, Any]]) -> dict[str, Any]:
    return {"op": op, "conditions": conditions}


def _groups(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(_group, st.sampled_from(["and", "or"]), st.lists(children, min_size=1, max_size=4))


_trees: st.SearchStrategy[dict[str, Any]] = st.recursive(_leaf(), _groups, max_leaves=8)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_trees)
def test_index_evaluation_equals_a_naive_scan(tree: dict[str, Any]) -> None:
    dataset, index, _values = _world()
    got = [index.people[i].person_id for i in positions(index.evaluate(compile_filters(tree)))]
    expected = [p.person_id for p in dataset.searchable if _matches(p, tree)]
    assert got == expected


def test_repeated_conditions_are_served_from_the_leaf_cache() -> None:
    _dataset, index, _values = _world()
    tree = compile_filters({"field": "basic_profile.location.country", "type": "=", "value": "Germany"})
    first = index.evaluate(tree)
    assert (
        index.evaluate(compile_filters({"field": "basic_profile.location.country", "type": "=", "value": "germany"}))
        == first
    )
