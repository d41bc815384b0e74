"""Person Search filters and sorts: their published shape, and the checks that catch mistakes for free.

Everything here runs before anything is reserved or sent. A filter or sort field the upstream does not know gets
the nearest valid names; the usual operator spellings (`>=`, `contains`, `AND`) are read as the API's own and the
result says so; values that would silently match no one (a country name in an ISO-3 column, a code in a
country-name column, "VP" for a seniority level) are refused with the value to use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, cast

from pydantic import BaseModel, ConfigDict, Field

from person_enrich_mcp.api.contract import ISO3_COLUMNS, OPERATORS, PERSON_FILTER_FIELDS, PERSON_SORTABLE_FIELDS
from person_enrich_mcp.errors import InputError
from person_enrich_mcp.search_fields import (
    CLOSED_VALUE_ALIASES,
    CLOSED_VALUES,
    COUNTRY_NAME_COLUMNS,
    SEARCH_FIELDS_RESOURCE_URI,
    SEARCH_OPERATORS,
    country,
    nearest,
    synonym,
)

MAX_FILTER_DEPTH = 6
MAX_CONDITIONS = 100
MAX_VALUES = 500
MAX_VALUE_CHARS = 500
MAX_TOTAL_VALUES = 2_000
MAX_SORTS = 5
MAX_PROBLEMS_SHOWN = 5
_FIX = " Nothing was sent or spent; fix the filter and call again."
_EXACT = frozenset({"=", "!=", "in", "not_in"})
# Alternative spellings the index holds as values too (the reference: both forms of the United States exist).
_ALSO_INDEXED = frozenset({"united states of america"})

# Spellings models reach for, and the operator the API spells them as (keys are lower case).
OPERATOR_ALIASES: dict[str, str] = {
    ">=": "=>",
    "<=": "=<",
    "==": "=",
    "eq": "=",
    "equals": "=",
    "is": "=",
    "<>": "!=",
    "ne": "!=",
    "not_equals": "!=",
    "gt": ">",
    "lt": "<",
    "gte": "=>",
    "lte": "=<",
    "contains": "(.)",
    "like": "(.)",
    "ilike": "(.)",
    "includes": "(.)",
    "not_contains": "(!)",
    "not contains": "(!)",
    "does_not_contain": "(!)",
    "not_like": "(!)",
    "not in": "not_in",
    "nin": "not_in",
    "notin": "not_in",
    "one_of": "in",
    "phrase": "[.]",
}
COMBINATOR_ALIASES: dict[str, str] = {"&&": "and", "&": "and", "||": "or", "|": "or"}


class Filter(BaseModel):
    """A filter node: a leaf {field, type, value} or a group {op, conditions} of nested nodes.

    One model for both keeps the published schema small; `check_filters` enforces that each node is
    exactly one of the two shapes, and reads the usual operator spellings as the API's own.
    """

    model_config = ConfigDict(extra="forbid")

    field: Annotated[str | None, Field(max_length=200)] = None
    type: Annotated[
        str | None,
        Field(max_length=40, description="= != < =< > => in not_in (.) (!) [.]"),
    ] = None
    # A scalar, or an array of scalars for in/not_in; `check_filters` enforces which, with a clear message.
    value: Annotated[Any, Field(json_schema_extra={"type": ["string", "number", "boolean", "array"]})] = None
    op: Annotated[str | None, Field(max_length=10)] = None  # and | or
    conditions: list[Filter] | None = None

    def as_upstream(self) -> dict[str, Any]:
        """The node as the upstream expects it: only the keys of its shape."""
        if self.conditions is not None:
            return {"op": self.op, "conditions": [c.as_upstream() for c in self.conditions]}
        return {"field": self.field, "type": self.type, "value": self.value}


def filter_strings(node: Filter) -> list[str]:
    """Every string value in a filter tree, `|` alternatives split apart (to check against the opt-out list)."""
    if node.conditions is not None:
        return [text for child in node.conditions for text in filter_strings(child)]
    value: Any = node.value
    items = cast(list[Any], value) if isinstance(value, list) else [value]
    return [part.strip() for item in items if isinstance(item, str) for part in item.split("|")]


class Sort(BaseModel):
    """One sort key."""

    model_config = ConfigDict(extra="forbid")

    field: Annotated[str, Field(min_length=1, max_length=200)]
    order: Annotated[str, Field(max_length=10, description="asc | desc")] = "asc"


@dataclass(slots=True)
class _Check:
    """What a walk over the filter tree found: counts, readings of operator spellings, and value problems."""

    leaves: int = 0
    values: int = 0
    notes: dict[str, None] = field(default_factory=dict[str, None])
    unknown_fields: dict[str, None] = field(default_factory=dict[str, None])
    problems: list[str] = field(default_factory=list[str])


def check_filters(node: Filter) -> tuple[Filter, list[str]]:
    """The filter as the upstream will get it (operator spellings read as the API's), and notes on each reading.

    Raises:
        InputError: naming every problem found and the fix (nothing is sent or spent).
    """
    check = _Check()
    normalised = _check_node(node, 1, check)
    if check.leaves > MAX_CONDITIONS:
        raise InputError(f"More than {MAX_CONDITIONS} filter conditions; combine them with 'in' lists.{_FIX}")
    if check.values > MAX_TOTAL_VALUES:
        raise InputError(f"More than {MAX_TOTAL_VALUES} filter values in all; narrow the lists.{_FIX}")
    problems = [_unknown_fields(list(check.unknown_fields))] if check.unknown_fields else []
    problems.extend(check.problems)
    if problems:
        shown = problems[:MAX_PROBLEMS_SHOWN]
        more = f" ({len(problems) - len(shown)} more problems not shown.)" if len(problems) > len(shown) else ""
        raise InputError(" ".join(shown) + more + _FIX)
    return normalised, list(check.notes)


def _unknown_fields(names: list[str]) -> str:
    hints: list[str] = []
    for name in names[:MAX_PROBLEMS_SHOWN]:
        close = nearest(name, PERSON_FILTER_FIELDS)
        hints.append(f"{name[:80]!r}" + (f" (nearest: {', '.join(close)})" if close else ""))
    return (
        f"Unknown filter field{'s' if len(names) > 1 else ''}: {'; '.join(hints)}. Filter names differ from the "
        "names results use (filter the employer on experience.employment_details.current.company_name, results show "
        f".current.name); every filterable field, with its meaning, is in the resource {SEARCH_FIELDS_RESOURCE_URI}."
    )


def _check_node(node: Filter, depth: int, check: _Check) -> Filter:
    if depth > MAX_FILTER_DEPTH:
        raise InputError(f"Filters nest deeper than {MAX_FILTER_DEPTH} levels; flatten them.{_FIX}")
    is_group = node.op is not None or node.conditions is not None
    is_leaf = node.field is not None or node.type is not None or node.value is not None
    if is_group == is_leaf:
        raise InputError(
            "Each filter is either a leaf {field, type, value} or a group {op: and|or, conditions: [...]}, "
            f"not both or neither.{_FIX}"
        )
    if is_group:
        return _check_group(node, depth, check)
    return _check_leaf(node, check)


def _check_group(node: Filter, depth: int, check: _Check) -> Filter:
    op = _combinator(node.op, check)
    if not node.conditions:
        raise InputError(f"A filter group needs op (and|or) and at least one condition.{_FIX}")
    children: list[Filter] = []
    for child in node.conditions:
        children.append(_check_node(child, depth + 1, check))
        if check.leaves > MAX_CONDITIONS:  # stop early: thousands of conditions must not cost thousands of checks
            break
    return Filter(op=op, conditions=children)


def _combinator(op: str | None, check: _Check) -> str:
    if op is None:
        raise InputError(f"A filter group needs op (and|or) and at least one condition.{_FIX}")
    spelled = op.strip().lower()
    combinator = COMBINATOR_ALIASES.get(spelled, spelled)
    if combinator not in ("and", "or"):
        raise InputError(f"A filter group's op is 'and' or 'or', not {op[:20]!r}.{_FIX}")
    if combinator != op:
        check.notes[f"op {op!r} was read as {combinator!r}."] = None
    return combinator


def _operator(node: Filter, check: _Check) -> str:
    raw = cast(str, node.type)
    spelled = raw.strip()
    operator = spelled if spelled in SEARCH_OPERATORS else OPERATOR_ALIASES.get(spelled.lower(), spelled.lower())
    if operator not in SEARCH_OPERATORS:
        listed = "; ".join(f"{op} {OPERATORS[op]}" for op in SEARCH_OPERATORS)
        raise InputError(f"Filter on {node.field!r}: unknown type {raw[:20]!r}. Operators: {listed}.{_FIX}")
    if operator != raw:
        meaning = OPERATORS[operator].split(" (", 1)[0]
        check.notes[f"type {raw!r} was read as {operator!r} ({meaning}), the API's spelling."] = None
    return operator


def _check_leaf(node: Filter, check: _Check) -> Filter:
    if not node.field or node.type is None or node.value is None:
        raise InputError(f"A filter leaf needs field, type and value.{_FIX}")
    name = node.field.strip()
    operator = _operator(node, check)
    value: Any = node.value
    items = cast(list[Any], value) if isinstance(value, list) else [value]
    if isinstance(value, list):
        if operator not in ("in", "not_in"):
            raise InputError(f"Filter on {name!r}: '{operator}' takes one value; use 'in' for a list.{_FIX}")
        if not items or len(items) > MAX_VALUES or not all(isinstance(v, str | int | float | bool) for v in items):
            raise InputError(
                f"Filter on {name!r}: '{operator}' needs an array of 1 to {MAX_VALUES} strings or numbers.{_FIX}"
            )
    elif operator in ("in", "not_in"):
        raise InputError(f'Filter on {name!r}: \'{operator}\' needs an array value, e.g. ["a", "b"].{_FIX}')
    elif not isinstance(value, str | int | float | bool):
        raise InputError(f"Filter on {name!r}: value must be a string, number or boolean.{_FIX}")
    if any(isinstance(v, str) and len(v) > MAX_VALUE_CHARS for v in items):
        raise InputError(f"Filter on {name!r}: values are limited to {MAX_VALUE_CHARS} characters.{_FIX}")
    check.leaves += 1
    check.values += len(items)
    if name not in PERSON_FILTER_FIELDS:
        check.unknown_fields[name] = None
        meant = synonym(name.lower())
        if meant in PERSON_FILTER_FIELDS:  # check the value as the field meant, so one retry fixes both
            _check_values(meant, operator, value, check)
    else:
        value = _check_values(name, operator, value, check)
    return Filter(field=name, type=operator, value=value)


def _check_values(name: str, operator: str, value: Any, check: _Check) -> Any:
    """Values that would silently match no one are refused; a lower-case ISO-3 code is upper-cased."""
    items = cast(list[Any], value) if isinstance(value, list) else [value]
    strings = [v for v in items if isinstance(v, str)]
    if name in ISO3_COLUMNS:
        fixed: list[Any] = [_iso3(name, v, check) for v in items]
        return fixed if isinstance(value, list) else fixed[0]
    if name in COUNTRY_NAME_COLUMNS and operator in _EXACT:
        for item in strings:
            known = country(item)
            spelled = item.strip().lower()
            if known is not None and spelled != known[0].lower() and spelled not in _ALSO_INDEXED:
                kind = "a country code" if len(spelled) <= 3 else "another name for a country"
                check.problems.append(
                    f"Filter on {name!r}: {item!r} is {kind}, but this column takes the full English name: use "
                    f"{known[0]!r} (anything else matches no one)."
                )
    leaf = name.rsplit(".", 1)[-1]
    allowed = CLOSED_VALUES.get(leaf)
    if allowed is not None and operator in _EXACT:
        lowered = {a.lower() for a in allowed}
        for item in strings:
            if item.strip().lower() in lowered:
                continue
            meant = CLOSED_VALUE_ALIASES.get(item.strip().lower())
            hint = f" ({item!r} is {meant!r})" if meant in allowed else ""
            words = (
                " For words inside job titles use experience.employment_details.current.title with type (.) instead."
                if leaf == "seniority_level"
                else ""
            )
            check.problems.append(
                f"Filter on {name!r}: {item[:40]!r} is not one of its values{hint}; use one of: "
                f"{', '.join(allowed)}.{words}"
            )
    return cast(Any, value)


def _iso3(name: str, item: Any, check: _Check) -> Any:
    if not isinstance(item, str):
        return item
    code = item.strip()
    known = country(code)
    if len(code) == 3 and code.isalpha():
        if code.upper() != code:
            check.notes[f"{code!r} in {name} was read as {code.upper()!r} (ISO-3 codes are upper case)."] = None
        return code.upper()
    use = f"use {known[2]!r} for {item!r}" if known is not None else "e.g. USA, DEU, GBR, IND"
    check.problems.append(
        f"Filter on {name!r}: this column takes ISO-3 country codes, not names or other codes: {use} "
        "(a name here matches no one)."
    )
    return item


def check_sorts(sorts: list[Sort] | None) -> list[Sort]:
    """The sorts with their order read case-insensitively, after checking every field is sortable.

    Raises:
        InputError: naming unsortable fields with the nearest sortable ones.
    """
    if not sorts:
        return []
    if len(sorts) > MAX_SORTS:
        raise InputError(f"At most {MAX_SORTS} sort keys; keep the most important. Nothing was sent or spent.")
    out: list[Sort] = []
    for sort in sorts:
        name = sort.field.strip()
        if name not in PERSON_SORTABLE_FIELDS:
            close = nearest(name, PERSON_SORTABLE_FIELDS, n=3)
            hint = f" Nearest sortable: {', '.join(close)}." if close else ""
            raise InputError(
                f"Cannot sort on {name[:80]!r}.{hint} Sortable fields are listed in {SEARCH_FIELDS_RESOURCE_URI}. "
                "Nothing was sent or spent."
            )
        order = sort.order.strip().lower()
        if order not in ("asc", "desc"):
            raise InputError(f"Sort order is 'asc' or 'desc', not {sort.order[:10]!r}. Nothing was sent or spent.")
        out.append(Sort(field=name, order=order))
    return out
