"""Search filters: grammar validation, evaluation over precomputed bitmask postings, and sorting.

Each searchable person has a position in `Dataset.searchable`; a set of people is a Python int used as a bitset.
A leaf condition is answered from a per-field inverted index (value -> bitset), so a query of ~40 conditions
over thousands of people costs a few big-int operations per condition instead of a scan of every profile.
"""

from __future__ import annotations

import bisect
import datetime
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from person_enrich_mcp.sandbox.dataset import Dataset, Person, gc_paused, recently_changed_jobs, years_of_experience

FieldKind = Literal["text", "number", "date", "bool"]

OPERATORS: tuple[str, ...] = ("=", "!=", "<", "=<", ">", "=>", "in", "not_in", "(.)", "(!)", "[.]")
_COMPARISONS = frozenset({"<", "=<", ">", "=>"})
_TEXT_ONLY = frozenset({"(.)", "(!)", "[.]"})
_NEGATIVE = frozenset({"!=", "not_in", "(!)"})
MAX_DEPTH = 32

SORTABLE_FIELDS: tuple[str, ...] = (
    "crustdata_person_id",
    "basic_profile.name",
    "professional_network.connections",
    "experience.employment_details.start_date",
    "experience.employment_details.company_id",
    "metadata.updated_at",
)


class FilterError(ValueError):
    """A filter, sort or search parameter is invalid; `metadata` carries structured detail for the 400 body."""

    def __init__(self, message: str, metadata: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.metadata: dict[str, Any] | list[Any] = metadata if metadata is not None else []


Extractor = Callable[[dict[str, Any]], list[Any]]


@dataclass(frozen=True, slots=True)
class FilterField:
    """A filterable field: its path, its value kind and how to read its values from a profile."""

    path: str
    kind: FieldKind
    extract: Extractor
    union_of: tuple[str, str] | None = None
    role: tuple[str, str] | None = None  # (current|past, key) for per-role fields, read in the role loop


def _scalar(*keys: str) -> Extractor:
    def extract(data: dict[str, Any]) -> list[Any]:
        node: Any = data
        for key in keys:
            if not isinstance(node, dict):
                return []
            node = cast("dict[str, Any]", node).get(key)
        if node is None or node == "":
            return []
        if isinstance(node, list):
            return [v for v in cast("list[Any]", node) if v is not None and v != ""]
        return [node]

    return extract


def _roles(scope: str, key: str) -> Extractor:
    scopes = ("current", "past") if scope == "any" else (scope,)

    def extract(data: dict[str, Any]) -> list[Any]:
        details = data["experience"]["employment_details"]
        values: list[Any] = []
        for s in scopes:
            for role in details[s]:
                value = role.get(key)
                if isinstance(value, list):
                    values.extend(cast("list[Any]", value))
                elif value is not None and value != "":
                    values.append(value)
        return values

    return extract


def _items(section: str, key: str, sub: str | None = None) -> Extractor:
    def extract(data: dict[str, Any]) -> list[Any]:
        container: Any = data[section]
        items: list[dict[str, Any]] = container[sub] if sub is not None else container
        return [item[key] for item in items if item.get(key) not in (None, "")]

    return extract


_ROLE_FIELDS: tuple[tuple[str, str, FieldKind], ...] = (
    ("company_name", "name", "text"),
    ("title", "title", "text"),
    ("seniority_level", "seniority_level", "text"),
    ("function_category", "function_category", "text"),
    ("company_website_domain", "company_website_domain", "text"),
    ("company_headcount_range", "company_headcount_range", "text"),
    ("company_industries", "company_industries", "text"),
    ("start_date", "start_date", "date"),
    ("company_id", "crustdata_company_id", "number"),
    ("business_email_verified", "business_email_verified", "bool"),
)


def _filter_fields() -> dict[str, FilterField]:
    fields: list[FilterField] = [
        FilterField("crustdata_person_id", "number", _scalar("crustdata_person_id")),
        FilterField("basic_profile.name", "text", _scalar("basic_profile", "name")),
        FilterField("basic_profile.first_name", "text", _scalar("basic_profile", "first_name")),
        FilterField("basic_profile.last_name", "text", _scalar("basic_profile", "last_name")),
        FilterField("basic_profile.headline", "text", _scalar("basic_profile", "headline")),
        FilterField("basic_profile.summary", "text", _scalar("basic_profile", "summary")),
        FilterField("basic_profile.languages", "text", _scalar("basic_profile", "languages")),
        FilterField("basic_profile.last_updated", "date", _scalar("basic_profile", "last_updated")),
        FilterField(
            "basic_profile.location",
            "text",
            lambda d: [d["basic_profile"]["location"]["full_location"], d["basic_profile"]["location"]["raw"]],
        ),
    ]
    fields.extend(
        FilterField(f"basic_profile.location.{key}", "text", _scalar("basic_profile", "location", key))
        for key in ("full_location", "city", "state", "country", "continent", "raw")
    )
    fields.extend(
        FilterField(f"professional_network.location.{key}", "text", _scalar("professional_network", "location", key))
        for key in ("raw", "city", "country")
    )
    fields += [
        FilterField("professional_network.connections", "number", _scalar("professional_network", "connections")),
        FilterField("professional_network.followers", "number", _scalar("professional_network", "followers")),
        FilterField("professional_network.open_to_cards", "text", _scalar("professional_network", "open_to_cards")),
        FilterField("skills.professional_network_skills", "text", _scalar("skills", "professional_network_skills")),
    ]
    for scope, prefix in (
        ("any", "experience.employment_details"),
        ("current", "experience.employment_details.current"),
        ("past", "experience.employment_details.past"),
    ):
        for name, key, kind in _ROLE_FIELDS:
            union = (f"{prefix}.current.{name}", f"{prefix}.past.{name}") if scope == "any" else None
            role = (scope, key) if scope != "any" else None
            fields.append(FilterField(f"{prefix}.{name}", kind, _roles(scope, key), union, role))
    fields += [
        FilterField("education.schools.school", "text", _items("education", "school", "schools")),
        FilterField("education.schools.degree", "text", _items("education", "degree", "schools")),
        FilterField("education.schools.field_of_study", "text", _items("education", "field_of_study", "schools")),
        FilterField("certifications.name", "text", _items("certifications", "name")),
        FilterField("certifications.issuing_organization", "text", _items("certifications", "issuing_organization")),
        FilterField("honors.title", "text", _items("honors", "title")),
        FilterField("recently_changed_jobs", "bool", lambda d: [recently_changed_jobs(d)]),
        FilterField("years_of_experience_raw", "number", lambda d: [years_of_experience(d)]),
        FilterField("metadata.updated_at", "date", _scalar("updated_at")),
    ]
    return {f.path: f for f in fields}


FILTER_FIELDS: dict[str, FilterField] = _filter_fields()
SUPPORTED_FIELDS: list[str] = list(FILTER_FIELDS)


def parse_date(value: str) -> float:
    """Seconds since the epoch for an ISO date or datetime string (naive values are read as UTC)."""
    text = value.strip()
    parsed = datetime.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.timestamp()


class FieldIndex:
    """Inverted index for one field over the searchable people: value -> positions, with bitsets made on demand."""

    def __init__(self, kind: FieldKind, originals: dict[Any, list[int]]) -> None:
        self.kind: FieldKind = kind
        # Raw values as stored (case kept: `[.]` is case-sensitive; dates as their ISO strings).
        self.originals = originals
        # Normalised keys: lower-case text, epoch seconds for dates, numbers and booleans as they are.
        self.postings: dict[Any, list[int]] = originals
        if kind in ("text", "date"):
            postings: dict[Any, list[int]] = {}
            for value, found in originals.items():
                key = value.lower() if kind == "text" else parse_date(value)
                existing = postings.get(key)
                postings[key] = found if existing is None else existing + found
            self.postings = postings
        self._masks: dict[Any, int] = {}
        self._sorted: tuple[list[Any], list[int], list[int]] | None = None

    @classmethod
    def union(cls, first: FieldIndex, second: FieldIndex) -> FieldIndex:
        """The index of "any role" fields: current and past merged, without rescanning people."""
        originals = dict(first.originals)
        for value, found in second.originals.items():
            existing = originals.get(value)
            originals[value] = found if existing is None else existing + found
        return cls(first.kind, originals)

    def mask(self, key: Any) -> int:
        """The bitset of one normalised key (memoised: popular values are asked for again and again)."""
        cached = self._masks.get(key)
        if cached is None:
            found = self.postings.get(key)
            cached = bitset(found) if found else 0
            self._masks[key] = cached
        return cached

    def mask_of(self, keys: list[Any], source: dict[Any, list[int]] | None = None) -> int:
        """The union of several keys' bitsets; many keys are merged as one position list."""
        if source is None and len(keys) <= 32:
            mask = 0
            for key in keys:
                mask |= self.mask(key)
            return mask
        table = self.postings if source is None else source
        merged: list[int] = []
        for key in keys:
            merged.extend(table.get(key, ()))
        return bitset(merged)

    def below(self, bound: Any, inclusive: bool) -> int:
        """People with at least one value < bound (or <= bound)."""
        keys, prefix, _suffix = self._ranges()
        cut = bisect.bisect_right(keys, bound) if inclusive else bisect.bisect_left(keys, bound)
        return prefix[cut]

    def above(self, bound: Any, inclusive: bool) -> int:
        """People with at least one value > bound (or >= bound)."""
        keys, _prefix, suffix = self._ranges()
        cut = bisect.bisect_left(keys, bound) if inclusive else bisect.bisect_right(keys, bound)
        return suffix[cut]

    def _ranges(self) -> tuple[list[Any], list[int], list[int]]:
        # One-sided ranges are all the grammar has, so cumulative unions from each end answer any of them with
        # one lookup. Built on first use: only fields that see range conditions pay for them.
        if self._sorted is None:
            keys = sorted(self.postings)
            masks = [self.mask(k) for k in keys]
            prefix = [0] * (len(keys) + 1)
            for i, m in enumerate(masks):
                prefix[i + 1] = prefix[i] | m
            suffix = [0] * (len(keys) + 1)
            for i in range(len(keys) - 1, -1, -1):
                suffix[i] = suffix[i + 1] | masks[i]
            self._sorted = (keys, prefix, suffix)
        return self._sorted


def bitset(found: list[int]) -> int:
    """The bitset with a bit set at every position in `found`."""
    if not found:
        return 0
    if len(found) < 16:
        mask = 0
        for p in found:
            mask |= 1 << p
        return mask
    buffer = bytearray((max(found) >> 3) + 1)
    for p in found:
        buffer[p >> 3] |= 1 << (p & 7)
    return int.from_bytes(buffer, "little")


def positions(mask: int) -> list[int]:
    """The set bits of `mask`, ascending."""
    digits = bin(mask)[:1:-1]  # reversed binary without the 0b prefix: index i is bit i
    return [i for i, c in enumerate(digits) if c == "1"]


def _add(table: dict[Any, list[int]], value: Any, position: int) -> None:
    found = table.get(value)
    if found is None:
        table[value] = [position]
    else:
        found.append(position)


def build_field_indices(people: Sequence[Person]) -> dict[str, FieldIndex]:
    """Every field's index, from one pass over the people (a pass per field costs several times more)."""
    with gc_paused():
        return _build_field_indices(people)


def _build_field_indices(people: Sequence[Person]) -> dict[str, FieldIndex]:
    scalar = [(spec.path, spec.extract) for spec in FILTER_FIELDS.values() if spec.union_of is None and not spec.role]
    tables: dict[str, dict[Any, list[int]]] = {spec.path: {} for spec in FILTER_FIELDS.values() if not spec.union_of}
    scalar_tables = [(tables[path], extract) for path, extract in scalar]
    role_tables: dict[str, list[tuple[dict[Any, list[int]], str]]] = {"current": [], "past": []}
    for spec in FILTER_FIELDS.values():
        if spec.role is not None:
            role_tables[spec.role[0]].append((tables[spec.path], spec.role[1]))
    for position, person in enumerate(people):
        data = person.data
        for table, extract in scalar_tables:
            for value in extract(data):
                _add(table, value, position)
        details = data["experience"]["employment_details"]
        for scope in ("current", "past"):
            for role in details[scope]:
                for table, key in role_tables[scope]:
                    value = role.get(key)
                    if isinstance(value, list):
                        for item in cast("list[Any]", value):
                            _add(table, item, position)
                    elif value is not None and value != "":
                        _add(table, value, position)
    indices = {path: FieldIndex(FILTER_FIELDS[path].kind, table) for path, table in tables.items()}
    for spec in FILTER_FIELDS.values():
        if spec.union_of is not None:
            indices[spec.path] = FieldIndex.union(indices[spec.union_of[0]], indices[spec.union_of[1]])
    return indices


class SearchIndex:
    """Field indices and cached sort orders for one dataset's searchable people."""

    def __init__(self, dataset: Dataset) -> None:
        self.people = dataset.searchable
        self.all = (1 << len(self.people)) - 1
        self.fields = build_field_indices(self.people)
        self._orders: OrderedDict[tuple[tuple[str, str], ...], list[int]] = OrderedDict()
        # Leaf results by condition: benchmarks and page walks repeat the same conditions over and over.
        self._leaves: OrderedDict[CompiledLeaf, int] = OrderedDict()
        self._lock = threading.Lock()

    def evaluate(self, node: CompiledNode) -> int:
        """The bitset of people matching a compiled filter tree."""
        if isinstance(node, CompiledGroup):
            results = (self.evaluate(child) for child in node.children)
            if node.op == "and":
                mask = self.all
                for r in results:
                    mask &= r
                    if not mask:
                        break
                return mask
            mask = 0
            for r in results:
                mask |= r
            return mask
        return self._leaf(node)

    def _leaf(self, leaf: CompiledLeaf) -> int:
        cached = self._leaves.get(leaf)
        if cached is not None:
            return cached
        result = self._evaluate_leaf(leaf)
        with self._lock:
            self._leaves[leaf] = result
            while len(self._leaves) > 4096:
                self._leaves.popitem(last=False)
        return result

    def _evaluate_leaf(self, leaf: CompiledLeaf) -> int:
        index = self.fields[leaf.field]
        op = leaf.op
        positive_op = {"!=": "=", "not_in": "in", "(!)": "(.)"}.get(op, op)
        mask = self._positive(index, positive_op, leaf)
        if op in _NEGATIVE:
            # "No value matches": people without any value qualify too.
            return self.all & ~mask
        return mask

    def _positive(self, index: FieldIndex, op: str, leaf: CompiledLeaf) -> int:
        if op == "=":
            return index.mask(leaf.values[0])
        if op == "in":
            return index.mask_of(list(leaf.values))
        if op in _COMPARISONS:
            bound = leaf.values[0]
            if op in ("<", "=<"):
                return index.below(bound, inclusive=op == "=<")
            return index.above(bound, inclusive=op == "=>")
        if op == "(.)":
            needles = cast("tuple[str, ...]", leaf.values)
            if index.kind == "text":
                hits = [key for key in index.postings if any(n in key for n in needles)]
                return index.mask_of(hits)
            hits = [raw for raw in index.originals if any(n in raw.lower() for n in needles)]
            return index.mask_of(hits, index.originals)
        # "[.]": case-sensitive token or phrase on word boundaries; the value is escaped, never run as a regex.
        pattern = cast("re.Pattern[str]", leaf.values[0])
        hits = [raw for raw in index.originals if pattern.search(raw)]
        return index.mask_of(hits, index.originals)

    def order(self, sorts: tuple[tuple[str, str], ...]) -> list[int]:
        """All searchable positions in the order of `sorts`, ties broken by ascending crustdata_person_id."""
        cached = self._orders.get(sorts)
        if cached is not None:
            return cached
        people = self.people
        order = list(range(len(people)))  # people are generated in ascending id order
        for field, direction in reversed(sorts):
            keys = [_sort_key(field, p) for p in people]
            if direction == "desc":
                # Missing values last in both directions: (present, value) reversed puts present ones first.
                order.sort(key=lambda i: (keys[i] is not None, keys[i] if keys[i] is not None else 0), reverse=True)
            else:
                order.sort(key=lambda i: (keys[i] is None, keys[i] if keys[i] is not None else 0))
        with self._lock:
            self._orders[sorts] = order
            while len(self._orders) > 32:
                self._orders.popitem(last=False)
        return order


def _primary_role(data: dict[str, Any]) -> dict[str, Any] | None:
    details = data["experience"]["employment_details"]
    if details["current"]:
        return details["current"][0]
    if details["past"]:
        return details["past"][0]
    return None


def _sort_key(field: str, person: Person) -> Any:
    data = person.data
    if field == "crustdata_person_id":
        return person.person_id
    if field == "basic_profile.name":
        name = data["basic_profile"]["name"]
        return name.casefold() if name else None
    if field == "professional_network.connections":
        return data["professional_network"]["connections"]
    if field == "metadata.updated_at":
        return data["updated_at"]
    role = _primary_role(data)
    if role is None:
        return None
    # start_date strings share one format, so string order is date order.
    return role["start_date"] if field == "experience.employment_details.start_date" else role["crustdata_company_id"]


@dataclass(frozen=True, slots=True)
class CompiledLeaf:
    """A validated leaf condition with its value(s) normalised for the field's index."""

    field: str
    op: str
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class CompiledGroup:
    """A validated `and`/`or` group."""

    op: Literal["and", "or"]
    children: tuple[CompiledNode, ...]


CompiledNode = CompiledLeaf | CompiledGroup


def compile_filters(node: object, depth: int = 0) -> CompiledNode:
    """Validate a filter tree and normalise its values; raises FilterError with an upstream-style message."""
    if depth > MAX_DEPTH:
        raise FilterError(f"filters are nested too deeply (more than {MAX_DEPTH} levels)")
    if not isinstance(node, dict):
        raise FilterError("each filter must be an object: a condition {field, type, value} or a group {op, conditions}")
    obj = cast("dict[str, Any]", node)
    if "column" in obj:
        raise FilterError("Unknown filter key 'column': use 'field' to name the field to filter on")
    if "filter_type" in obj:
        raise FilterError("Unknown filter key 'filter_type': use 'type' for the operator")
    if "op" in obj or "conditions" in obj:
        return _compile_group(obj, depth)
    return _compile_leaf(obj)


def _compile_group(obj: dict[str, Any], depth: int) -> CompiledGroup:
    extra = sorted(set(obj) - {"op", "conditions"})
    if extra:
        raise FilterError(f"Unknown key(s) in filter group: {', '.join(extra)}; a group has 'op' and 'conditions'")
    op = obj.get("op")
    if op not in ("and", "or"):
        raise FilterError(f"Filter group 'op' must be 'and' or 'or'; got {op!r}")
    conditions = obj.get("conditions")
    if not isinstance(conditions, list) or not conditions:
        raise FilterError("Filter group 'conditions' must be a non-empty list")
    children = tuple(compile_filters(c, depth + 1) for c in cast("list[Any]", conditions))
    return CompiledGroup(op, children)


def _compile_leaf(obj: dict[str, Any]) -> CompiledLeaf:
    missing = [k for k in ("field", "type") if k not in obj]
    if missing:
        raise FilterError(
            f"Filter condition is missing {', '.join(repr(m) for m in missing)}; expected field, type, value"
        )
    extra = sorted(set(obj) - {"field", "type", "value"})
    if extra:
        raise FilterError(f"Unknown key(s) in filter condition: {', '.join(extra)}; expected field, type, value")
    field, op = obj["field"], obj["type"]
    if not isinstance(field, str) or field not in FILTER_FIELDS:
        raise FilterError(
            f"Unsupported filter field: {field!r}. Supported fields: {SUPPORTED_FIELDS}",
            {"supported_fields": SUPPORTED_FIELDS},
        )
    if op in (">=", "<="):
        replacement = "=>" if op == ">=" else "=<"
        raise FilterError(f"Operator '{op}' is not supported; use '{replacement}' instead")
    if not isinstance(op, str) or op not in OPERATORS:
        raise FilterError(
            f"Unsupported operator {op!r}. Supported operators: {list(OPERATORS)}",
            {"supported_operators": list(OPERATORS)},
        )
    if "value" not in obj:
        raise FilterError(f"Filter condition on {field!r} is missing 'value'")
    kind = FILTER_FIELDS[field].kind
    return CompiledLeaf(field, op, _normalise(field, kind, op, obj["value"]))


def _normalise(field: str, kind: FieldKind, op: str, value: Any) -> tuple[Any, ...]:
    if op in ("in", "not_in"):
        if not isinstance(value, list):
            raise FilterError(f"IN operator requires list or tuple value, got: <class '{type(value).__name__}'>")
        items = cast("list[Any]", value)
        if not items:
            raise FilterError(f"Operator '{op}' on {field!r} needs a non-empty list")
        return tuple(_scalar_value(field, kind, op, v) for v in items)
    if isinstance(value, list | dict):
        shape = "a list" if isinstance(value, list) else "an object"
        raise FilterError(f"Operator '{op}' on {field!r} needs a single value, not {shape}")
    if op in _TEXT_ONLY:
        if kind not in ("text", "date"):
            raise FilterError(f"Operator '{op}' needs a text field; {field!r} holds {kind} values")
        if not isinstance(value, str) or not value.strip():
            raise FilterError(f"Operator '{op}' on {field!r} needs a non-empty string value")
        if op == "(.)":
            needles = tuple(part.strip().lower() for part in value.split("|") if part.strip())
            if not needles:
                raise FilterError(f"Operator '(.)' on {field!r} needs at least one non-empty alternative")
            return needles
        if op == "(!)":
            return (value.lower(),)
        return (re.compile(r"(?<!\w)" + re.escape(value) + r"(?!\w)"),)
    if op in _COMPARISONS and kind not in ("number", "date"):
        raise FilterError(f"Operator '{op}' needs a number or date field; {field!r} holds {kind} values")
    return (_scalar_value(field, kind, op, value),)


def _scalar_value(field: str, kind: FieldKind, op: str, value: Any) -> Any:
    if value is None:
        raise FilterError(f"Operator '{op}' on {field!r} needs a value, not null")
    if kind == "text":
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise FilterError(f"Field {field!r} takes text values; got {value!r}")
        return str(value).lower()
    if kind == "number":
        if isinstance(value, bool):
            raise FilterError(f"Field {field!r} takes numbers; got {value!r}")
        if isinstance(value, int | float):
            return value
        if isinstance(value, str):
            try:
                return float(value) if any(c in value for c in ".eE") else int(value)
            except ValueError:
                pass
        raise FilterError(f"Field {field!r} takes numbers; got {value!r}")
    if kind == "date":
        if not isinstance(value, str):
            raise FilterError(f"Field {field!r} takes ISO dates such as '2024-01-31'; got {value!r}")
        try:
            return parse_date(value)
        except ValueError:
            raise FilterError(f"Field {field!r} takes ISO dates such as '2024-01-31'; got {value!r}") from None
    if op not in ("=", "!=", "in", "not_in"):
        raise FilterError(f"Operator '{op}' does not apply to the true/false field {field!r}")
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise FilterError(f"Field {field!r} takes true or false; got {value!r}")


def compile_sorts(sorts: object) -> tuple[tuple[str, str], ...]:
    """Validate `sorts` into (field, order) pairs; raises FilterError."""
    if sorts is None:
        return ()
    if not isinstance(sorts, list):
        raise FilterError("'sorts' must be a list of {field, order} objects")
    result: list[tuple[str, str]] = []
    for item in cast("list[Any]", sorts):
        if not isinstance(item, dict):
            raise FilterError("each sort must be an object {field, order}")
        entry = cast("dict[str, Any]", item)
        if "column" in entry:
            raise FilterError("Unknown sort key 'column': use 'field'")
        extra = sorted(set(entry) - {"field", "order"})
        if extra:
            raise FilterError(f"Unknown key(s) in sort: {', '.join(extra)}; expected field and order")
        field = entry.get("field")
        if field not in SORTABLE_FIELDS:
            raise FilterError(
                f"Unsupported sort field: {field!r}. Sortable fields: {list(SORTABLE_FIELDS)}",
                {"sortable_fields": list(SORTABLE_FIELDS)},
            )
        order = entry.get("order", "asc")
        if order not in ("asc", "desc"):
            raise FilterError(f"Sort order must be 'asc' or 'desc'; got {order!r}")
        result.append((cast("str", field), cast("str", order)))
    return tuple(result)
